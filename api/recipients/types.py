"""GraphQL types of recipient notices: who received a customer's data and was told of a
change to it, and what each answered."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from api.recipients.vocabulary import Channel, NoticeStatus, Trigger
from models import RecipientNotice as NoticeModel

strawberry.enum(NoticeStatus, name="RecipientNoticeStatus")
strawberry.enum(Trigger, name="RecipientNoticeTrigger")
strawberry.enum(Channel, name="RecipientNoticeChannel")


@strawberry.enum(description="What an acknowledging recipient said it did.")
class NoticeOutcome(Enum):
    DONE = "done"
    NO_RECORD = "no_record"


@strawberry.type(
    description="One recipient of the customer's data, told of an erasure, a rectification "
    "or a withdrawn consent (GDPR Article 19), and its answer."
)
class RecipientNotice:
    id: strawberry.ID
    recipient: str = strawberry.field(description="The recipient's name, as the ledger has it.")
    trigger: Trigger
    purpose: str | None = strawberry.field(description="For a withdrawn consent: its purpose.")
    categories: list[str] = strawberry.field(
        description="The data categories it received that the change concerns."
    )
    channel: Channel = strawberry.field(
        description="WEBHOOK (a signed notice to its endpoint), MAIL (to its contact, with a "
        "single-use link to acknowledge) or NONE (not told: see `reason`)."
    )
    status: NoticeStatus
    outcome: NoticeOutcome | None = strawberry.field(
        description="Its answer, once acknowledged: DONE, or NO_RECORD (it held nothing)."
    )
    reason: str = strawberry.field(
        description="Why it was not required or failed, or the recipient's own short note."
    )
    sends: int = strawberry.field(description="How many times it was sent (reminders count).")
    notified_at: datetime | None
    acknowledged_at: datetime | None
    escalated_at: datetime | None = strawberry.field(
        description="When the privacy officers were alerted that it is still unanswered."
    )

    @classmethod
    def from_model(cls, m: NoticeModel) -> RecipientNotice:
        return cls(
            id=strawberry.ID(str(m.id)),
            recipient=m.recipient,
            trigger=Trigger(m.trigger),
            purpose=m.purpose or None,
            categories=list(m.categories),
            channel=Channel(m.channel),
            status=NoticeStatus(m.status),
            outcome=NoticeOutcome(m.outcome) if m.outcome else None,
            reason=m.reason,
            sends=m.sends,
            notified_at=m.notified_at,
            acknowledged_at=m.acknowledged_at,
            escalated_at=m.escalated_at,
        )
