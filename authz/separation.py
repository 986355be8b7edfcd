"""Separation of duties kept in the stored policy (issue 14, point 1b).

The enforcer denies value-blind roles every personal-data value whatever the rules say
(authz/enforcer.py). This module keeps the stored policy honest too: a change to it (a
rule added or removed, a role granted) is applied to a copy of the policy in memory, a
second Casbin enforcer that is never the live one, and refused if afterwards a
value-blind role, or anyone holding one, could be allowed a value action on a
personal-data category for any purpose under any conditions.

Why the check is exhaustive: the request space is finite (every personal-data category
x the value actions x every purpose x a set of conditions). Condition sets need not be
enumerated: a rule's condition is one name or `*`, and `hasCondition` only asks whether
it is in the set, so every rule (allow or deny) that matches under a set S also matches
under any superset. If some S allows a request, one allow rule A matches under S and no
deny does; under the smallest set A needs ({} or {A's condition}), A still matches and
no deny can (each would match under S too). So the empty set and each single condition
cover every set: 10 categories x 5 actions x 8 purposes x 8 sets = 3,200 requests per
value-blind subject (FULL_SPACE; about a millisecond each). Of these, Casbin is asked only
those some allow rule for the subject matches (`witnesses`): any other is denied by the
policy effect, which needs an allow. The seeded policy has none for admin or auditor, so
the check costs nothing there; tests/test_separation_of_duties.py checks the witnesses
against the whole space."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from casbin.util.builtin_operators import glob_match
from tortoise import connections

from authz.adapter import TortoiseAdapter
from authz.enforcer import Authorizer, memory_enforcer
from authz.registry import (
    CONDITIONS,
    PERSONAL_DATA,
    PERSONAL_DATA_ROLES,
    PURPOSES,
    VALUE_ACTIONS,
    VALUE_BLIND_ROLES,
    Action,
)

Rule = tuple[str, ...]
"""A `p` rule's values: subject, category, action, purpose, condition, effect."""
CONDITION_SETS = ("", *CONDITIONS)
"""The empty set and each single condition (see the module docstring)."""
ALL_ACTIONS = frozenset(a.value for a in Action)
FULL_SPACE = len(PERSONAL_DATA) * len(VALUE_ACTIONS) * len(PURPOSES) * len(CONDITION_SETS)
"""Requests per value-blind subject that cover every request (3,200)."""


@dataclass(frozen=True, slots=True)
class Breach:
    """A request a subject would be allowed (a value-blind one: a breach; anyone: a gain)."""

    subject: str
    category: str
    action: str
    purpose: str
    conditions: str

    @property
    def text(self) -> str:
        conditions = self.conditions or "no condition"
        return (
            f"{self.subject} would be allowed to {self.action} {self.category} "
            f"for {self.purpose} ({conditions})"
        )


@dataclass(frozen=True, slots=True)
class PolicyState:
    """The whole policy as stored: `p` rules and `g` links (employee grants included)."""

    rules: frozenset[Rule]
    links: frozenset[tuple[str, str]]

    def with_rule(self, rule: Rule) -> PolicyState:
        return replace(self, rules=self.rules | {rule})

    def without_rule(self, rule: Rule) -> PolicyState:
        return replace(self, rules=self.rules - {rule})

    def with_link(self, subject: str, role: str) -> PolicyState:
        return replace(self, links=self.links | {(subject, role)})

    def without_link(self, subject: str, role: str) -> PolicyState:
        return replace(self, links=self.links - {(subject, role)})

    def held_roles(self, subject: str) -> frozenset[str]:
        """The subject and every role it holds, directly or through another role."""
        held, todo = {subject}, [subject]
        while todo:
            name = todo.pop()
            for member, role in self.links:
                if member == name and role not in held:
                    held.add(role)
                    todo.append(role)
        return frozenset(held)


class _Collector:
    """Receives the rules TortoiseAdapter loads, as Casbin's model would."""

    def __init__(self) -> None:
        self.rules: set[Rule] = set()
        self.links: set[tuple[str, str]] = set()

    def add_policy(self, sec: str, ptype: str, values: list[str]) -> None:
        if sec == "p":
            self.rules.add(tuple(values))
        elif len(values) == 2:
            self.links.add((values[0], values[1]))


