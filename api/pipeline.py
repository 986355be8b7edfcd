"""What every GraphQL operation passes through, in one schema extension.

In order: the token limit and a cached parse (`on_parse`); the document limits, then a
cached validation of what they let through (`on_validate`, api/document_limits.py); the
text arguments held to their rules, then execution, inside one transaction with the
decision log for a mutation (`on_execute`, api/hygiene/); and at the end, a RATE_LIMITED or
DATABASE_UNAVAILABLE error carried to HTTP (`on_operation`).

One extension, not one per concern: strawberry enters every extension's hook for every
phase of every request (it inspects each hook and builds a context manager for it), which
cost more CPU than a light query's own work when each concern was its own extension. The
concerns stay in their modules as plain functions; this class only calls them in order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import lru_cache
from typing import Any

from graphql import ExecutionResult, FieldNode, get_operation_ast
from graphql.language.parser import parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType
from tortoise.transactions import in_transaction

from api.db import RETRY_AFTER_SECONDS, unavailable_reason
from api.document_limits import refusal
from api.errors import RateLimited
from api.hygiene import input_errors
from api.query_cost import Limits

CACHED_DOCUMENTS = 256
"""Parsed and validated documents kept per process: a shop's frontend sends a few dozen
distinct ones; a client sending new text every time only misses the cache."""

cached_parse = lru_cache(maxsize=CACHED_DOCUMENTS)(parse)
cached_validation = lru_cache(maxsize=CACHED_DOCUMENTS)(validate_document)

# Sign-in checks the password, and registration hashes it, before their own transactions
# begin (api/security/authn.py, api/customers/service.py): wrapping them in the operation's
# transaction would hold it open during hashing (on SQLite, the whole database), so a flood
# of registrations would queue every sign-in behind it. Registration writes no audit event.
OWN_TRANSACTION = frozenset({"login", "staffLogin", "register"})


def _root_fields(execution_context: ExecutionContext) -> set[str]:
    document = execution_context.graphql_document
    operation = get_operation_ast(document, execution_context.operation_name) if document else None
    if operation is None:
        return set()
    selections = operation.selection_set.selections
    if not all(isinstance(s, FieldNode) for s in selections):
        return set()  # a fragment at the root: treat as any other mutation
    return {s.name.value for s in selections if isinstance(s, FieldNode)}


def _http_signal(execution_context: ExecutionContext) -> None:
    """A RATE_LIMITED error: status 429 and `Retry-After`; a database that cannot be used
    (app.py codes the error DATABASE_UNAVAILABLE): 503 and `Retry-After`."""
    result = execution_context.result
    response = execution_context.context.response
    for error in getattr(result, "errors", None) or []:
        if isinstance(error.original_error, RateLimited):
            response.status_code = 429
            response.headers["Retry-After"] = str(error.original_error.retry_after)
            return
        if error.original_error is not None and unavailable_reason(error.original_error):
            response.status_code = 503
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return


class RequestPipeline(SchemaExtension):
    def __init__(self, *, max_tokens: int, limits: Limits) -> None:
        super().__init__()
        self.max_tokens = max_tokens
        self.limits = limits

    def on_operation(self) -> Iterator[None]:
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield
        _http_signal(self.execution_context)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = cached_parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        """The limits first: the standard rules (overlapping fields, for one) walk
        fragments, so they never see a document the limits refused."""
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            refused = refusal(context.schema._schema, document, context.variables, self.limits)
            if refused is not None:
                context.pre_execution_errors = [refused]
            elif context.validation_rules:
                context.pre_execution_errors = cached_validation(
                    context.schema._schema, document, context.validation_rules
                )
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        """A refused text argument becomes the result, which strawberry returns without
        executing anything; the decision log is written in one batch at the end, for a
        mutation inside one transaction with its writes, so no write goes unlogged."""
        context = self.execution_context
        errors = input_errors(context)
        if errors:
            context.result = ExecutionResult(data=None, errors=errors)
        trail: Any = context.context.audit
        mutation = context.operation_type is OperationType.MUTATION
        roots = _root_fields(context) if mutation else set()
        if mutation and not (roots and roots <= OWN_TRANSACTION):
            async with in_transaction():
                yield
                await trail.flush()
        else:
            yield
            await trail.flush(context.context.services.audit_writer)
