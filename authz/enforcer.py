"""The one Casbin enforcer of a process, and the decisions it makes."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import casbin
from casbin.util.builtin_operators import glob_match

from authz.adapter import TortoiseAdapter, current_version, employee_subject
from authz.registry import (
    CONDITIONS,
    PERSONAL_DATA,
    PURPOSES,
    VALUE_ACTIONS,
    VALUE_BLIND_ROLES,
    Action,
    Category,
)

CUSTOMER_SUBJECT = "customer"
MODEL_PATH = str(resources.files("authz").joinpath("model.conf"))

# Casbin logs every request at INFO/WARNING; our audit log is the record, not its logger.
logging.getLogger("casbin").setLevel(logging.ERROR)


class EnforcementDisabled(RuntimeError):
    """Refuse to run with enforcement off or with no policy loaded."""


class Denial(StrEnum):
    """Why a request was denied: stable codes a client and the log can rely on."""

    NO_RULE = "NO_RULE"
    """No allow rule for this subject, category and action (default deny)."""
    DENY_RULE = "DENY_RULE"
    """A deny rule matched (deny overrides allow)."""
    CONDITION_UNMET = "CONDITION_UNMET"
    """An allow rule exists for this purpose, but its condition does not hold."""
    PURPOSE_NOT_ALLOWED = "PURPOSE_NOT_ALLOWED"
    """An allow rule exists for this category and action, but for another purpose."""
    VALUE_BLIND_ROLE = "VALUE_BLIND_ROLE"
    """The subject holds a value-blind role: no rule can show them a value."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str
    """The matched policy row as text; empty when no rule matched (default deny). For
    CONDITION_UNMET and PURPOSE_NOT_ALLOWED, the allow rule that would have applied."""
    reason: str
    code: str = ""
    """A Denial code; empty when allowed."""
    condition: str = ""
    """CONDITION_UNMET: the condition(s) that would allow it, comma-separated."""

    @property
    def logged_reason(self) -> str:
        """The reason as logged: the stable code first (`DENY_RULE: denied by rule`)."""
        return f"{self.code}: {self.reason}" if self.code else self.reason


_MEMO_SIZE = 10_000

_KNOWN = (
    frozenset(c.value for c in Category),
    frozenset(a.value for a in Action),
    frozenset(PURPOSES),
)


def _has_condition(conditions: str, condition: str) -> bool:
    return condition in conditions.split(",")


def memory_enforcer(rows: Iterable[Sequence[str]]) -> casbin.Enforcer:
    """A Casbin enforcer of its own, in memory, over `rows` (`p` or `g` first, then the
    cells): the served model and matcher functions, never the live enforcer. For what-ifs
    on a policy that is not the one in force (a change before it is made, a candidate
    file)."""
    enforcer = casbin.Enforcer(MODEL_PATH)
    enforcer.add_function("hasCondition", _has_condition)
    for ptype, *values in rows:
        enforcer.model.add_policy(ptype[0], ptype, list(values))
    enforcer.build_role_links()
    return enforcer


