"""How a recipient acknowledges a notice (docs/RECIPIENTS.md):

- `POST /notices/acknowledge`: a processor with a notice endpoint answers with a JSON body
  `{"notice": id, "outcome": "done" | "no_record", "note": "..."}`, signed like the notice
  with its own key and naming itself in `Custos-Processor`;
- `GET /notices/{token}` (the link mailed to a recipient without an endpoint) shows a page
  with two buttons and changes nothing (mail scanners follow links); its `POST` answers.

Refusals are 4xx with a code and nothing changed: an unknown processor or a wrong
signature 401 BAD_SIGNATURE, a timestamp outside the tolerance 401 STALE, a body that is
not the format 400, an unknown notice 404, another recipient's notice 403 NOT_NOTIFIED, a
notice already settled (a replay) 409 ALREADY_SETTLED. Every answer, accepted or refused,
is a row in the decision log: its code, never the body. Past the limit of refusals from one
client address (api/security/refusal_limit.py), an answer that would be refused is 429
RATE_LIMITED with Retry-After, and only the first of those is logged."""

from __future__ import annotations

import json
import time
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.privacy_centre.standalone import Content, Form, StandalonePage, Text
from api.recipients import links, signing
from api.recipients.answers import AnswerRefused, acknowledge
from api.recipients.vocabulary import ACK_FORMAT, Outcome
from api.security.refusal_limit import count_refusal
from api.services import Services
from authz.audit import AuditTrail
from models import Processor

PROCESSOR = "Custos-Processor"
MAX_BODY = 4096
EVENT = "recipients"
_REFUSED_SCOPE = "notice-refused"


async def _log(
    request: Request, *, decision: str, reason: str, actor: str = "", subject: object = ""
) -> None:
    services: Services = request.app.state.services
    trail = AuditTrail(request.scope.get("custos.request_id", "-"))
    trail.event(
        at=services.clock.now(),
        event=EVENT,
        operation="acknowledge",
        decision=decision,
        actor_kind="processor" if actor else "anonymous",
        actor_id=actor,
        subject_id=subject,
        reason=reason,
    )
    await trail.flush()


def _refused(code: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"format": ACK_FORMAT, "error": code}, status_code=status, headers=headers)


async def _over_limit(request: Request, actor: str = "") -> int | None:
    """Count a refusal from the client's address (api/security/refusal_limit.py): None
    while within the limit, else the seconds until the window ends (the first refusal
    past the limit is logged once)."""
    past = await count_refusal(request.app.state.services, request, _REFUSED_SCOPE)
    if past is None:
        return None
    if past.first:
        await _log(request, decision="deny", reason="RATE_LIMITED", actor=actor)
    return past.retry_after


async def _refusal(request: Request, code: str, status: int, actor: str) -> JSONResponse:
    """A refused signed answer: logged and answered with its code, or past the IP's limit
    429 RATE_LIMITED."""
    if (retry_after := await _over_limit(request, actor)) is not None:
        return _refused("RATE_LIMITED", 429, {"Retry-After": str(retry_after)})
    await _log(request, decision="deny", reason=code, actor=actor)
    return _refused(code, status)


async def _processor(request: Request) -> Processor | None:
    raw = request.headers.get(PROCESSOR, "")
    try:
        processor_id = UUID(raw)
    except ValueError:
        return None
    return await Processor.get_or_none(id=processor_id)


def _answer(body: bytes) -> tuple[UUID, str, str] | None:
    """(notice id, outcome, note) of a well-formed body, else None."""
    try:
        data: Any = json.loads(body)
        notice = UUID(str(data["notice"]))
        outcome, note = data["outcome"], data.get("note", "")
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        return None
    if not isinstance(outcome, str) or not isinstance(note, str) or not isinstance(data, dict):
        return None
    return notice, outcome, note


async def signed_acknowledgement(request: Request) -> Response:
    services: Services = request.app.state.services
    body = await request.body()
    processor = await _processor(request)
    actor = str(processor.id) if processor else ""
    if len(body) > MAX_BODY:
        return await _refusal(request, "TOO_LARGE", 413, actor)
    try:
        if processor is None:
            raise signing.Refused("BAD_SIGNATURE")
        signing.check(
            processor.notice_secret,
            timestamp=request.headers.get(signing.TIMESTAMP),
            given=request.headers.get(signing.SIGNATURE),
            body=body,
            now=time.time(),
            tolerance=services.settings.recipient_ack_tolerance_seconds,
        )
    except signing.Refused as exc:
        return await _refusal(request, exc.code, 401, actor)
    answer = _answer(body)
    if answer is None:
        return await _refusal(request, "MALFORMED", 400, actor)
    notice_id, outcome, note = answer
    try:
        notice = await acknowledge(
            notice_id=notice_id,
            processor_id=processor.id if processor else None,
            outcome=outcome,
            note=note,
            now=services.clock.now(),
        )
    except AnswerRefused as exc:
        return await _refusal(request, exc.code, exc.status, actor)
    await _log(
        request,
        decision="allow",
        reason=f"{notice.id} {outcome}",
        actor=actor,
        subject=notice.customer_id,
    )
    return JSONResponse({"format": ACK_FORMAT, "notice": str(notice.id), "status": notice.status})


_OUTCOME_FIELD = "outcome"


def _page(
    status: int,
    title: str,
    *paragraphs: Text,
    ask: bool = False,
    tone: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    form = None
    if ask:
        form = Form(button=Text("notices.button.done"), fields=((_OUTCOME_FIELD, Outcome.DONE),))
    content = Content(
        name="notices", title=Text(title), paragraphs=paragraphs, form=form, tone=tone
    )
    return StandalonePage(content, status, headers)


async def _busy_page(request: Request) -> Response | None:
    """Past the IP's limit of refusals: a 429 page instead of the refusal's."""
    if (retry_after := await _over_limit(request)) is None:
        return None
    headers = {"Retry-After": str(retry_after)}
    return _page(
        429, "notices.refused.title", Text("notices.refused.busy"), tone="alert", headers=headers
    )


async def link_acknowledgement(request: Request) -> Response:
    """`/notices/{token}`: GET asks, POST acknowledges (once)."""
    services: Services = request.app.state.services
    token = str(request.path_params["token"])
    notice_id = links.notice_of(services.secret, token)
    if notice_id is None:
        if request.method == "POST":
            if (busy := await _busy_page(request)) is not None:
                return busy
            await _log(request, decision="deny", reason="BAD_LINK")
        return _page(404, "notices.refused.title", Text("notices.refused.invalid"), tone="alert")
    if request.method != "POST":
        return _page(200, "notices.title", Text("notices.question"), ask=True)
    try:
        notice = await acknowledge(
            notice_id=notice_id,
            processor_id=None,
            outcome=Outcome.DONE,
            note="",
            now=services.clock.now(),
        )
    except AnswerRefused as exc:
        if (busy := await _busy_page(request)) is not None:
            return busy
        await _log(request, decision="deny", reason=exc.code)
        status, key = (
            (409, "notices.refused.used") if exc.status == 409 else (404, "notices.refused.invalid")
        )
        return _page(status, "notices.refused.title", Text(key), tone="alert")
    await _log(request, decision="allow", reason=f"{notice.id} done", subject=notice.customer_id)
    return _page(200, "notices.done.title", Text("notices.done"), tone="success")
