"""Roles and policy rules at run time (admin). Grants live in `employee_role`; rules go
through the Casbin enforcer (its adapter persists them). Every change moves the policy
version in the same transaction, which every other process watches (authz/watcher.py)."""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass
from datetime import datetime
from uuid import UUID

from casbin.util.builtin_operators import glob_match
from tortoise.transactions import in_transaction

from api.errors import FieldProblem, InputInvalid, NotFound
from authz import separation
from authz.adapter import bump_version, employee_subject, policy_columns
from authz.enforcer import Authorizer
from authz.registry import CONDITIONS as OBJECT_CONDITIONS
from authz.registry import (
    PERSONAL_DATA_ROLES,
    PURPOSES,
    VALUE_BLIND_ROLES,
    Action,
    Category,
    Role,
)
from models import Employee, EmployeeRole, PolicyRule

ROLES = tuple(r.value for r in Role)
RULE_SUBJECTS = (*ROLES, "staff", "customer")
CONDITIONS = ("*", *OBJECT_CONDITIONS)
SEPARATION_OF_DUTIES = "SEPARATION_OF_DUTIES"
VALUE_BLIND_ROLE = "VALUE_BLIND_ROLE"
REFUSALS = frozenset({SEPARATION_OF_DUTIES, VALUE_BLIND_ROLE})
"""The problem codes of a change refused to keep duties separate: logged as denials."""
_CATEGORIES = tuple(c.value for c in Category)
_ACTIONS = tuple(a.value for a in Action)
_PATTERN = re.compile(r"[a-z_.*]{1,100}")
_CREDENTIALS = Category.ACCOUNT_CREDENTIALS.value


@dataclass(frozen=True, slots=True)
class RoleChange:
    employee: Employee
    roles: list[str]
    changed: bool
    """False when the employee already held (or did not hold) the role."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A `p` rule: role, category (glob), action, purpose, condition, effect."""

    role: str
    category: str
    action: str
    purpose: str
    condition: str
    effect: str

    @property
    def values(self) -> list[str]:
        return list(astuple(self))

    @property
    def text(self) -> str:
        return ", ".join(["p", *self.values])


# The floor of the policy: nobody reads credentials, ever (deny overrides any allow).
FLOOR = frozenset(Rule(s, _CREDENTIALS, "*", "*", "*", "deny") for s in ("staff", "customer"))


def _invalid(field: str, message: str, code: str = "VALIDATION") -> InputInvalid:
    return InputInvalid([FieldProblem(field, code, message)])


async def _employee_to_change(*, employee_id: UUID, role: str, changed_by: UUID) -> Employee:
    if role not in ROLES:
        raise _invalid("role", f"Unknown role; known: {', '.join(ROLES)}.")
    if employee_id == changed_by:
        raise _invalid("employeeId", "Admins do not change their own roles.", SEPARATION_OF_DUTIES)
    employee = await Employee.get_or_none(id=employee_id)
    if employee is None:
        raise NotFound("No such employee.")
    return employee


async def _roles(employee_id: UUID) -> list[str]:
    roles = await EmployeeRole.filter(employee_id=employee_id).values_list("role", flat=True)
    return sorted(str(r) for r in roles)


async def grant_role(
    *, employee_id: UUID, role: str, granted_by: UUID, now: datetime
) -> RoleChange:
    """Grant a role to an active employee; granting a role already held changes nothing."""
    employee = await _employee_to_change(employee_id=employee_id, role=role, changed_by=granted_by)
    if not employee.active:
        raise _invalid("employeeId", "The employee is inactive.")
    async with in_transaction():
        await separation.lock_policy()
        held = await _roles(employee.id)
        created = role not in held
        if created:
            _refuse_mixed_duties(role, held)
            state = await separation.stored_policy()
            _refuse_breach(state.with_link(employee_subject(employee.id), role), "role")
            await EmployeeRole.create(employee_id=employee.id, role=role, granted_at=now)
            await bump_version()
    return RoleChange(employee, await _roles(employee.id), created)


def _refuse_mixed_duties(role: str, held: list[str]) -> None:
    """A value-blind role and a personal-data role are never held together: the engine
    would deny the pair every value anyway (authz/enforcer.py), so the grant is refused
    rather than left to look like it gave access."""
    blind = role in VALUE_BLIND_ROLES or not VALUE_BLIND_ROLES.isdisjoint(held)
    personal = role in PERSONAL_DATA_ROLES or not PERSONAL_DATA_ROLES.isdisjoint(held)
    if blind and personal:
        message = (
            f"{role} cannot be held with {', '.join(held)}: admins and auditors hold no "
            "role that reads personal data."
        )
        raise _invalid("role", message, SEPARATION_OF_DUTIES)


