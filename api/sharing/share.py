"""Sharing with a processor (policy section 3A): the data set a provider receives, produced
only within its registered purposes and categories, only for customers whose data may be
used for the purpose now, and only as far as the employee's role may disclose it. Every
customer shared is a row in the disclosure ledger, in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from api.consent.service import consenting_customers
from api.customers import validation as v
from api.errors import FieldProblem, InputInvalid
from api.pagination import MAX_PAGE
from api.rights.erasure import NO_PASSWORD
from api.services import Services
from api.sharing import ledger
from api.sharing.processors import is_active
from authz.registry import PURPOSES, Category
from models import Customer, Processor, VisitEvent

MAX_CUSTOMERS = MAX_PAGE
FORMAT = "custos.share/1"

Decide = Callable[[str, UUID, tuple[str, ...]], bool]
"""(category, customer id, conditions) -> whether the employee may disclose it."""

VISIT_FIELDS: dict[str, dict[str, str]] = {
    Category.BEHAVIOR_BROWSING: {"page": "page", "action": "action", "referrer": "referrer"},
    Category.DEVICE_BROWSER: {
        "browser": "browser",
        "os": "os",
        "deviceType": "device_type",
        "language": "language",
    },
    Category.DEVICE_IP: {"ip": "ip_full"},
}
"""The visit event's values each category carries into a data set: key -> column. `ip` is
the full address a security event keeps, else the truncated network of an analytics one."""


@dataclass(frozen=True, slots=True)
class ShareDraft:
    """Which customers (by id, or by filter and page) and what, for which purpose."""

    processor_id: UUID
    categories: list[str]
    purpose: str
    customer_ids: list[UUID] | None = None
    country: str | None = None
    registered_since: datetime | None = None
    after: UUID | None = None
    first: int = MAX_CUSTOMERS


@dataclass
class Shared:
    processor: Processor
    dataset: dict[str, Any]
    shared: list[UUID]
    left_out: dict[str, int] = field(default_factory=dict)
    """Customers left out, by reason: no_consent, forbidden, erased."""
    next_after: UUID | None = None
    """The last customer considered, when the filter matches more (pass it as `after`)."""


def _problem(name: str, code: str, message: str) -> InputInvalid:
    return InputInvalid([FieldProblem(name, code, message)])


def _check_draft(draft: ShareDraft) -> None:
    p = v.Problems()
    by_id, by_filter = draft.customer_ids is not None, draft.country or draft.registered_since
    if by_id == bool(by_filter):
        p.add("customerIds", "Name the customers, or give a filter: one of the two.")
    if by_id and not 1 <= len(draft.customer_ids or []) <= MAX_CUSTOMERS:
        p.add("customerIds", f"Name 1 to {MAX_CUSTOMERS} customers.")
    if not 1 <= draft.first <= MAX_CUSTOMERS:
        p.add("first", f"Ask for 1 to {MAX_CUSTOMERS} customers.")
    if draft.purpose not in PURPOSES:
        p.add("purpose", f"Unknown purpose; known: {', '.join(PURPOSES)}.")
    if not draft.categories:
        p.add("categories", "Name at least one data category.")
    for i, category in enumerate(draft.categories):
        if draft.categories.index(category) != i:
            p.add(f"categories[{i}]", "Named twice.")
    p.raise_if_any()


async def _processor_for(draft: ShareDraft, *, now: datetime) -> Processor:
    """The processor, if the share stays within its contract; else every problem."""
    processor = await Processor.get_or_none(id=draft.processor_id)
    if processor is None:
        raise _problem("processorId", "NOT_FOUND", "No such processor.")
    p = v.Problems()
    if not is_active(processor, now=now):
        p.add("processorId", "The processor's contract is not active.", "PROCESSOR_INACTIVE")
    if draft.purpose not in processor.purposes:
        p.add("purpose", "The processor may not use data for it.", "PURPOSE_NOT_ALLOWED")
    for i, category in enumerate(draft.categories):
        if category not in processor.categories:
            p.add(f"categories[{i}]", "Not allowed for this processor.", "CATEGORY_NOT_ALLOWED")
    p.raise_if_any()
    return processor


async def _customers(draft: ShareDraft) -> tuple[list[Customer], UUID | None]:
    """The customers named (NOT_FOUND for any unknown), or one page of the filter's."""
    if draft.customer_ids is not None:
        found = {c.id: c for c in await Customer.filter(id__in=draft.customer_ids)}
        for i, customer_id in enumerate(draft.customer_ids):
            if customer_id not in found:
                raise _problem(f"customerIds[{i}]", "NOT_FOUND", "No such customer.")
        return [found[i] for i in dict.fromkeys(draft.customer_ids)], None
    query = Customer.all()
    if draft.country:
        query = query.filter(address_country=draft.country.strip().upper())
    if draft.registered_since:
        query = query.filter(created_at__gte=draft.registered_since)
    if draft.after:
        query = query.filter(id__gt=draft.after)
    rows = await query.order_by("id").limit(draft.first + 1)  # one more: is there a next?
    page = rows[: draft.first]
    return page, (page[-1].id if len(rows) > draft.first else None)


