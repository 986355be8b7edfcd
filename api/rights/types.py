"""GraphQL types of rights requests. What the customer wrote (details, proposed changes,
values before and after) is personal data, guarded as `rights.requests`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import cast
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.guards import Access, personal
from api.pagination import PageInfo
from api.rights.rules import RUNNING, Kind, Status
from api.types import ErrorCode
from authz.registry import Category
from models import RightsRequest as RightsRequestModel
from models import RightsTransition as TransitionModel

strawberry.enum(Kind, name="RightsRequestKind")  # registers the enums under these names
strawberry.enum(Status, name="RightsRequestStatus")


@strawberry.enum
class ReviewDecision(Enum):
    APPROVE = "approve"
    REFUSE = "refuse"


@strawberry.type(description="One change of a request's status.")
class RightsTransition:
    from_status: str
    to_status: str
    at: datetime
    actor_kind: str = strawberry.field(description="customer, employee or anonymous.")
    reason: str

    @classmethod
    def from_model(cls, m: TransitionModel) -> RightsTransition:
        return cls(
            from_status=m.from_status,
            to_status=m.to_status,
            at=m.at,
            actor_kind=m.actor_kind,
            reason=m.reason,
        )


@strawberry.type(description="A request to access, rectify or erase personal data.")
class RightsRequest:
    id: strawberry.ID
    customer_id: strawberry.ID
    kind: Kind
    status: Status
    channel: str = strawberry.field(description="account (signed in) or email.")
    submitted_at: datetime
    received_at: datetime | None = strawberry.field(
        description="When the identity was verified: the deadline counts from here."
    )
    due_at: datetime | None
    overdue: bool
    extended: bool
    extension_reason: str
    decision_reason: str
    completed_at: datetime | None
    outcome: JSON = strawberry.field(
        description="Per category what was done (erasure: erased or kept, and why)."
    )
    details: str | None = personal(Category.RIGHTS_REQUESTS)
    changes: JSON | None = personal(Category.RIGHTS_REQUESTS, description="Proposed changes.")
    before: JSON | None = personal(Category.RIGHTS_REQUESTS)
    after: JSON | None = personal(Category.RIGHTS_REQUESTS)
    transitions: list[RightsTransition]
    access: strawberry.Private[Access]

    @classmethod
    def from_model(
        cls,
        m: RightsRequestModel,
        *,
        transitions: list[TransitionModel],
        now: datetime,
        purpose: str,
        acting: bool = False,
    ) -> RightsRequest:
        """`acting`: the officer just moved this request (and reads what they did)."""
        running = m.status in RUNNING
        return cls(
            id=strawberry.ID(str(m.id)),
            customer_id=strawberry.ID(str(m.customer_id)),
            kind=Kind(m.kind),
            status=Status(m.status),
            channel=m.channel,
            submitted_at=m.submitted_at,
            received_at=m.received_at,
            due_at=m.due_at,
            overdue=running and m.due_at is not None and m.due_at < now,
            extended=m.extended_at is not None,
            extension_reason=m.extension_reason,
            decision_reason=m.decision_reason,
            completed_at=m.completed_at,
            outcome=cast(JSON, m.outcome),
            details=m.details,
            changes=cast(JSON, m.changes),
            before=cast(JSON, m.before),
            after=cast(JSON, m.after),
            transitions=[RightsTransition.from_model(t) for t in transitions],
            access=Access(
                subject_id=UUID(str(m.customer_id)),
                purpose=purpose,
                # An officer reads what a requester wrote while the request runs.
                conditions=("fulfilling_request",) if running or acting else (),
            ),
        )


@strawberry.type(description="The request is recorded; it runs once its code is verified.")
class RightsRequestReceipt:
    id: strawberry.ID
    kind: Kind
    status: Status
    due_at: datetime | None

    @classmethod
    def from_model(cls, m: RightsRequestModel) -> RightsRequestReceipt:
        return cls(
            id=strawberry.ID(str(m.id)), kind=Kind(m.kind), status=Status(m.status), due_at=m.due_at
        )


@strawberry.type(description="The same answer whether or not the address has an account.")
class RightsRequestByEmailAccepted:
    message: str = (
        "If this address belongs to an account, we sent it a code to confirm the request."
    )


@strawberry.type(description="The request was refused; nothing changed.")
class RightsError:
    code: ErrorCode
    message: str


@strawberry.type
class RightsRequestEdge:
    cursor: str
    node: RightsRequest


@strawberry.type
class RightsRequestConnection:
    edges: list[RightsRequestEdge]
    page_info: PageInfo


@strawberry.input(description="Corrections proposed by a rectification request.")
class RectificationInput:
    phone: str | None = None
    address: AddressChange | None = None


@strawberry.input
class AddressChange:
    line1: str
    city: str
    country: str
    postal_code: str | None = None
    line2: str | None = None
