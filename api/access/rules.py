"""The `p` rules of the access policy as the API edits them, checked against the one
registry (authz/registry.py) before anything else looks at them."""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass

from casbin.util.builtin_operators import glob_match

from api.errors import FieldProblem
from authz.registry import CONDITIONS as OBJECT_CONDITIONS
from authz.registry import PURPOSES, Action, Category, Role

ROLES = tuple(r.value for r in Role)
RULE_SUBJECTS = (*ROLES, "staff", "customer")
CONDITIONS = ("*", *OBJECT_CONDITIONS)
_CATEGORIES = tuple(c.value for c in Category)
_ACTIONS = tuple(a.value for a in Action)
_PATTERN = re.compile(r"[a-z_.*]{1,100}")
_CREDENTIALS = Category.ACCOUNT_CREDENTIALS.value


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


FLOOR = frozenset(Rule(s, _CREDENTIALS, "*", "*", "*", "deny") for s in ("staff", "customer"))
"""The floor of the policy: nobody reads credentials, ever (deny overrides any allow)."""


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
