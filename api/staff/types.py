from __future__ import annotations

from datetime import datetime

import strawberry

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
