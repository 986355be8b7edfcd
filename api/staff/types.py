from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import strawberry

from api.staff.roles import Rule
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
    description="A role granted or revoked; `changed` is false when it was already so."
)
class RoleChanged:
    employee: Employee
    role: str
    changed: bool


@strawberry.type(description="A `p` rule of the access policy (`*` means any).")
class PolicyRule:
    role: str
    category: str = strawberry.field(description="A category or a glob such as `contact.*`.")
    action: str
    purpose: str
    condition: str = strawberry.field(
        description="`*`, `open_case`, `self`, `fulfilling_request` or `consent:<purpose>`."
    )
    effect: str = strawberry.field(description="`allow` or `deny`; deny overrides allow.")

    @classmethod
    def from_rule(cls, rule: Rule) -> PolicyRule:
        return cls(**asdict(rule))


@strawberry.input(description="A `p` rule of the access policy, validated against the registry.")
class PolicyRuleInput:
    role: str
    category: str
    action: str
    purpose: str
    condition: str
    effect: str

    def to_rule(self) -> Rule:
        return Rule(
            self.role, self.category, self.action, self.purpose, self.condition, self.effect
        )


@strawberry.type(description="A rule added or removed; `changed` is false when it was already so.")
class PolicyRuleChanged:
    rule: PolicyRule
    changed: bool
