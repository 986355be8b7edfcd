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
        self.version = version

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
        categories, actions, purposes = _KNOWN
        if category not in categories or action not in actions or purpose not in purposes:
            return Decision(False, "", "unknown category, action or purpose")
        allowed, rule = self._enforcer.enforce_ex(
            subject, category, action, purpose, ",".join(sorted(conditions))
        )
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
