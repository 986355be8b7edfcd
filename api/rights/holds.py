"""Legal holds: a legal obligation (a court order, an investigation, a tax audit) to keep
some categories of one customer's data. Erasure (api/rights/erasure.py) and retention keep
the held categories until the hold is released or expires; `held_categories` is the one
place that says which categories are held."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from api.clock import as_utc
from api.customers import validation as v
from api.errors import FieldProblem, InputInvalid, NotFound
from authz.registry import Category
from models import Customer, LegalHold

HOLDABLE = tuple(c.value for c in Category if c is not Category.ACCOUNT_CREDENTIALS)
"""Every data category but credentials: a password hash is never evidence of anything."""
REASON_MAX = 2000
REFERENCE_MAX = 200


@dataclass(frozen=True, slots=True)
class HoldDraft:
    """What legal asks for: the categories to keep, why, and the order's reference."""

    categories: list[str]
    reason: str
    reference: str
    expires_at: datetime | None = None


def _check_categories(p: v.Problems, categories: list[str]) -> None:
    if not categories:
        p.add("categories", "Name at least one data category.")
    seen: set[str] = set()
    for i, category in enumerate(categories):
        if category not in HOLDABLE:
            p.add(f"categories[{i}]", f"Unknown data category; known: {', '.join(HOLDABLE)}.")
        elif category in seen:
            p.add(f"categories[{i}]", "This category is named twice.")
        seen.add(category)


def _check_text(p: v.Problems, *, field: str, value: str, max_len: int) -> None:
    if not value.strip():
        p.add(field, "This field is required.")
    elif len(value.strip()) > max_len:
        p.add(field, f"Use at most {max_len} characters.")


def check_draft(*, draft: HoldDraft, now: datetime) -> None:
    """Every problem of the draft at once (InputInvalid), before anything is read."""
    p = v.Problems()
    _check_categories(p, draft.categories)
    _check_text(p, field="reason", value=draft.reason, max_len=REASON_MAX)
    _check_text(p, field="reference", value=draft.reference, max_len=REFERENCE_MAX)
    if draft.expires_at is not None and as_utc(draft.expires_at) <= now:
        p.add("expiresAt", "The expiry must be in the future.")
    p.raise_if_any()


def _not_found(field: str, what: str) -> InputInvalid:
    return InputInvalid([FieldProblem(field, "NOT_FOUND", f"No such {what}.")])


async def _locked_customer(customer_id: UUID) -> Customer:
    """The customer, row-locked on PostgreSQL: a hold and an erasure of the same customer
    take the same lock, so an erasure never misses a hold placed while it runs."""
    customer = await Customer.filter(id=customer_id).select_for_update().first()
    if customer is None:
        raise _not_found("customerId", "customer")
    return customer


async def place_hold(
    *, customer_id: UUID, draft: HoldDraft, placed_by: UUID, now: datetime
) -> LegalHold:
    """Record a hold (legal); InputInvalid for bad input (NOT_FOUND for an unknown
    customer). Runs in the caller's transaction (every mutation has one)."""
    check_draft(draft=draft, now=now)
    await _locked_customer(customer_id)
    # Under the customer's lock: the same hold placed twice (at once, or a retried
    # request) is one hold; the second answer is DUPLICATE_REQUEST (issue 15).
    reference, categories = draft.reference.strip(), sorted(draft.categories)
    same_reference = Q(customer_id=customer_id, reference=reference) & _active(now)
    for held in await LegalHold.filter(same_reference):
        if sorted(held.categories) == categories:
            message = "An active hold with this reference already keeps these categories."
            raise InputInvalid([FieldProblem("reference", "DUPLICATE_REQUEST", message)])
    return await LegalHold.create(
        customer_id=customer_id,
        categories=list(draft.categories),
        reason=draft.reason.strip(),
        reference=reference,
        expires_at=as_utc(draft.expires_at) if draft.expires_at else None,
        placed_by=placed_by,
        placed_at=now,
    )


async def release_hold(
    *, hold_id: UUID, reason: str, released_by: UUID, now: datetime
) -> LegalHold:
    """End a hold now. The release reason is appended to the hold's reason (the one text
    legal keeps about it). NOT_FOUND for an unknown hold; INVALID_TRANSITION, with nothing
    changed, for a hold already released."""
    p = v.Problems()
    _check_text(p, field="reason", value=reason, max_len=REASON_MAX)
    p.raise_if_any()
    hold = await LegalHold.filter(id=hold_id).select_for_update().first()
    if hold is None:
        raise _not_found("id", "legal hold")
    if hold.released_at is not None:
        p.add("id", "This hold is already released.", "INVALID_TRANSITION")
        p.raise_if_any()
    hold.released_at, hold.released_by = now, released_by
    hold.reason = f"{hold.reason}\n\nReleased: {reason.strip()}"
    await hold.save(update_fields=["released_at", "released_by", "reason"])
    return hold


def is_active(hold: LegalHold, *, now: datetime) -> bool:
    """Not released, and not past its expiry."""
    return hold.released_at is None and (hold.expires_at is None or hold.expires_at > now)


def _active(now: datetime) -> Q:
    return Q(released_at=None) & (Q(expires_at=None) | Q(expires_at__gt=now))


async def holds_of(*, customer_id: UUID, now: datetime, active_only: bool) -> list[LegalHold]:
    """A customer's holds, newest first; NotFound for an unknown customer."""
    if not await Customer.filter(id=customer_id).exists():
        raise NotFound("No such customer.")
    query = LegalHold.filter(customer_id=customer_id)
    if active_only:
        query = query.filter(_active(now))
    return await query.order_by("-placed_at", "id")


async def held_categories(
    *, customer_id: UUID, now: datetime, using_db: BaseDBAsyncClient | None = None
) -> dict[str, list[str]]:
    """Each category under an active hold (not released, not expired at `now`) -> the
    references of the holds that keep it, sorted. Categories not held are absent."""
    rows = (
        await LegalHold.filter(Q(customer_id=customer_id) & _active(now))
        .using_db(using_db)
        .values_list("categories", "reference")
    )
    held: dict[str, set[str]] = defaultdict(set)
    for categories, reference in rows:
        for category in categories or []:
            held[str(category)].add(str(reference))
    return {category: sorted(refs) for category, refs in sorted(held.items())}
