"""Deliver the outbox: a console sink for development, SMTP (aiosmtplib) otherwise.

Delivery is once, or as close to once as SMTP allows (docs/OPERATIONS.md, "Mail delivery
guarantees"):

- a round claims a few due rows with a conditional UPDATE under a short lease
  (`mail_lease_seconds`), which a task renews while the round lives, so a slow relay never
  lets the lease run out under a live sender; a crashed sender's rows are free again within
  one lease;
- before each message the round re-checks (and renews) its claim, and a send that outlives
  the claim (no renewal reached the database for a whole lease) is abandoned before the
  relay's answer, so two live senders never both send a row;
- a duplicate is possible only for the message in flight at a crash (accepted by the relay,
  not yet marked), and it carries the same Message-ID, fixed at enqueue;
- a failed message is retried with capped exponential backoff for `mail_retry_hours` from
  its first attempt, then kept `dead` with its content until `custos mail requeue` or
  `custos mail purge-dead`; only content that has expired (a code past its TTL) is dropped
  unsent, with a logged reason. Logs name a message by id and kind, never its address."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, Protocol, TextIO

import aiosmtplib
from tortoise.expressions import F

from api.clock import Clock, iso
from api.mail import webhooks
from api.settings import Settings
from models import OutboxMessage, RecipientNotice

log = logging.getLogger("custos.mail")
FORGET_RECIPIENT = frozenset({"rights_erased"})
"""Kinds whose address is blanked once delivered: the answer to an erasure request."""
QUEUED = ("pending", "sending")
NOTICE_KIND = "recipient_notice"
"""Notices to recipients (api/recipients/): delivering one marks it notified; its retry
budget spent marks it failed."""
PAUSE_AFTER_SEND_ENV = "CUSTOS_TEST_MAIL_PAUSE_AFTER_SEND"
"""Test hook (unset in production): seconds a sender waits after the relay accepted a
message and before marking it sent, so a fault test can kill the process there."""


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
        body = _readable_body(message)
        stream.write(f"\n----- mail -----\n{head}\n{body}----- end of mail -----\n")
        stream.flush()


def _readable_body(message: EmailMessage) -> str:
    """The message's text as a developer reads it: a single part as it is; each part of a
    multipart message (a campaign's plain text and HTML, an attachment) under a line naming
    its type, an attachment by its name and size only."""
    if not message.is_multipart():
        return _text(message)
    shown = []
    for part in message.walk():
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        if part.is_attachment() or part.get_content_maintype() not in ("text",):
            size = len(part.get_payload(decode=True) or b"")
            shown.append(f"--- {kind} attachment {part.get_filename() or ''} ({size} bytes)\n")
        else:
            shown.append(f"--- {kind}\n{_text(part)}")
    return "".join(shown)


def _text(part: Any) -> str:
    text = str(part.get_content())
    return text if text.endswith("\n") else text + "\n"


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
            except asyncio.CancelledError:
                # abandoned mid-conversation (its claim lapsed): drop the connection at once,
                # so the relay discards an unfinished DATA rather than delivering it
                self._abort()
                raise
            except Exception:
                await self.close()
                raise

    def _abort(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

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
    # fixed at enqueue, so a copy re-sent after a crash is recognisably the same message
    message["Message-ID"] = row.message_id or f"<outbox-{row.id}@custos>"
    for name, value in (row.headers or {}).items():
        message[name] = value
    message.set_content(row.body_text)
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    return message


class _Lease:
    """One round's claim on its rows. `keep` renews it every third of a lease while the round
    runs; `remaining` is how long the in-flight row is surely still ours (measured from
    before the last renewal that reached the database, on this process's monotonic clock)."""

    def __init__(self, *, settings: Settings, clock: Clock) -> None:
        self.round_id = uuid.uuid4().hex
        self.seconds = settings.mail_lease_seconds
        self.length = timedelta(seconds=self.seconds)
        self._clock = clock
        self._held_until = time.monotonic() + self.seconds

    def remaining(self) -> float:
        return self._held_until - time.monotonic()

    async def renew(self, row_id: int | None = None) -> bool:
        """Extend the lease (of one row, or of every row the round still holds); for one row,
        whether it is still this round's to send."""
        started = time.monotonic()
        query = OutboxMessage.filter(claimed_by=self.round_id, status="sending")
        if row_id is not None:
            query = query.filter(id=row_id)
        renewed = await query.update(next_attempt_at=self._clock.now() + self.length)
        if renewed:
            self._held_until = max(self._held_until, started + self.seconds)
        return renewed > 0

    async def keep(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                await self.renew()
            except Exception as exc:  # the watchdog in _send_while_held covers a lapse
                log.warning("mail lease renewal failed: %s", type(exc).__name__)


async def _claim(
    *, settings: Settings, clock: Clock, limit: int
) -> tuple[_Lease, list[OutboxMessage]]:
    """Take up to `limit` due rows for one lease, in one UPDATE: a row is due while its
    `next_attempt_at` has passed, and claiming moves that into the future, so a concurrent
    round (whose UPDATE waits for this one's row locks, then re-checks) skips it. A row left
    `sending` by a dead process is due again once its lease runs out."""
    lease = _Lease(settings=settings, clock=clock)
    now = clock.now()
    due = (
        await OutboxMessage.filter(status__in=QUEUED, next_attempt_at__lte=now)
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )
    if not due:
        return lease, []
    await OutboxMessage.filter(
        id__in=list(due), status__in=QUEUED, next_attempt_at__lte=now
    ).update(
        status="sending",
        attempts=F("attempts") + 1,
        next_attempt_at=now + lease.length,
        claimed_by=lease.round_id,
    )
    # the retry budget runs from the first attempt (a requeue starts it again)
    await OutboxMessage.filter(claimed_by=lease.round_id, first_attempt_at__isnull=True).update(
        first_attempt_at=now
    )
    rows = await OutboxMessage.filter(claimed_by=lease.round_id).order_by("id")
    return lease, rows


async def deliver_pending(
    *, backend: MailBackend, settings: Settings, clock: Clock, limit: int | None = None
) -> int:
    """Send what is due (a batch of `limit`, default `mail_claim_batch`); returns how many
    messages were delivered."""
    lease, rows = await _claim(
        settings=settings, clock=clock, limit=limit or settings.mail_claim_batch
    )
    if not rows:
        return 0
    keeper = asyncio.create_task(lease.keep())
    delivered = 0
    try:
        for row in rows:
            delivered += await _deliver_one(
                row, lease=lease, backend=backend, settings=settings, clock=clock
            )
    except asyncio.CancelledError:
        # stopped (server shutdown): free what this round still holds at once, rather than
        # when its lease runs out
        with contextlib.suppress(Exception):
            await OutboxMessage.filter(claimed_by=lease.round_id, status="sending").update(
                status="pending", next_attempt_at=clock.now(), claimed_by=None
            )
        raise
    finally:
        keeper.cancel()
        await asyncio.wait({keeper})
    return delivered


async def _deliver_one(
    row: OutboxMessage, *, lease: _Lease, backend: MailBackend, settings: Settings, clock: Clock
) -> bool:
    if not await lease.renew(row.id):
        # the claim ran out (this process stalled for a whole lease) and another sender, or
        # an operator, has the row now
        log.warning("mail %s (%s): claim lost before sending, left to its holder", row.id, row.kind)
        return False
    if row.expires_at is not None and row.expires_at <= clock.now():
        await _drop_expired(row, lease=lease)
        return False
    try:
        held = await _send_while_held(_transport(row, backend, settings), lease)
    except Exception as exc:  # any failure is retried; the log names only its type
        await _failed(row, lease=lease, error=type(exc).__name__, settings=settings, clock=clock)
        return False
    if not held:
        log.warning(
            "mail %s (%s): its lease lapsed during delivery (no renewal reached the database); "
            "delivery abandoned, the message goes out on a later round",
            row.id,
            row.kind,
        )
        return False
    pause = os.environ.get(PAUSE_AFTER_SEND_ENV)
    if pause:
        log.warning(
            "mail %s accepted by the relay; test hook pauses %s s before marking", row.id, pause
        )
        await asyncio.sleep(float(pause))
    forget = {"recipient": ""} if row.kind in FORGET_RECIPIENT else {}
    # marked sent whoever holds it now: a sender that took it over meanwhile re-checks its
    # claim before sending and so leaves it alone
    await OutboxMessage.filter(id=row.id, status__in=QUEUED).update(
        status="sent",
        sent_at=clock.now(),
        body_text="",
        body_html="",
        last_error="",
        claimed_by=None,
        **forget,
    )
    if row.kind == NOTICE_KIND:
        await RecipientNotice.filter(outbox_id=row.id, status="pending").update(
            status="notified", notified_at=clock.now()
        )
    return True


def _transport(row: OutboxMessage, backend: MailBackend, settings: Settings) -> Awaitable[None]:
    """The row's sending: a signed POST for a webhook notice, else the mail backend."""
    if row.channel == webhooks.CHANNEL:
        return webhooks.post(row, settings=settings)
    return backend.send(build_message(row, sender=settings.mail_from))


async def _send_while_held(send: Awaitable[None], lease: _Lease) -> bool:
    """Send, unless the claim lapses first: then the send is cancelled (an SMTP backend drops
    the connection before the relay's final answer) and False is returned."""
    margin = min(1.0, lease.seconds / 10)
    sending = asyncio.ensure_future(send)
    try:
        while True:
            done, _ = await asyncio.wait({sending}, timeout=max(0.0, lease.remaining() - margin))
            if done:
                sending.result()  # raises the backend's failure
                return True
            if lease.remaining() <= margin:
                sending.cancel()
                await asyncio.wait({sending})
                return False
    except asyncio.CancelledError:
        sending.cancel()
        raise


async def _drop_expired(row: OutboxMessage, *, lease: _Lease) -> None:
    """Content past its validity (a code past its TTL) is of no use to anyone: dropped, body
    erased, status `expired`, with the reason logged."""
    await OutboxMessage.filter(id=row.id, claimed_by=lease.round_id, status="sending").update(
        status="expired",
        body_text="",
        body_html="",
        headers={},
        last_error="ContentExpired",
        claimed_by=None,
    )
    log.warning(
        "mail %s (%s) dropped unsent: its content expired at %s (attempt %d)",
        row.id,
        row.kind,
        iso(row.expires_at),
        row.attempts,
    )


def backoff(attempts: int, settings: Settings) -> timedelta:
    """The wait after the `attempts`-th failure: doubling from `mail_backoff_seconds`, capped
    at `mail_backoff_max_seconds`."""
    seconds = settings.mail_backoff_seconds * 2 ** min(attempts - 1, 40)
    return timedelta(seconds=min(settings.mail_backoff_max_seconds, seconds))


async def _failed(
    row: OutboxMessage, *, lease: _Lease, error: str, settings: Settings, clock: Clock
) -> None:
    attempts = row.attempts  # counted when the row was claimed
    now = clock.now()
    deadline = (row.first_attempt_at or now) + timedelta(hours=settings.mail_retry_hours)
    ours = OutboxMessage.filter(id=row.id, claimed_by=lease.round_id, status="sending")
    if now >= deadline:
        await ours.update(status="dead", last_error=error, claimed_by=None)
        if row.kind == NOTICE_KIND:  # its officer decides: requeue it, or record why not
            await RecipientNotice.filter(
                outbox_id=row.id, status__in=("pending", "notified")
            ).update(status="failed", reason=f"delivery gave up: {error}")
        log.warning(
            "mail %s (%s) attempt %d failed: %s; retry budget of %g h spent, kept as dead "
            "(custos mail requeue)",
            row.id,
            row.kind,
            attempts,
            error,
            settings.mail_retry_hours,
        )
        return
    retry_at = min(now + backoff(attempts, settings), deadline)
    await ours.update(status="pending", next_attempt_at=retry_at, last_error=error, claimed_by=None)
    log.warning(
        "mail %s (%s) attempt %d failed: %s; next attempt in %d s",
        row.id,
        row.kind,
        attempts,
        error,
        (retry_at - now).total_seconds(),
    )


async def run_sender_loop(*, backend: MailBackend, settings: Settings, clock: Clock) -> None:
    """Background delivery, every `mail_poll_seconds` (at once again while rounds find work)."""
    while True:
        delivered = 0
        try:
            delivered = await deliver_pending(backend=backend, settings=settings, clock=clock)
        except Exception as exc:  # keep the loop alive; log no message text (may hold PII)
            log.error("mail delivery round failed: %s", type(exc).__name__)
        await asyncio.sleep(0 if delivered else settings.mail_poll_seconds)
