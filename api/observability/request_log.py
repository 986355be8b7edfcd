"""One line and one observation per request, written by the outer middleware when the
answer is out (api/http_guard.py); the GraphQL view notes what only it knows on the way
(`note_graphql`): the operation, the outcome of its result, and who asked.

What a line holds (docs/OBSERVABILITY.md): the request id, the method and route (the
route's template, `/exports/{token}`, never the path with its token), the operation, the
actor's kind (and an employee's roles), the outcome, the HTTP status and the duration. Never
an id of a person, a personal-data value, a token, a password or an address.

The operation is named by the schema, not by the client: the root fields the document
selects (`customers`, `login`, `me,currentPolicy`), each checked against the schema's root
type; anything else (a document that does not parse, an unknown field) is `anonymous`, and
past `MAX_OPERATION_LABELS` distinct names a process says `other`. The client's
`operationName` is free text of any length, so it is never a label or a log value."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from time import perf_counter
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    SelectionNode,
    get_operation_ast,
)
from starlette.types import Scope

from api.observability.metrics import observe_request
from api.pipeline import CACHED_DOCUMENTS, cached_parse

log = logging.getLogger("custos.request")

# Outcomes: the label values of custos_requests_total and the log's `outcome`.
OK = "ok"
DENIED = "denied"
"""A field or operation refused: FORBIDDEN, UNAUTHENTICATED, or a 401/403 outside GraphQL."""
ERROR = "error"
"""An error in an executed operation (NOT_FOUND, VALIDATION, an unexpected one), or a 5xx."""
REFUSED = "refused"
"""The request itself was refused: a document that does not parse or validate, one over a
limit, a text argument that breaks its rule, or an HTTP 4xx (400, 404, 408, 413...)."""
RATE_LIMITED = "rate_limited"
UNAVAILABLE = "unavailable"
"""503: the database could not be used, or the deadline passed."""

ANONYMOUS = "anonymous"
OTHER = "other"
NO_OPERATION = "-"
"""The operation of a request that is not to /graphql."""
MAX_OPERATION_LABELS = 200
_META_FIELDS = frozenset({"__typename", "__schema", "__type"})
_DENIED_CODES = frozenset({"FORBIDDEN", "UNAUTHENTICATED"})

# Keys in the ASGI scope, set by the GraphQL view for the middleware.
OPERATION = "custos.operation"
OUTCOME = "custos.outcome"
ACTOR = "custos.actor"
_NOBODY = ("anonymous", "")

_REQUEST_ID = re.compile(rb"[A-Za-z0-9_-]{1,64}")

_labels: set[str] = set()


def client_request_id(value: bytes | None) -> str | None:
    """An incoming `X-Request-Id` when it is a short token (letters, digits, `-`, `_`, at
    most 64), else None: the request keeps only the id the server drew."""
    if value is None or _REQUEST_ID.fullmatch(value) is None:
        return None
    return value.decode("ascii")


def _root_fields(document: DocumentNode, operation_name: str | None) -> tuple[str, set[str]]:
    """The operation's type and the names of the fields it selects at its root, through
    fragments."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return "", set()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: set[str] = set()
    spread: set[str] = set()
    stack: list[SelectionNode] = list(operation.selection_set.selections)
    while stack:
        node = stack.pop()
        if isinstance(node, FieldNode):
            names.add(node.name.value)
        elif isinstance(node, InlineFragmentNode):
            stack.extend(node.selection_set.selections)
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name not in spread and name in fragments:
                spread.add(name)
                stack.extend(fragments[name].selection_set.selections)
    return operation.operation.value, names


