"""Campaign operations for the marketing role: glue to api/marketing/campaigns.py.
Marketing staff see counts, never the recipients or their addresses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

import strawberry
from strawberry.extensions.field_extension import FieldExtension

from api.context import Info
from api.errors import InputInvalid, parse_input_id
from api.marketing import campaigns
from api.permissions import only
from api.types import InputError
from authz.registry import PurposeKey, Role
from models import Campaign as CampaignModel

_MARKETING: list[FieldExtension] = only(Role.MARKETING)


@strawberry.type(description="A marketing email and how its sending went (counts only).")
class Campaign:
    id: strawberry.ID
    subject: str
    body_text: str
    body_html: str
    status: str = strawberry.field(description="draft, sending or sent (all queued).")
    created_at: datetime
    send_started_at: datetime | None
    queued_at: datetime | None
    recipients: int = strawberry.field(description="Messages queued so far.")
    skipped: int = strawberry.field(description="Verified customers without consent.")
    campaign_id: strawberry.Private[UUID]

    @classmethod
    def from_model(cls, m: CampaignModel) -> Campaign:
        return cls(
            id=strawberry.ID(str(m.id)),
            subject=m.subject,
            body_text=m.body_text,
            body_html=m.body_html,
            status=m.status,
            created_at=m.created_at,
            send_started_at=m.send_started_at,
            queued_at=m.queued_at,
            recipients=m.recipients,
            skipped=m.skipped,
            campaign_id=m.id,
        )

    async def _count(self, info: Info, state: str) -> int:
        """The four statistics of every campaign listed come from one grouped query."""
        counts = await info.context.load(campaigns.delivery_counts_of, self.campaign_id)
        return counts[state]

    @strawberry.field(description="Messages delivered so far.")
    async def delivered(self, info: Info) -> int:
        return await self._count(info, "delivered")

    @strawberry.field(description="Messages waiting for their first attempt, or in flight.")
    async def queued(self, info: Info) -> int:
        return await self._count(info, "queued")

    @strawberry.field(description="Messages that failed at least once and are still retried.")
    async def failed(self, info: Info) -> int:
        return await self._count(info, "failed")

    @strawberry.field(
        description="Messages whose retry budget ran out: kept until an operator requeues "
        "or purges them (custos mail requeue)."
    )
    async def dead(self, info: Info) -> int:
        return await self._count(info, "dead")


CampaignPayload = Annotated[Campaign | InputError, strawberry.union("CampaignPayload")]


@strawberry.type
class CampaignQuery:
    @strawberry.field(extensions=_MARKETING, description="Campaigns, newest first.")
    async def campaigns(self, info: Info, first: int = 50) -> list[Campaign] | None:
        rows = await CampaignModel.all().order_by("-created_at").limit(max(1, min(first, 200)))
        return [Campaign.from_model(r) for r in rows]


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(extensions=_MARKETING, description="Write a campaign (a draft).")
    async def create_campaign(
        self,
        info: Info,
        subject: str,
        body_text: str,
        body_html: str = "",
        purpose: str = PurposeKey.MARKETING_EMAIL,
    ) -> CampaignPayload | None:
        draft = campaigns.CampaignDraft(subject, body_text, body_html, purpose)
        try:
            campaign = await campaigns.create_campaign(
                services=info.context.services, draft=draft, created_by=info.context.subject_id
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        info.context.audit_event(event="campaign", operation="create", reason=str(campaign.id))
        return Campaign.from_model(campaign)

    @strawberry.mutation(
        extensions=_MARKETING,
        description="Send a draft to every customer who consents to marketing email now "
        "(queued in batches, delivered at the configured rate).",
    )
    async def send_campaign(self, info: Info, id: strawberry.ID) -> CampaignPayload | None:
        try:
            campaign = await campaigns.start_sending(
                services=info.context.services,
                campaign_id=parse_input_id(id, field="id", what="campaign"),
                sent_by=info.context.subject_id,
            )
        except InputInvalid as exc:
            info.context.audit_event(
                event="campaign", operation="send", decision="deny", reason=exc.problems[0].code
            )
            return InputError.from_problems(exc.problems)
        info.context.audit_event(event="campaign", operation="send", reason=str(campaign.id))
        return Campaign.from_model(campaign)
