"""Faults on the way to a recipient, for real: an endpoint that is down (connection
refused) keeps its notice queued, and it is delivered, once, when the endpoint is back; an
endpoint that answers slower than the timeout is a failure retried, not a hang."""

from __future__ import annotations

import asyncio
from typing import Any

from api.clock import FakeClock
from api.mail.sender import deliver_pending
from api.services import Services
from models import OutboxMessage, RecipientNotice
from tests.conftest import GQL
from tests.notice_receivers import Receiver, serving
from tests.test_consent import SET
from tests.test_recipient_notices import ISSUE_KEY, contract, disclosed, registered
from tests.test_rights_requests import customer
from tests.test_sharing import employee


class _Discard:
    async def send(self, message: object) -> None:
        return None


async def _withdrawn_with_endpoint(
    gql: GQL, services: Services, clock: FakeClock, receiver: Receiver
) -> RecipientNotice:
    token, jane = await customer(gql)
    p = await registered(clock, "Mailer Ltd", url=receiver.url)
    legal = await employee(gql, services, "legal")
    issued = await gql(ISSUE_KEY, {"id": str(p.id)}, legal)
    receiver.key = issued["data"]["issueProcessorNoticeKey"]["noticeKey"]
    receiver.processor_id = str(p.id)
    await disclosed(jane.id, clock, contract(p, "contact.email"))
    await gql(SET, {"purpose": "marketing.email", "granted": False}, token)
    return await RecipientNotice.get(recipient="Mailer Ltd")


async def test_an_endpoint_that_is_down_gets_its_notice_once_it_is_back(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    async def post(path: str, body: bytes, headers: dict[str, str]) -> Any:
        return await gql.client.post(path, content=body, headers=headers)

    receiver = Receiver(mode="ack", post=post)
    notice = await _withdrawn_with_endpoint(gql, services, clock, receiver)
    # the endpoint is down: nothing listens on its port
    await deliver_pending(backend=_Discard(), settings=services.settings, clock=clock)
    row = await OutboxMessage.get(kind="recipient_notice")
    assert (row.status, row.last_error) == ("pending", "ConnectError")
    assert (await RecipientNotice.get(id=notice.id)).status == "pending"
    # back after the backoff: delivered once, checked and acknowledged by the processor
    clock.advance(seconds=services.settings.mail_backoff_seconds)
    async with serving(receiver):
        delivered = await deliver_pending(
            backend=_Discard(), settings=services.settings, clock=clock
        )
        for _ in range(200):
            if receiver.answers:
                break
            await asyncio.sleep(0.02)
    assert delivered == 1
    assert [n["notice"] for n in receiver.received] == [str(notice.id)]
    assert receiver.answers == [200]
    assert (await RecipientNotice.get(id=notice.id)).status == "acknowledged"
    assert (await OutboxMessage.get(id=row.id)).status == "sent"


async def test_an_endpoint_slower_than_the_timeout_is_a_failure_retried(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    async def post(path: str, body: bytes, headers: dict[str, str]) -> Any:
        return await gql.client.post(path, content=body, headers=headers)

    receiver = Receiver(mode="silent", post=post, delay=2.0)
    await _withdrawn_with_endpoint(gql, services, clock, receiver)
    quick = services.settings.model_copy(update={"webhook_timeout_seconds": 0.3})
    async with serving(receiver):
        await deliver_pending(backend=_Discard(), settings=quick, clock=clock)
    row = await OutboxMessage.get(kind="recipient_notice")
    assert (row.status, row.last_error, row.attempts) == ("pending", "ReadTimeout", 1)
