"""Enqueue mail in the caller's transaction; a sender delivers it later (docs/ARCHITECTURE.md:
mail).

`enqueue` is the one path of transactional mail, so the per-recipient limit is decided
here, for every operation at once (api/security/mail_limits.py); campaigns and policy
notices (`enqueue_many`) are sent by staff to many people and are not limited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from api.clock import Clock
from api.security.mail_limits import MailLimits
from api.settings import get_settings
from models import OutboxMessage

_limits: MailLimits | None = None


def use_limits(limits: MailLimits) -> None:
    """The per-recipient limit of this process (`build_services` sets it from its settings;
    until then, the environment's settings apply)."""
    global _limits
    _limits = limits


def _current_limits() -> MailLimits:
    global _limits
    if _limits is None:
        _limits = MailLimits.from_settings(get_settings())
    return _limits


@dataclass(frozen=True, slots=True)
class Mail:
    """A message to queue. Content that stops being of use (a code with a TTL) says when:
    `valid_for` from enqueue, or `expires_at`; the sender drops it unsent after that."""

    kind: str
    subject: str
    body: str
    valid_for: timedelta | None = None
    expires_at: datetime | None = None

    def expiry(self, now: datetime) -> datetime | None:
        ends = [t for t in (self.expires_at, self.valid_for and now + self.valid_for) if t]
        return min(ends) if ends else None


def _message(
    *, mail: Mail, recipient: str, customer_id: UUID | None, now: datetime
) -> OutboxMessage:
    # its Message-ID is drawn here (models.outbox.new_message_id) and kept for every attempt
    return OutboxMessage(
        kind=mail.kind,
        recipient=recipient,
        customer_id=customer_id,
        subject=mail.subject,
        body_text=mail.body,
        next_attempt_at=now,
        created_at=now,
        expires_at=mail.expiry(now),
    )


async def enqueue(
    *,
    mail: Mail,
    recipient: str,
    customer_id: UUID | None,
    clock: Clock,
    using_db: BaseDBAsyncClient | None = None,
) -> OutboxMessage | None:
    """Queue one message, unless `recipient` already had its share of this kind within the
    window: then nothing is queued (None) and the caller goes on as if it had been, so its
    answer is the same either way."""
    if not await _current_limits().may_mail(
        kind=mail.kind, recipient=recipient, clock=clock, conn=using_db
    ):
        return None
    message = _message(mail=mail, recipient=recipient, customer_id=customer_id, now=clock.now())
    await message.save(using_db=using_db)
    return message


async def enqueue_many(
    *,
    mail: Mail,
    recipients: Sequence[tuple[str, UUID | None]],
    clock: Clock,
    using_db: BaseDBAsyncClient | None = None,
) -> int:
    """The same message to each (address, customer id), in a few multi-row INSERTs."""
    now = clock.now()
    rows = [
        _message(mail=mail, recipient=recipient, customer_id=customer_id, now=now)
        for recipient, customer_id in recipients
    ]
    await OutboxMessage.bulk_create(rows, batch_size=1000, using_db=using_db)
    return len(rows)


# Operating the queue (`custos mail status|requeue|purge-dead`, campaign statistics).


def state_of(status: str, last_error: str) -> str:
    """How operators and campaign statistics name a row's state: `queued` (not yet tried,
    or in flight), `failed` (failed at least once, still retried), `delivered`, `dead`
    (retry budget spent, content kept), `expired` (dropped unsent), `purged`."""
    if status in ("pending", "sending"):
        return "failed" if last_error else "queued"
    return {"sent": "delivered"}.get(status, status)


async def counts_by_state(**filters: object) -> dict[tuple[str, str], int]:
    """(state, kind) -> number of messages, over the rows matching `filters`: counts only."""
    rows = await (
        OutboxMessage.filter(**filters)
        .annotate(n=Count("id"))
        .group_by("status", "kind", "last_error")
        .values("status", "kind", "last_error", "n")
    )
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (state_of(row["status"], row["last_error"]), row["kind"])
        counts[key] = counts.get(key, 0) + row["n"]
    return counts


def _dead(kind: str | None, row_id: int | None) -> QuerySet[OutboxMessage]:
    """Dead messages, of one kind or one row id when given."""
    query = OutboxMessage.filter(status="dead")
    if kind is not None:
        query = query.filter(kind=kind)
    if row_id is not None:
        query = query.filter(id=row_id)
    return query


async def requeue_dead(*, clock: Clock, kind: str | None = None, row_id: int | None = None) -> int:
    """Dead messages (optionally of one kind, or one row id) go back to the queue with a fresh
    retry budget; content that has expired meanwhile is dropped by the sender, not sent."""
    return await _dead(kind, row_id).update(
        status="pending",
        attempts=0,
        next_attempt_at=clock.now(),
        first_attempt_at=None,
        last_error="",
        claimed_by=None,
    )


async def purge_dead(*, kind: str | None = None, row_id: int | None = None) -> int:
    """Dead messages lose their content and address for good (status `purged`)."""
    return await _dead(kind, row_id).update(
        status="purged", recipient="", body_text="", body_html="", headers={}, claimed_by=None
    )
