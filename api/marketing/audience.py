"""Who marketing email may reach now: customers with a verified address for whom
`may_process(marketing.email)` holds, asked at the moment of sending, batch by batch."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from api.consent.service import consenting_customers
from api.services import Services
from authz.registry import PurposeKey
from models import Customer


@dataclass(frozen=True, slots=True)
class Recipient:
    customer_id: UUID
    email: str


@dataclass(frozen=True, slots=True)
class AudienceBatch:
    recipients: list[Recipient]
    considered: int
    """Customers with a verified address looked at (recipients, and those without consent)."""
    after: UUID | None
    """The cursor to pass next; None when every customer has been considered."""


async def email_audience(
    *, services: Services, after: UUID | None = None, limit: int = 500
) -> AudienceBatch:
    """The next batch of recipients after customer id `after`, in id order. A withdrawal,
    or a consent a material policy change sent back to "ask again", takes effect for the
    next batch."""
    query = Customer.filter(email_verified_at__isnull=False)
    if after is not None:
        query = query.filter(id__gt=after)
    rows = await query.order_by("id").limit(limit).values_list("id", "email")
    batch = [(UUID(str(customer_id)), str(email)) for customer_id, email in rows]
    allowed = await consenting_customers(
        services=services,
        customer_ids=[customer_id for customer_id, _ in batch],
        purpose=PurposeKey.MARKETING_EMAIL,
    )
    return AudienceBatch(
        recipients=[Recipient(i, email) for i, email in batch if i in allowed],
        considered=len(batch),
        after=batch[-1][0] if len(batch) == limit else None,
    )
