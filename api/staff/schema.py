"""Staff operations: glue between GraphQL and api/staff/service.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import strawberry

from api.context import Info
from api.errors import InputInvalid, parse_id
from api.permissions import IsEmployee, only
from api.security.authn import InvalidCredentials as BadCredentials
from api.staff import roles, service
from api.staff.types import (
    Employee,
    EmployeeDeactivated,
    PolicyRule,
    PolicyRuleChanged,
    PolicyRuleInput,
    RoleChanged,
    StaffLoginSuccess,
)
from api.types import InputError, InvalidCredentials
from authz.registry import Role
from models import Employee as EmployeeModel

StaffLoginPayload = Annotated[
    StaffLoginSuccess | InvalidCredentials, strawberry.union("StaffLoginPayload")
]
RoleChangePayload = Annotated[RoleChanged | InputError, strawberry.union("RoleChangePayload")]
PolicyRuleChangePayload = Annotated[
    PolicyRuleChanged | InputError, strawberry.union("PolicyRuleChangePayload")
]


async def _role_changed(
    info: Info, operation: str, change: roles.RoleChange, role: str
) -> RoleChanged:
    """Effective at once here (other processes follow their watcher); audited."""
    if change.changed:
        await info.context.services.authorizer.reload()
    info.context.audit_event(
        event="admin",
        operation=operation,
        subject_id=change.employee.id,
        reason=f"role={role}" if change.changed else f"role={role}, unchanged",
    )
    employee = Employee.from_model(change.employee, change.roles)
    return RoleChanged(employee=employee, role=role, changed=change.changed)


def _refusal_logged(
    info: Info, operation: str, exc: InputInvalid, subject_id: object, what: str
) -> InputError:
    """The typed error; a change refused to keep duties separate is also logged."""
    codes = [p.code for p in exc.problems if p.code in roles.REFUSALS]
    if codes:
        info.context.audit_event(
            event="admin",
            operation=operation,
            subject_id=subject_id,
            decision="deny",
            reason=f"{codes[0]}: {what}",
        )
    return InputError.from_problems(exc.problems)


async def _rule_changed(
    info: Info, operation: str, rule: roles.Rule, changed: bool
) -> PolicyRuleChanged:
    if changed:
        await info.context.services.authorizer.reload()
    info.context.audit_event(
        event="admin",
        operation=operation,
        reason=rule.text if changed else f"{rule.text} (unchanged)",
    )
    return PolicyRuleChanged(rule=PolicyRule.from_rule(rule), changed=changed)


async def _edit_rule(
    info: Info, operation: str, edit: Callable[..., Awaitable[bool]], input: PolicyRuleInput
) -> PolicyRuleChangePayload:
    rule = input.to_rule()
    try:
        changed = await edit(rule=rule, changed_by=info.context.subject_id)
    except InputInvalid as exc:
        return _refusal_logged(info, operation, exc, "", rule.text)
    return await _rule_changed(info, operation, rule, changed)


@strawberry.type
class StaffQuery:
    @strawberry.field(permission_classes=[IsEmployee], description="The signed-in employee.")
    async def staff_me(self, info: Info) -> Employee | None:
        employee_id = info.context.subject_id
        employee = await EmployeeModel.get(id=employee_id)
        return Employee.from_model(employee, sorted(info.context.viewer.roles))

    @strawberry.field(
        extensions=only(Role.ADMIN, Role.AUDITOR),
        description="The `p` rules of the access policy in force (admins and auditors).",
    )
    def policy_rules(self, info: Info) -> list[PolicyRule] | None:
        rules = roles.policy_rules(authorizer=info.context.services.authorizer)
        return [PolicyRule.from_rule(r) for r in rules]


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

    @strawberry.mutation(
        extensions=only(Role.ADMIN),
        description="Grant a role (admin): effective at once, on every process within 2 s.",
    )
    async def grant_role(
        self, info: Info, employee_id: strawberry.ID, role: str
    ) -> RoleChangePayload | None:
        employee = parse_id(employee_id, what="employee")
        try:
            change = await roles.grant_role(
                employee_id=employee,
                role=role,
                granted_by=info.context.subject_id,
                now=info.context.services.clock.now(),
            )
        except InputInvalid as exc:
            return _refusal_logged(info, "grantRole", exc, employee, f"role={role}")
        return await _role_changed(info, "grantRole", change, role)

    @strawberry.mutation(
        extensions=only(Role.ADMIN),
        description="Revoke a role (admin): effective at once, on every process within 2 s.",
    )
    async def revoke_role(
        self, info: Info, employee_id: strawberry.ID, role: str
    ) -> RoleChangePayload | None:
        employee = parse_id(employee_id, what="employee")
        try:
            change = await roles.revoke_role(
                employee_id=employee, role=role, revoked_by=info.context.subject_id
            )
        except InputInvalid as exc:
            return _refusal_logged(info, "revokeRole", exc, employee, f"role={role}")
        return await _role_changed(info, "revokeRole", change, role)

    @strawberry.mutation(
        extensions=only(Role.ADMIN),
        description="Add a rule to the access policy (admin); deny rules override allows.",
    )
    async def add_policy_rule(
        self, info: Info, input: PolicyRuleInput
    ) -> PolicyRuleChangePayload | None:
        return await _edit_rule(info, "addPolicyRule", roles.add_policy_rule, input)

    @strawberry.mutation(
        extensions=only(Role.ADMIN),
        description="Remove a rule from the access policy (admin); the credentials floor stays.",
    )
    async def remove_policy_rule(
        self, info: Info, input: PolicyRuleInput
    ) -> PolicyRuleChangePayload | None:
        return await _edit_rule(info, "removePolicyRule", roles.remove_policy_rule, input)