@lru_cache(maxsize=CACHED_DOCUMENTS)
def _operation_label(schema: Any, query: str, operation_name: str | None) -> str:
    try:  # the pipeline parsed it just now, with these arguments: a cache hit
        document = cached_parse(query, max_tokens=schema.pipeline.max_tokens)
    except Exception:
        return ANONYMOUS
    kind, names = _root_fields(document, operation_name)
    root = {
        "query": schema._schema.query_type,
        "mutation": schema._schema.mutation_type,
        "subscription": schema._schema.subscription_type,
    }.get(kind)
    if root is None or not names:
        return ANONYMOUS
    if any(name not in root.fields and name not in _META_FIELDS for name in names):
        return ANONYMOUS
    label = ",".join(sorted(names))
    if label not in _labels:
        if len(_labels) >= MAX_OPERATION_LABELS:
            return OTHER
        _labels.add(label)
    return label


def operation_label(schema: Any, query: str, operation_name: str | None) -> str:
    """The bounded name of an operation (see the module's docstring)."""
    return _operation_label(schema, query, operation_name)


def graphql_outcome(errors: Sequence[GraphQLError] | None, denied_fields: bool) -> str:
    """ok; denied (a refused field or operation); refused (only errors without a path: the
    document or its arguments, before anything ran); error (any other)."""
    if not errors:
        return DENIED if denied_fields else OK
    executed = denied_fields
    for error in errors:
        if (error.extensions or {}).get("code") in _DENIED_CODES:
            return DENIED
        executed = executed or error.path is not None
    if denied_fields:
        return DENIED
    return ERROR if executed else REFUSED


def note_graphql(
    scope: Scope,
    schema: Any,
    query: str,
    operation_name: str | None,
    errors: Sequence[GraphQLError] | None,
    context: Any,
) -> None:
    """What the GraphQL view knows of a request, for its line and its metrics."""
    outcome = graphql_outcome(errors, bool(context.denials))
    unparsed = outcome == REFUSED and any(
        (e.extensions or {}).get("code") == "GRAPHQL_PARSE_FAILED" for e in errors or ()
    )
    scope[OPERATION] = ANONYMOUS if unparsed else operation_label(schema, query, operation_name)
    scope[OUTCOME] = outcome
    viewer = context.viewer
    roles = ",".join(sorted(viewer.roles)) if viewer.kind == "employee" else ""
    scope[ACTOR] = (viewer.kind, roles)


def outcome_of(status: int, graphql: str | None) -> str:
    if status == 503:
        return UNAVAILABLE
    if status == 429:
        return RATE_LIMITED
    if status >= 500 or status == 0:  # 0: no answer was started
        return ERROR
    if graphql is not None:
        return graphql
    if status in (401, 403):
        return DENIED
    return REFUSED if status >= 400 else OK


def finish(
    scope: Scope,
    *,
    status: int,
    started: float,
    request_id: str,
    client_id: str | None,
    count: bool,
) -> None:
    """The request's observation and its log line, once its answer is out."""
    seconds = perf_counter() - started
    route = getattr(scope.get("route"), "path", None) or OTHER
    operation = scope.get(OPERATION) or (ANONYMOUS if route == "/graphql" else NO_OPERATION)
    outcome = outcome_of(status, scope.get(OUTCOME))
    if count:
        observe_request(route, operation, outcome, seconds)
    if not log.isEnabledFor(logging.INFO):
        return
    kind, roles = scope.get(ACTOR, _NOBODY)
    extra: dict[str, object] = {
        "request_id": request_id,
        "method": scope.get("method", ""),
        "route": route,
        "operation": operation,
        "actor": kind,
        "outcome": outcome,
        "status": status,
        "duration_ms": round(seconds * 1000, 2),
    }
    if roles:
        extra["roles"] = roles
    if client_id is not None:
        extra["client_request_id"] = client_id
    log.info("request", extra=extra)


LOG_FIELDS = (
    "request_id",
    "client_request_id",
    "method",
    "route",
    "operation",
    "actor",
    "roles",
    "outcome",
    "status",
    "duration_ms",
)
"""The request line's fields (api/observability/logging_setup.py adds them to the line)."""