def _refuse_breach(state: separation.PolicyState, field: str) -> None:
    breach = separation.first_breach(state)
    if breach is not None:
        message = f"Refused: {breach.text}; admins and auditors see no personal-data value."
        raise _invalid(field, message, VALUE_BLIND_ROLE)


async def revoke_role(*, employee_id: UUID, role: str, revoked_by: UUID) -> RoleChange:
    """Revoke a role; revoking a role not held changes nothing."""
    employee = await _employee_to_change(employee_id=employee_id, role=role, changed_by=revoked_by)
    async with in_transaction():
        deleted = await EmployeeRole.filter(employee_id=employee.id, role=role).delete()
        if deleted:
            await bump_version()
    return RoleChange(employee, await _roles(employee.id), deleted > 0)


def _category_problem(category: str, effect: str) -> str:
    matched = [c for c in _CATEGORIES if _PATTERN.fullmatch(category) and glob_match(c, category)]
    if not matched:
        return "Name a category, or a glob (`contact.*`, `*`) matching at least one."
    if effect == "allow" and _CREDENTIALS in matched and len(matched) < len(_CATEGORIES):
        return "No rule may allow account credentials: nobody reads them."
    return ""


def rule_problems(rule: Rule) -> list[FieldProblem]:
    """Every way the rule departs from the registry (authz/registry.py)."""
    checks = {
        "role": "" if rule.role in RULE_SUBJECTS else f"One of: {', '.join(RULE_SUBJECTS)}.",
        "category": _category_problem(rule.category, rule.effect),
        "action": "" if rule.action == "*" or rule.action in _ACTIONS else "An action, or `*`.",
        "purpose": "" if rule.purpose == "*" or rule.purpose in PURPOSES else "A purpose, or `*`.",
        "condition": "" if rule.condition in CONDITIONS else f"One of: {', '.join(CONDITIONS)}.",
        "effect": "" if rule.effect in ("allow", "deny") else "`allow` or `deny`.",
    }
    return [FieldProblem(f, "VALIDATION", m) for f, m in checks.items() if m]


async def add_policy_rule(*, rule: Rule, changed_by: UUID) -> bool:
    """Add a rule (persisted, version moved); False when it is already in the policy.
    The caller reloads its authorizer: the live enforcer is only ever loaded."""
    if problems := rule_problems(rule):
        raise InputInvalid(problems)
    return await _change_rule(rule, add=True, changed_by=changed_by)


async def remove_policy_rule(*, rule: Rule, changed_by: UUID) -> bool:
    """Remove a rule; False when it is not in the policy. The floor cannot be removed."""
    if problems := rule_problems(rule):
        raise InputInvalid(problems)
    if rule in FLOOR:
        raise _invalid("category", "The credentials deny rules are the floor of the policy.")
    return await _change_rule(rule, add=False, changed_by=changed_by)


async def _change_rule(rule: Rule, *, add: bool, changed_by: UUID) -> bool:
    """Apply the change to a copy of the stored policy first, under the policy lock, and
    write it only if the copy keeps admins and auditors value-blind and the rule is not
    one that applies to the changer; a refusal raises and the transaction rolls back.
    A narrowing change (a deny added, an allow removed) allows nothing new under
    deny-overrides, so it is not refused for a breach already stored: it may repair it."""
    values = tuple(rule.values)
    async with in_transaction():
        await separation.lock_policy()
        state = await separation.stored_policy()
        if (values in state.rules) == add:
            return False
        if (rule.effect == "allow") == add:  # a narrowing change cannot add a breach
            _refuse_breach(state.with_rule(values) if add else state.without_rule(values), "role")
        if rule.role in state.held_roles(employee_subject(changed_by)):
            message = (
                f"Rules for {rule.role} apply to you: nobody edits the rules of their own roles."
            )
            raise _invalid("role", message, SEPARATION_OF_DUTIES)
        columns = policy_columns(rule.values)
        if add:
            await PolicyRule.create(ptype="p", **columns)
        else:
            await PolicyRule.filter(ptype="p", **columns).delete()
        await bump_version()
    return True


def policy_rules(*, authorizer: Authorizer) -> list[Rule]:
    """The `p` rules this process enforces, in stored order."""
    return [Rule(*values) for values in authorizer.enforcer.get_policy()]
