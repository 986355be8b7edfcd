from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import strawberry

from authz.registry import Purpose
from models import ConsentRecord


@strawberry.type(name="PurposeDefinition", description="A purpose personal data is used for.")
class PurposeDefinition:
    key: str
    description: str
    legal_basis: str = strawberry.field(
        description="consent, contract, legal_obligation or legitimate_interest."
    )
    consent_required: bool = strawberry.field(description="Off until the customer gives it.")
    defined_in: str = strawberry.field(
        description="The privacy policy version defining it: the latest material version in "
        "force that changed its scope, else the first version."
    )

    @classmethod
    def from_registry(cls, p: Purpose, *, defined_in: str) -> PurposeDefinition:
        return cls(**asdict(p), defined_in=defined_in)


@strawberry.type(description="One record of the consent history (never edited).")
class ConsentEvent:
    purpose: str
    granted: bool
    at: datetime
    source: str
    policy_version: str | None

    @classmethod
    def from_model(cls, m: ConsentRecord) -> ConsentEvent:
        return cls(
            purpose=m.purpose,
            granted=m.granted,
            at=m.at,
            source=m.source,
            policy_version=m.policy_version,
        )
