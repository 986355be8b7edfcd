"""`GET` and `POST /unsubscribe/{token}` (docs/ARCHITECTURE.md: mail and HTTP API, RFC 8058).

POST with the body `List-Unsubscribe=One-Click` (form-urlencoded or multipart) is the
one-click unsubscribe a mail client sends: no cookie or sign-in, effective at once, 200 with
a short page, never a redirect, the same answer for a second click. GET shows a page with a
button that sends that POST, and changes nothing itself: mail scanners and link previews
follow links. A refused token is 400 (404 when the customer it names is gone); a POST
without the one-click body is 400. Neither changes anything.

Each POST, done or refused, is audited in the transaction of its consent record, up to the
limit of refusals from one client address (api/security/refusal_limit.py): past it, a POST
that would be refused is 429 with a page saying to try later, and only the first is logged
(reason RATE_LIMITED). GET is not
audited: it reads no personal data and changes nothing. The pages are in the privacy
centre's look and language (api/privacy_centre/standalone.py), work without JavaScript, load
nothing from elsewhere and carry a Content-Security-Policy that allows nothing but the
centre's style sheets, images of this site and a form posting to it."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from tortoise.transactions import in_transaction

from api.customers.service import RequestMeta
from api.marketing.unsubscribe import audit_refusal, check_unsubscribe_token, unsubscribe
from api.marketing.unsubscribe_tokens import EXPIRED, UNKNOWN_CUSTOMER, InvalidUnsubscribeToken
from api.privacy_centre.catalogue import DEFAULT, messages
from api.privacy_centre.standalone import CSP as STANDALONE_CSP
from api.privacy_centre.standalone import Content, Form, StandalonePage, Text
from api.security.refusal_limit import count_refusal
from api.services import Services
from authz.audit import AuditTrail

ONE_CLICK = ("List-Unsubscribe", "One-Click")
NOT_ONE_CLICK = "NOT_ONE_CLICK"
"""The audit reason of a POST without the one-click body."""
CSP = STANDALONE_CSP
"""The pages' policy (api/privacy_centre/standalone.py): the centre's style sheets, images of
this site, a form posting here; no script."""
_MAX_FIELDS = 20
_REFUSALS = {
    EXPIRED: "unsubscribe.refused.expired",
    UNKNOWN_CUSTOMER: "unsubscribe.refused.unknown-customer",
}
_INVALID = "unsubscribe.refused.invalid"
_REFUSED_SCOPE = "unsub-refused"


def _page(
    status: int,
    title: str,
    *paragraphs: Text,
    button: str | None = None,
    tone: str = "",
    headers: dict[str, str] | None = None,
) -> Response:
    """A page in the privacy centre's look, its words the catalogue's (`title` and
    `button` are keys). The button's form posts the one-click body to the page's own
    address (no action attribute: the token never appears in the markup)."""
    form = None
    if button is not None:
        form = Form(button=Text(button), fields=(ONE_CLICK,))
    content = Content(
        name="unsubscribe",
        title=Text(title),
        paragraphs=paragraphs,
        form=form,
        tone=tone,
    )
    return StandalonePage(content, status, headers)


def _refused(error: InvalidUnsubscribeToken) -> Response:
    status = 404 if error.code == UNKNOWN_CUSTOMER else 400
    reason = Text(_REFUSALS.get(error.code, _INVALID))
    return _page(status, "unsubscribe.refused.title", reason, tone="alert")


def _what(purpose: str) -> Text:
    """The purpose in the catalogue's words (common.json names every consent purpose)."""
    key = f"purpose.{purpose}"
    return Text(key if key in messages(DEFAULT) else "unsubscribe.purpose.other")


