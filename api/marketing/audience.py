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


async def email_audience(
    *, services: Services, after: UUID | None = None, limit: int = 500
) -> tuple[list[Recipient], UUID | None]:
    """The next batch of recipients after customer id `after`, in id order, and the cursor
    to pass next (None when every customer has been considered). A withdrawal, or a consent
    a material policy change sent back to "ask again", takes effect for the next batch."""
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
    recipients = [Recipient(i, email) for i, email in batch if i in allowed]
    return recipients, (batch[-1][0] if len(batch) == limit else None)