async def _eligible(
    *, services: Services, draft: ShareDraft, customers: list[Customer], decide: Decide
) -> tuple[list[Customer], dict[str, int]]:
    """Those whose data may go: not erased, consenting where the purpose needs it, and
    each category's disclosure allowed by Casbin (every decision logged)."""
    left_out: dict[str, int] = defaultdict(int)
    present = [c for c in customers if c.password_hash != NO_PASSWORD]
    left_out["erased"] = len(customers) - len(present)
    needs_consent = PURPOSES[draft.purpose].consent_required
    if needs_consent:
        ids = [c.id for c in present]
        consenting = await consenting_customers(
            services=services, customer_ids=ids, purpose=draft.purpose
        )
        left_out["no_consent"] = len(present) - len(consenting)
        present = [c for c in present if c.id in consenting]
    conditions = (f"consent:{draft.purpose}",) if needs_consent else ()
    # Every category is decided (and logged), not just up to the first refusal.
    verdicts = {c.id: [decide(cat, c.id, conditions) for cat in draft.categories] for c in present}
    allowed = [c for c in present if all(verdicts[c.id])]
    left_out["forbidden"] = len(present) - len(allowed)
    return allowed, {k: n for k, n in left_out.items() if n}


def _contact(customer: Customer, categories: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {"customerId": str(customer.id)}
    if Category.CONTACT_EMAIL in categories:
        record["email"] = customer.email
    if Category.CONTACT_PHONE in categories:
        record["phone"] = customer.phone
    if Category.CONTACT_ADDRESS in categories:
        record["address"] = {
            "line1": customer.address_line1,
            "line2": customer.address_line2,
            "city": customer.address_city,
            "postalCode": customer.address_postal_code,
            "country": customer.address_country,
        }
    return record


async def _visits(
    *, customer_ids: list[UUID], categories: list[str], purpose: str
) -> dict[UUID, list[dict[str, Any]]]:
    """The events kept for this very purpose, with the values of the categories shared."""
    columns = {k: c for cat in categories for k, c in VISIT_FIELDS.get(cat, {}).items()}
    found: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    if not columns:
        return found
    rows = (
        await VisitEvent.filter(customer_id__in=customer_ids, purpose=purpose)
        .order_by("customer_id", "at", "id")
        .values("customer_id", "at", "ip_truncated", *columns.values())
    )
    for row in rows:
        event: dict[str, Any] = {"at": row["at"].isoformat()}
        event.update({key: row[column] for key, column in columns.items()})
        if "ip" in event:
            event["ip"] = event["ip"] or row["ip_truncated"]
        found[UUID(str(row["customer_id"]))].append(event)
    return found


async def _dataset(
    *, processor: Processor, draft: ShareDraft, customers: list[Customer], now: datetime
) -> dict[str, Any]:
    visits = await _visits(
        customer_ids=[c.id for c in customers], categories=draft.categories, purpose=draft.purpose
    )
    records = []
    for customer in customers:
        record = _contact(customer, draft.categories)
        if any(cat in VISIT_FIELDS for cat in draft.categories):
            record["visits"] = visits.get(customer.id, [])
        records.append(record)
    return {
        "format": FORMAT,
        "processor": processor.name,
        "contractReference": processor.contract_reference,
        "purpose": draft.purpose,
        "categories": list(draft.categories),
        "generatedAt": now.isoformat(),
        "customers": records,
    }


async def share_with_processor(
    *, services: Services, draft: ShareDraft, actor_id: UUID, decide: Decide
) -> Shared:
    """The data set for the processor, and one ledger row per customer in it. InputInvalid,
    with nothing disclosed, for a share outside the processor's contract or bad input."""
    now = services.clock.now()
    _check_draft(draft)
    processor = await _processor_for(draft, now=now)
    customers, next_after = await _customers(draft)
    allowed, left_out = await _eligible(
        services=services, draft=draft, customers=customers, decide=decide
    )
    dataset = await _dataset(processor=processor, draft=draft, customers=allowed, now=now)
    await ledger.append(
        [
            ledger.Entry(
                at=now,
                customer_id=c.id,
                recipient=processor.name,
                processor_id=processor.id,
                categories=list(draft.categories),
                purpose=draft.purpose,
                legal_basis=ledger.LegalBasis.PROCESSOR_CONTRACT,
                reference=processor.contract_reference,
                recorded_by=actor_id,
            )
            for c in allowed
        ]
    )
    return Shared(processor, dataset, [c.id for c in allowed], left_out, next_after)