async def lock_policy() -> None:
    """Serialise policy changes: a no-op write on the version row, first in the caller's
    transaction, so two changes cannot each pass the check on the same old policy (a row
    lock on PostgreSQL, the write lock on SQLite) until the first commits."""
    conn = connections.get("default")
    await conn.execute_query("UPDATE policy_version SET version = version WHERE id = 1")


async def stored_policy() -> PolicyState:
    """The policy in the database (in the caller's transaction, after lock_policy)."""
    collector = _Collector()
    await TortoiseAdapter().load_policy(collector)
    return PolicyState(frozenset(collector.rules), frozenset(collector.links))


def mixes_duties(roles: Iterable[str]) -> bool:
    """Whether `roles` hold a value-blind role with a role that works with personal data:
    never granted, never created (the engine would deny the pair every value anyway)."""
    held = frozenset(roles)
    return not held.isdisjoint(VALUE_BLIND_ROLES) and not held.isdisjoint(PERSONAL_DATA_ROLES)


def copy_enforcer(state: PolicyState) -> Any:
    """A Casbin enforcer of its own over `state`, in memory: never the live one."""
    rows = [("p", *rule) for rule in sorted(state.rules)]
    return memory_enforcer(rows + [("g", *link) for link in sorted(state.links)])


def witnesses(
    state: PolicyState, held: frozenset[str], actions: frozenset[str] = VALUE_ACTIONS
) -> set[tuple[str, str, str, str]]:
    """The requests (category, action, purpose, conditions) that could be allowed to a
    subject holding `held`: a request no allow rule matches is denied by the policy
    effect, so for each allow rule for them, every personal-data category, action of
    `actions` and purpose it matches, under the smallest condition set it needs."""
    found = set()
    for subject, category, action, purpose, condition, effect in _rules(state):
        if effect != "allow" or subject not in held:
            continue
        for c in PERSONAL_DATA:
            if not glob_match(c, category):
                continue
            for a in actions:
                if action not in ("*", a):
                    continue
                for p in PURPOSES:
                    if purpose in ("*", p):
                        found.add((str(c), str(a), str(p), "" if condition == "*" else condition))
    return found


def _rules(state: PolicyState) -> list[Rule]:
    return sorted(r for r in state.rules if len(r) == 6)


def _blind_subjects(state: PolicyState) -> list[str]:
    """Every value-blind role, and every name holding one (employees, other roles)."""
    names = {*VALUE_BLIND_ROLES, *(m for m, _ in state.links), *(r[0] for r in state.rules)}
    return sorted(str(n) for n in names if VALUE_BLIND_ROLES & state.held_roles(n))


def first_breach(state: PolicyState) -> Breach | None:
    """The first request a value-blind subject would be allowed under `state`, asked of a
    Casbin enforcer of its own built from `state` (never the live one); None when none."""
    enforcer = None
    for subject in _blind_subjects(state):
        for request in sorted(witnesses(state, state.held_roles(subject))):
            enforcer = enforcer or copy_enforcer(state)
            if enforcer.enforce(subject, *request):
                return Breach(subject, *request)
    return None


def _condition_sets(before: PolicyState, after: PolicyState, held: frozenset[str]) -> list[str]:
    """Every set of the conditions named by a rule for `held`, in either state. The smallest
    set an allow rule needs is not enough here: a deny with a condition may match only a
    larger set, and the change may have removed it."""
    named = sorted(
        {r[4] for s in (before, after) for r in _rules(s) if r[0] in held and r[4] != "*"}
    )
    sets = [""]
    for condition in named:
        sets += [",".join(sorted(filter(None, (s, condition)))) for s in sets]
    return sets


def first_gain(before: PolicyState, after: PolicyState, subject: str) -> Breach | None:
    """The first request of any action on any category that `subject` is allowed under
    `after` and not under `before` (None: the change gives them nothing), as the engine
    answers it (a value-blind role lost is a gain too). Asked of two enforcers of their
    own; only requests an allow rule for them matches are candidates."""
    held = after.held_roles(subject)
    candidates = {(c, a, p) for c, a, p, _ in witnesses(after, held, ALL_ACTIONS)}
    if not candidates:
        return None
    old, new = Authorizer(copy_enforcer(before)), Authorizer(copy_enforcer(after))
    for conditions in _condition_sets(before, after, held | before.held_roles(subject)):
        for category, action, purpose in sorted(candidates):
            request = (subject, category, action, purpose, conditions)
            if new.allows(*request) and not old.allows(*request):
                return Breach(subject, category, action, purpose, conditions)
    return None
