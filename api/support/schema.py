"""Support-case operations; who may call them is declared here, decided by Casbin."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import PermissionExtension

from api.context import Info
from api.errors import InputInvalid, parse_id
from api.permissions import Allowed, IsCustomer
from api.support import service
from api.support.types import SupportCase
from api.types import InputError

OpenSupportCasePayload = Annotated[
    SupportCase | InputError, strawberry.union("OpenSupportCasePayload")
]


def _guard(action: str, purpose: str = "support") -> list[FieldExtension]:
    return [PermissionExtension(permissions=[Allowed("support.cases", action, purpose)])]


@strawberry.type
class SupportQuery:
    @strawberry.field(
        extensions=_guard("read"), description="Customer care's queue of cases (oldest first)."
    )
    async def support_queue(self, status: str = service.OPEN) -> list[SupportCase] | None:
        return [
            SupportCase.from_model(c, purpose="support") for c in await service.queue(status=status)
        ]


@strawberry.type
class SupportMutation:
    @strawberry.mutation(permission_classes=[IsCustomer], description="Ask us something.")
    async def open_support_case(
        self, info: Info, subject: str, message: str
    ) -> OpenSupportCasePayload:
        try:
            case = await service.open_case(
                services=info.context.services,
                customer_id=info.context.subject_id,
                subject=subject,
                message=message,
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        info.context.audit_event(event="access", operation="openSupportCase", subject_id=case.id)
        return SupportCase.from_model(case, purpose="service")

    @strawberry.mutation(extensions=_guard("write"), description="Take a case (customer care).")
    async def assign_support_case(self, info: Info, id: strawberry.ID) -> SupportCase | None:
        case = await service.assign(
            case_id=parse_id(id, what="support case"), employee_id=info.context.subject_id
        )
        return SupportCase.from_model(case, purpose="support")

    @strawberry.mutation(extensions=_guard("write"), description="Close a case (customer care).")
    async def close_support_case(self, info: Info, id: strawberry.ID) -> SupportCase | None:
        case = await service.close(
            services=info.context.services, case_id=parse_id(id, what="support case")
        )
        return SupportCase.from_model(case, purpose="support")
