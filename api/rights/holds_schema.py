"""Legal holds over GraphQL: glue between the schema and api/rights/holds.py. Placing and
releasing are legal's; legal and the privacy officer (who fulfils erasures) read them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.context import Info
from api.errors import InputInvalid, parse_id, parse_input_id
from api.permissions import only
from api.rights import holds
from api.types import InputError
from authz.registry import Role
from models import LegalHold as LegalHoldModel


@strawberry.type(description="An obligation to keep some of a customer's data.")
class LegalHold:
    id: strawberry.ID
    customer_id: strawberry.ID
    categories: list[str] = strawberry.field(description="The data categories kept.")
    reason: str = strawberry.field(
        description="Why (legal's own words); a release appends its reason."
    )
    reference: str = strawberry.field(description="The order's or case's reference.")
    expires_at: datetime | None
    placed_by: strawberry.ID
    placed_at: datetime
    released_by: strawberry.ID | None
    released_at: datetime | None
    active: bool = strawberry.field(description="Not released and not expired: it keeps data.")

    @classmethod
    def from_model(cls, m: LegalHoldModel, *, now: datetime) -> LegalHold:
        return cls(
            id=strawberry.ID(str(m.id)),
            customer_id=strawberry.ID(str(m.customer_id)),
            categories=list(m.categories),
            reason=m.reason,
            reference=m.reference,
            expires_at=m.expires_at,
            placed_by=strawberry.ID(str(m.placed_by)),
            placed_at=m.placed_at,
            released_by=strawberry.ID(str(m.released_by)) if m.released_by else None,
            released_at=m.released_at,
            active=holds.is_active(m, now=now),
        )


@strawberry.type(description="The hold was placed; its categories are kept from now on.")
class LegalHoldPlaced:
    hold: LegalHold


@strawberry.type(description="The hold was released; its categories are no longer kept.")
class LegalHoldReleased:
    hold: LegalHold


PlaceLegalHoldPayload = Annotated[
    LegalHoldPlaced | InputError, strawberry.union("PlaceLegalHoldPayload")
]
ReleaseLegalHoldPayload = Annotated[
    LegalHoldReleased | InputError, strawberry.union("ReleaseLegalHoldPayload")
]


@strawberry.type
class HoldQuery:
    @strawberry.field(
        extensions=only(Role.LEGAL, Role.PRIVACY_OFFICER),
        description="A customer's legal holds, newest first (legal, privacy officer).",
    )
    async def legal_holds(
        self, info: Info, customer_id: strawberry.ID, active_only: bool | None = True
    ) -> list[LegalHold] | None:
        now = info.context.services.clock.now()
        customer = parse_id(customer_id, what="customer")
        every = active_only is False  # null means the default: active holds only
        found = await holds.holds_of(customer_id=customer, now=now, active_only=not every)
        info.context.audit_event(event="legal_hold", operation="list", subject_id=customer)
        return [LegalHold.from_model(h, now=now) for h in found]


@strawberry.type
class HoldMutation:
    @strawberry.mutation(
        extensions=only(Role.LEGAL),
        description="Keep categories of a customer's data despite erasure and retention "
        "(legal). Categories are data categories (not credentials); `expiresAt` is optional.",
    )
    async def place_legal_hold(
        self,
        info: Info,
        customer_id: strawberry.ID,
        categories: list[str],
        reason: str,
        reference: str,
        expires_at: datetime | None = None,
    ) -> PlaceLegalHoldPayload | None:
        now = info.context.services.clock.now()
        draft = holds.HoldDraft(categories, reason, reference, expires_at)
        try:
            hold = await holds.place_hold(
                customer_id=parse_input_id(customer_id, field="customerId", what="customer"),
                draft=draft,
                placed_by=info.context.subject_id,
                now=now,
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        _audit(info, "place", hold)
        return LegalHoldPlaced(hold=LegalHold.from_model(hold, now=now))

    @strawberry.mutation(
        extensions=only(Role.LEGAL),
        description="Release a hold now (legal); releasing a released hold is an error.",
    )
    async def release_legal_hold(
        self, info: Info, id: strawberry.ID, reason: str
    ) -> ReleaseLegalHoldPayload | None:
        now = info.context.services.clock.now()
        try:
            hold = await holds.release_hold(
                hold_id=parse_input_id(id, field="id", what="legal hold"),
                reason=reason,
                released_by=info.context.subject_id,
                now=now,
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        _audit(info, "release", hold)
        return LegalHoldReleased(hold=LegalHold.from_model(hold, now=now))


def _audit(info: Info, operation: str, hold: LegalHoldModel) -> None:
    """Whose data and the order's reference: never the reason, which may name people."""
    info.context.audit_event(
        event="legal_hold",
        operation=operation,
        subject_id=hold.customer_id,
        reason=hold.reference,
    )
