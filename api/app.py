"""The ASGI application: Starlette routes around the strawberry GraphQL view."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from api import logs
from api.access.proposals import run_expiry_loop
from api.audit import log_routes
from api.audit.log_config import log_config
from api.consent import gpc
from api.context import Context, session_token
from api.db import (
    RETRY_AFTER_SECONDS,
    check_writable,
    close_db,
    ensure_migrated,
    init_db,
    unavailable_reason,
)
from api.errors import for_client
from api.http_guard import DATABASE_UNAVAILABLE_MESSAGE, GuardMiddleware
from api.mail.sender import run_sender_loop
from api.marketing.campaigns import run_campaign_loop
from api.marketing.unsubscribe_http import unsubscribe_page
from api.observability import logging_setup, metrics, request_log
from api.observability.endpoint import metrics_endpoint, run_policy_version_loop
from api.policy.notices import run_notice_loop
from api.privacy_centre.routes import centre_routes
from api.recipients.callback_http import link_acknowledgement, signed_acknowledgement
from api.recipients.chase import run_chase_loop
from api.retention.purge import run_retention_loop
from api.rights.certificate_http import certificate_download
from api.rights.downloads import download_export
from api.rights.intake import run_intake_loop
from api.schema import build_schema
from api.services import Services, build_services
from api.settings import Settings, get_settings
from api.version import VERSION
from api.visits.endpoint import collect
from authz import checkpoints
from authz.audit import AuditTrail
from authz.watcher import run_policy_watcher

YOUNG_OBJECTS = 20_000
"""Objects a server allocates, net, before the cyclic collector's youngest pass (Python's
default is 700). A request in flight keeps its page's objects until it is answered (a read
waits for its log rows to be committed); at 700, passes came every page or so, and each
found those objects young, copied them a generation up and found them again at the next;
an object that outlives a pass no longer counts against the next when freed, so the longer
requests wait, the more often the collector ran. At 20,000, under 32 connections, the
collector cost a guarded page of 100 about 0.07 ms instead of 0.2 (measured on PostgreSQL,
in-process) and holds a few megabytes more at most."""

log = logging.getLogger("custos")
CHASE_POLL_SECONDS = 60.0
"""How often each process looks for recipients to remind or escalate (hours matter here)."""


def _dumps(value: object) -> bytes:
    """JSON by orjson (a page of 100 customers: several times faster than the standard
    library); what orjson refuses (a lone surrogate echoed from hostile input, an integer
    past 64 bits) by the standard library, escaped as it escapes it."""
    try:
        return orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, separators=(",", ":")).encode()


def _unavailable(error: GraphQLError) -> GraphQLError | None:
    """A database that cannot be used just now is the client's to retry, not a bug: coded
    DATABASE_UNAVAILABLE (the HTTP status is 503 with Retry-After, see api/schema.py)."""
    original = error.original_error
    if original is None or unavailable_reason(original) is None:
        return None
    return GraphQLError(
        DATABASE_UNAVAILABLE_MESSAGE,
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "DATABASE_UNAVAILABLE", "retryAfter": RETRY_AFTER_SECONDS},
    )


POST_OPERATIONS = OperationType.from_http("POST")
_Operation = tuple[str, dict[str, Any] | None, str | None, dict[str, Any] | None]
"""Query, variables, operation name, extensions."""

DENIED = "custos.denied"
"""The key of a response's denied-field errors between process_result and encode_json."""


