"""Deliver the outbox: a console sink for development, SMTP (aiosmtplib) otherwise.

Rows are claimed with a conditional UPDATE, so several processes can run the loop without
sending a message twice. A message that keeps failing is retried with exponential backoff
and then marked dead."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import uuid
from datetime import timedelta
from email.message import EmailMessage
from typing import Protocol, TextIO

import aiosmtplib
from tortoise.expressions import F

from api.clock import Clock
from api.settings import Settings
from models import OutboxMessage

log = logging.getLogger("custos.mail")
_LEASE = timedelta(minutes=10)
FORGET_RECIPIENT = frozenset({"rights_erased"})
"""Kinds whose address is blanked once delivered: the answer to an erasure request."""


class MailBackend(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


class ConsoleBackend:
    """Prints each message: the development sink (never use in production)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, message: EmailMessage) -> None:
        stream = self._stream or sys.stdout
        head = "".join(
            f"{k}: {v}\n" for k, v in message.items() if k.lower() != "content-transfer-encoding"
        )
        body = message.get_content()
        stream.write(f"\n----- mail -----\n{head}\n{body}----- end of mail -----\n")
        stream.flush()


class SmtpBackend:
    """SMTP delivery over one connection, kept open between messages (a campaign of
    thousands costs one handshake, not thousands) and reopened when the server dropped it."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is None or not self._client.is_connected:
            s = self._settings
            client = aiosmtplib.SMTP(
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                start_tls=s.smtp_starttls,
                use_tls=s.smtp_tls,
                timeout=s.smtp_timeout_seconds,
            )
            await client.connect()
            self._client = client
        return self._client

    async def send(self, message: EmailMessage) -> None:
        async with self._lock:
            try:
                client = await self._connected()
                try:
                    await client.send_message(message)
                except aiosmtplib.SMTPServerDisconnected:
                    # an idle connection the server closed: one fresh try, then a failure
                    self._client = None
                    await (await self._connected()).send_message(message)
            except Exception:
                await self.close()
                raise

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            with contextlib.suppress(Exception):
                await client.quit()


def backend_for(settings: Settings) -> MailBackend:
    if settings.effective_mail_backend == "smtp":
        return SmtpBackend(settings)
    return ConsoleBackend()


def build_message(row: OutboxMessage, *, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Message-ID"] = f"<outbox-{row.id}@custos>"
    for name, value in (row.headers or {}).items():
        message[name] = value
    message.set_content(row.body_text)
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    return message


async def _claim(*, clock: Clock, limit: int) -> list[OutboxMessage]:
    """Take up to `limit` due rows for one lease, in one UPDATE: a row is due while its
    `next_attempt_at` has passed, and claiming moves that into the future, so a concurrent
    round (whose UPDATE waits for this one's row locks, then re-checks) skips it. A row left
    `sending` by a dead process is due again once its lease runs out (delivery is at least
    once, never twice while a sender is alive)."""
    now = clock.now()
    due = (
        await OutboxMessage.filter(status__in=("pending", "sending"), next_attempt_at__lte=now)
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )
    if not due:
        return []
    round_id = uuid.uuid4().hex
    await OutboxMessage.filter(
        id__in=list(due), status__in=("pending", "sending"), next_attempt_at__lte=now
    ).update(
        status="sending",
        attempts=F("attempts") + 1,
        next_attempt_at=now + _LEASE,
        claimed_by=round_id,
    )
    return await OutboxMessage.filter(id__in=list(due), claimed_by=round_id).order_by("id")


async def deliver_pending(
    *, backend: MailBackend, settings: Settings, clock: Clock, limit: int = 100
) -> int:
    """Send what is due; returns how many messages were delivered."""
    delivered = 0
    for row in await _claim(clock=clock, limit=limit):
        try:
            await backend.send(build_message(row, sender=settings.mail_from))
        except Exception as exc:  # any failure is retried; the log names only its type
            await _failed(row, error=type(exc).__name__, settings=settings, clock=clock)
            continue
        forget = {"recipient": ""} if row.kind in FORGET_RECIPIENT else {}
        await OutboxMessage.filter(id=row.id, claimed_by=row.claimed_by).update(
            status="sent", sent_at=clock.now(), body_text="", last_error="", **forget
        )
        delivered += 1
    return delivered


async def _failed(row: OutboxMessage, *, error: str, settings: Settings, clock: Clock) -> None:
    attempts = row.attempts  # counted when the row was claimed
    dead = attempts >= settings.mail_max_attempts
    backoff = timedelta(seconds=min(3600, 30 * 2 ** (attempts - 1)))
    await OutboxMessage.filter(id=row.id).update(
        status="dead" if dead else "pending",
        next_attempt_at=clock.now() + backoff,
        last_error=error,
        **({"body_text": ""} if dead else {}),
    )
    log.warning(
        "mail %s attempt %d failed: %s%s", row.id, attempts, error, " (dead)" if dead else ""
    )


async def run_sender_loop(*, backend: MailBackend, settings: Settings, clock: Clock) -> None:
    """Background delivery, every `mail_poll_seconds`."""
    while True:
        try:
            await deliver_pending(backend=backend, settings=settings, clock=clock)
        except Exception as exc:  # keep the loop alive; log no message text (may hold PII)
            log.error("mail delivery round failed: %s", type(exc).__name__)
        await asyncio.sleep(settings.mail_poll_seconds)
