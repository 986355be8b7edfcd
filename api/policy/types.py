"""GraphQL types of the privacy policy versions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.context import Info
from api.policy.book import PolicyEntry


@strawberry.type(
    description="Who is responsible for the processing of your data (the controller), how to "
    "reach it, and how to reach its data protection officer."
)
class Controller:
    name: str
    contact: str
    dpo: str = strawberry.field(description="The data protection officer's contact.")


@strawberry.type(description="A published version of the privacy policy (never edited).")
class PolicyVersion:
    version: str
    effective_at: datetime = strawberry.field(description="When it takes (or took) effect.")
    published_at: datetime
    material: bool = strawberry.field(
        description="A material change: announced by email at least the notice period ahead, "
        "and consents for `changedPurposes` are asked again once it takes effect."
    )
    summary: str
    text: str
    changed_purposes: list[str] = strawberry.field(
        description="The purposes whose scope this version changed."
    )
    in_effect: bool = strawberry.field(description="Whether it has taken effect.")

    @strawberry.field(description="The controller and its DPO (the shop's settings, as now).")
    def controller(self, info: Info) -> Controller:
        named = info.context.services.settings.controller
        return Controller(name=named.name, contact=named.contact, dpo=named.dpo)

    @classmethod
    def from_entry(cls, entry: PolicyEntry, *, now: datetime) -> PolicyVersion:
        return cls(
            version=entry.version,
            effective_at=entry.effective_at,
            published_at=entry.published_at,
            material=entry.material,
            summary=entry.summary,
            text=entry.text,
            changed_purposes=list(entry.changed_purposes),
            in_effect=entry.in_effect(now),
        )


@strawberry.type(description="The version was published.")
class PolicyPublished:
    policy: PolicyVersion


@strawberry.type(description="The signed-in customer accepted a version.")
class PolicyAccepted:
    policy: PolicyVersion
    accepted_at: datetime
    changed: bool = strawberry.field(description="False when it was already accepted.")
