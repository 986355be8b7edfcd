"""Rights request operations: glue between GraphQL and api/rights/lifecycle.py.

Customers submit, verify, re-ask a code and cancel; someone who cannot sign in submits by
email address. Privacy officers list, review, extend and fulfil, for purpose `legal`.
Every refusal is a typed `RightsError` and an audit event."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any
from uuid import UUID

import strawberry
from strawberry.extensions.field_extension import FieldExtension

from api.context import Info
from api.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from api.permissions import IsCustomer, only
from api.rights import intake, lifecycle, queries
from api.rights.lifecycle import Actor
from api.rights.rules import Kind, RightsProblem, Status
from api.rights.types import (
    RectificationInput,
    ReviewDecision,
    RightsError,
    RightsRequest,
    RightsRequestByEmailAccepted,
    RightsRequestConnection,
    RightsRequestEdge,
    RightsRequestReceipt,
)
from api.security.mail_limits import MailRateLimit
from api.types import ErrorCode
from authz.registry import PurposeKey, Role

SubmitPayload = Annotated[
    RightsRequestReceipt | RightsError, strawberry.union("SubmitRightsRequestPayload")
]
ByEmailPayload = Annotated[
    RightsRequestByEmailAccepted | RightsError,
    strawberry.union("SubmitRightsRequestByEmailPayload"),
]
ReceiptPayload = Annotated[
    RightsRequestReceipt | RightsError, strawberry.union("RightsRequestReceiptPayload")
]
OfficerPayload = Annotated[RightsRequest | RightsError, strawberry.union("RightsRequestPayload")]

_OFFICER: list[FieldExtension] = only(Role.PRIVACY_OFFICER)


def _changes(changes: RectificationInput | None) -> dict[str, Any] | None:
    if changes is None:
        return None
    result: dict[str, Any] = {}
    if changes.phone is not None:
        result["phone"] = changes.phone
    if changes.address is not None:
        result["address"] = strawberry.asdict(changes.address)
    return result


async def _attempt(info: Info, operation: str, work: Awaitable[Any], subject: object = "") -> Any:
    """Run `work`; a RightsProblem becomes a RightsError and a logged refusal."""
    try:
        return await work
    except RightsProblem as problem:
        info.context.audit_event(
            event="rights",
            operation=operation,
            subject_id=subject,
            decision="deny",
            reason=problem.code,
        )
        return RightsError(
            code=ErrorCode(problem.code),
            message=problem.message,
            field=problem.field,
            attempts_left=problem.attempts_left,
        )


async def _full(info: Info, request: Any) -> RightsRequest:
    transitions = await queries.transitions_of([request.id])
    return RightsRequest.from_model(
        request,
        transitions=transitions[0],
        now=info.context.services.clock.now(),
        purpose=PurposeKey.LEGAL,
        acting=True,
    )


def _logged(info: Info, operation: str, request: Any) -> None:
    info.context.audit_event(
        event="rights", operation=operation, subject_id=request.customer_id, reason=request.status
    )


@strawberry.type
class RightsQuery:
    @strawberry.field(
        extensions=_OFFICER,
        description="The privacy officer's queue, oldest first, for purpose legal.",
    )
    async def rights_requests(
        self,
        info: Info,
        status: Status | None = None,
        overdue: bool | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> RightsRequestConnection | None:
        size = page_size(first)
        cursor = decode_cursor("rights", after, queries.parse_cursor) if after else None
        now = info.context.services.clock.now()
        rows = await queries.queue_page(
            status=status, overdue=overdue, now=now, first=size, after=cursor
        )
        page = rows[:size]
        transitions = await queries.transitions_of([r.id for r in page])
        edges = [
            RightsRequestEdge(
                cursor=encode_cursor("rights", f"{r.submitted_at.isoformat()}|{r.id}"),
                node=RightsRequest.from_model(r, transitions=t, now=now, purpose=PurposeKey.LEGAL),
            )
            for r, t in zip(page, transitions, strict=True)
        ]
        end = edges[-1].cursor if edges else None
        return RightsRequestConnection(
            edges=edges, page_info=PageInfo(has_next_page=len(rows) > size, end_cursor=end)
        )


@strawberry.type
class RightsMutation:
    @strawberry.mutation(
        permission_classes=[IsCustomer, MailRateLimit],
        description="Ask to access, rectify or erase your data; a code is mailed to confirm.",
    )
    async def submit_rights_request(
        self,
        info: Info,
        kind: Kind,
        details: str = "",
        changes: RectificationInput | None = None,
    ) -> SubmitPayload:
        customer_id = info.context.subject_id
        work = lifecycle.submit(
            services=info.context.services,
            customer_id=customer_id,
            kind=kind,
            details=details,
            changes=_changes(changes),
            actor=Actor("customer", customer_id),
        )
        result = await _attempt(info, "submit", work, customer_id)
        if isinstance(result, RightsError):
            return result
        request, opened = result
        info.context.audit_event(
            event="rights",
            operation="submit",
            subject_id=customer_id,
            reason=request.status if opened else f"already open: {request.id}",
        )
        return RightsRequestReceipt.from_model(request, already_open=not opened)

    @strawberry.mutation(
        permission_classes=[MailRateLimit],
        description="For someone who cannot sign in: the same answer whether or not the "
        "address has an account; a known one is mailed a code.",
    )
    async def submit_rights_request_by_email(
        self,
        info: Info,
        email: str,
        kind: Kind,
        details: str = "",
        changes: RectificationInput | None = None,
    ) -> ByEmailPayload:
        work = intake.accept_by_email(
            services=info.context.services,
            email=email,
            kind=kind,
            details=details,
            changes=_changes(changes),
        )
        result = await _attempt(info, "submit_by_email", work)
        return result if isinstance(result, RightsError) else RightsRequestByEmailAccepted()

    @strawberry.mutation(
        permission_classes=[MailRateLimit],
        description="Confirm a request with the code mailed to the account.",
    )
    async def verify_rights_request(
        self, info: Info, id: strawberry.ID, code: str
    ) -> ReceiptPayload:
        viewer = info.context.viewer
        customer_id = viewer.subject_id if viewer.is_customer else None
        work = lifecycle.verify(
            services=info.context.services,
            request_id=_uuid(id),
            code=code,
            customer_id=customer_id,
        )
        return await _receipt(info, "verify", work, customer_id or "")

    @strawberry.mutation(
        permission_classes=[IsCustomer, MailRateLimit], description="Mail a new code."
    )
    async def resend_rights_request_code(self, info: Info, id: strawberry.ID) -> RightsError | None:
        work = lifecycle.resend_code(
            services=info.context.services,
            request_id=_uuid(id),
            customer_id=info.context.subject_id,
        )
        result = await _attempt(info, "resend_code", work, info.context.subject_id)
        return result if isinstance(result, RightsError) else None

    @strawberry.mutation(permission_classes=[IsCustomer], description="Withdraw your request.")
    async def cancel_rights_request(self, info: Info, id: strawberry.ID) -> ReceiptPayload:
        work = lifecycle.cancel(
            services=info.context.services,
            request_id=_uuid(id),
            customer_id=info.context.subject_id,
        )
        return await _receipt(info, "cancel", work, info.context.subject_id)

    @strawberry.mutation(extensions=_OFFICER, description="Approve, or refuse with a reason.")
    async def review_rights_request(
        self, info: Info, id: strawberry.ID, decision: ReviewDecision, reason: str = ""
    ) -> OfficerPayload | None:
        work = lifecycle.review(
            services=info.context.services,
            request_id=_uuid(id),
            officer_id=info.context.subject_id,
            approve=decision is ReviewDecision.APPROVE,
            reason=reason,
        )
        return await _officer_result(info, "review", work)

    @strawberry.mutation(
        extensions=_OFFICER,
        description="Once, before the due date, by what the request's law allows (GDPR: 1 "
        "or 2 months, `months`, 2 if left out; CCPA: 45 days, no `months`); the reason is "
        "mailed.",
    )
    async def extend_rights_request(
        self, info: Info, id: strawberry.ID, reason: str, months: int | None = None
    ) -> OfficerPayload | None:
        work = lifecycle.extend(
            services=info.context.services,
            request_id=_uuid(id),
            officer_id=info.context.subject_id,
            reason=reason,
            months=months,
        )
        return await _officer_result(info, "extend", work)

    @strawberry.mutation(
        extensions=_OFFICER,
        description="Carry out an approved request (export, rectification or erasure).",
    )
    async def fulfill_rights_request(self, info: Info, id: strawberry.ID) -> OfficerPayload | None:
        request_id = _uuid(id)
        context = info.context
        subject = await lifecycle.subject_of(request_id)

        def decide(category: str, action: str) -> bool:
            return context.decide(
                category=category,
                action=action,
                purpose=PurposeKey.LEGAL,
                subject_id=subject or "",
                conditions=("fulfilling_request",),
            ).allowed

        work = lifecycle.fulfil(
            services=context.services,
            request_id=request_id,
            officer_id=context.subject_id,
            decide=decide,
        )
        return await _officer_result(info, "fulfil", work)


async def _receipt(
    info: Info, operation: str, work: Awaitable[Any], subject: object
) -> RightsRequestReceipt | RightsError:
    """The customer's side: the receipt, or the typed refusal (logged either way)."""
    result = await _attempt(info, operation, work, subject)
    if isinstance(result, RightsError):
        return result
    _logged(info, operation, result)
    return RightsRequestReceipt.from_model(result)


async def _officer_result(
    info: Info, operation: str, work: Awaitable[Any]
) -> RightsRequest | RightsError:
    result = await _attempt(info, operation, work)
    if isinstance(result, RightsError):
        return result
    _logged(info, operation, result)
    full: RightsRequest = await _full(info, result)
    return full


def _uuid(value: object) -> UUID:
    try:
        return UUID(str(value))
    except ValueError:
        return UUID(int=0)  # no request has it: NOT_FOUND, like any unknown id
