"""Consent operations: glue between GraphQL and api/consent/service.py."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.permission import PermissionExtension

from api.consent import service
from api.consent.state import ConsentState
from api.consent.types import PurposeDefinition
from api.context import Info
from api.customers.types import Consent
from api.errors import InputInvalid
from api.permissions import Allowed
from api.types import InputError
from authz.registry import PURPOSES, ConsentSource


@strawberry.type(description="The consent for one purpose after the call.")
class ConsentSet:
    consent: Consent
    changed: bool = strawberry.field(description="False when it already was in that state.")


SetConsentPayload = Annotated[ConsentSet | InputError, strawberry.union("SetConsentPayload")]


@strawberry.type
class ConsentQuery:
    @strawberry.field(description="Every purpose we use personal data for, and its basis.")
    async def purposes(self, info: Info) -> list[PurposeDefinition]:
        services = info.context.services
        policies, now = await services.policies.policies(), services.clock.now()
        return [
            PurposeDefinition.from_registry(p, defined_in=policies.defined_in(p.key, now))
            for p in PURPOSES.values()
        ]


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(
        extensions=[PermissionExtension([Allowed("consent.history", "write", "service")])],
        description="Give or withdraw your consent for a purpose (e.g. marketing.email).",
    )
    async def set_consent(self, info: Info, purpose: str, granted: bool) -> SetConsentPayload:
        try:
            record, changed = await service.set_consent(
                services=info.context.services,
                customer_id=info.context.subject_id,
                purpose=purpose,
                granted=granted,
                source=ConsentSource.PREFERENCE_CENTRE,
                meta=info.context.meta,
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        state = ConsentState.GRANTED if record.granted else ConsentState.WITHDRAWN
        consent = Consent(
            purpose=record.purpose,
            granted=record.granted,
            at=record.at,
            source=record.source,
            state=state,
        )
        return ConsentSet(consent=consent, changed=changed)
