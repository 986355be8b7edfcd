"""`GET /certificates/{token}`: the certificate of a completed erasure, as a JSON download
(api/rights/certificate.py). A token that is not ours, or a request that is not a
fulfilled erasure, is 404; an erasure still waiting for recipients is 409 with how many.
Each download is a row in the decision log."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.rights.certificate import NotReady, certificate, request_of
from api.services import Services
from authz.audit import AuditTrail

_PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


async def certificate_download(request: Request) -> Response:
    services: Services = request.app.state.services
    request_id = request_of(services.secret, str(request.path_params["token"]))
    try:
        document = (
            await certificate(services=services, request_id=request_id) if request_id else None
        )
    except NotReady as exc:
        body = {"error": "NOT_COMPLETE", "waitingFor": exc.waiting}
        return JSONResponse(body, status_code=409, headers=_PRIVATE)
    if document is None:
        return JSONResponse({"error": "NOT_FOUND"}, status_code=404, headers=_PRIVATE)
    trail = AuditTrail(request.scope.get("custos.request_id", "-"))
    trail.event(
        at=services.clock.now(),
        event="rights",
        operation="certificate",
        decision="allow",
        actor_kind="anonymous",
        reason=str(request_id),
    )
    await trail.flush()
    name = f"erasure-certificate-{request_id}.json"
    headers = {**_PRIVATE, "Content-Disposition": f'attachment; filename="{name}"'}
    return Response(document, media_type="application/json", headers=headers)
