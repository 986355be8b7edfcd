"""What every GraphQL operation passes through, in order, in one function.

The token limit and a cached parse; the operation type the transport allows; the document
limits, then a cached validation of what they let through (api/document_limits.py); the
text arguments held to their rules (api/hygiene/); execution, inside one transaction with
the decision log for a mutation; unexpected errors logged (the schema's `process_errors`);
and at the end, a RATE_LIMITED or DATABASE_UNAVAILABLE error carried to HTTP.

It replaces strawberry's `Schema.execute` (api/schema.py), keeping its contract (the same
exceptions for a missing query or a refused operation type, errors logged once, the same
result), without its extension runner: strawberry enters every extension's hook for every
phase of every request (it inspects each hook and builds a context manager for it), which
cost more CPU than a light query's own work. The concerns stay in their modules as plain
functions; this module only calls them in order."""

from __future__ import annotations

from functools import lru_cache
from inspect import isawaitable
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import FieldNode, GraphQLError, execute, get_operation_ast, specified_rules
from graphql.language.parser import parse
from graphql.validation import ASTValidationRule
from strawberry.exceptions import MissingQueryError
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType
from tortoise.transactions import in_transaction

from api.db import RETRY_AFTER_SECONDS, unavailable_reason
from api.document_limits import refusal
from api.errors import RateLimited, Unauthenticated
from api.hygiene import input_errors
from api.query_cost import Limits
from api.serial import lock_customer, session_open

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


class RequestPipeline:
    def __init__(
        self,
        *,
        max_tokens: int,
        limits: Limits,
        rules: tuple[type[ASTValidationRule], ...] = tuple(specified_rules),
    ) -> None:
        self.max_tokens = max_tokens
        self.limits = limits
        self.rules = rules
        """The validation rules: graphql-core's own, and in production no introspection."""

    async def run(self, schema: Any, context: ExecutionContext) -> ExecutionResult:
        """`schema` is the strawberry schema: its `process_errors` logs what is unexpected."""
        if not context.query:
            raise MissingQueryError
        try:
            document = cached_parse(context.query, max_tokens=self.max_tokens)
        except Exception as error:  # a syntax error or the token limit
            return _finish(schema, context, [_as_graphql_error(error)])
        context.graphql_document = document
        try:
            operation_type = context.operation_type
        except RuntimeError as error:
            raise CannotGetOperationTypeError(context.operation_name) from error
        if operation_type not in context.allowed_operations:
            raise InvalidOperationTypeError(operation_type)
        try:
            # the limits first: the standard rules (overlapping fields, for one) walk
            # fragments, so they never see a document the limits refused
            core = schema._schema
            refused = refusal(core, document, context.variables, self.limits)
            errors = [refused] if refused else cached_validation(core, document, self.rules)
            if errors:
                return _finish(schema, context, errors)
            result = await self._execute(schema, context, operation_type)
        except Exception as error:  # an outage beginning a transaction, for one
            return _finish(schema, context, [_as_graphql_error(error)])
        return _finish(schema, context, result.errors, result.data)

    async def _execute(
        self, schema: Any, context: ExecutionContext, operation_type: OperationType
    ) -> GraphQLExecutionResult:
        """A refused text argument is the result, and nothing runs; the decision log is
        written in one batch at the end, for a mutation inside one transaction with its
        writes, so no write goes unlogged."""
        errors = input_errors(context)
        if errors:
            return GraphQLExecutionResult(data=None, errors=errors)
        trail: Any = context.context.audit
        if operation_type is OperationType.MUTATION:
            roots = _root_fields(context)
            if not (roots and roots <= OWN_TRANSACTION):
                async with in_transaction() as conn:
                    if not await _account_open(context.context, conn):
                        return GraphQLExecutionResult(data=None, errors=[_signed_out()])
                    result = await _graphql_execute(schema, context)
                    await trail.flush()
                return result
        result = await _graphql_execute(schema, context)
        await trail.flush(context.context.services.audit_writer)
        return result


async def _account_open(context: Any, conn: Any) -> bool:
    """A signed-in customer's mutation first takes their row's lock (api/serial.py), the
    lock their erasure holds while it runs, then checks that the session it came with is
    still open: a request that passed its sign-in check just before the customer's
    erasure (or a sign-out, or a password change elsewhere) committed writes nothing
    after it, where it would leave a row about the erased customer (a consent record with
    their IP, a support case, a request). Other viewers: nothing to check."""
    viewer = context.viewer
    if not viewer.is_customer or viewer.session_id is None:
        return True
    customer_id = viewer.subject_id
    return await lock_customer(conn, customer_id) and await session_open(
        conn, customer_id, viewer.session_id
    )


def _signed_out() -> GraphQLError:
    error = Unauthenticated()
    return GraphQLError(str(error), extensions=error.extensions, original_error=error)


async def _graphql_execute(schema: Any, context: ExecutionContext) -> GraphQLExecutionResult:
    result = execute(
        schema._schema,
        context.graphql_document,  # type: ignore[arg-type]  # parsed by now
        root_value=context.root_value,
        context_value=context.context,
        variable_values=context.variables,
        operation_name=context.operation_name,
        is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
        executor_class=schema.execution_context_class,
        operation_extensions=context.operation_extensions,
    )
    return await result if isawaitable(result) else result


def _as_graphql_error(error: Exception) -> GraphQLError:
    if isinstance(error, GraphQLError):
        return error
    return GraphQLError(str(error), original_error=error)


def _finish(
    schema: Any,
    context: ExecutionContext,
    errors: list[GraphQLError] | None,
    data: dict[str, Any] | None = None,
) -> ExecutionResult:
    """Errors logged once (the schema's `process_errors`), the result kept on the context
    and a 429 or 503 signalled to HTTP."""
    if errors:
        context.pre_execution_errors = errors
        schema._process_errors(errors, context)
    result = ExecutionResult(data=data, errors=errors or None)
    context.result = result
    _http_signal(context)
    return result
