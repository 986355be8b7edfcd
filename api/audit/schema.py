"""The decision log over GraphQL: auditors query and verify it; a customer sees who
accessed their data. Reading the log is itself logged."""

from __future__ import annotations

from uuid import UUID

import strawberry

from api.audit import service
from api.audit.types import (
    AccessDecisionConnection,
    AccessDecisionFilter,
    AccessLogConnection,
    AuditVerification,
)
from api.context import Info
from api.observability.metrics import note_audit_verified
from api.permissions import only
from authz import audit
from authz.registry import Role


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
        description="Walk the log's hash chain: ok, or the first broken row (auditors).",
    )
    async def verify_audit_log(self, info: Info) -> AuditVerification | None:
        result = await audit.verify()
        note_audit_verified(result.ok)
        info.context.audit_event(event="audit", operation="verifyAuditLog")
        return AuditVerification.from_result(result)


async def customer_access_log(
    info: Info, *, customer_id: UUID, first: int, after: str | None
) -> AccessLogConnection:
    """`Customer.accessLog`: glue kept here so the customer type only delegates."""
    page = await service.access_log(customer_id=customer_id, first=first, after=after)
    info.context.audit_event(event="access", operation="accessLog", subject_id=customer_id)
    return AccessLogConnection.from_page(page)