class CustosGraphQL(GraphQL[Context, None]):
    def __init__(self, *, services: Services, suggestions: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.services = services
        self.suggestions = suggestions  # "Did you mean" hints: development only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A POST of one JSON operation, what every client sends, is answered here; any
        other request (GraphiQL, a batch, malformed JSON or fields, a streaming `Accept`)
        goes through strawberry's view, which answers it as before."""
        if scope["type"] != "http" or scope["method"] != "POST":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope=scope, receive=receive)
        try:
            response = await self._answer(request)
        except HTTPException as exc:
            response = PlainTextResponse(exc.reason, status_code=exc.status_code)
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        """strawberry's `run` for one operation over HTTP POST, with fewer steps: the body
        is read first (the view reads it again from the request on a fallback)."""
        operation = await self._one_operation(request)
        if operation is None:
            return await self.run(request)
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        query, variables, operation_name, extensions = operation
        try:
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
                allowed_operation_types=POST_OPERATIONS,
                operation_extensions=extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason()) from exc
        except InvalidOperationTypeError as exc:
            raise HTTPException(400, exc.as_http_error_reason("POST")) from exc
        except MissingQueryError as exc:
            raise HTTPException(400, "No GraphQL query found in the request") from exc
        response_data = await self.process_result(request, result)
        request_log.note_graphql(
            request.scope, self.schema, query, operation_name, result.errors, context
        )
        return self.create_response(response_data, sub_response)

    async def _one_operation(self, request: Request) -> _Operation | None:
        """The operation of a plain JSON POST; None for anything the view should judge. The
        media type is matched in any case (RFC 9110), as strawberry's view does not."""
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != "application/json":
            return None
        if self._get_stream_transport_from_headers(request.headers) is not None:
            return None
        try:
            data = self.decode_json(await request.body())
        except json.JSONDecodeError:
            return None
        if isinstance(data, list):
            return None  # a batch: the view refuses it (batching is off)
        if not isinstance(data, dict):  # strawberry's view fails on these (HTTP 500)
            raise HTTPException(400, "The request body must be a JSON object.")
        query, variables = data.get("query"), data.get("variables")
        name, extensions = data.get("operationName"), data.get("extensions")
        if not (
            isinstance(query, str)
            and isinstance(variables, dict | None)
            and isinstance(name, str | None)
            and isinstance(extensions, dict | None)
        ):
            return None
        return query, variables, name, extensions

    def decode_json(self, data: str | bytes) -> object:
        """A body nested deeper than Python's JSON parser recurses, or not UTF-8 at all, is
        malformed JSON like any other (400), not an internal error."""
        try:
            return json.loads(data)
        except (RecursionError, UnicodeDecodeError):
            raise json.JSONDecodeError("not parseable", "", 0) from None

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        """The one place errors are shaped for the client (wherever they were raised, even
        in an extension): unexpected ones masked, every one with `extensions.code`."""
        if result.errors:
            result.errors = [
                _unavailable(e) or for_client(e, suggestions=self.suggestions)
                for e in result.errors
            ]
        response = await super().process_result(request, result)
        context: Context | None = getattr(request.state, "custos_context", None)
        if context is not None and context.denials:
            response[DENIED] = context.denied_errors()  # type: ignore[literal-required]
        return response

    def encode_json(self, data: object) -> str | bytes:
        """The response, encoded by orjson; denied fields' errors (already JSON,
        api/context.py) are written in after the others, without decoding and encoding
        hundreds of alike entries."""
        if not isinstance(data, dict) or not data.get(DENIED):
            return _dumps(data)
        denied = data.pop(DENIED)
        errors = [_dumps(e) for e in data.pop("errors", None) or ()]
        head = _dumps(data)[:-1]
        comma = b"," if len(head) > 1 else b""
        entries = b",".join([*errors, ",".join(denied).encode()])
        return b'%s%s"errors":[%s]}' % (head, comma, entries)

    async def get_context(self, request: Any, response: Any) -> Context:
        viewer = await self.services.sessions.resolve(
            session_token(request), policy_version=self.services.authorizer.version
        )
        request_id = request.scope.get("custos.request_id", "-")
        context = Context(
            request=request,
            response=response,
            services=self.services,
            viewer=viewer,
            request_id=request_id,
            audit=AuditTrail(request_id),
        )
        request.state.custos_context = context  # process_result adds denied fields' errors
        if viewer.is_customer and viewer.subject_id and gpc.sends_gpc(request.headers):
            await gpc.honour_signal(
                services=self.services,
                customer_id=viewer.subject_id,
                meta=context.meta,
                trail=context.audit,
            )
        return context


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": VERSION})


