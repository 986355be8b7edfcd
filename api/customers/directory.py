"""Staff reads of customers: pages, search, and the conditions the guards decide on.

Everything here loads whole pages in a fixed number of queries (one for the customers, one
for open support cases, one for consents), whatever the page size."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import phonenumbers
from tortoise.expressions import Q

from api.consent.state import ConsentState, consent_states
from api.rights.rules import RUNNING
from api.support.service import customers_with_open_cases
from models import ConsentRecord, Customer, RightsRequest


@dataclass(frozen=True, slots=True)
class CustomerFacts:
    """A customer with the facts the guards need: conditions and current consents."""

    customer: Customer
    conditions: tuple[str, ...]
    consents: dict[str, ConsentRecord]


async def latest_consents(customer_ids: Sequence[UUID]) -> list[dict[str, ConsentRecord]]:
    """The latest consent record per purpose, per customer, in one query (a batch loader:
    results in the order of the ids)."""
    latest: dict[UUID, dict[str, ConsentRecord]] = {i: {} for i in customer_ids}
    records = await ConsentRecord.filter(customer_id__in=list(customer_ids)).order_by("at", "id")
    for record in records:
        latest[UUID(str(record.customer_id))][record.purpose] = record  # type: ignore[attr-defined]
    return [latest[i] for i in customer_ids]


async def facts_of(
    customers: Sequence[Customer], *, ask_again_since: Mapping[str, datetime]
) -> list[CustomerFacts]:
    """Conditions per customer: `open_case` (an open support case),
    `fulfilling_request` (a rights request received and not yet answered), and
    `consent:PURPOSE` for each purpose currently consented to (`ConsentState.GRANTED`: a
    grant to be asked again after a material policy change does not count)."""
    ids = [c.id for c in customers]
    if not ids:
        return []
    with_case = await customers_with_open_cases(customer_ids=ids)
    requesting = await customers_with_running_requests(customer_ids=ids)
    consents = await latest_consents(ids)
    facts = []
    for customer, latest in zip(customers, consents, strict=True):
        states = consent_states(latest, ask_again_since=ask_again_since)
        conditions = [f"consent:{p}" for p, s in states.items() if s is ConsentState.GRANTED]
        if customer.id in with_case:
            conditions.append("open_case")
        if customer.id in requesting:
            conditions.append("fulfilling_request")
        facts.append(CustomerFacts(customer, tuple(sorted(conditions)), latest))
    return facts


async def customers_with_running_requests(*, customer_ids: list[UUID]) -> set[UUID]:
    """The condition under which a privacy officer reads a requester's data."""
    rows = await RightsRequest.filter(
        customer_id__in=customer_ids, status__in=list(RUNNING)
    ).values_list("customer_id", flat=True)
    return {UUID(str(r)) for r in rows}


def _search_filter(term: str) -> Q:
    """Exact match on the email address or the phone number (E.164), never a substring:
    staff look up the customer in front of them, not browse by pattern."""
    clean = term.strip()
    match = Q(email=clean.lower())
    try:
        number = phonenumbers.parse(clean, None)
    except phonenumbers.NumberParseException:
        return match
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return match | Q(phone=e164)


# The columns a staff read shows (api/customers/types.py, Customer.from_model): never the
# password hash, nor bookkeeping the page does not show.
SHOWN = (
    "id",
    "email",
    "email_verified_at",
    "pending_email",
    "phone",
    "address_line1",
    "address_line2",
    "address_city",
    "address_postal_code",
    "address_country",
    "created_at",
)


async def customer_page(
    *, first: int, after: UUID | None, search: str | None
) -> tuple[list[Customer], bool]:
    """A page of customers in id order (keyset), and whether there is another page; only
    the columns shown (SHOWN)."""
    query = Customer.all().only(*SHOWN)
    if after is not None:
        query = query.filter(id__gt=after)
    if search:
        query = query.filter(_search_filter(search))
    rows = await query.order_by("id").limit(first + 1)
    return rows[:first], len(rows) > first


async def find_customer(*, customer_id: UUID) -> Customer | None:
    return await Customer.filter(id=customer_id).only(*SHOWN).first()
