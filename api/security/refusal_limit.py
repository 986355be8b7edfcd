"""How many refused requests from one client address are answered and logged one by one, on
the routes anyone may call with a link or a signature (`/notices/*`, `/unsubscribe/*`):
REFUSALS_PER_IP a window (`mail_window_seconds`), counted in the database as the mail
limits are (api/security/mail_limits.py), so every process counts together. Past that, a
refusal is answered 429 with Retry-After and only the first past the limit is logged, so a
flood of bad requests cannot fill the decision log. Requests that are accepted are never
counted or limited."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from api.services import Services

REFUSALS_PER_IP = 30
"""Refusals from one client address a window that are answered and logged one by one."""


@dataclass(frozen=True, slots=True)
class PastLimit:
    retry_after: int
    """Seconds until the window ends."""
    first: bool
    """The first refusal past the limit: the one to log, with reason RATE_LIMITED."""


async def count_refusal(services: Services, request: Request, scope: str) -> PastLimit | None:
    """Count a refusal of `scope` (at most 16 characters) from the request's client: None
    while within the limit (answer and log it as usual), else how to answer it."""
    if request.client is None:
        return None
    hits, retry_after = await services.mail_limits.count_ip(
        scope=scope, ip=request.client.host, limit=REFUSALS_PER_IP, clock=services.clock
    )
    if hits <= REFUSALS_PER_IP:
        return None
    return PastLimit(retry_after, first=hits == REFUSALS_PER_IP + 1)
