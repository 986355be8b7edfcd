"""`GET /exports/{token}` (DESIGN section 11): the customer downloads the answer to their
access request, once, before the link expires.

200 with the document as a JSON attachment; 404 `NOT_FOUND` for a token we never issued;
410 `EXPORT_GONE` once it was downloaded or has expired. The link is taken with a
conditional UPDATE (`used_at IS NULL`), so of two concurrent downloads one gets the file and
the other 410; the same statement blanks the stored document, so the personal data does not
outlive its delivery. Every download and every refusal of an issued link is an audited
`rights` event, written in the transaction that takes the link."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from tortoise.transactions import in_transaction

from api.security.tokens import token_hash
from api.services import Services
from authz.audit import AuditTrail
from models import DataExport

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)
"""What `new_token()` makes: 32 random bytes, URL-safe base64 without padding."""
_FIELDS = ("id", "request_id", "customer_id", "document", "created_at", "expires_at", "used_at")
USED = "already downloaded"
EXPIRED = "expired"


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


async def download_export(request: Request) -> Response:
    """Serve an export once (see the module's docstring)."""
    services: Services = request.app.state.services
    token = str(request.path_params["token"])
    if not _TOKEN.fullmatch(token):
        return _not_found()
    export = await DataExport.filter(token_hash=token_hash(token)).first().values(*_FIELDS)
    if export is None:
        return _not_found()
    now = services.clock.now()
    trail = AuditTrail(request.scope.get("custos.request_id", "-"))
    refusal = _refusal(export, now)
    if refusal is None:
        refusal = await _take(export, now, trail)
    else:
        _audit(trail, export, now, refusal)
        await trail.flush()
    return _gone() if refusal else _attachment(export)
