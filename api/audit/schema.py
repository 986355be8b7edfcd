"""The decision log over GraphQL: auditors query and verify it; a customer sees who
accessed their data. Reading the log is itself logged."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import strawberry

from api.audit import proofs, service, verify
from api.audit.log_config import log_config
from api.audit.proof_types import AuditCheckpoint, ConsistencyProof, InclusionProof, LogIndex
from api.audit.types import (
    AccessDecisionConnection,
    AccessDecisionFilter,
    AccessLogConnection,
    AuditVerification,
)
from api.context import Info
from api.errors import InvalidArgument
from api.observability.metrics import note_audit_verified
from api.pagination import page_size
from api.permissions import only
from authz import checkpoints
from authz.registry import Role
from models import AuditCheckpoint as CheckpointModel


@strawberry.type
class AuditQuery:
    @strawberry.field(
        extensions=only(Role.AUDITOR),
        description="The decision log, newest first, filtered (auditors).",
    )
    async def access_decisions(
        self,
        info: Info,
        filter: AccessDecisionFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> AccessDecisionConnection | None:
        where = filter.to_domain() if filter else service.DecisionFilter()
        page = await service.access_decisions(where=where, first=first, after=after)
        info.context.audit_event(
            event="audit", operation="accessDecisions", subject_id=where.subject_id
        )
        return AccessDecisionConnection.from_page(page)

    @strawberry.field(
        extensions=only(Role.AUDITOR),
        description="Walk the whole log and check it against its checkpoints: ok, or the "
        "first broken row or the attack found (auditors).",
    )
    async def verify_audit_log(
        self,
        info: Info,
        checkpoints: Annotated[
            list[str] | None,
            strawberry.argument(
                description="Checkpoints (signed notes) kept outside the database to check "
                "the log against, besides those the log signed."
            ),
        ] = None,
    ) -> AuditVerification | None:
        result = await verify.against(checkpoints or [])
        note_audit_verified(result.ok)
        info.context.audit_event(event="audit", operation="verifyAuditLog")
        return AuditVerification.from_result(result)

    @strawberry.field(
        extensions=only(Role.AUDITOR),
        description="The checkpoints the log signed, newest first (auditors).",
    )
    async def audit_checkpoints(
        self,
        info: Info,
        first: int = 20,
        before_size: LogIndex | None = None,
    ) -> list[AuditCheckpoint] | None:
        query = CheckpointModel.all()
        if before_size is not None:
            query = query.filter(size__lt=before_size)
        rows = await query.order_by("-id").limit(page_size(first))
        info.context.audit_event(event="audit", operation="auditCheckpoints")
        return [AuditCheckpoint.from_model(r) for r in rows]

    @strawberry.field(
        extensions=only(Role.AUDITOR),
        description="That one row of the log is a leaf of the tree of `treeSize` rows (the "
        "latest checkpoint's when omitted), with the row's leaf (auditors).",
    )
    async def audit_inclusion_proof(
        self,
        info: Info,
        event_id: strawberry.ID,
        tree_size: LogIndex | None = None,
    ) -> InclusionProof | None:
        proof = await proofs.inclusion(_event_id(event_id), tree_size)
        info.context.audit_event(event="audit", operation="auditInclusionProof")
        return InclusionProof.from_result(proof)

    @strawberry.field(
        extensions=only(Role.AUDITOR),
        description="That the tree of `to` rows only appends to the tree of `from` (auditors).",
    )
    async def audit_consistency_proof(
        self,
        info: Info,
        from_size: Annotated[LogIndex, strawberry.argument(name="from")],
        to_size: Annotated[LogIndex, strawberry.argument(name="to")],
    ) -> ConsistencyProof | None:
        proof = await proofs.consistency(from_size, to_size)
        info.context.audit_event(event="audit", operation="auditConsistencyProof")
        return ConsistencyProof.from_result(proof)


@strawberry.type
class AuditMutation:
    @strawberry.mutation(
        extensions=only(Role.AUDITOR),
        description="Bring every row into the tree and sign a checkpoint now (auditors).",
    )
    async def sign_audit_checkpoint(self, info: Info) -> AuditCheckpoint | None:
        services = info.context.services
        row = await checkpoints.sign(
            log_config(services.settings), services.clock.now(), force=True
        )
        info.context.audit_event(event="audit", operation="signAuditCheckpoint")
        return AuditCheckpoint.from_model(row)


def _event_id(value: str) -> int:
    if not value.isascii() or not value.isdigit() or not 0 < int(value) < 1 << 63:
        raise InvalidArgument("eventId", "A row id is a positive whole number.")
    return int(value)


async def customer_access_log(
    info: Info, *, customer_id: UUID, first: int, after: str | None
) -> AccessLogConnection:
    """`Customer.accessLog`: glue kept here so the customer type only delegates."""
    page = await service.access_log(customer_id=customer_id, first=first, after=after)
    info.context.audit_event(event="access", operation="accessLog", subject_id=customer_id)
    return AccessLogConnection.from_page(page, customer_id=customer_id)
