"""`GET /metrics`: the Prometheus text format, for a scraper only.

One uvicorn listener serves the public API and the metrics alike, so the route protects
itself (docs/OBSERVABILITY.md):

- with `CUSTOS_METRICS_TOKEN` set, it answers a request carrying `Authorization: Bearer
  <token>` (compared in constant time) and 401 to any other;
- without one, it answers clients on the loopback interface only, and 404, as if it did not
  exist, to any other, and to any request that came through a proxy (a forwarding header):
  a reverse proxy on the same host connects from loopback on behalf of the whole Internet.

`CUSTOS_METRICS_ENABLED=false` leaves the route out altogether (api/app.py)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from api.observability.collectors import DatabaseGauges
from api.observability.metrics import exposition, note_policy_version
from api.services import Services
from api.settings import Settings

FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _bearer(request: Request) -> bytes | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip().encode() if scheme.lower() == "bearer" and value.strip() else None


def refusal(request: Request, token: bytes | None) -> Response | None:
    """None when the request may read the metrics, else the answer it gets."""
    if token is not None:
        given = _bearer(request)
        if given is not None and hmac.compare_digest(given, token):
            return None
        return PlainTextResponse(
            "Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
        )
    host = request.client.host if request.client else None
    proxied = any(name in request.headers for name in FORWARDING_HEADERS)
    if _is_loopback(host) and not proxied:
        return None
    return PlainTextResponse("Not Found", status_code=404)


def metrics_endpoint(
    settings: Settings, services: Services
) -> Callable[[Request], Awaitable[Response]]:
    secret = settings.metrics_token
    token = secret.get_secret_value().encode() if secret is not None else None
    gauges = DatabaseGauges(services.clock)

    async def metrics(request: Request) -> Response:
        refused = refusal(request, token)
        if refused is not None:
            return refused
        with contextlib.suppress(RuntimeError):  # no policy loaded yet: nothing to show
            note_policy_version(services.authorizer.version)
        families = await gauges.families()
        return Response(exposition(families), media_type=CONTENT_TYPE_LATEST)

    return metrics


async def run_policy_version_loop(*, services: Services, poll_seconds: float) -> None:
    """Keep this process's `custos_policy_version_loaded` current (the policy watcher
    reloads the policy in the background), off the request path."""
    while True:
        with contextlib.suppress(RuntimeError):
            note_policy_version(services.authorizer.version)
        await asyncio.sleep(poll_seconds)
