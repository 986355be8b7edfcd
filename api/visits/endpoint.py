"""`POST /collect`: the visit beacon (docs/ARCHITECTURE.md: HTTP API).

Answers 202 `{"stored": true|false, "purpose": ...}`; 403 `FORBIDDEN_ORIGIN` for a beacon
from a page not of the shop (`Settings.public_url`'s origin, or one of `collect_origins`),
400 for a malformed beacon, 413 past 8 KiB, 415 for another content type, 429 with
`Retry-After` past the visitor's rate (or ten times that per IP). The only cookie it ever sets
is the visitor id, and only with analytics consent.

The origin is checked first, from the headers alone: before the rate limit, so another site's
beacons cannot spend its visitors' allowance on ours, and before the body is read. A refusal
is not audited: any site could fill the audit log with them."""

from __future__ import annotations

import json
from functools import lru_cache
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.consent import gpc
from api.context import session_token
from api.customers.service import RequestMeta
from api.security.origins import from_allowed_page, origin_of
from api.services import Services
from api.visits import service
from api.visits.beacon import MAX_BYTES, BeaconError, first_language, parse_beacon
from api.visits.service import VISITOR_COOKIE
from authz.audit import AuditTrail
from authz.registry import PurposeKey

IP_SCALE = 10
"""An IP may send this many times a visitor's rate (visitors share addresses behind NAT)."""
_ANSWERS = {
    purpose: json.dumps({"stored": purpose is not None, "purpose": purpose}).encode()
    for purpose in (None, PurposeKey.SECURITY.value, PurposeKey.ANALYTICS.value)
}
_CONTENT_TYPES = {"application/json", "text/plain"}  # text/plain: navigator.sendBeacon(string)


def _error(status: int, code: str, message: str, **headers: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=status, headers=headers or None)


@lru_cache(maxsize=4)
def _allowed_origins(public_url: str, collect_origins: tuple[str, ...]) -> frozenset[str]:
    """Our own origin, always, and the configured ones (already in `origin_of`'s form)."""
    own = origin_of(public_url)
    return frozenset((*collect_origins, *((own,) if own else ())))


async def _body(request: Request) -> bytes | None:
    """The body, or None past MAX_BYTES (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BYTES):
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _honour_gpc(services: Services, request: Request, customer_id: UUID) -> None:
    trail = AuditTrail(request.scope.get("custos.request_id", "-"))
    meta = RequestMeta(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        trail=trail,
    )
    await gpc.honour_signal(services=services, customer_id=customer_id, meta=meta, trail=trail)


async def collect(request: Request) -> Response:
    services: Services = request.app.state.services
    settings = services.settings
    allowed = _allowed_origins(settings.public_url, settings.collect_origins)
    if not from_allowed_page(request.headers, allowed):
        return _error(403, "FORBIDDEN_ORIGIN", "Beacons are accepted from the shop's pages only.")
    ip = request.client.host if request.client else None
    # Per IP next, before any other work: a flood (even of malformed beacons, or with a new
    # made-up visitor cookie each time) is refused from memory.
    if (wait := services.beacons.retry_after(f"ip:{ip}", scale=IP_SCALE)) is not None:
        return _error(429, "RATE_LIMITED", "Too many beacons.", **{"Retry-After": str(wait)})
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type not in _CONTENT_TYPES:
        return _error(415, "UNSUPPORTED_MEDIA_TYPE", "Send the beacon as application/json.")
    body = await _body(request)
    if body is None:
        return _error(413, "PAYLOAD_TOO_LARGE", f"A beacon is at most {MAX_BYTES} bytes.")
    try:
        beacon = parse_beacon(body)
    except BeaconError as exc:
        return _error(400, "INVALID_BEACON", str(exc))

    viewer = await services.sessions.resolve(
        session_token(request), policy_version=services.authorizer.version
    )
    customer_id = viewer.subject_id if viewer.is_customer else None
    visitor_id = service.valid_visitor_id(request.cookies.get(VISITOR_COOKIE))
    key = f"c:{customer_id}" if customer_id else f"v:{visitor_id}" if visitor_id else None
    if key is not None and (wait := services.beacons.retry_after(key)) is not None:
        return _error(429, "RATE_LIMITED", "Too many beacons.", **{"Retry-After": str(wait)})

    sends_gpc = gpc.sends_gpc(request.headers)
    if customer_id is not None and sends_gpc:
        await _honour_gpc(services, request, customer_id)
    consents = await service.consents_of(
        services=services, customer_id=customer_id, beacon=beacon, gpc=sends_gpc
    )
    collected = await service.collect_event(
        services=services,
        beacon=beacon,
        request=service.RequestFacts(
            ip=ip,
            user_agent=request.headers.get("user-agent", ""),
            language=first_language(request.headers.get("accept-language")),
        ),
        customer_id=customer_id,
        visitor_id=visitor_id,
        consents=consents,
    )
    response = Response(_ANSWERS[collected.purpose], 202, media_type="application/json")
    if collected.visitor_id is not None and collected.visitor_id != visitor_id:
        response.set_cookie(
            VISITOR_COOKIE,
            collected.visitor_id,
            max_age=services.settings.visitor_cookie_days * 86400,
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )
    elif customer_id is None and visitor_id is not None and not consents.analytics:
        # Consent withdrawn on the banner: the old id is forgotten, never used again.
        response.delete_cookie(VISITOR_COOKIE, path="/", secure=True, httponly=True)
    return response
