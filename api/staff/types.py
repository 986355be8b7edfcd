from __future__ import annotations

from datetime import datetime

import strawberry

from api.pagination import PageInfo
from api.staff.directory import EmployeeRow
from models import Employee as EmployeeModel


@strawberry.type
class Employee:
    id: strawberry.ID
    email: str
    name: str
    roles: list[str]
    active: bool
    created_at: datetime

    @classmethod
    def from_model(cls, m: EmployeeModel, roles: list[str]) -> Employee:
        return cls(
            id=strawberry.ID(str(m.id)),
            email=m.email,
            name=m.name,
            roles=roles,
            active=m.active,
            created_at=m.created_at,
        )


@strawberry.type
class StaffLoginSuccess:
    token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`.")
    expires_at: datetime
    employee: Employee


@strawberry.type
class EmployeeDeactivated:
    employee: Employee
    sessions_revoked: int


@strawberry.type(
    description="An employee as the admins' list shows them: no personal data beyond the "
    "work email."
)
class StaffMember:
    id: strawberry.ID
    work_email: str = strawberry.field(description="The address the employee signs in with.")
    roles: list[str]
    active: bool
    created_at: datetime
    last_sign_in_at: datetime | None = strawberry.field(
        description="The last successful staff sign-in; null when never signed in."
    )

    @classmethod
    def from_row(cls, row: EmployeeRow) -> StaffMember:
        return cls(
            id=strawberry.ID(str(row.id)),
            work_email=row.email,
            roles=list(row.roles),
            active=row.active,
            created_at=row.created_at,
            last_sign_in_at=row.last_sign_in_at,
        )


@strawberry.type
class StaffMemberEdge:
    cursor: str
    node: StaffMember


@strawberry.type(description="A page of employees (Relay connection), oldest first.")
class StaffMemberConnection:
    edges: list[StaffMemberEdge]
    page_info: PageInfo
