"""Enqueue mail in the caller's transaction; a sender delivers it later (DESIGN section 6)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from api.clock import Clock
from models import OutboxMessage


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
) -> OutboxMessage:
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
