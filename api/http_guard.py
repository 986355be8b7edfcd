"""The ASGI middleware every request passes first (docs/ARCHITECTURE.md: security floor).

- A request id, in `X-Request-Id` and in every log line about the request (an incoming
  `X-Request-Id` that is a short token is answered back and logged beside it, never used in
  its place: the decision log groups a request's rows by the id the server drew).
- When the answer is out, the request's line and metrics (api/observability/request_log.py).
- The body: at most `max_body_bytes` (413), sent within `body_timeout_seconds` of the first
  byte asked for (408), so that a slow or stalled client cannot hold a worker.
- The answer: within `request_deadline_seconds` once the body is in (or from the start for
  a request that reads none), else 503 `TIMEOUT`: the work in flight is cancelled, and a
  mutation's transaction rolls back.
- Security headers on every response: a strict Content-Security-Policy (pages that need
  more set their own), `frame-ancestors 'none'` and `X-Frame-Options: DENY`, nosniff,
  `Referrer-Policy: no-referrer`, `Cache-Control: no-store`, and HSTS when the public URL is
  https.
- A database that cannot be opened, reached or written: 503 `DATABASE_UNAVAILABLE` with
  `Retry-After`, and one warning line.
- An unexpected exception becomes one log line (its type and the request id, never its
  message, which may quote personal data) and a masked 500."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from time import perf_counter

from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.db import RETRY_AFTER_SECONDS, unavailable_reason
from api.observability import request_log
from api.settings import Settings

log = logging.getLogger("custos.http")

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=63072000; includeSubDomains"
# A request id: this process's random half, then a serial (unique, and cheaper than a UUID).
_PROCESS_ID = secrets.token_hex(8)
_serial = itertools.count()
DATABASE_UNAVAILABLE_MESSAGE = "The database is unavailable just now; try again shortly."


class _BodyTooLarge(Exception):
    pass


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=headers,
    )


def database_unavailable() -> Response:
    """A database that cannot be opened, reached or written (issue 15): 503 and when to
    try again, whichever route found it."""
    return _error(
        503,
        "DATABASE_UNAVAILABLE",
        DATABASE_UNAVAILABLE_MESSAGE,
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]
    if settings.public_url.startswith("https://"):
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers


class GuardMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.max_body_bytes = settings.max_body_bytes
        self.body_timeout = settings.body_timeout_seconds
        self.deadline = settings.request_deadline_seconds
        self.headers = security_headers(settings)
        # GraphiQL (development only) loads its scripts from a CDN: no CSP on that page.
        self.ide_without_csp = not settings.production
        self.count = settings.metrics_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = perf_counter()
        request_id = f"{_PROCESS_ID}{next(_serial):016x}"
        scope["custos.request_id"] = request_id
        headers_in = dict(scope.get("headers") or [])
        client_id = request_log.client_request_id(headers_in.get(b"x-request-id"))
        answered_id = (client_id or request_id).encode()
        status = 0
        received = 0
        reading = body_in = started = False
        skip_csp = self.ide_without_csp and scope["method"] == "GET" and scope["path"] == "/graphql"

        # One timer for the whole request: `body_timeout` from the first byte asked for
        # while the body comes in (408 if it fires then), `deadline` once it is in (503).
        async def guarded_receive() -> Message:
            nonlocal received, reading, body_in
            if not (reading or body_in):
                reading = True
                timer.reschedule(asyncio.get_running_loop().time() + self.body_timeout)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
                if not message.get("more_body", False):  # the body is in: the deadline runs
                    reading, body_in = False, True
                    timer.reschedule(asyncio.get_running_loop().time() + self.deadline)
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal started, status
            if message["type"] == "http.response.start":
                started = True
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                names = {k.lower() for k, _ in headers}
                extra = [(b"x-request-id", answered_id)]
                extra += [(k, v) for k, v in self.headers if k not in names]
                if b"content-security-policy" not in names and not skip_csp:
                    extra.append((b"content-security-policy", STRICT_CSP.encode()))
                message["headers"] = headers + extra
            await send(message)

        async def refuse(response: Response) -> None:
            if not started:
                await response(scope, receive, send_with_headers)

        try:
            declared = headers_in.get(b"content-length")
            limit = self.max_body_bytes
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await refuse(_error(413, "PAYLOAD_TOO_LARGE", "Request body too large."))
                return
            try:
                async with asyncio.timeout(self.deadline + self.body_timeout) as timer:
                    await self.app(scope, guarded_receive, send_with_headers)
            except _BodyTooLarge:
                await refuse(_error(413, "PAYLOAD_TOO_LARGE", "Request body too large."))
            except TimeoutError:
                if reading:
                    slow = "The request body came too slowly."
                    await refuse(_error(408, "REQUEST_TIMEOUT", slow))
                    return
                log.warning("request %s: deadline passed; cancelled", request_id)
                await refuse(_error(503, "TIMEOUT", "The request took too long."))
            except Exception as exc:  # the last resort: one line, no message, masked answer
                reason = unavailable_reason(exc)
                if reason is not None:
                    log.warning("request %s: database unavailable: %s", request_id, reason)
                    await refuse(database_unavailable())
                    return
                log.error("request %s: unexpected %s", request_id, type(exc).__name__)
                await refuse(_error(500, "INTERNAL_SERVER_ERROR", "Unexpected error."))
        finally:  # answered, refused or cut off: one line and one observation
            request_log.finish(
                scope,
                status=status,
                started=began,
                request_id=request_id,
                client_id=client_id,
                count=self.count,
            )
