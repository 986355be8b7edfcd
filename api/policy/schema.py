"""Privacy policy versions: glue between GraphQL and api/policy/service.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.context import Info
from api.errors import InputInvalid
from api.permissions import IsCustomer, only
from api.policy import service
from api.policy.types import PolicyAccepted, PolicyPublished, PolicyVersion
from api.types import InputError
from authz.registry import Role

PublishPolicyPayload = Annotated[
    PolicyPublished | InputError, strawberry.union("PublishPolicyPayload")
]
AcceptPolicyPayload = Annotated[
    PolicyAccepted | InputError, strawberry.union("AcceptPolicyPayload")
]


@strawberry.type
class PolicyQuery:
    @strawberry.field(description="The privacy policy in force now.")
    async def current_policy(self, info: Info) -> PolicyVersion | None:
        services = info.context.services
        entry = await services.policies.current()
        return PolicyVersion.from_entry(entry, now=services.clock.now()) if entry else None

    @strawberry.field(
        description="Every published version, newest first, with those not yet in effect."
    )
    async def policy_history(self, info: Info) -> list[PolicyVersion]:
        services = info.context.services
        now = services.clock.now()
        entries = await service.policy_history(services=services)
        return [PolicyVersion.from_entry(e, now=now) for e in entries]


@strawberry.type
class PolicyMutation:
    @strawberry.mutation(
        extensions=only(Role.LEGAL, Role.ADMIN),
        description="Publish a new version (legal, admin). A material change takes effect at "
        "least the notice period ahead and is announced to every active customer by email.",
    )
    async def publish_policy(
        self,
        info: Info,
        version: str,
        effective_at: datetime,
        material: bool,
        summary: str,
        text: str,
        changed_purposes: list[str] | None = None,
    ) -> PublishPolicyPayload | None:
        services = info.context.services
        try:
            draft = service.PolicyDraft(
                version, effective_at, material, summary, text, changed_purposes or []
            )
            entry = await service.publish_policy(
                services=services, draft=draft, published_by=info.context.subject_id
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        kind = "material" if entry.material else "non-material"
        info.context.audit_event(
            event="policy", operation="publishPolicy", reason=f"version={entry.version}, {kind}"
        )
        return PolicyPublished(policy=PolicyVersion.from_entry(entry, now=services.clock.now()))

    @strawberry.mutation(
        permission_classes=[IsCustomer],
        description="Accept a version in effect (signed-in customer); accepting again "
        "changes nothing.",
    )
    async def accept_policy(self, info: Info, version: str) -> AcceptPolicyPayload | None:
        services = info.context.services
        customer_id = info.context.subject_id
        try:
            accepted = await service.accept_policy(
                services=services, customer_id=customer_id, version=version, meta=info.context.meta
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        reason = f"version={version}" + ("" if accepted.changed else ", unchanged")
        info.context.audit_event(
            event="consent", operation="acceptPolicy", subject_id=customer_id, reason=reason
        )
        policy = PolicyVersion.from_entry(accepted.policy, now=services.clock.now())
        return PolicyAccepted(policy=policy, accepted_at=accepted.at, changed=accepted.changed)
