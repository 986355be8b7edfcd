"""Verification mail: written with the account, delivered from the outbox, used once."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote

import pytest
from aiosmtpd.controller import Controller

import api.customers.service
from api.clock import FakeClock
from api.mail.sender import ConsoleBackend, SmtpBackend, deliver_pending
from api.settings import Settings
from models import Customer, EmailToken, OutboxMessage
from tests.conftest import (
    GQL,
    ME,
    REGISTER,
    VERIFY_EMAIL,
    login,
    mails,
    register,
    registration,
    verification_token,
)
from tests.ports import free_port

EMAIL = "jane.doe@example.com"
_LINK = re.compile(r"https://shop\.example\.test/privacy/verify-email\?token=(\S+)")


class Recorder:
    """An aiosmtpd handler that keeps every envelope it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Recorder, int]]:
    handler = Recorder()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def smtp_settings(settings: Settings, port: int) -> Settings:
    return settings.model_copy(
        update={
            "mail_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_timeout_seconds": 5.0,
        }
    )


def received(envelope: Any) -> EmailMessage:
    parsed = message_from_bytes(envelope.content, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


async def test_registration_writes_the_verification_mail_with_the_customer(gql: GQL) -> None:
    # when a customer registers with an address in mixed case
    assert (await register(gql, email=" Jane.Doe@EXAMPLE.com"))["__typename"] == (
        "RegistrationAccepted"
    )
    # then a pending verification mail to the normalised address waits in the outbox
    customer = await Customer.get()
    [mail] = await mails()
    assert (mail.kind, mail.recipient, mail.status) == ("verify_email", EMAIL, "pending")
    assert (mail.customer_id, mail.attempts, mail.sent_at) == (customer.id, 0, None)
    # and the token row holds only the SHA-256 of the mailed token, never the token
    token = await verification_token(EMAIL)
    [row] = await EmailToken.filter(customer_id=customer.id).values()
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["used_at"] is None
    assert row["expires_at"] - row["created_at"] == timedelta(hours=48)
    for column, value in row.items():
        assert token not in str(value), column
        assert EMAIL not in str(value), column


async def test_customer_and_mail_are_one_transaction(
    gql: GQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given an outbox that fails on write
    async def broken_enqueue(**kwargs: Any) -> None:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(api.customers.service, "enqueue", broken_enqueue)
    # when a customer registers
    body = await gql(REGISTER, {"input": registration()})
    # then the request fails and neither the customer nor the token was kept
    assert body["data"] is None
    assert body["errors"]
    assert await Customer.all().count() == 0
    assert await EmailToken.all().count() == 0
    assert await OutboxMessage.all().count() == 0


async def test_mailed_token_verifies_the_email(gql: GQL) -> None:
    # given a registered, unverified customer
    await register(gql)
    session = await login(gql)
    token = await verification_token(EMAIL)
    # when the mailed token is used
    body = await gql(VERIFY_EMAIL, {"token": token})
    # then the email is verified, also as seen by the customer
    assert body["data"]["verifyEmail"] == {
        "__typename": "EmailVerified",
        "customer": {"email": EMAIL, "emailVerified": True},
    }
    me = (await gql(ME, token=session))["data"]["me"]
    assert (me["email"], me["emailVerified"], me["pendingEmail"]) == (EMAIL, True, None)


async def test_token_is_single_use(gql: GQL, clock: FakeClock) -> None:
    # given a token that was used once
    await register(gql)
    token = await verification_token(EMAIL)
    first = await gql(VERIFY_EMAIL, {"token": token})
    assert first["data"]["verifyEmail"]["__typename"] == "EmailVerified"
    before = await Customer.get()
    used_at = (await EmailToken.get()).used_at
    # when it is used again later
    clock.advance(hours=1)
    second = await gql(VERIFY_EMAIL, {"token": token})
    # then it is refused and nothing changes
    result = second["data"]["verifyEmail"]
    assert (result["__typename"], result["code"]) == ("TokenError", "INVALID_TOKEN")
    assert result["message"]
    after = await Customer.get()
    assert (after.email_verified_at, after.updated_at) == (
        before.email_verified_at,
        before.updated_at,
    )
    assert (await EmailToken.get()).used_at == used_at


async def test_expired_token_is_refused(gql: GQL, clock: FakeClock) -> None:
    # given a token older than 48 hours
    await register(gql)
    token = await verification_token(EMAIL)
    clock.advance(hours=48, minutes=1)
    # when it is used
    body = await gql(VERIFY_EMAIL, {"token": token})
    # then it is refused as expired and the customer stays unverified
    result = body["data"]["verifyEmail"]
    assert (result["__typename"], result["code"]) == ("TokenError", "TOKEN_EXPIRED")
    assert (await Customer.get()).email_verified_at is None
    assert (await EmailToken.get()).used_at is None


@pytest.mark.parametrize("token", ["garbage", "", "x" * 2000])
async def test_unknown_token_is_invalid(gql: GQL, token: str) -> None:
    await register(gql)
    body = await gql(VERIFY_EMAIL, {"token": token})
    result = body["data"]["verifyEmail"]
    assert (result["__typename"], result["code"]) == ("TokenError", "INVALID_TOKEN")
    assert (await Customer.get()).email_verified_at is None


async def test_delivery_over_smtp(
    gql: GQL, settings: Settings, clock: FakeClock, smtp_server: tuple[Recorder, int]
) -> None:
    # given a registered customer and a listening SMTP server
    handler, port = smtp_server
    await register(gql)
    smtp = smtp_settings(settings, port)
    # when the outbox is delivered
    sent = await deliver_pending(backend=SmtpBackend(smtp), settings=smtp, clock=clock)
    # then the server received exactly the verification mail
    assert sent == 1
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == [EMAIL]
    message = received(envelope)
    assert message["From"] == settings.mail_from
    assert message["To"] == EMAIL
    assert message["Subject"] == "Confirm your email address"
    match = _LINK.search(message.get_content())
    assert match, message.get_content()
    # and its link's token verifies the address
    body = await gql(VERIFY_EMAIL, {"token": unquote(match.group(1))})
    assert body["data"]["verifyEmail"]["customer"]["emailVerified"] is True
    # and the outbox row is sent, with its body (and so the token) gone
    row = await OutboxMessage.get()
    assert (row.status, row.attempts, row.sent_at, row.body_text) == (
        "sent",
        1,
        clock.now(),
        "",
    )
    # and nothing is due any more
    assert await deliver_pending(backend=SmtpBackend(smtp), settings=smtp, clock=clock) == 0
    assert len(handler.envelopes) == 1


async def test_failing_smtp_server_retries_for_the_budget_then_keeps_it_dead(
    gql: GQL, settings: Settings, clock: FakeClock
) -> None:
    # given a pending mail and an SMTP port where nothing listens
    await register(gql)
    smtp = smtp_settings(settings, free_port())
    backend = SmtpBackend(smtp)
    # when delivery is attempted
    assert await deliver_pending(backend=backend, settings=smtp, clock=clock) == 0
    # then the mail stays pending, its error names no address, and it waits a while
    row = await OutboxMessage.get()
    assert (row.status, row.attempts) == ("pending", 1)
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", row.last_error), row.last_error
    assert "@" not in row.last_error
    assert row.next_attempt_at > clock.now()
    assert row.body_text
    # and it is not retried before then
    assert await deliver_pending(backend=backend, settings=smtp, clock=clock) == 0
    assert (await OutboxMessage.get()).attempts == 1
    # when it keeps failing, a retry budget (here 1 hour) from its first attempt
    budget = smtp.model_copy(update={"mail_retry_hours": 1.0})
    waits = []
    while (row := await OutboxMessage.get()).status == "pending":
        waits.append((row.next_attempt_at - clock.now()).total_seconds())
        clock.advance(seconds=waits[-1])
        assert await deliver_pending(backend=backend, settings=budget, clock=clock) == 0
    # then it waited twice as long after each failure, and the last try fell on the budget
    assert waits[:4] == [30, 60, 120, 240], waits
    assert clock.now() - row.first_attempt_at == timedelta(hours=1)
    # and it is dead with its content kept (an operator requeues or purges it)
    assert (row.status, row.attempts) == ("dead", len(waits) + 1)
    assert row.body_text
    assert row.last_error == "SMTPConnectError"
    clock.advance(hours=2)
    assert await deliver_pending(backend=backend, settings=budget, clock=clock) == 0
    assert (await OutboxMessage.get()).attempts == row.attempts


async def test_concurrent_senders_deliver_each_mail_once(
    gql: GQL, settings: Settings, clock: FakeClock, smtp_server: tuple[Recorder, int]
) -> None:
    # given several pending mails
    handler, port = smtp_server
    addresses = [f"customer{i}@example.com" for i in range(4)]
    for address in addresses:
        assert (await register(gql, email=address))["__typename"] == "RegistrationAccepted"
    smtp = smtp_settings(settings, port)
    # when two senders run at once
    counts = await asyncio.gather(
        deliver_pending(backend=SmtpBackend(smtp), settings=smtp, clock=clock),
        deliver_pending(backend=SmtpBackend(smtp), settings=smtp, clock=clock),
    )
    # then every mail was sent exactly once
    assert sum(counts) == len(addresses)
    assert sorted(r for e in handler.envelopes for r in e.rcpt_tos) == addresses
    rows = await OutboxMessage.all()
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1)] * len(addresses)


