"""Roles and policy rules at run time (admin). Grants live in `employee_role`; rules go
through the Casbin enforcer (its adapter persists them). Every change moves the policy
version in the same transaction, which every other process watches (authz/watcher.py)."""

from __future__ import annotations

import re
from collections.abc import Awaitable
from dataclasses import astuple, dataclass
from datetime import datetime
from uuid import UUID

from casbin.util.builtin_operators import glob_match
from tortoise.transactions import in_transaction

from api.errors import FieldProblem, InputInvalid, NotFound
from authz.adapter import bump_version
from authz.enforcer import Authorizer
from authz.registry import CONSENT_PURPOSES, PURPOSES, Action, Category, Role
from models import Employee, EmployeeRole

ROLES = tuple(r.value for r in Role)
RULE_SUBJECTS = (*ROLES, "staff", "customer")
CONDITIONS = (
    "*",
    "open_case",
    "self",
    "fulfilling_request",
    *(f"consent:{p}" for p in sorted(CONSENT_PURPOSES)),
)
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


def _invalid(field: str, message: str) -> InputInvalid:
    return InputInvalid([FieldProblem(field, "VALIDATION", message)])


async def _employee_to_change(*, employee_id: UUID, role: str, changed_by: UUID) -> Employee:
    if role not in ROLES:
        raise _invalid("role", f"Unknown role; known: {', '.join(ROLES)}.")
    if employee_id == changed_by:
        raise _invalid("employeeId", "Admins do not change their own roles.")
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
    async with in_transaction() as conn:
        _, created = await EmployeeRole.get_or_create(
            employee_id=employee.id, role=role, defaults={"granted_at": now}, using_db=conn
        )
        if created:
            await bump_version()
    return RoleChange(employee, await _roles(employee.id), created)


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


async def add_policy_rule(*, authorizer: Authorizer, rule: Rule) -> bool:
    """Add a rule (persisted, version moved); False when it is already in the policy."""
    if problems := rule_problems(rule):
        raise InputInvalid(problems)
    await authorizer.reload()  # decide "already there" on the database's policy, not a stale one
    return await _apply(authorizer, authorizer.enforcer.add_policy(*rule.values))


async def remove_policy_rule(*, authorizer: Authorizer, rule: Rule) -> bool:
    """Remove a rule; False when it is not in the policy. The floor cannot be removed."""
    if problems := rule_problems(rule):
        raise InputInvalid(problems)
    if rule in FLOOR:
        raise _invalid("category", "The credentials deny rules are the floor of the policy.")
    await authorizer.reload()
    return await _apply(authorizer, authorizer.enforcer.remove_policy(*rule.values))


async def _apply(authorizer: Authorizer, change: Awaitable[object]) -> bool:
    try:
        changed = bool(await change)
        authorizer.forget()  # memoised answers were made under the old policy
        return changed
    except BaseException:
        authorizer.version = -1  # memory may have moved without the database: reload soon
        raise


def policy_rules(*, authorizer: Authorizer) -> list[Rule]:
    """The `p` rules this process enforces, in stored order."""
    return [Rule(*values) for values in authorizer.enforcer.get_policy()]
