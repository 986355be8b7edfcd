"""`GET` and `POST /unsubscribe/{token}` (docs/ARCHITECTURE.md: mail and HTTP API, RFC 8058).

POST with the body `List-Unsubscribe=One-Click` (form-urlencoded or multipart) is the
one-click unsubscribe a mail client sends: no cookie or sign-in, effective at once, 200 with
a short page, never a redirect, the same answer for a second click. GET shows a page with a
button that sends that POST, and changes nothing itself: mail scanners and link previews
follow links. A refused token is 400 (404 when the customer it names is gone); a POST
without the one-click body is 400. Neither changes anything.

Each POST, done or refused, is audited in the transaction of its consent record. GET is not
audited: it reads no personal data and changes nothing. The pages load nothing from
elsewhere and carry a Content-Security-Policy that allows nothing but their inline style
and a form posting to this site."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from html import escape
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from tortoise.transactions import in_transaction

from api.customers.service import RequestMeta
from api.marketing.unsubscribe import audit_refusal, check_unsubscribe_token, unsubscribe
from api.marketing.unsubscribe_tokens import EXPIRED, UNKNOWN_CUSTOMER, InvalidUnsubscribeToken
from api.services import Services
from authz.audit import AuditTrail
from authz.registry import PURPOSES

ONE_CLICK = ("List-Unsubscribe", "One-Click")
NOT_ONE_CLICK = "NOT_ONE_CLICK"
"""The audit reason of a POST without the one-click body."""
CSP = (
    "default-src 'none'; form-action 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_MAX_FIELDS = 20
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5;color:#222}button{font:inherit;padding:.5rem 1.25rem;cursor:pointer}"
)
_REFUSALS = {
    EXPIRED: "This unsubscribe link has expired. You can withdraw your consent at any time "
    "in your account's privacy settings.",
    UNKNOWN_CUSTOMER: "This unsubscribe link belongs to an account we no longer have.",
}
_INVALID = (
    "This unsubscribe link is not valid. Please use the link from the message exactly as it "
    "arrived, or withdraw your consent in your account's privacy settings."
)


def _page(status: int, title: str, *paragraphs: str, button: str | None = None) -> Response:
    """A small self-contained page; every text is escaped. The button's form posts the
    one-click body to the page's own address (no action attribute: the token never appears
    in the markup)."""
    body = "".join(f"<p>{escape(text)}</p>" for text in paragraphs)
    if button is not None:
        name, value = ONE_CLICK
        body += (
            f'<form method="post"><input type="hidden" name="{name}" value="{value}">'
            f'<button type="submit">{escape(button)}</button></form>'
        )
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": CSP})


def _refused(error: InvalidUnsubscribeToken) -> Response:
    status = 404 if error.code == UNKNOWN_CUSTOMER else 400
    return _page(status, "Link not valid", _REFUSALS.get(error.code, _INVALID))


def _what(purpose: str) -> str:
    return PURPOSES[purpose].description


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


async def _one_click(request: Request, services: Services, token: str) -> Response:
    trail = AuditTrail(request.scope.get("custos.request_id", "-"))
    if not await _is_one_click(request):
        audit_refusal(services=services, trail=trail, code=NOT_ONE_CLICK)
        await trail.flush()
        return _page(
            400,
            "Not unsubscribed",
            "This request did not confirm the unsubscribe, so nothing was changed.",
        )
    outcome = await _withdraw(services, token, _meta(request, trail), trail)
    if isinstance(outcome, InvalidUnsubscribeToken):
        return _refused(outcome)
    return _page(
        200,
        "You are unsubscribed",
        f"We no longer use your data for: {_what(outcome)}.",
        "It took effect at once. You can change this at any time in your account's "
        "privacy settings.",
    )


async def _confirmation(services: Services, token: str) -> Response:
    """The page a link opens: what the button will do, and nothing done yet."""
    try:
        _, purpose = await check_unsubscribe_token(services=services, token=token)
    except InvalidUnsubscribeToken as exc:
        return _refused(exc)
    return _page(
        200,
        "Unsubscribe",
        f"Stop using your data for: {_what(purpose)}?",
        button="Unsubscribe",
    )


async def unsubscribe_page(request: Request) -> Response:
    """`/unsubscribe/{token}`: GET shows the confirmation page, POST unsubscribes."""
    services: Services = request.app.state.services
    token = str(request.path_params["token"])
    if request.method == "POST":
        return await _one_click(request, services, token)
    return await _confirmation(services, token)
