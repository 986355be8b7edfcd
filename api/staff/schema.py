"""Staff operations: glue between GraphQL and api/staff/service.py."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.context import Info
from api.errors import InvalidArgument, parse_id
from api.pagination import PageInfo, decode_cursor, encode_cursor, page_size
from api.permissions import IsEmployee, only
from api.security.authn import InvalidCredentials as BadCredentials
from api.staff import directory, service
from api.staff.types import (
    Employee,
    EmployeeDeactivated,
    StaffLoginSuccess,
    StaffMember,
    StaffMemberConnection,
    StaffMemberEdge,
)
from api.types import InvalidCredentials
from authz.registry import Role
from models import Employee as EmployeeModel

_CURSOR = "employee"

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

    @strawberry.field(
        extensions=only(Role.ADMIN),
        description="Employees, oldest first (admin): id, work email, roles, whether active, "
        "created and last sign-in. Filter by `active` and by `role`.",
    )
    async def employees(
        self,
        info: Info,
        first: int = 50,
        after: str | None = None,
        active: bool | None = None,
        role: str | None = None,
    ) -> StaffMemberConnection | None:
        size = page_size(first)
        start = decode_cursor(_CURSOR, after, directory.parse_cursor) if after else None
        if role is not None and role not in Role.__members__.values():
            known = ", ".join(r.value for r in Role)
            raise InvalidArgument("role", f"Unknown role; known: {known}.")
        rows, more = await directory.employee_page(
            first=size, after=start, active=active, role=role
        )
        info.context.audit_event(event="admin", operation="employees", reason=f"{len(rows)} shown")
        edges = [
            StaffMemberEdge(
                cursor=encode_cursor(_CURSOR, directory.cursor_key(r)), node=StaffMember.from_row(r)
            )
            for r in rows
        ]
        end = edges[-1].cursor if edges else None
        return StaffMemberConnection(
            edges=edges, page_info=PageInfo(has_next_page=more, end_cursor=end)
        )


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
