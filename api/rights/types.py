"""GraphQL types of rights requests. What the customer wrote (details, proposed changes,
values before and after) is personal data, guarded as `rights.requests`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, cast
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from api.context import Info
from api.guards import Access, personal
from api.pagination import PageInfo
from api.recipients.service import notices_of, shown_to_customer
from api.recipients.types import RecipientNotice
from api.rights.queries import ExportRow, exports_of
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


@strawberry.type(
    description="The answer to an access request: a link to download it was mailed to the "
    "account's address (the link itself is only in that message). It works once, until "
    "`expiresAt`."
)
class RightsExport:
    mailed_at: datetime = strawberry.field(description="When the link was issued and mailed.")
    expires_at: datetime
    downloaded_at: datetime | None = strawberry.field(
        description="When the file was downloaded (the link is then used up)."
    )
    available: bool = strawberry.field(description="Not downloaded yet, and not expired.")

    @classmethod
    def from_row(cls, row: ExportRow, now: datetime) -> RightsExport:
        return cls(
            mailed_at=row.created_at,
            expires_at=row.expires_at,
            downloaded_at=row.used_at,
            available=row.used_at is None and row.expires_at > now,
        )


@strawberry.enum(description="What happened to a request's deadline clock.")
class ClockEvent(Enum):
    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    EXTENDED = "extended"


@strawberry.type(description="One event of a request's deadline clock.")
class DeadlineClockEntry:
    at: datetime
    event: ClockEvent
    reason: str
    months: int = strawberry.field(description="What an extension added: months, then days.")
    days: int

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> DeadlineClockEntry:
        return cls(
            at=datetime.fromisoformat(str(entry["at"])),
            event=ClockEvent(entry["event"]),
            reason=str(entry.get("reason", "")),
            months=int(entry.get("months", 0)),
            days=int(entry.get("days", 0)),
        )


@strawberry.type(description="A request to access, rectify or erase personal data.")
class RightsRequest:
    id: strawberry.ID
    customer_id: strawberry.ID
    kind: Kind
    status: Status
    channel: str = strawberry.field(description="account (signed in) or email.")
    submitted_at: datetime
    received_at: datetime | None = strawberry.field(description="When the identity was verified.")
    jurisdiction: str = strawberry.field(
        description="The law whose deadline the request follows: GDPR, UK_GDPR or CCPA (from "
        "the customer's country)."
    )
    clock: list[DeadlineClockEntry] = strawberry.field(
        description="The deadline clock's history, oldest first: started at submission, paused "
        "while the requester's identity is verified (GDPR), resumed, extended."
    )
    due_at: datetime | None = strawberry.field(
        description="What the clock gives; null while it stands."
    )
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

    @strawberry.field(
        description="An access request's answer once it is fulfilled: when its download link "
        "was mailed, until when it works, whether it was used; null for other kinds and "
        "before."
    )
    async def export(self, info: Info) -> RightsExport | None:
        if self.kind is not Kind.ACCESS or self.status is not Status.COMPLETED:
            return None
        row = await info.context.load(exports_of, UUID(str(self.id)))
        return RightsExport.from_row(row, info.context.services.clock.now()) if row else None

    @strawberry.field(
        description="Everyone who received the data an erasure or rectification concerns, "
        "each told of it, and their acknowledgement (GDPR Article 19). The customer is not "
        "shown a recipient while a non-disclosure order covers it."
    )
    async def recipients(self, info: Info) -> list[RecipientNotice]:
        notices = await info.context.load(notices_of, UUID(str(self.id)))
        now = info.context.services.clock.now()
        if info.context.viewer.is_customer:
            notices = [n for n in notices if shown_to_customer(n, now)]
        return [RecipientNotice.from_model(n) for n in notices]

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
            jurisdiction=m.jurisdiction,
            clock=[DeadlineClockEntry.from_entry(e) for e in m.clock or []],
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
                subject_id=str(m.customer_id),
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
    already_open: bool = strawberry.field(
        default=False,
        description="True when a request of this kind was already open: this is that one, "
        "unchanged, and no code was mailed (resendRightsRequestCode mails a fresh one).",
    )

    @classmethod
    def from_model(
        cls, m: RightsRequestModel, *, already_open: bool = False
    ) -> RightsRequestReceipt:
        return cls(
            id=strawberry.ID(str(m.id)),
            kind=Kind(m.kind),
            status=Status(m.status),
            due_at=m.due_at,
            already_open=already_open,
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
    field: str | None = strawberry.field(
        default=None,
        description="The argument the problem is about, when it is one: `details`, "
        "`changes`, `changes.phone`, `changes.address.postalCode`...",
    )
    attempts_left: int | None = strawberry.field(
        default=None,
        description="After a wrong code (INVALID_CODE): how many more the request takes "
        "before it needs a new code.",
    )


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
