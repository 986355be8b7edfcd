"""Retention rules over GraphQL: glue between the schema and api/retention/rules.py. Legal
sets the periods; legal, privacy officers and auditors read them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.context import Info
from api.errors import InputInvalid
from api.permissions import only
from api.retention import rules
from api.types import InputError
from authz.registry import Role
from models import RetentionRule as RetentionRuleModel


@strawberry.type(description="How long one data category is kept after an anchor event.")
class RetentionRule:
    category: str = strawberry.field(description="The data category, e.g. behavior.browsing.")
    anchor: str = strawberry.field(
        description="The event the period runs from: event_time, account_closed, "
        "request_completed, link_expired or last_sign_in."
    )
    period: str = strawberry.field(description="An ISO 8601 duration, e.g. P13M, P30D, P2Y.")
    description: str = strawberry.field(description="What the purge does under this rule.")
    updated_at: datetime
    updated_by: strawberry.ID | None = strawberry.field(
        description="The employee who set the period; null for a seeded default."
    )
    seeded: bool = strawberry.field(description="The default, never changed by legal.")

    @classmethod
    def from_model(cls, m: RetentionRuleModel) -> RetentionRule:
        target = rules.BY_KEY.get((m.category, m.anchor))
        return cls(
            category=m.category,
            anchor=m.anchor,
            period=m.period,
            description=target.description if target else "",
            updated_at=m.updated_at,
            updated_by=strawberry.ID(str(m.updated_by)) if m.updated_by else None,
            seeded=m.updated_by is None,
        )


@strawberry.type(description="The rule was set; the next purge applies it.")
class RetentionRuleSet:
    rule: RetentionRule


SetRetentionRulePayload = Annotated[
    RetentionRuleSet | InputError, strawberry.union("SetRetentionRulePayload")
]


@strawberry.type
class RetentionQuery:
    @strawberry.field(
        extensions=only(Role.LEGAL, Role.PRIVACY_OFFICER, Role.AUDITOR),
        description="The retention rules in force (legal, privacy officers, auditors).",
    )
    async def retention_rules(self, info: Info) -> list[RetentionRule] | None:
        return [RetentionRule.from_model(r) for r in await rules.list_rules()]


@strawberry.type
class RetentionMutation:
    @strawberry.mutation(
        extensions=only(Role.LEGAL),
        description="Set how long a category is kept after an anchor event (legal). "
        "`period` is an ISO 8601 duration (P13M, P30D, P2Y, P2W); a negative one is "
        "NEGATIVE_DURATION, an unknown (category, anchor) UNKNOWN_TARGET.",
    )
    async def set_retention_rule(
        self, info: Info, category: str, anchor: str, period: str
    ) -> SetRetentionRulePayload | None:
        try:
            rule = await rules.set_rule(
                category=category,
                anchor=anchor,
                period=period,
                actor_id=info.context.subject_id,
                now=info.context.services.clock.now(),
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        reason = f"{rule.category} after {rule.anchor}: {rule.period}"
        info.context.audit_event(event="retention", operation="set_rule", reason=reason)
        return RetentionRuleSet(rule=RetentionRule.from_model(rule))
