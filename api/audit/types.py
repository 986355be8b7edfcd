"""GraphQL types of the decision log, built from the model and the service's results."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from enum import Enum
from uuid import UUID

import strawberry

from api.audit import service
from api.audit.proof_types import LogEvidence
from api.audit.proofs import EvidenceBatch
from api.pagination import PageInfo
from authz.audit import VerifyResult
from authz.log_verify import LogVerification
from models import AuditEvent


@strawberry.enum
class Decision(Enum):
    ALLOW = "allow"
    DENY = "deny"


def _page_info(cursors: list[str], *, has_next: bool) -> PageInfo:
    return PageInfo(has_next_page=has_next, end_cursor=cursors[-1] if cursors else None)


@strawberry.input(description="Every condition is optional; given ones must all hold.")
class AccessDecisionFilter:
    actor_id: strawberry.ID | None = None
    subject_id: strawberry.ID | None = None
    category: str | None = strawberry.field(default=None, description="e.g. `contact.email`.")
    decision: Decision | None = None
    event: str | None = strawberry.field(
        default=None, description="`access`, `auth`, `admin` or `audit`."
    )
    since: datetime | None = strawberry.field(
        default=None, description="Inclusive; UTC when no offset is given."
    )
    until: datetime | None = strawberry.field(
        default=None, description="Exclusive; UTC when no offset is given."
    )

    def to_domain(self) -> service.DecisionFilter:
        return service.DecisionFilter(
            actor_id=self.actor_id,
            subject_id=self.subject_id,
            category=self.category,
            decision=self.decision.value if self.decision else None,
            event=self.event,
            since=self.since,
            until=self.until,
        )


@strawberry.type(description="One row of the decision log: ids and names, never values.")
class AccessDecision:
    id: strawberry.ID
    at: datetime
    request_id: str | None
    actor_kind: str = strawberry.field(description="`employee`, `customer` or `anonymous`.")
    actor_id: strawberry.ID | None
    roles: list[str]
    event: str
    operation: str | None
    category: str | None = strawberry.field(
        description="The category, or several comma-separated when one decision covered them."
    )
    categories: list[str] = strawberry.field(description="`category` as a list.")
    action: str | None
    subject_id: strawberry.ID | None = strawberry.field(
        description="Whose data: one id, or several comma-separated when one decision "
        "covered a page of customers."
    )
    subject_ids: list[strawberry.ID] = strawberry.field(description="`subjectId` as a list.")
    purpose: str | None
    decision: Decision
    rule: str | None = strawberry.field(description="The policy rule that matched.")
    reason: str | None
    conditions: list[str] = strawberry.field(
        description="The conditions that held on the subject when the access was decided "
        "(e.g. `open_case`, `consent:marketing.email`, `self`); empty when none, or on "
        "other events."
    )
    policy_version: int = strawberry.field(
        description="The access policy version the decision was made under; 0 on other "
        "events and on rows logged before it was recorded."
    )
    hash: str = strawberry.field(description="SHA-256(previous row's hash || this row).")

    @classmethod
    def from_model(cls, m: AuditEvent) -> AccessDecision:
        return cls(
            id=strawberry.ID(str(m.id)),
            at=m.at,
            request_id=m.request_id or None,
            actor_kind=m.actor_kind,
            actor_id=strawberry.ID(m.actor_id) if m.actor_id else None,
            roles=[r for r in m.roles.split(",") if r],
            event=m.event,
            operation=m.operation or None,
            category=m.category or None,
            categories=[c for c in m.category.split(",") if c],
            action=m.action or None,
            subject_id=strawberry.ID(m.subject_id) if m.subject_id else None,
            subject_ids=[strawberry.ID(s) for s in m.subject_id.split(",") if s],
            purpose=m.purpose or None,
            decision=Decision(m.decision),
            rule=m.rule or None,
            reason=m.reason or None,
            conditions=[c for c in m.conditions.split(",") if c],
            policy_version=m.policy_version,
            hash=m.hash,
        )


@strawberry.type
class AccessDecisionEdge:
    cursor: str
    node: AccessDecision


@strawberry.type(description="Decisions, newest first.")
class AccessDecisionConnection:
    edges: list[AccessDecisionEdge]
    page_info: PageInfo

    @classmethod
    def from_page(cls, page: service.Page[AuditEvent]) -> AccessDecisionConnection:
        edges = [
            AccessDecisionEdge(cursor=c, node=AccessDecision.from_model(m))
            for m, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=_page_info(page.cursors, has_next=page.has_next))


@strawberry.enum(description="What a verification of the decision log found wrong.")
class LogFinding(Enum):
    EDITED = "edited"
    TRUNCATED = "truncated"
    REWRITTEN = "rewritten"
    INCONSISTENT = "inconsistent"
    SIGNATURE = "signature"
    TREE = "tree"


@strawberry.type(
    description="The decision log walked from its first row: each row against its chain link, "
    "hash, subject index and leaf; the tree's root against the checkpoints."
)
class AuditVerification:
    ok: bool
    checked: int = strawberry.field(description="Rows found intact before the first broken one.")
    first_broken_id: strawberry.ID | None
    problem: str | None
    finding: LogFinding | None = strawberry.field(
        description="edited (a row), truncated (newest rows deleted), rewritten (hashes "
        "recomputed), inconsistent (a split view), signature, or tree (stored nodes)."
    )
    tree_size: int | None = strawberry.field(
        description="Rows in the tree (rows a checkpoint can cover); null for the ledger."
    )
    checkpoints: int | None = strawberry.field(
        description="Checkpoints the log was checked against; null for the ledger."
    )

    @classmethod
    def from_result(cls, result: LogVerification | VerifyResult) -> AuditVerification:
        """A verification of the log, or of a hash chain of its own (the disclosure ledger:
        a broken row there is an edited one)."""
        broken = result.first_broken_id
        if isinstance(result, LogVerification):
            finding = LogFinding(result.kind) if result.kind else None
            size, held = result.tree_size, len(result.checkpoints)
        else:
            finding, size, held = (None if result.ok else LogFinding.EDITED), None, None
        return cls(
            ok=result.ok,
            checked=result.checked,
            first_broken_id=strawberry.ID(str(broken)) if broken is not None else None,
            problem=result.problem or None,
            finding=finding,
            tree_size=size,
            checkpoints=held,
        )


@strawberry.type(
    description="Staff accessed your data in one request: their role(s) and purpose, not who."
)
class AccessLogEntry:
    reference: str = strawberry.field(
        description="Quote it to our privacy officer to learn more about this access."
    )
    at: datetime
    roles: list[str]
    purpose: str
    categories: list[str] = strawberry.field(description="Data categories, e.g. contact.email.")
    actions: list[str] = strawberry.field(description="e.g. read, read_masked.")
    event_ids: strawberry.Private[tuple[int, ...]]
    batch: strawberry.Private[EvidenceBatch]

    @strawberry.field(
        description="One per row of the log behind this entry: what lets you check it is in "
        "the log the auditors verify (docs/AUDIT_LOG.md)."
    )
    async def evidence(self) -> list[LogEvidence]:
        found = await self.batch.get()
        return [LogEvidence.from_result(found[i]) for i in self.event_ids if i in found]

    @classmethod
    def from_entry(cls, e: service.AccessLogEntry, batch: EvidenceBatch) -> AccessLogEntry:
        return cls(**asdict(e), batch=batch)


@strawberry.type
class AccessLogEdge:
    cursor: str
    node: AccessLogEntry


@strawberry.type(description="Accesses to your data, newest first.")
class AccessLogConnection:
    edges: list[AccessLogEdge]
    page_info: PageInfo

    @classmethod
    def from_page(
        cls, page: service.Page[service.AccessLogEntry], *, customer_id: UUID
    ) -> AccessLogConnection:
        batch = EvidenceBatch(customer_id, [i for e in page.items for i in e.event_ids])
        edges = [
            AccessLogEdge(cursor=c, node=AccessLogEntry.from_entry(e, batch))
            for e, c in zip(page.items, page.cursors, strict=True)
        ]
        return cls(edges=edges, page_info=_page_info(page.cursors, has_next=page.has_next))
