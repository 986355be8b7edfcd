"""`processingRecord` over GraphQL (legal, privacy officer, auditor)."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from api.context import Info
from api.permissions import only
from api.register.record import processing_record
from authz.registry import Role


@strawberry.type
class RegisterQuery:
    @strawberry.field(
        extensions=only(Role.LEGAL, Role.PRIVACY_OFFICER, Role.AUDITOR),
        description="The record of processing activities (GDPR Article 30) generated from "
        "the purposes, access policy, processors, disclosure ledger and retention rules in "
        'force: `{"format": "custos.processing-record/2", "purposes", "categories", '
        '"controller", "recipients", "transfersOutsideEea", "retention", "securityMeasures"}`. '
        "Also `custos processing-record`.",
    )
    async def processing_record(self, info: Info) -> JSON | None:
        record = await processing_record(services=info.context.services)
        info.context.audit_event(event="register", operation="processingRecord")
        return JSON(record)
