"""The one Casbin enforcer of a process, and the decisions it makes."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

import casbin

from authz.adapter import TortoiseAdapter, current_version, employee_subject
from authz.registry import PURPOSES, Action, Category

CUSTOMER_SUBJECT = "customer"

# Casbin logs every request at INFO/WARNING; our audit log is the record, not its logger.
logging.getLogger("casbin").setLevel(logging.ERROR)


class EnforcementDisabled(RuntimeError):
    """Refuse to run with enforcement off or with no policy loaded."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str
    """The matched policy row as text; empty when no rule matched (default deny)."""
    reason: str


_MEMO_SIZE = 10_000

_KNOWN = (
    frozenset(c.value for c in Category),
    frozenset(a.value for a in Action),
    frozenset(PURPOSES),
)


def _has_condition(conditions: str, condition: str) -> bool:
    return condition in conditions.split(",")


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
        model_path = str(resources.files("authz").joinpath("model.conf"))
        enforcer = casbin.AsyncEnforcer(model_path, TortoiseAdapter())
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

    def _enforce(
        self, subject: str, category: str, action: str, purpose: str, conditions: str
    ) -> Decision:
        categories, actions, purposes = _KNOWN
        if category not in categories or action not in actions or purpose not in purposes:
            return Decision(False, "", "unknown category, action or purpose")
        if not self._enforcer.enabled:
            return Decision(False, "", "enforcement disabled")
        allowed, rule = self._enforcer.enforce_ex(subject, category, action, purpose, conditions)
        if not rule:
            return Decision(False, "", "no rule grants this (default deny)")
        return Decision(bool(allowed), ", ".join(rule), "allowed" if allowed else "denied by rule")

    def roles_of(self, employee_id: object) -> list[str]:
        roles = self._enforcer.model.model["g"]["g"].rm.get_roles(
            employee_subject(str(employee_id))
        )
        return sorted(str(r) for r in roles)

    @property
    def enforcer(self) -> casbin.AsyncEnforcer:
        return self._enforcer
