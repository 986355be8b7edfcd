"""When a silent recipient is escalated: before its request's due date (within
`recipient_escalate_days`) even with reminders left; not while the date is far and a
reminder is still to come; and once only, whichever process asks."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import uuid4

from api.clock import FakeClock
from api.recipients import chase
from api.services import Services
from models import OutboxMessage, RecipientNotice, RightsRequest
from tests.conftest import GQL, stored_customer
from tests.test_rights_requests import officer


async def waiting_request(clock: FakeClock, due_in: timedelta) -> RecipientNotice:
    customer = await stored_customer(1, at=clock.now())
    request = await RightsRequest.create(
        customer=customer,
        kind="erasure",
        status="notifying",
        channel="account",
        submitted_at=clock.now() - timedelta(days=20),
        due_at=clock.now() + due_in,
    )
    return await RecipientNotice.create(
        customer_id=customer.id,
        request_id=request.id,
        trigger="erasure",
        processor_id=uuid4(),
        recipient="Slow Ltd",
        categories=["contact.email"],
        channel="mail",
        status="notified",
        sends=1,
        created_at=clock.now(),
        last_sent_at=clock.now(),
    )


async def test_a_notice_is_escalated_when_its_request_is_nearly_due(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await officer(gql, services)
    far = await waiting_request(clock, timedelta(days=20))
    assert (await chase.chase(services)).escalated == 0
    assert (await RecipientNotice.get(id=far.id)).escalated_at is None
    # five days before the due date (the setting says seven): escalated, reminders left or not
    clock.advance(days=15)
    assert (await chase.chase(services)).escalated == 1
    assert (await RecipientNotice.get(id=far.id)).escalated_at == clock.now()
    [alert] = await OutboxMessage.filter(kind="recipient_escalation")
    assert "Slow Ltd" in alert.subject


async def test_processes_chasing_at_once_escalate_once(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await officer(gql, services)
    await waiting_request(clock, timedelta(days=2))
    rounds = await asyncio.gather(*(chase.chase(services) for _ in range(5)))
    assert sum(r.escalated for r in rounds) == 1
    assert await OutboxMessage.filter(kind="recipient_escalation").count() == 1