def _form_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The fields of a form body: multipart/form-data, or else form-urlencoded (what RFC
    8058 asks for; read whatever the declared type, since the body is what counts)."""
    if content_type.partition(";")[0].strip().lower() == "multipart/form-data":
        return _multipart_fields(content_type, body)
    try:
        text = body.decode("utf-8")
        return parse_qsl(text, max_num_fields=_MAX_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return []


def _multipart_fields(content_type: str, body: bytes) -> list[tuple[str, str]]:
    """The text fields of a multipart/form-data body, parsed by the standard library's MIME
    parser (no extra dependency for one field)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", errors="replace") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return []
    fields = []
    parts = [part for part in message.walk() if part is not message]
    for part in parts[:_MAX_FIELDS]:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.append((name, payload.decode("utf-8", errors="replace").strip()))
    return fields


async def _is_one_click(request: Request) -> bool:
    """Whether the body carries `List-Unsubscribe=One-Click` (GuardMiddleware bounds its
    size; garbage is simply not one-click)."""
    body = await request.body()
    try:
        fields = _form_fields(request.headers.get("content-type", ""), body)
    except Exception:  # a malformed multipart body of any kind is just not one-click
        return False
    return ONE_CLICK in fields


def _meta(request: Request, trail: AuditTrail) -> RequestMeta:
    return RequestMeta(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        trail=trail,
    )


async def _withdraw(
    services: Services, token: str, meta: RequestMeta, trail: AuditTrail
) -> str | InvalidUnsubscribeToken:
    """The purpose withdrawn, or why the token was refused; the consent record (if any)
    and the audit event commit together."""
    outcome: str | InvalidUnsubscribeToken
    async with in_transaction():
        try:
            _, outcome, _ = await unsubscribe(services=services, token=token, meta=meta)
        except InvalidUnsubscribeToken as exc:
            outcome = exc
        await trail.flush()
    return outcome


async def _past_limit(request: Request, services: Services, trail: AuditTrail) -> Response | None:
    """Count a refusal from the client's address: None while within the limit, else the
    429 page (the first refusal past the limit is logged, as RATE_LIMITED)."""
    past = await count_refusal(services, request, _REFUSED_SCOPE)
    if past is None:
        return None
    if past.first:
        audit_refusal(services=services, trail=trail, code="RATE_LIMITED")
        await trail.flush()
    headers = {"Retry-After": str(past.retry_after)}
    busy = Text("unsubscribe.refused.busy")
    return _page(429, "unsubscribe.refused.title", busy, tone="alert", headers=headers)


async def _one_click(request: Request, services: Services, token: str) -> Response:
    trail = AuditTrail(request.scope.get("custos.request_id", "-"))
    if not await _is_one_click(request):
        if (busy := await _past_limit(request, services, trail)) is not None:
            return busy
        audit_refusal(services=services, trail=trail, code=NOT_ONE_CLICK)
        await trail.flush()
        return _page(
            400,
            "unsubscribe.not-confirmed.title",
            Text("unsubscribe.not-confirmed"),
            tone="alert",
        )
    try:  # a token refused is counted against the address before it is logged
        await check_unsubscribe_token(services=services, token=token)
    except InvalidUnsubscribeToken:
        if (busy := await _past_limit(request, services, trail)) is not None:
            return busy
    outcome = await _withdraw(services, token, _meta(request, trail), trail)
    if isinstance(outcome, InvalidUnsubscribeToken):
        return _refused(outcome)
    return _page(
        200,
        "unsubscribe.done.title",
        Text("unsubscribe.done.what", {"purpose": _what(outcome)}),
        Text("unsubscribe.done.when"),
        tone="success",
    )


async def _confirmation(services: Services, token: str) -> Response:
    """The page a link opens: what the button will do, and nothing done yet."""
    try:
        _, purpose = await check_unsubscribe_token(services=services, token=token)
    except InvalidUnsubscribeToken as exc:
        return _refused(exc)
    return _page(
        200,
        "unsubscribe.title",
        Text("unsubscribe.question", {"purpose": _what(purpose)}),
        button="unsubscribe.button",
    )


async def unsubscribe_page(request: Request) -> Response:
    """`/unsubscribe/{token}`: GET shows the confirmation page, POST unsubscribes."""
    services: Services = request.app.state.services
    token = str(request.path_params["token"])
    if request.method == "POST":
        return await _one_click(request, services, token)
    return await _confirmation(services, token)
