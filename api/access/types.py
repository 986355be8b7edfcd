"""GraphQL types of the access policy: rules, role changes, proposals and their impact."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta

import strawberry

from api.access import impact as impact_service
from api.access.proposals import PENDING, change_of
from api.access.rules import Rule
from api.context import Info
from api.errors import InvalidArgument
from api.staff.types import Employee
from authz.what_if import Impact
from models import PolicyChange as PolicyChangeModel
from models import PolicyProposal as ProposalModel

MAX_WHAT_IF_DAYS = 366


@strawberry.type(description="A `p` rule of the access policy (`*` means any).")
class PolicyRule:
    role: str
    category: str = strawberry.field(description="A category or a glob such as `contact.*`.")
    action: str
    purpose: str
    condition: str = strawberry.field(
        description="`*`, `open_case`, `self`, `fulfilling_request` or `consent:<purpose>`."
    )
    effect: str = strawberry.field(description="`allow` or `deny`; deny overrides allow.")

    @classmethod
    def from_rule(cls, rule: Rule) -> PolicyRule:
        return cls(**asdict(rule))


@strawberry.input(description="A `p` rule of the access policy, validated against the registry.")
class PolicyRuleInput:
    role: str
    category: str
    action: str
    purpose: str
    condition: str
    effect: str

    def to_rule(self) -> Rule:
        return Rule(
            self.role, self.category, self.action, self.purpose, self.condition, self.effect
        )


@strawberry.type(description="A rule added or removed; `changed` is false when it was already so.")
class PolicyRuleChanged:
    rule: PolicyRule
    changed: bool


@strawberry.type(
    description="A role granted or revoked; `changed` is false when it was already so."
)
class RoleChanged:
    employee: Employee
    role: str
    changed: bool


@strawberry.type(description="Past decisions of one roles x category x action x purpose that flip.")
class ImpactGroup:
    roles: list[str] = strawberry.field(description="The roles the employee held (as logged).")
    category: str
    action: str
    purpose: str
    to_allow: int = strawberry.field(description="Decisions that were denied and would be allowed.")
    to_deny: int = strawberry.field(description="Decisions that were allowed and would be denied.")
    customers: int = strawberry.field(description="Distinct customers these decisions concern.")


@strawberry.type(
    description="What a change would have done: the access decisions logged since `since`, "
    "decided again under the policy in force and under the change (counts, never values)."
)
class PolicyImpact:
    since: datetime
    decisions_replayed: int = strawberry.field(
        description="Decisions replayed: each customer of each category of each logged decision."
    )
    to_allow: int
    to_deny: int
    customers: int = strawberry.field(description="Distinct customers of the flipped decisions.")
    groups: list[ImpactGroup]

    @classmethod
    def from_impact(cls, impact: Impact) -> PolicyImpact:
        return cls(
            since=impact.since,
            decisions_replayed=impact.replayed,
            to_allow=impact.to_allow,
            to_deny=impact.to_deny,
            customers=impact.customers,
            groups=[
                ImpactGroup(
                    roles=list(g.roles),
                    category=g.category,
                    action=g.action,
                    purpose=g.purpose,
                    to_allow=g.to_allow,
                    to_deny=g.to_deny,
                    customers=g.customers,
                )
                for g in impact.groups
            ],
        )


def _id(value: object) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(str(value))


@strawberry.type(
    description="A change that may widen access to personal data, waiting for a second "
    "person: applied only when approved (by a privacy officer who neither proposed it nor "
    "gains from it) before it expires."
)
class PolicyProposal:
    id: strawberry.ID
    kind: str = strawberry.field(
        description="`add_rule`, `remove_rule`, `grant_role` or `revoke_role`."
    )
    change: str = strawberry.field(description="The change as one line.")
    rule: PolicyRule | None
    employee_id: strawberry.ID | None
    role: str | None
    status: str = strawberry.field(description="`pending`, `approved`, `rejected` or `expired`.")
    proposed_by: strawberry.ID
    proposed_at: datetime
    expires_at: datetime
    decided_by: strawberry.ID | None
    decided_at: datetime | None
    decision_note: str
    applied_version: int | None = strawberry.field(
        description="The policy version the approval made."
    )
    _model: strawberry.Private[ProposalModel]

    @classmethod
    def from_model(cls, m: ProposalModel, *, now: datetime) -> PolicyProposal:
        change = change_of(m)
        status = "expired" if m.status == PENDING and m.expires_at <= now else m.status
        return cls(
            id=strawberry.ID(str(m.id)),
            kind=m.kind,
            change=m.text,
            rule=PolicyRule.from_rule(change.rule) if change.rule else None,
            employee_id=_id(change.employee_id),
            role=change.role or None,
            status=status,
            proposed_by=strawberry.ID(str(m.proposed_by)),
            proposed_at=m.proposed_at,
            expires_at=m.expires_at,
            decided_by=_id(m.decided_by),
            decided_at=m.decided_at,
            decision_note=m.decision_note,
            applied_version=m.applied_version,
            _model=m,
        )

    @strawberry.field(
        description="Its effect on the access decisions of the last `days` days (default: "
        "the `policy_what_if_days` setting), against the policy in force now."
    )
    async def impact(self, info: Info, days: int | None = None) -> PolicyImpact:
        services = info.context.services
        days = services.settings.policy_what_if_days if days is None else days
        if not 1 <= days <= MAX_WHAT_IF_DAYS:
            raise InvalidArgument("days", f"From 1 to {MAX_WHAT_IF_DAYS}.")
        since = services.clock.now() - timedelta(days=days)
        key = (change_of(self._model), since)
        found = await info.context.load(impact_service.of_changes, key)
        return PolicyImpact.from_impact(found)


@strawberry.type(description="A widening change was proposed (or was already pending).")
class PolicyChangeProposed:
    proposal: PolicyProposal
    created: bool = strawberry.field(description="False when the same change was already pending.")


@strawberry.type(description="A proposal approved (and applied) or rejected.")
class PolicyProposalDecided:
    proposal: PolicyProposal


@strawberry.type(
    description="One version of the access policy: what changed, who proposed it, "
    "who approved it (null for a narrowing change, applied at once)."
)
class PolicyChangeEntry:
    version: int
    at: datetime
    kind: str
    change: str
    proposed_by: strawberry.ID | None
    approved_by: strawberry.ID | None
    proposal_id: strawberry.ID | None

    @classmethod
    def from_model(cls, m: PolicyChangeModel) -> PolicyChangeEntry:
        return cls(
            version=m.version,
            at=m.at,
            kind=m.kind,
            change=m.text,
            proposed_by=_id(m.proposed_by),
            approved_by=_id(m.approved_by),
            proposal_id=_id(m.proposal_id),
        )
