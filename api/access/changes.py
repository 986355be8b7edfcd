"""One change of the access policy: a rule added or removed, a role granted or revoked.

A change either narrows access (applied at once) or may widen it (a proposal, applied
when a second person approves it: api/access/proposals.py). Rule changes are classed by
their form, which is conservative: an allow added or a deny removed widens, a deny added
or an allow removed narrows (under deny-overrides it cannot allow anything new). A role
grant or revocation is classed by its effect: it widens when the employee would be
allowed anything they are not allowed now, which a revocation can do too (a role whose
deny rules held them back). Whoever asks, every change is tried on a copy of the stored
policy first (authz/separation.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from api.access.rules import FLOOR, ROLES, Rule, rule_problems
from api.errors import FieldProblem, InputInvalid, NotFound
from authz import separation
from authz.adapter import bump_version, current_version, employee_subject, policy_columns
from models import Employee, EmployeeRole, PolicyChange, PolicyRule

SEPARATION_OF_DUTIES = "SEPARATION_OF_DUTIES"
VALUE_BLIND_ROLE = "VALUE_BLIND_ROLE"
REFUSALS = frozenset({SEPARATION_OF_DUTIES, VALUE_BLIND_ROLE})
"""The problem codes of a change refused to keep duties separate: logged as denials."""
RULE_KINDS = ("add_rule", "remove_rule")
ROLE_KINDS = ("grant_role", "revoke_role")


def invalid(field: str, message: str, code: str = "VALIDATION") -> InputInvalid:
    return InputInvalid([FieldProblem(field, code, message)])


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    rule: Rule | None = None
    employee_id: UUID | None = None
    role: str = ""

    @property
    def text(self) -> str:
        """One line, for proposals, the history and the log (ids and names only)."""
        if self.rule is not None:
            return f"{self.kind.split('_')[0]} {self.rule.text}"
        verb, link = ("grant", "to") if self.kind == "grant_role" else ("revoke", "from")
        return f"{verb} {self.role} {link} {employee_subject(str(self.employee_id))}"

    def to_json(self) -> dict[str, Any]:
        if self.rule is not None:
            return {"rule": self.rule.values}
        return {"employee_id": str(self.employee_id), "role": self.role}

    @classmethod
    def from_json(cls, kind: str, data: dict[str, Any]) -> Change:
        if kind in RULE_KINDS:
            return cls(kind, rule=Rule(*data["rule"]))
        return cls(kind, employee_id=UUID(data["employee_id"]), role=data["role"])

    @property
    def _link(self) -> tuple[str, str]:
        return employee_subject(str(self.employee_id)), self.role

    def apply(self, state: separation.PolicyState) -> separation.PolicyState:
        if self.rule is not None:
            values = tuple(self.rule.values)
            add = self.kind == "add_rule"
            return state.with_rule(values) if add else state.without_rule(values)
        subject, role = self._link
        return (
            state.with_link(subject, role)
            if self.kind == "grant_role"
            else state.without_link(subject, role)
        )

    def narrows_by_form(self) -> bool:
        """A deny added or an allow removed: nothing new can be allowed."""
        return self.rule is not None and (self.kind == "add_rule") == (self.rule.effect == "deny")

    def widens(self, state: separation.PolicyState) -> bool:
        if self.rule is not None:
            return not self.narrows_by_form()
        subject = employee_subject(str(self.employee_id))
        return separation.first_gain(state, self.apply(state), subject) is not None


async def check_input(change: Change) -> None:
    """What can be checked without the policy: the registry, the floor, the employee."""
    if change.rule is not None:
        if problems := rule_problems(change.rule):
            raise InputInvalid(problems)
        if change.kind == "remove_rule" and change.rule in FLOOR:
            raise invalid("category", "The credentials deny rules are the floor of the policy.")
        return
    if change.role not in ROLES:
        raise invalid("role", f"Unknown role; known: {', '.join(ROLES)}.")
    employee = await Employee.get_or_none(id=change.employee_id)
    if employee is None:
        raise NotFound("No such employee.")
    if change.kind == "grant_role" and not employee.active:
        raise invalid("employeeId", "The employee is inactive.")


async def changes_anything(change: Change, state: separation.PolicyState) -> bool:
    """Whether storing the change changes anything. Grants are asked of the table: the
    policy holds active employees' grants only, and a deactivated employee's role can
    still be revoked."""
    if change.rule is not None:
        return change.apply(state) != state
    held = await EmployeeRole.filter(employee_id=change.employee_id, role=change.role).exists()
    return held != (change.kind == "grant_role")


def check_separation(change: Change, state: separation.PolicyState, *, by: UUID) -> None:
    """Refuse what would break separation of duties, for whoever asks: a change of one's
    own roles or of the rules of a role one holds, a value-blind role held with a
    personal-data role, or a policy in which a value-blind role could see a value."""
    me = employee_subject(by)
    if change.employee_id == by:
        raise invalid("employeeId", "Nobody changes their own roles.", SEPARATION_OF_DUTIES)
    if change.rule is not None and change.rule.role in state.held_roles(me):
        message = (
            f"Rules for {change.rule.role} apply to you: nobody edits the rules of their roles."
        )
        raise invalid("role", message, SEPARATION_OF_DUTIES)
    if change.kind == "grant_role":
        held = sorted(r for m, r in state.links if m == employee_subject(str(change.employee_id)))
        _refuse_mixed_duties(change.role, held)
    if not change.narrows_by_form():
        breach = separation.first_breach(change.apply(state))
        if breach is not None:
            message = f"Refused: {breach.text}; admins and auditors see no personal-data value."
            raise invalid("role", message, VALUE_BLIND_ROLE)


def _refuse_mixed_duties(role: str, held: list[str]) -> None:
    """Refused rather than left to look like it gave access (separation.mixes_duties)."""
    if separation.mixes_duties([role, *held]):
        message = (
            f"{role} cannot be held with {', '.join(held)}: admins and auditors hold no "
            "role that reads personal data."
        )
        raise invalid("role", message, SEPARATION_OF_DUTIES)


async def write(
    change: Change,
    *,
    now: datetime,
    proposed_by: UUID,
    approved_by: UUID | None = None,
    proposal_id: UUID | None = None,
) -> int:
    """Store the change, move the policy version and record who proposed and approved it
    in the history; returns the new version. In the caller's transaction, after
    separation.lock_policy."""
    if change.rule is not None:
        columns = policy_columns(change.rule.values)
        if change.kind == "add_rule":
            await PolicyRule.create(ptype="p", **columns)
        else:
            await PolicyRule.filter(ptype="p", **columns).delete()
    elif change.kind == "grant_role":
        await EmployeeRole.create(employee_id=change.employee_id, role=change.role, granted_at=now)
    else:
        await EmployeeRole.filter(employee_id=change.employee_id, role=change.role).delete()
    await bump_version()
    version = await current_version()
    await PolicyChange.create(
        version=version,
        at=now,
        kind=change.kind,
        text=change.text,
        proposed_by=proposed_by,
        approved_by=approved_by,
        proposal_id=proposal_id,
    )
    return version
