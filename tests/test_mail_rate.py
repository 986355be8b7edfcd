"""No mail bombing (api/security/mail_limits.py): at most three mails of one kind to one
address a window, silently (the answer is the same), and a limit on mail-sending requests
per client IP, answered RATE_LIMITED with Retry-After."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import httpx
import pytest
from strawberry.permission import PermissionExtension
from tortoise.transactions import in_transaction

from api.clock import FakeClock
from api.mail.outbox import Mail, enqueue
from api.schema import build_schema
from api.security.mail_limits import MailRateLimit
from api.services import Services
from api.settings import Settings
from models import Customer, OutboxMessage, RateCount
from tests.conftest import CLIENT_IP, GQL, REGISTER, mails, register, registration
from tests.intake_helpers import run_intake

EMAIL = "jane.doe@example.com"
PER_RECIPIENT = 3  # the default `mail_max_per_recipient`


def no_repeat_window(services: Services) -> None:
    """Rights requests repeated by email mail a fresh code every time (within the limits),
    so the mail limits are what these tests meet."""
    services.settings = services.settings.model_copy(update={"rights_repeat_window_minutes": 0})


WINDOW = 3600  # the default `mail_window_seconds`; the test clock starts on the hour
BY_EMAIL = """
mutation ($email: String!) {
  submitRightsRequestByEmail(email: $email, kind: ACCESS, details: "please") {
    __typename
    ... on RightsRequestByEmailAccepted { message }
  }
}
"""
VERIFY_CODE = """
mutation ($id: ID!, $code: String!) { verifyRightsRequest(id: $id, code: $code) {
  __typename ... on RightsError { code } } }