async def readyz(request: Request) -> Response:
    """Ready when the database answers and takes a write (a full disk, a read-only file or
    server, a lock held by another process past the busy timeout: not ready)."""
    try:
        await check_writable()
    except Exception as exc:  # any failure means not ready; the type is enough to log
        reason = unavailable_reason(exc) or type(exc).__name__
        log.warning("readiness check failed: %s", reason)
        return JSONResponse(
            {"status": "unavailable"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return JSONResponse({"status": "ready"})


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    manage_db: bool = True,
) -> Starlette:
    """Build the app. With `manage_db` the lifespan connects, checks migrations and runs
    the mail sender; tests that own the database pass False."""
    settings = settings or get_settings()
    services = services or build_services(settings)
    logs.install()
    logging_setup.install(settings)
    graphql = CustosGraphQL(
        services=services,
        suggestions=not settings.production,
        schema=build_schema(settings),
        graphql_ide=None if settings.production else "graphiql",
        allow_queries_via_get=False,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sender: asyncio.Task[None] | None = None
        notices: asyncio.Task[None] | None = None
        campaigns: asyncio.Task[None] | None = None
        intake: asyncio.Task[None] | None = None
        chasing: asyncio.Task[None] | None = None
        watcher: asyncio.Task[None] | None = None
        retention: asyncio.Task[None] | None = None
        expiry: asyncio.Task[None] | None = None
        versions: asyncio.Task[None] | None = None
        log_tree: asyncio.Task[None] | None = None
        try:  # startup inside: a failed start still closes the database and exits
            if manage_db:
                await init_db(settings.database_url)
                await ensure_migrated(settings.database_url)
                authorizer = await services.load_authorizer()
                watcher = asyncio.create_task(
                    run_policy_watcher(
                        authorizer=authorizer,
                        database_url=settings.database_url,
                        poll_seconds=settings.policy_poll_seconds,
                    )
                )
                expiry = asyncio.create_task(run_expiry_loop(clock=services.clock))
                if settings.metrics_enabled:
                    versions = asyncio.create_task(
                        run_policy_version_loop(
                            services=services, poll_seconds=settings.policy_poll_seconds
                        )
                    )
                await services.passwords.warm_up()
                if settings.mail_poll_seconds > 0:
                    sender = asyncio.create_task(
                        run_sender_loop(
                            backend=services.mail, settings=settings, clock=services.clock
                        )
                    )
                    notices = asyncio.create_task(
                        run_notice_loop(services=services, poll_seconds=settings.mail_poll_seconds)
                    )
                    campaigns = asyncio.create_task(
                        run_campaign_loop(
                            services=services, poll_seconds=settings.mail_poll_seconds
                        )
                    )
                    intake = asyncio.create_task(
                        run_intake_loop(
                            services=services, poll_seconds=settings.intake_poll_seconds
                        )
                    )
                    chasing = asyncio.create_task(
                        run_chase_loop(services=services, poll_seconds=CHASE_POLL_SECONDS)
                    )
                if settings.retention_interval_seconds > 0:
                    retention = asyncio.create_task(
                        run_retention_loop(
                            services=services,
                            interval_seconds=settings.retention_interval_seconds,
                        )
                    )
                if settings.audit_integrate_seconds > 0:
                    log_tree = asyncio.create_task(
                        checkpoints.run_loop(
                            log_config(settings),
                            services.clock.now,
                            integrate_seconds=settings.audit_integrate_seconds,
                            on_refusal=metrics.note_checkpoint_refused,
                        )
                    )
            if manage_db:
                # Everything built so far (schema, policy, modules) lives as long as the
                # process: out of the cyclic collector's way, so that its full passes
                # scan only what requests allocate.
                gc.collect()
                gc.freeze()
                gc.set_threshold(YOUNG_OBJECTS, *gc.get_threshold()[1:])
            yield
        finally:
            tasks = (
                sender,
                notices,
                campaigns,
                intake,
                chasing,
                watcher,
                retention,
                expiry,
                versions,
                log_tree,
            )
            for task in tasks:
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            close_mail = getattr(services.mail, "close", None)
            if close_mail is not None:
                await close_mail()
            if manage_db:
                await close_db()
            services.close()
            metrics.process_exiting()

    routes = [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        Route("/collect", collect, methods=["POST"]),
        Route("/exports/{token}", download_export, methods=["GET", "POST"]),
        Route("/unsubscribe/{token}", unsubscribe_page, methods=["GET", "POST"]),
        Route("/notices/acknowledge", signed_acknowledgement, methods=["POST"]),
        Route("/certificates/{token}", certificate_download, methods=["GET"]),
        Route("/notices/{token}", link_acknowledgement, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *log_routes.ROUTES,
    ]
    if settings.metrics_enabled:  # docs/OBSERVABILITY.md: token, else loopback only
        routes.append(Route("/metrics", metrics_endpoint(settings, services), methods=["GET"]))
    # The privacy centre's pages (docs/PRIVACY_CENTRE.md) come after the API's own routes.
    app = Starlette(routes=[*routes, *centre_routes(settings)], lifespan=lifespan)
    app.add_middleware(GuardMiddleware, settings=settings)
    app.state.services = services
    return app
