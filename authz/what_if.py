"""What-if: the access decisions of the last days replayed against a proposed policy.

Each logged access decision (an `access` row of the decision log) is decided again twice,
under the policy in force and under the proposed one, by the real decision code
(authz.enforcer.Authorizer) over enforcers of their own built from each policy (never
the live one). A decision flips when the two answers differ. Comparing the proposal with
the policy in force, not with what was logged, shows what the proposal alone changes,
whatever else changed since.

A row is one decision about each of its subjects in each of its categories; it is
replayed for the roles the actor held then (as logged), adjusted by the proposal's own
role grants or revocations for that employee, under the conditions that held then (as
logged; a row written before conditions were logged replays under the condition of the
rule that allowed it, or none). Only counts come out, never a value: decisions per
direction, grouped by roles, category, action and purpose, and distinct customers."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from casbin.util.builtin_operators import glob_match

from authz.adapter import EMPLOYEE_PREFIX
from authz.audit import subjects_of
from authz.enforcer import CUSTOMER_SUBJECT, Authorizer
from authz.separation import PolicyState, copy_enforcer
from models import AuditEvent

_FIELDS = (
    "id",
    "actor_kind",
    "actor_id",
    "roles",
    "category",
    "action",
    "purpose",
    "decision",
    "rule",
    "subject_id",
    "conditions",
    "policy_version",
)
_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class ImpactGroup:
    roles: tuple[str, ...]
    category: str
    action: str
    purpose: str
    to_allow: int
    to_deny: int
    customers: int


@dataclass(frozen=True, slots=True)
class Impact:
    since: datetime
    replayed: int
    """Decisions replayed: each subject of each category of each row."""
    to_allow: int
    to_deny: int
    customers: int
    """Distinct customers whose decisions flip, either way."""
    groups: tuple[ImpactGroup, ...]


@dataclass
class _Tally:
    to_allow: int = 0
    to_deny: int = 0
    customers: set[str] = field(default_factory=set)


_Request = tuple[str, str, str, tuple[str, ...]]
"""category, action, purpose, conditions"""


def _matches(rule: tuple[str, ...], held: frozenset[str], request: _Request) -> bool:
    """The matcher of authz/model.conf, in Python: only to tell which requests a rule
    could decide; the decisions themselves are Casbin's."""
    subject, category, action, purpose, condition = rule[:5]
    return (
        subject in held
        and glob_match(request[0], category)
        and action in ("*", request[1])
        and purpose in ("*", request[2])
        and (condition == "*" or condition in request[3])
    )


class _Side:
    """One policy's decisions, over an enforcer of its own, for replayed subjects. A
    request can be decided differently from the policy in force only if a rule that is in
    one policy and not the other could match it, or the subject's roles differ: any
    other request has the same rules to match and the same answer, and is not asked."""

    def __init__(self, state: PolicyState, before: PolicyState) -> None:
        self.authorizer = Authorizer(copy_enforcer(state))
        self.state = state
        changed = before.links ^ state.links
        self.gained = {(m, r) for m, r in changed if (m, r) in state.links}
        self.lost = changed - self.gained
        self.roles_relinked = any(not m.startswith(EMPLOYEE_PREFIX) for m, _ in changed)
        self.diff = [r for r in before.rules ^ state.rules if len(r) == 6]
        self.names: set[str] = set()
        self.closures: dict[frozenset[str], frozenset[str]] = {}
        self.answers: dict[tuple[str, _Request], bool] = {}

    def roles(self, actor_kind: str, actor_id: str, logged: frozenset[str]) -> frozenset[str]:
        """The roles the actor holds here: as logged, with this policy's own grants and
        revocations for them (a customer is the customer subject)."""
        if actor_kind == "customer":
            return frozenset({CUSTOMER_SUBJECT})
        me = f"{EMPLOYEE_PREFIX}{actor_id}"
        gained = {r for m, r in self.gained if m == me}
        return (logged | gained) - {r for m, r in self.lost if m == me}

    def _subject(self, roles: frozenset[str]) -> str:
        """A subject of its own holding exactly `roles`."""
        if roles == {CUSTOMER_SUBJECT}:
            return CUSTOMER_SUBJECT
        name = "replay:" + ",".join(sorted(roles))
        if name not in self.names:
            self.names.add(name)
            for role in roles:
                self.authorizer.enforcer.add_grouping_policy(name, role)
            self.authorizer.forget()
        return name

    def held(self, roles: frozenset[str]) -> frozenset[str]:
        """`roles` and every role they hold through others (`staff`)."""
        found = self.closures.get(roles)
        if found is None:
            found = frozenset().union(roles, *(self.state.held_roles(r) for r in roles))
            self.closures[roles] = found
        return found

    def may_differ(self, old: frozenset[str], new: frozenset[str], request: _Request) -> bool:
        if old != new or self.roles_relinked:
            return True
        held = self.held(new)
        return any(_matches(rule, held, request) for rule in self.diff)

    def allows(self, roles: frozenset[str], request: _Request) -> bool:
        subject = self._subject(roles)
        answer = self.answers.get((subject, request))
        if answer is None:
            category, action, purpose, conditions = request
            conditions_text = ",".join(conditions)
            answer = self.authorizer.allows(subject, category, action, purpose, conditions_text)
            self.answers[(subject, request)] = answer
        return answer


