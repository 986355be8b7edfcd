"""`/exports/{token}` (docs/ARCHITECTURE.md: HTTP API): the customer downloads the answer to their
access request, once, deliberately, before the link expires.

GET (and HEAD) shows a page with a "Download your data" button (`download_page`) and uses
nothing up: mail scanners and link previews open links with HEAD and GET. It reads no
personal data, so it is not audited; an unknown token shows a 404 page, a used or expired
link a 410 page. The button POSTs to the same address: 200 with the document as a JSON
attachment; 404 `NOT_FOUND` for a token we never issued; 410 `EXPORT_GONE` once it was
downloaded or has expired; 403 `FORBIDDEN_ORIGIN` for a POST that is not from our own page
(`from_allowed_page` with our origin alone), which uses nothing up either.

The link is taken with a conditional UPDATE (`used_at IS NULL`), so of two concurrent
downloads one gets the file and the other 410; the same statement blanks the stored
document, so the personal data does not outlive its delivery. Every download and every
refused POST of an issued link is an audited `rights` event, written in the transaction that
takes the link."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tortoise.transactions import in_transaction

from api.rights.download_page import gone_page, not_found_page, ready_page
from api.security.origins import from_allowed_page, origin_of
from api.security.tokens import token_hash
from api.services import Services
from authz.audit import AuditTrail
from models import DataExport

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)
"""What `new_token()` makes: 32 random bytes, URL-safe base64 without padding."""
_FIELDS = ("id", "request_id", "customer_id", "document", "created_at", "expires_at", "used_at")
USED = "already downloaded"
EXPIRED = "expired"
CROSS_SITE = "not from our page"


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status
    )


def _not_found() -> Response:
    return _error(404, "NOT_FOUND", "No such export.")


def _gone() -> Response:
    return _error(
        410, "EXPORT_GONE", "This link was already used or has expired; you can ask again."
    )


def _forbidden() -> Response:
    return _error(403, "FORBIDDEN_ORIGIN", "Download your data from the page the link opens.")


def _refusal(export: dict[str, Any], now: datetime) -> str | None:
    """Why an issued link no longer works, or None while it does."""
    if export["used_at"] is not None:
        return USED
    if export["expires_at"] <= now:
        return EXPIRED
    return None


def _attachment(export: dict[str, Any]) -> Response:
    day = export["created_at"].astimezone(UTC).date().isoformat()
    return Response(
        export["document"].encode(),
        200,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="custos-export-{day}.json"'},
    )


def _audit(trail: AuditTrail, export: dict[str, Any], now: datetime, refusal: str | None) -> None:
    """Whoever holds the mailed link acts as the customer (as after signing in)."""
    reason = f"request {export['request_id']}"
    trail.event(
        at=now,
        event="rights",
        operation="export_download",
        decision="deny" if refusal else "allow",
        actor_kind="customer",
        actor_id=export["customer_id"],
        subject_id=export["customer_id"],
        reason=f"{refusal}, {reason}" if refusal else reason,
    )


async def _take(export: dict[str, Any], now: datetime, trail: AuditTrail) -> str | None:
    """Mark the link used and blank the document, unless another download took it first;
    the audit event commits with it. Returns why it was refused, or None."""
    async with in_transaction() as conn:
        taken = (
            await DataExport.filter(id=export["id"], used_at__isnull=True)
            .using_db(conn)
            .update(used_at=now, document="")
        )
        refusal = None if taken else USED
        _audit(trail, export, now, refusal)
        await trail.flush()
    return refusal


async def _issued(token: str, *fields: str) -> dict[str, Any] | None:
    """The export a token names, or None when we never issued it."""
    if not _TOKEN.fullmatch(token):
        return None
    return await DataExport.filter(token_hash=token_hash(token)).first().values(*fields)


def _from_our_page(request: Request, public_url: str) -> bool:
    own = origin_of(public_url)
    return from_allowed_page(request.headers, frozenset((own,) if own else ()))


async def _show(token: str, now: datetime) -> Response:
    """The page the link opens; it changes nothing."""
    export = await _issued(token, "used_at", "expires_at")
    if export is None:
        return not_found_page()
    return gone_page() if _refusal(export, now) else ready_page(export["expires_at"])


async def _download(request: Request, services: Services, token: str) -> Response:
    """Serve the export once (see the module's docstring)."""
    export = await _issued(token, *_FIELDS)
    if export is None:
        return _not_found()
    now = services.clock.now()
    trail = AuditTrail(request.scope.get("custos.request_id", "-"))
    our_page = _from_our_page(request, services.settings.public_url)
    refusal = _refusal(export, now) if our_page else CROSS_SITE
    if refusal is None:
        refusal = await _take(export, now, trail)
    else:
        _audit(trail, export, now, refusal)
        await trail.flush()
    if refusal == CROSS_SITE:
        return _forbidden()
    return _gone() if refusal else _attachment(export)


async def download_export(request: Request) -> Response:
    """GET and HEAD show the page, POST downloads (see the module's docstring)."""
    services: Services = request.app.state.services
    token = str(request.path_params["token"])
    if request.method == "POST":
        return await _download(request, services, token)
    return await _show(token, services.clock.now())