class Authorizer:
    """Wraps casbin.AsyncEnforcer: `decide` is synchronous and in memory."""

    def __init__(self, enforcer: casbin.AsyncEnforcer) -> None:
        self._enforcer = enforcer
        self.version = 0
        # Casbin's answer is a pure function of the loaded policy and the request; it costs
        # about a millisecond (every rule's matcher is evaluated), so answers are memoised
        # until the policy is loaded again. Logging stays per request (api/context.py).
        self._memo: dict[tuple[str, str, str, str, str], Decision] = {}

    @classmethod
    async def load(cls) -> Authorizer:
        enforcer = casbin.AsyncEnforcer(MODEL_PATH, TortoiseAdapter())
        enforcer.add_function("hasCondition", _has_condition)
        authorizer = cls(enforcer)
        await authorizer.reload()
        return authorizer

    async def reload(self) -> None:
        version = await current_version()
        await self._enforcer.load_policy()
        self._memo = {}
        self.version = version

    def forget(self) -> None:
        """Drop memoised answers: call after changing the enforcer's policy in memory."""
        self._memo = {}

    def ensure_enforcing(self) -> None:
        if not self._enforcer.enabled:
            raise EnforcementDisabled("Casbin enforcement is disabled; refusing to serve")
        if not self._enforcer.get_policy():
            raise EnforcementDisabled("no access policy loaded; run `custos migrate`")

    def decide(
        self,
        *,
        subject: str,
        category: str,
        action: str,
        purpose: str,
        conditions: Iterable[str] = (),
    ) -> Decision:
        key = (subject, category, action, purpose, ",".join(sorted(conditions)))
        decision = self._memo.get(key)
        if decision is None:
            decision = self._enforce(*key)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = decision
        return decision

    def allows(
        self, subject: str, category: str, action: str, purpose: str, conditions: str
    ) -> bool:
        """The engine's answer (value-blind roles included), without an explanation or a
        memo: for comparing two policies request by request (authz/separation.py)."""
        blind = category in PERSONAL_DATA and action in VALUE_ACTIONS
        if blind and VALUE_BLIND_ROLES & self.held_roles(subject):
            return False
        return bool(self._enforcer.enforce(subject, category, action, purpose, conditions))

    def _enforce(
        self, subject: str, category: str, action: str, purpose: str, conditions: str
    ) -> Decision:
        categories, actions, purposes = _KNOWN
        if category not in categories or action not in actions or purpose not in purposes:
            return Decision(False, "", "unknown category, action or purpose", Denial.NO_RULE)
        if not self._enforcer.enabled:
            return Decision(False, "", "enforcement disabled", Denial.NO_RULE)
        if category in PERSONAL_DATA and action in VALUE_ACTIONS:
            blind = sorted(VALUE_BLIND_ROLES & self.held_roles(subject))
            if blind:
                reason = f"{' and '.join(blind)} may see no personal-data value"
                return Decision(False, "", reason, Denial.VALUE_BLIND_ROLE)
        allowed, rule = self._enforcer.enforce_ex(subject, category, action, purpose, conditions)
        if allowed:
            return Decision(True, ", ".join(rule), "allowed")
        if rule:
            return Decision(False, ", ".join(rule), "denied by rule", Denial.DENY_RULE)
        return self._explain(subject, category, action, purpose, conditions)

    def _explain(
        self, subject: str, category: str, action: str, purpose: str, conditions: str
    ) -> Decision:
        """Why no rule allowed it: Casbin is asked again with relaxed inputs (one more
        condition; another purpose). Only on a denial that is not memoised yet."""
        held = frozenset(filter(None, conditions.split(",")))
        unmet = [
            c
            for c in CONDITIONS
            if c not in held and self._allows(subject, category, action, purpose, held | {c})
        ]
        if unmet:
            rule = self._allowing(subject, category, action, purpose, held | {unmet[0]})
            condition = ",".join(unmet)
            return Decision(
                False, rule, f"condition not met: {condition}", Denial.CONDITION_UNMET, condition
            )
        for other in self._other_purposes(subject, category, action, purpose):
            for extra in ((), *((c,) for c in CONDITIONS)):
                if self._allows(subject, category, action, other, held | set(extra)):
                    rule = self._allowing(subject, category, action, other, held | set(extra))
                    reason = f"allowed for purpose {other}, not {purpose}"
                    return Decision(False, rule, reason, Denial.PURPOSE_NOT_ALLOWED)
        return Decision(False, "", "no rule grants this (default deny)", Denial.NO_RULE)

    def _allows(
        self, subject: str, category: str, action: str, purpose: str, conditions: Iterable[str]
    ) -> bool:
        request = (subject, category, action, purpose, ",".join(sorted(conditions)))
        return bool(self._enforcer.enforce(*request))

    def _allowing(
        self, subject: str, category: str, action: str, purpose: str, conditions: Iterable[str]
    ) -> str:
        request = (subject, category, action, purpose, ",".join(sorted(conditions)))
        return ", ".join(self._enforcer.enforce_ex(*request)[1])

    def _other_purposes(self, subject: str, category: str, action: str, purpose: str) -> list[str]:
        """Purposes of allow rules for this subject, category and action other than
        `purpose`: the candidates Casbin is asked about (not all eight, each time)."""
        roles = self.held_roles(subject)
        found = {
            p_purpose
            for p_sub, p_cat, p_act, p_purpose, _, eft in self._rules()
            if eft == "allow"
            and p_sub in roles
            and glob_match(category, p_cat)
            and p_act in ("*", action)
            and p_purpose not in ("*", purpose)
        }
        return sorted(found & frozenset(PURPOSES))

    def _rules(self) -> list[list[str]]:
        rules: list[list[str]] = self._enforcer.model.get_policy("p", "p")
        return [r for r in rules if len(r) == 6]

    def _role_manager(self) -> Any:
        return self._enforcer.model.model["g"]["g"].rm

    def held_roles(self, subject: str) -> frozenset[str]:
        """The subject and every role it holds, directly or through another role (so an
        employee holds their roles and `staff`). Names the role manager does not know
        are not looked up: Casbin would add them to it."""
        manager, seen, todo = self._role_manager(), {subject}, [subject]
        known = manager.all_roles
        while todo:
            name = todo.pop()
            for role in manager.get_roles(name) if name in known else ():
                if role not in seen:
                    seen.add(str(role))
                    todo.append(str(role))
        return frozenset(seen)

    def roles_of(self, employee_id: object) -> list[str]:
        roles = self._role_manager().get_roles(employee_subject(str(employee_id)))
        return sorted(str(r) for r in roles)

    @property
    def enforcer(self) -> casbin.AsyncEnforcer:
        return self._enforcer