"""
_CODE = re.compile(r"request: (\S+)\n\s+code: (\d{6})")
# Every operation a request from outside can make send mail (`grep -rn "enqueue(" api`).
MAIL_SENDING = {
    "register",
    "updateProfile",
    "changePassword",
    "submitRightsRequest",
    "submitRightsRequestByEmail",
    "resendRightsRequestCode",
    "verifyRightsRequest",
    "requestPasswordReset",
    "resetPassword",
    "resendVerificationEmail",
}


def mail(kind: str = "verify_email") -> Mail:
    return Mail(kind=kind, subject="Subject", body="Body")


async def test_ten_registrations_of_one_address_mail_it_at_most_three_times_a_kind(
    gql: GQL,
) -> None:
    # when one address is registered ten times
    answers = [await gql.raw(REGISTER, {"input": registration()}) for _ in range(10)]
    # then the tenth answer is the first one, word for word
    assert answers[0].status_code == answers[-1].status_code == 200
    assert answers[0].json() == answers[-1].json()
    assert answers[0].json()["data"]["register"]["__typename"] == "RegistrationAccepted"
    # and the address got its verification link and three "already registered" notices
    assert len(await mails("verify_email", EMAIL)) == 1
    assert len(await mails("already_registered", EMAIL)) == PER_RECIPIENT


async def test_ten_rights_requests_by_email_mail_at_most_three_codes(
    gql: GQL, services: Services
) -> None:
    # given a customer, and repeats by email mailing a fresh code each time (no repeat window)
    no_repeat_window(services)
    await register(gql)
    # when ten requests by email name their address, and the intake worker handles them
    answers = [await gql.raw(BY_EMAIL, {"email": EMAIL}) for _ in range(10)]
    await run_intake(services)
    # then the tenth answer is the first one, and only three codes were mailed
    assert answers[0].status_code == answers[-1].status_code == 200
    assert answers[0].json() == answers[-1].json()
    assert len(await mails("rights_code", EMAIL)) == PER_RECIPIENT


async def test_the_outbox_queues_three_mails_of_a_kind_to_an_address_a_window(
    services: Services, clock: FakeClock
) -> None:
    # when five mails of one kind go to one address (however it is spelled)
    queued = [
        await enqueue(mail=mail(), recipient=address, customer_id=None, clock=clock)
        for address in [EMAIL, EMAIL.upper(), EMAIL, f" {EMAIL}", EMAIL]
    ]
    # then three are queued and two are not
    assert [message is not None for message in queued] == [True] * 3 + [False] * 2
    assert await OutboxMessage.all().count() == PER_RECIPIENT
    # and another kind, another address and an officer's answer still go
    others = [
        (mail("password_changed"), EMAIL),
        (mail(), "john@example.com"),
        *[(mail("rights_completed"), EMAIL)] * 5,
    ]
    for message, address in others:
        assert await enqueue(mail=message, recipient=address, customer_id=None, clock=clock)
    # and the next window has a share of its own
    clock.advance(seconds=WINDOW)
    assert await enqueue(mail=mail(), recipient=EMAIL, customer_id=None, clock=clock)
    # and the counts name no address
    for row in await RateCount.all().values():
        assert "example.com" not in str(row).lower()


async def test_concurrent_mails_to_one_address_queue_no_more_than_the_limit(
    services: Services, clock: FakeClock
) -> None:
    # when ten transactions each queue a mail to one address at once
    async def send() -> bool:
        async with in_transaction() as conn:
            queued = await enqueue(
                mail=mail(), recipient=EMAIL, customer_id=None, clock=clock, using_db=conn
            )
            await asyncio.sleep(0)  # hold the transaction open while others try
        return queued is not None

    results = await asyncio.gather(*(send() for _ in range(10)))
    # then exactly the limit is queued
    assert sum(results) == PER_RECIPIENT
    assert await OutboxMessage.all().count() == PER_RECIPIENT


def assert_rate_limited(response: httpx.Response) -> int:
    assert response.status_code == 429
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert response.headers["retry-after"] == str(error["extensions"]["retryAfter"])
    retry_after: int = error["extensions"]["retryAfter"]
    return retry_after


async def test_mail_sending_requests_beyond_the_ip_limit_are_refused_alike(
    gql: GQL, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an IP limit of three, used up by three registrations
    monkeypatch.setattr(services, "mail_limits", replace(services.mail_limits, per_ip=3))
    for i in range(3):
        assert (await register(gql, email=f"r{i}@example.com"))["__typename"] == (
            "RegistrationAccepted"
        )
    outbox = await OutboxMessage.all().count()
    # when a fourth registration comes, for an unknown and for a known address
    unknown = await gql.raw(REGISTER, {"input": registration(email="new@example.com")})
    known = await gql.raw(REGISTER, {"input": registration(email="r0@example.com")})
    # then both are refused until the window ends, with the same answer
    assert assert_rate_limited(unknown) == WINDOW
    assert known.json() == unknown.json()
    assert known.headers["retry-after"] == unknown.headers["retry-after"]
    # and nothing was done
    assert not await Customer.filter(email="new@example.com").exists()
    assert await OutboxMessage.all().count() == outbox
    # and the next window lets them in again
    clock.advance(seconds=WINDOW)
    assert (await register(gql, email="new@example.com"))["__typename"] == "RegistrationAccepted"
    # and the counts name no IP
    for row in await RateCount.all().values():
        assert CLIENT_IP not in str(row)


def test_every_operation_that_sends_mail_declares_the_ip_limit() -> None:
    # given the schema's mutations
    fields = build_schema(Settings())._schema.mutation_type.fields  # type: ignore[union-attr]

    def declares(name: str) -> bool:
        definition = fields[name].extensions["strawberry-definition"]
        return any(
            isinstance(extension, PermissionExtension)
            and any(isinstance(p, MailRateLimit) for p in extension.permissions)
            for extension in definition.extensions
        )

    # then each one that can send mail carries MailRateLimit
    assert sorted(name for name in MAIL_SENDING if not declares(name)) == []


async def test_a_stranger_asking_again_cannot_void_the_owners_code(
    gql: GQL, services: Services
) -> None:
    # given a customer whose address had its three codes by email, the last one mailed
    no_repeat_window(services)
    await register(gql)
    for _ in range(PER_RECIPIENT):
        await gql(BY_EMAIL, {"email": EMAIL})
        await run_intake(services)
    last = (await mails("rights_code", EMAIL))[-1]
    match = _CODE.search(last.body_text)
    assert match
    request_id, code = match.groups()
    # when a stranger asks again by email, twice (no code is mailed for these)
    for _ in range(2):
        await gql(BY_EMAIL, {"email": EMAIL})
        await run_intake(services)
    assert len(await mails("rights_code", EMAIL)) == PER_RECIPIENT
    # then the code the owner holds still confirms the request
    body = await gql(VERIFY_CODE, {"id": request_id, "code": code})
    assert body["data"]["verifyRightsRequest"]["__typename"] == "RightsRequestReceipt", body