async def test_console_backend_prints_the_message(
    gql: GQL, settings: Settings, clock: FakeClock
) -> None:
    # given a pending verification mail
    await register(gql)
    token = await verification_token(EMAIL)
    stream = io.StringIO()
    # when the console backend delivers it
    assert (
        await deliver_pending(backend=ConsoleBackend(stream), settings=settings, clock=clock) == 1
    )
    # then recipient, subject and body are on the stream
    printed = stream.getvalue()
    assert f"To: {EMAIL}\n" in printed
    assert "Subject: Confirm your email address\n" in printed
    assert f"https://shop.example.test/privacy/verify-email?token={token}\n" in printed
    assert "Please confirm this email address for your account." in printed
    assert (await OutboxMessage.get()).status == "sent"


class BrokenBackend:
    """A backend with a bug of its own (not an SMTP error)."""

    async def send(self, message: EmailMessage) -> None:
        raise ValueError("bug in a backend")


async def test_any_backend_failure_is_retried_not_stuck(
    gql: GQL, settings: Settings, clock: FakeClock
) -> None:
    # given a pending mail and a backend that fails with an unexpected error
    await register(gql)
    # when delivery runs, no exception escapes and the mail is pending again
    assert await deliver_pending(backend=BrokenBackend(), settings=settings, clock=clock) == 0
    row = await OutboxMessage.get()
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "ValueError")


async def test_a_mail_left_sending_by_a_dead_sender_goes_out_after_its_lease(
    gql: GQL, settings: Settings, clock: FakeClock
) -> None:
    # given a mail claimed by a sender that died before sending (status sending, 1 attempt)
    await register(gql)
    row = await OutboxMessage.get()
    await OutboxMessage.filter(id=row.id).update(
        status="sending", attempts=1, next_attempt_at=clock.now() + timedelta(minutes=10)
    )
    stream = io.StringIO()
    backend = ConsoleBackend(stream)
    # when another sender runs during the lease, it leaves the mail alone
    assert await deliver_pending(backend=backend, settings=settings, clock=clock) == 0
    # and once the lease has run out, it sends it
    clock.advance(minutes=11)
    assert await deliver_pending(backend=backend, settings=settings, clock=clock) == 1
    row = await OutboxMessage.get()
    assert (row.status, row.attempts) == ("sent", 2)
    assert stream.getvalue().count("----- mail -----") == 1
