"""Enqueue mail in the caller's transaction; a sender delivers it later (DESIGN section 6).

`enqueue` is the one path of transactional mail, so the per-recipient limit is decided
here, for every operation at once (api/security/mail_limits.py); campaigns and policy
notices (`enqueue_many`) are sent by staff to many people and are not limited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

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
    kind: str
    subject: str
    body: str


def _message(
    *, mail: Mail, recipient: str, customer_id: UUID | None, now: datetime
) -> OutboxMessage:
    return OutboxMessage(
        kind=mail.kind,
        recipient=recipient,
        customer_id=customer_id,
        subject=mail.subject,
        body_text=mail.body,
        next_attempt_at=now,
        created_at=now,
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