class _Count:
    """The flips of one proposed policy."""

    def __init__(self) -> None:
        self.tallies: dict[tuple[str, str, str, str], _Tally] = defaultdict(_Tally)

    def add(self, row: dict[str, object], category: str, whose: list[str], now: bool) -> None:
        key = (str(row["roles"]), category, str(row["action"]), str(row["purpose"]))
        tally = self.tallies[key]
        if now:
            tally.to_allow += len(whose) or 1
        else:
            tally.to_deny += len(whose) or 1
        tally.customers.update(whose)

    def impact(self, since: datetime, replayed: int) -> Impact:
        groups = tuple(
            ImpactGroup(
                tuple(filter(None, roles.split(","))),
                category,
                action,
                purpose,
                t.to_allow,
                t.to_deny,
                len(t.customers),
            )
            for (roles, category, action, purpose), t in sorted(self.tallies.items())
        )
        customers: set[str] = set().union(*(t.customers for t in self.tallies.values()))
        return Impact(
            since=since,
            replayed=replayed,
            to_allow=sum(g.to_allow for g in groups),
            to_deny=sum(g.to_deny for g in groups),
            customers=len(customers),
            groups=groups,
        )


def _conditions(row: dict[str, object]) -> str:
    """The conditions a row was decided under; for a row from before they were logged,
    the condition of the rule that allowed it (if any)."""
    logged = str(row["conditions"] or "")
    if logged or row["policy_version"] or row["decision"] != "allow":
        return logged
    cells = str(row["rule"]).split(", ")  # subject, category, action, purpose, condition, effect
    return cells[4] if len(cells) == 6 and cells[4] != "*" else ""


async def replay(*, before: PolicyState, after: PolicyState, since: datetime) -> Impact:
    """Replay every access decision logged since `since` under `before` and `after`."""
    [found] = await replay_many(before=before, afters=[after], since=since)
    return found


async def replay_many(
    *, before: PolicyState, afters: list[PolicyState], since: datetime
) -> list[Impact]:
    """The impact of each of `afters`, in one scan of the log."""
    old = _Side(before, before)
    sides = [(_Side(after, before), _Count()) for after in afters]
    replayed, last_id = 0, 0
    while True:
        query = AuditEvent.filter(event="access", at__gte=since, id__gt=last_id)
        rows = await query.order_by("id").limit(_BATCH).values(*_FIELDS)
        if not rows:
            break
        last_id = int(str(rows[-1]["id"]))
        for row in rows:
            kind, actor = str(row["actor_kind"]), str(row["actor_id"])
            if kind not in ("customer", "employee"):
                continue
            logged = frozenset(filter(None, str(row["roles"]).split(",")))
            was_held = old.roles(kind, actor, logged)
            whose = subjects_of(str(row["subject_id"]))
            conditions = tuple(sorted(filter(None, _conditions(row).split(","))))
            action, purpose = str(row["action"]), str(row["purpose"])
            for category in str(row["category"]).split(","):
                replayed += len(whose) or 1
                request = (category, action, purpose, conditions)
                for side, count in sides:
                    held = side.roles(kind, actor, logged)
                    if not side.may_differ(was_held, held, request):
                        continue
                    now = side.allows(held, request)
                    if now != old.allows(was_held, request):
                        count.add(row, category, whose, now)
    return [count.impact(since, replayed) for _, count in sides]
