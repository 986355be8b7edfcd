"""The verifiable log's public endpoints (docs/AUDIT_LOG.md: published): the latest signed
checkpoint, the keys that sign checkpoints, and consistency proofs between two tree
sizes. They hold hashes and public keys only, never a row, so they need no sign-in: a
witness or a customer's browser reads them as anyone would."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from api.audit import proofs
from api.errors import ClientError
from authz import checkpoints, log_keys

_NO_STORE = {"Cache-Control": "no-cache"}
_MAX_DIGITS = 19


async def latest_checkpoint(request: Request) -> Response:
    row = await checkpoints.latest()
    if row is None:
        return PlainTextResponse("The log has signed no checkpoint yet.\n", 404, _NO_STORE)
    return PlainTextResponse(row.note, headers=_NO_STORE)


async def log_key_list(request: Request) -> Response:
    services = request.app.state.services
    origin = services.settings.effective_audit_log_origin
    keys = await log_keys.published()
    return JSONResponse(checkpoints.keys_document(origin, keys), headers=_NO_STORE)


def _size(request: Request, name: str) -> int | None:
    value = request.query_params.get(name, "")
    if not (0 < len(value) <= _MAX_DIGITS and value.isascii() and value.isdigit()):
        return None
    return int(value)


async def consistency(request: Request) -> Response:
    old, new = _size(request, "from"), _size(request, "to")
    if old is None or new is None:
        return JSONResponse({"error": "`from` and `to` are tree sizes in decimal."}, 400)
    try:
        proof = await proofs.consistency(old, new)
    except ClientError as error:
        return JSONResponse({"error": str(error)}, 400)
    hashes = [proofs.b64(h) for h in proof.hashes]
    return JSONResponse({"from": old, "to": new, "hashes": hashes}, headers=_NO_STORE)


ROUTES = [
    Route("/.well-known/custos/checkpoint", latest_checkpoint, methods=["GET"]),
    Route("/.well-known/custos/log-keys", log_key_list, methods=["GET"]),
    Route("/.well-known/custos/consistency", consistency, methods=["GET"]),
]
