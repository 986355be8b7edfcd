"""Processors and the disclosure ledger over GraphQL: glue between the schema and
api/sharing/. Legal manages processors and records disclosures; legal, marketing and
fraud analysts share within a processor's contract (Casbin decides each category);
auditors and legal read the ledger; customers see disclosures about themselves."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.permission import PermissionExtension
from strawberry.scalars import JSON

from api.audit.types import AuditVerification
from api.context import Info
from api.errors import FieldProblem, InputInvalid, parse_id, parse_input_id
from api.pagination import decode_cursor, page_size
from api.permissions import IsEmployee, only
from api.sharing import disclosures, ledger, processors, share
from api.sharing.types import (
    CustomerDisclosure,
    DataShared,
    Disclosure,
    DisclosureBasis,
    DisclosureConnection,
    DisclosureFilter,
    DisclosureRecorded,
    IssueNoticeKeyPayload,
    NoticeKeyIssued,
    Processor,
    ProcessorInput,
    ProcessorSaved,
    RecordDisclosurePayload,
    SaveProcessorPayload,
    ShareFilter,
    ShareWithProcessorPayload,
    left_out,
)
from api.types import InputError
from authz.registry import Action, Role
from models import Processor as ProcessorModel


def _refused(info: Info, operation: str, exc: InputInvalid, subject: object = "") -> InputError:
    """The refusal is logged (its code, never the input), and answered as an InputError."""
    info.context.audit_event(
        event="disclosure",
        operation=operation,
        decision="deny",
        subject_id=subject,
        reason=exc.problems[0].code,
    )
    return InputError.from_problems(exc.problems)


def _ledger_filter(f: DisclosureFilter | None) -> ledger.LedgerFilter:
    if f is None:
        return ledger.LedgerFilter()
    return ledger.LedgerFilter(
        customer_id=parse_id(f.customer_id, what="customer") if f.customer_id else None,
        recipient=f.recipient,
        processor_id=parse_id(f.processor_id, what="processor") if f.processor_id else None,
        legal_basis=ledger.LegalBasis(f.legal_basis).value if f.legal_basis else None,
        since=f.since,
        until=f.until,
    )


def _uuid_or_blank(value: str) -> str:
    """The customer a refusal was about, when the id is one."""
    try:
        return str(UUID(value))
    except ValueError:
        return ""


def _ids(values: list[strawberry.ID]) -> list[UUID]:
    problems, ids = [], []
    for i, value in enumerate(values):
        try:
            ids.append(UUID(str(value)))
        except ValueError:
            problems.append(FieldProblem(f"customerIds[{i}]", "NOT_FOUND", "No such customer."))
    if problems:
        raise InputInvalid(problems)
    return ids


@strawberry.type
class SharingQuery:
    @strawberry.field(
        extensions=[PermissionExtension(permissions=[IsEmployee()])],
        description="The processor registry, by name (every employee).",
    )
    async def processors(self, info: Info, active_only: bool = False) -> list[Processor] | None:
        now = info.context.services.clock.now()
        found = await processors.processors(active_at=now if active_only else None)
        return [Processor.from_model(p, now=now) for p in found]

    @strawberry.field(
        extensions=only(Role.AUDITOR, Role.LEGAL),
        description="The disclosure ledger, newest first, filtered (auditors, legal).",
    )
    async def disclosure_ledger(
        self,
        info: Info,
        filter: DisclosureFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> DisclosureConnection | None:
        where = _ledger_filter(filter)
        before = decode_cursor("ledger", after, int) if after else None
        rows = await ledger.page(where=where, first=page_size(first), before_id=before)
        info.context.audit_event(
            event="disclosure", operation="disclosureLedger", subject_id=where.customer_id or ""
        )
        return DisclosureConnection.from_rows(rows, first=first)

    @strawberry.field(
        extensions=only(Role.AUDITOR),
        description="Walk the ledger's hash chain: ok, or the first broken row (auditors).",
    )
    async def verify_disclosure_ledger(self, info: Info) -> AuditVerification | None:
        result = await ledger.verify()
        info.context.audit_event(event="disclosure", operation="verifyDisclosureLedger")
        return AuditVerification.from_result(result)


@strawberry.type
class SharingMutation:
    @strawberry.mutation(extensions=only(Role.LEGAL), description="Register a processor (legal).")
    async def create_processor(
        self, info: Info, input: ProcessorInput
    ) -> SaveProcessorPayload | None:
        now = info.context.services.clock.now()
        try:
            saved = await processors.create_processor(
                draft=input.to_draft(), actor_id=info.context.subject_id, now=now
            )
        except InputInvalid as exc:
            return _refused(info, "createProcessor", exc)
        info.context.audit_event(event="processor", operation="create", reason=str(saved.id))
        return ProcessorSaved(processor=Processor.from_model(saved, now=now))

    @strawberry.mutation(
        extensions=only(Role.LEGAL),
        description="Replace a processor's record: a new contract, purposes, categories or "
        "end date (legal). Past disclosures are unchanged.",
    )
    async def update_processor(
        self, info: Info, id: strawberry.ID, input: ProcessorInput
    ) -> SaveProcessorPayload | None:
        now = info.context.services.clock.now()
        try:
            saved = await processors.update_processor(
                processor_id=parse_input_id(id, field="id", what="processor"),
                draft=input.to_draft(),
                actor_id=info.context.subject_id,
                now=now,
            )
        except InputInvalid as exc:
            return _refused(info, "updateProcessor", exc)
        info.context.audit_event(event="processor", operation="update", reason=str(saved.id))
        return ProcessorSaved(processor=Processor.from_model(saved, now=now))

    @strawberry.mutation(
        extensions=only(Role.LEGAL),
        description="Issue a processor a new key for signed notices and its "
        "acknowledgements (legal): shown once in the answer, and the previous key stops "
        "working at once.",
    )
    async def issue_processor_notice_key(
        self, info: Info, id: strawberry.ID
    ) -> IssueNoticeKeyPayload | None:
        now = info.context.services.clock.now()
        try:
            processor_id = parse_input_id(id, field="id", what="processor")
            key = await processors.issue_notice_key(
                processor_id=processor_id, actor_id=info.context.subject_id, now=now
            )
        except InputInvalid as exc:
            return _refused(info, "issueProcessorNoticeKey", exc)
        info.context.audit_event(event="processor", operation="notice_key", reason=str(id))
        saved = await ProcessorModel.get(id=processor_id)
        return NoticeKeyIssued(processor=Processor.from_model(saved, now=now), notice_key=key)

    @strawberry.mutation(
        extensions=only(Role.LEGAL, Role.MARKETING, Role.FRAUD_ANALYST),
        description="The data set for a processor: only its allowed purpose and categories, "
        "only customers whose data may be used for the purpose now (others are left out "
        "and counted), each category's disclosure decided for your role. Name up to 200 "
        "customers, or give a filter and page with `first`/`after`. Every customer shared "
        "is recorded in the disclosure ledger.",
    )
    async def share_with_processor(
        self,
        info: Info,
        processor_id: strawberry.ID,
        categories: list[str],
        purpose: str,
        customer_ids: list[strawberry.ID] | None = None,
        filter: ShareFilter | None = None,
        first: int = share.MAX_CUSTOMERS,
        after: strawberry.ID | None = None,
    ) -> ShareWithProcessorPayload | None:
        context = info.context
        try:
            draft = share.ShareDraft(
                processor_id=parse_input_id(processor_id, field="processorId", what="processor"),
                categories=list(categories),
                purpose=purpose,
                customer_ids=_ids(customer_ids) if customer_ids is not None else None,
                country=filter.country if filter else None,
                registered_since=filter.registered_since if filter else None,
                after=parse_input_id(after, field="after", what="customer") if after else None,
                first=first,
            )
            done = await share.share_with_processor(
                services=context.services,
                draft=draft,
                actor_id=context.subject_id,
                decide=lambda category, customer, conditions: (
                    context.decide(
                        category=category,
                        action=Action.DISCLOSE,
                        purpose=purpose,
                        subject_id=customer,
                        conditions=conditions,
                    ).allowed
                ),
            )
        except InputInvalid as exc:
            return _refused(info, "shareWithProcessor", exc)
        context.audit_event(
            event="disclosure",
            operation="share",
            subject_id=",".join(str(c) for c in done.shared),
            reason=f"processor {done.processor.id} for {purpose}",
        )
        now = context.services.clock.now()
        return DataShared(
            processor=Processor.from_model(done.processor, now=now),
            purpose=purpose,
            categories=list(categories),
            dataset=JSON(done.dataset),
            shared=len(done.shared),
            left_out=left_out(done.left_out),
            next_after=strawberry.ID(str(done.next_after)) if done.next_after else None,
        )

    @strawberry.mutation(
        extensions=only(Role.LEGAL),
        description="Record a disclosure to an authority or other recipient (legal). A "
        "CONSENT basis names the purpose the customer consents to now; "
        "`nonDisclosureUntil` (legal obligation, court order, regulator) hides it from the "
        "customer until that time.",
    )
    async def record_disclosure(
        self,
        info: Info,
        customer_id: strawberry.ID,
        recipient: str,
        categories: list[str],
        legal_basis: DisclosureBasis,  # type: ignore[valid-type]
        reference: str,
        note: str = "",
        purpose: str | None = None,
        non_disclosure_until: datetime | None = None,
    ) -> RecordDisclosurePayload | None:
        context = info.context
        draft = disclosures.DisclosureDraft(
            customer_id=UUID(int=0),
            recipient=recipient,
            categories=list(categories),
            legal_basis=ledger.LegalBasis(legal_basis),
            reference=reference,
            note=note,
            purpose=purpose,
            nondisclosure_until=non_disclosure_until,
        )
        try:
            customer = parse_input_id(customer_id, field="customerId", what="customer")
            row = await disclosures.record_disclosure(
                services=context.services,
                draft=replace(draft, customer_id=customer),
                actor_id=context.subject_id,
            )
        except InputInvalid as exc:
            return _refused(info, "recordDisclosure", exc, subject=_uuid_or_blank(customer_id))
        context.audit_event(
            event="disclosure",
            operation="record",
            subject_id=row.customer_id,
            reason=f"{row.legal_basis} {row.reference}"[:200],
        )
        return DisclosureRecorded(disclosure=Disclosure.from_model(row))


async def customer_disclosures(info: Info, *, customer_id: UUID) -> list[CustomerDisclosure]:
    """`me { disclosures }`: glue kept here so the customer type only delegates."""
    now = info.context.services.clock.now()
    rows = await ledger.disclosures_of(customer_id=customer_id, now=now)
    info.context.audit_event(event="access", operation="disclosures", subject_id=customer_id)
    return [CustomerDisclosure.from_model(r) for r in rows]
