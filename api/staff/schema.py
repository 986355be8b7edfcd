"""Staff operations: glue between GraphQL and api/staff/service.py."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.context import Info
from api.errors import parse_id
from api.permissions import IsEmployee, only
from api.security.authn import InvalidCredentials as BadCredentials
from api.staff import service
from api.staff.types import Employee, EmployeeDeactivated, StaffLoginSuccess
from api.types import InvalidCredentials
from authz.registry import Role
from models import Employee as EmployeeModel

StaffLoginPayload = Annotated[
    StaffLoginSuccess | InvalidCredentials, strawberry.union("StaffLoginPayload")
]


@strawberry.type
class StaffQuery:
    @strawberry.field(permission_classes=[IsEmployee], description="The signed-in employee.")
    async def staff_me(self, info: Info) -> Employee | None:
        employee_id = info.context.subject_id
        employee = await EmployeeModel.get(id=employee_id)
        return Employee.from_model(employee, sorted(info.context.viewer.roles))


@strawberry.type
class StaffMutation:
    @strawberry.mutation(description="Employee sign-in; also sets the session cookie.")
    async def staff_login(self, info: Info, email: str, password: str) -> StaffLoginPayload:
        try:
            signed_in = await service.login_employee(
                services=info.context.services,
                email=email,
                password=password,
                ip=info.context.client_ip,
                trail=info.context.audit,
            )
        except BadCredentials:
            return InvalidCredentials()
        info.context.set_session_cookie(signed_in.session)
        roles = await service.employee_roles(employee_id=signed_in.employee.id)
        return StaffLoginSuccess(
            token=signed_in.session.token,
            expires_at=signed_in.session.expires_at,
            employee=Employee.from_model(signed_in.employee, roles),
        )

    @strawberry.mutation(
        extensions=only(Role.ADMIN),
        description="Deactivate an employee and end all their sessions at once (admin).",
    )
    async def deactivate_employee(
        self, info: Info, id: strawberry.ID
    ) -> EmployeeDeactivated | None:
        employee, revoked = await service.deactivate_employee(
            services=info.context.services, employee_id=parse_id(id, what="employee")
        )
        info.context.audit_event(
            event="admin", operation="deactivateEmployee", subject_id=employee.id
        )
        roles = await service.employee_roles(employee_id=employee.id)
        return EmployeeDeactivated(
            employee=Employee.from_model(employee, roles), sessions_revoked=revoked
        )
