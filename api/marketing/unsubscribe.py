"""Unsubscribing with the link of a marketing message (policy section 5.2): the same
withdrawal record as the preference centre, with source `unsubscribe_link`, effective at
once. Holding the mailed link stands for the customer, as it does for an export download.

Every attempt, done or refused, is a `consent` / `unsubscribe` audit event on the request's
trail; the caller flushes it in the transaction of the consent record. Refusals name the
customer only when the token's signature proved whose link it was, and never the token."""

from __future__ import annotations

from uuid import UUID

from api.consent.service import set_consent
from api.customers.service import RequestMeta
from api.marketing.unsubscribe_tokens import (
    UNKNOWN_CUSTOMER,
    InvalidUnsubscribeToken,
    read_unsubscribe_token,
)
from api.services import Services
from authz.audit import AuditRecord, AuditTrail
from authz.registry import ConsentSource
from models import Customer

EVENT = "consent"
OPERATION = "unsubscribe"
UNCHANGED = "unchanged"
"""The reason of a click that found the consent already withdrawn."""


async def check_unsubscribe_token(*, services: Services, token: str) -> tuple[UUID, str]:
    """(customer id, purpose) of a token that would unsubscribe someone now: ours, not
    expired, for a consent purpose, of a customer we have. Else InvalidUnsubscribeToken."""
    customer_id, purpose = read_unsubscribe_token(
        secret=services.secret,
        token=token,
        now=services.clock.now(),
        max_age_days=services.settings.unsubscribe_token_days,
    )
    if not await Customer.filter(id=customer_id).exists():
        raise InvalidUnsubscribeToken(UNKNOWN_CUSTOMER, customer_id=customer_id, purpose=purpose)
    return customer_id, purpose


def audit_refusal(
    *,
    services: Services,
    trail: AuditTrail,
    code: str,
    customer_id: UUID | None = None,
    purpose: str = "",
) -> None:
    """A refused attempt: an anonymous actor (nothing proved who clicked), the customer and
    purpose when the signature vouched for them, the refusal code as reason."""
    _audit(
        services=services,
        trail=trail,
        decision="deny",
        actor_kind="anonymous",
        actor_id="",
        subject_id=str(customer_id or ""),
        purpose=purpose,
        reason=code,
    )


def _audit(
    *,
    services: Services,
    trail: AuditTrail,
    decision: str,
    actor_kind: str,
    actor_id: str,
    subject_id: str,
    purpose: str,
    reason: str,
) -> None:
    trail.add(
        AuditRecord(
            at=services.clock.now(),
            request_id=trail.request_id,
            actor_kind=actor_kind,
            actor_id=actor_id,
            event=EVENT,
            operation=OPERATION,
            decision=decision,
            subject_id=subject_id,
            purpose=purpose,
            reason=reason,
        )
    )


def _trail_of(meta: RequestMeta) -> AuditTrail:
    if meta.trail is None:
        raise ValueError("an unsubscribe is audited: pass the request's trail in meta")
    return meta.trail


async def unsubscribe(
    *, services: Services, token: str, meta: RequestMeta
) -> tuple[UUID, str, bool]:
    """Withdraw the token's purpose for its customer; returns (customer id, purpose,
    changed). A second click records nothing (`changed` False). An invalid token raises
    InvalidUnsubscribeToken and changes nothing; both outcomes are put on `meta.trail`."""
    trail = _trail_of(meta)
    try:
        customer_id, purpose = await check_unsubscribe_token(services=services, token=token)
    except InvalidUnsubscribeToken as exc:
        audit_refusal(
            services=services,
            trail=trail,
            code=exc.code,
            customer_id=exc.customer_id,
            purpose=exc.purpose,
        )
        raise
    _, changed = await set_consent(
        services=services,
        customer_id=customer_id,
        purpose=purpose,
        granted=False,
        source=ConsentSource.UNSUBSCRIBE_LINK,
        meta=meta,
    )
    # The token holder acts as the customer, as a mailed link does elsewhere.
    _audit(
        services=services,
        trail=trail,
        decision="allow",
        actor_kind="customer",
        actor_id=str(customer_id),
        subject_id=str(customer_id),
        purpose=purpose,
        reason="" if changed else UNCHANGED,
    )
    return customer_id, purpose, changed
