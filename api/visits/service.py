"""Which visit events are stored, and how (policy section 1; docs/ARCHITECTURE.md: promises).

Strictly necessary events (`NECESSARY_ACTIONS`: signing in and out, registering, checking
out, paying, changing a password) are kept whatever the consent, for `security` (fraud and
abuse detection): with the full IP, without the visitor id or the referrer. Every other
event is analytics: kept only with `analytics` consent, with the IP truncated (/24, /48).
Advertising-related data (the campaign, ad-click parameters in the page address) is kept
only when personalised advertising is allowed: consent to `marketing.ads` and no Global
Privacy Control signal."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from uuid import UUID

from api.consent.service import allowed_purposes, may_process
from api.security.network import truncate_ip
from api.security.tokens import keyed_digest
from api.services import Services
from api.visits.beacon import Beacon, clean_page, clean_referrer
from api.visits.useragent import describe
from authz.registry import PurposeKey
from models import VisitEvent

NECESSARY_ACTIONS = frozenset(
    {"login", "logout", "register", "checkout", "payment", "password_change"}
)
VISITOR_COOKIE = "__Host-custos_visitor"
_VISITOR_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the HTTP request itself carries."""

    ip: str | None
    user_agent: str
    language: str


@dataclass(frozen=True, slots=True)
class Consents:
    analytics: bool
    ads: bool


@dataclass(frozen=True, slots=True)
class Collected:
    stored: bool
    purpose: str | None
    visitor_id: str | None
    """The visitor id to keep in the cookie (issued when new); None: no cookie."""


def valid_visitor_id(value: str | None) -> str | None:
    return value if value and _VISITOR_ID.match(value) else None


def visitor_digest(services: Services, visitor_id: str) -> str:
    return _visitor_digest(services.secret, visitor_id)


@lru_cache(maxsize=65536)  # a visitor sends many beacons
def _visitor_digest(secret: str, visitor_id: str) -> str:
    return keyed_digest(secret, "visitor", visitor_id)


async def consents_of(
    *, services: Services, customer_id: UUID | None, beacon: Beacon, gpc: bool
) -> Consents:
    """A signed-in customer's consent records decide; an anonymous visitor's banner choice
    (sent in the beacon) does. The GPC signal always turns advertising off."""
    if customer_id is not None:
        given = await allowed_purposes(
            services=services,
            customer_id=customer_id,
            purposes=(PurposeKey.ANALYTICS, PurposeKey.MARKETING_ADS),
        )
    else:
        given = beacon.consent
    return Consents(
        analytics=PurposeKey.ANALYTICS in given,
        ads=not gpc and PurposeKey.MARKETING_ADS in given,
    )


async def collect_event(
    *,
    services: Services,
    beacon: Beacon,
    request: RequestFacts,
    customer_id: UUID | None,
    visitor_id: str | None,
    consents: Consents,
) -> Collected:
    """Store the event when consent or necessity allows, and say whether (and under which
    visitor id, for an anonymous visitor with analytics consent) it was stored."""
    necessary = beacon.action in NECESSARY_ACTIONS
    keep_visitor = consents.analytics and customer_id is None
    visitor = (visitor_id or secrets.token_urlsafe(16)) if keep_visitor else None
    if not (necessary or consents.analytics):
        return Collected(stored=False, purpose=None, visitor_id=visitor)
    device = describe(request.user_agent)
    purpose = PurposeKey.SECURITY if necessary else PurposeKey.ANALYTICS
    analytics = not necessary  # a security event carries nothing analytics would add
    await VisitEvent.create(
        customer_id=customer_id,
        visitor_digest=visitor_digest(services, visitor) if visitor and analytics else None,
        purpose=purpose,
        at=services.clock.now(),
        page=clean_page(beacon.page, ads_allowed=consents.ads),
        action=beacon.action,
        referrer=clean_referrer(beacon.referrer) if analytics else "",
        campaign=beacon.campaign if consents.ads and analytics else "",
        browser=device.browser,
        os=device.os,
        device_type=device.device_type,
        language=request.language,
        ip_full=request.ip if necessary else None,
        ip_truncated=truncate_ip(request.ip),
    )
    return Collected(stored=True, purpose=purpose, visitor_id=visitor)


async def attach_visitor_events(
    *, services: Services, customer_id: UUID, visitor_id: str | None
) -> int:
    """On sign-in: the anonymous visitor's events become the customer's, only when the
    customer's own analytics consent covers it. Returns how many were attached."""
    visitor = valid_visitor_id(visitor_id)
    if visitor is None:
        return 0
    if not await may_process(
        services=services, customer_id=customer_id, purpose=PurposeKey.ANALYTICS
    ):
        return 0
    return await VisitEvent.filter(
        visitor_digest=visitor_digest(services, visitor), customer_id=None
    ).update(customer_id=customer_id)


async def recently_viewed(*, services: Services, customer_id: UUID, limit: int) -> list[str]:
    """The pages the customer viewed lately, newest first, for a personalised experience:
    only while `may_process(personalization)` holds (empty otherwise)."""
    if not await may_process(
        services=services, customer_id=customer_id, purpose=PurposeKey.PERSONALIZATION
    ):
        return []
    pages = (
        await VisitEvent.filter(
            customer_id=customer_id, purpose=PurposeKey.ANALYTICS, action="view"
        )
        .order_by("-at", "-id")
        .limit(limit * 5)
        .values_list("page", flat=True)
    )
    return list(dict.fromkeys(str(p) for p in pages))[:limit]
