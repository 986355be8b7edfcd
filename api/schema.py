"""The GraphQL schema: every feature's Query and Mutation merged, plus the hygiene
extensions of DESIGN section 7 (caches, limits, masking, no introspection in production)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import strawberry
from graphql import FieldNode, GraphQLError, get_operation_ast
from strawberry.extensions import (
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType
from tortoise.transactions import in_transaction

from api.access.schema import AccessMutation, AccessQuery
from api.audit.schema import AuditQuery
from api.consent.schema import ConsentMutation, ConsentQuery
from api.customers.schema import CustomerMutation, CustomerQuery
from api.customers.staff import CustomerDirectoryQuery
from api.db import RETRY_AFTER_SECONDS, unavailable_reason
from api.document_limits import CachedValidation, DocumentLimits, limits_of
from api.errors import RateLimited, is_client_error
from api.hygiene import InputHygiene
from api.insights.schema import InsightQuery
from api.marketing.campaign_schema import CampaignMutation, CampaignQuery
from api.marketing.schema import UnsubscribeMutation
from api.policy.schema import PolicyMutation, PolicyQuery
from api.register.schema import RegisterQuery
from api.retention.schema import RetentionMutation, RetentionQuery
from api.rights.holds_schema import HoldMutation, HoldQuery
from api.rights.schema import RightsMutation, RightsQuery
from api.settings import Settings
from api.sharing.schema import SharingMutation, SharingQuery
from api.staff.schema import StaffMutation, StaffQuery
from api.support.schema import SupportMutation, SupportQuery

log = logging.getLogger("custos.graphql")

Query = merge_types(
    "Query",
    (
        CustomerQuery,
        CustomerDirectoryQuery,
        ConsentQuery,
        PolicyQuery,
        StaffQuery,
        AccessQuery,
        SupportQuery,
        AuditQuery,
        InsightQuery,
        HoldQuery,
        RightsQuery,
        CampaignQuery,
        RetentionQuery,
        SharingQuery,
        RegisterQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        CustomerMutation,
        ConsentMutation,
        PolicyMutation,
        StaffMutation,
        AccessMutation,
        SupportMutation,
        HoldMutation,
        RightsMutation,
        CampaignMutation,
        UnsubscribeMutation,
        RetentionMutation,
        SharingMutation,
    ),
)


class HttpSignals(SchemaExtension):
    """Carries a RATE_LIMITED error to HTTP: status 429 and `Retry-After`; and a database
    that cannot be used (issue 15): 503 and `Retry-After` (app.py codes the error
    DATABASE_UNAVAILABLE)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        response = self.execution_context.context.response
        for error in getattr(result, "errors", None) or []:
            if isinstance(error.original_error, RateLimited):
                response.status_code = 429
                response.headers["Retry-After"] = str(error.original_error.retry_after)
                return
            if error.original_error is not None and unavailable_reason(error.original_error):
                response.status_code = 503
                response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                return


# Sign-in checks the password, and registration hashes it, before their own transactions
# begin (api/security/authn.py, api/customers/service.py): wrapping them in the operation's
# transaction would hold it open during hashing (on SQLite, the whole database), so a flood
# of registrations would queue every sign-in behind it. Registration writes no audit event.
_OWN_TRANSACTION = frozenset({"login", "staffLogin", "register"})


def _root_fields(execution_context: ExecutionContext) -> set[str]:
    document = execution_context.graphql_document
    operation = get_operation_ast(document, execution_context.operation_name) if document else None
    if operation is None:
        return set()
    selections = operation.selection_set.selections
    if not all(isinstance(s, FieldNode) for s in selections):
        return set()  # a fragment at the root: treat as any other mutation
    return {s.name.value for s in selections if isinstance(s, FieldNode)}


class AuditFlush(SchemaExtension):
    """Writes the request's decision log in one batch at the end of execution; for a
    mutation, inside one transaction with its writes, so no write goes unlogged."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        mutation = self.execution_context.operation_type is OperationType.MUTATION
        roots = _root_fields(self.execution_context) if mutation else set()
        if mutation and not (roots and roots <= _OWN_TRANSACTION):
            async with in_transaction():
                yield
                await context.audit.flush()
        else:
            yield
            await context.audit.flush(context.services.audit_writer)


class CustosSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Log unexpected errors by type, path and frames: never their message, which may
        carry personal data (a database error quotes the row)."""
        request_id = getattr(getattr(execution_context, "context", None), "request_id", "-")
        for error in errors:
            original = error.original_error
            if original is None or is_client_error(error):
                continue
            reason = unavailable_reason(original)
            if reason is not None:  # expected in an outage: one line, no frames
                log.warning("database unavailable (request %s): %s", request_id, reason)
                continue
            frames = traceback.extract_tb(original.__traceback__)
            where = " < ".join(f"{f.filename}:{f.lineno} {f.name}" for f in reversed(frames[-6:]))
            log.error(
                "unexpected %s at %s (request %s): %s",
                type(original).__name__,
                error.path,
                request_id,
                where,
            )


def build_schema(settings: Settings) -> strawberry.Schema:
    # Order matters: the token limit stops the parser, DocumentLimits refuses a costly
    # document before CachedValidation's rules expand its fragments (api/document_limits.py).
    limits = limits_of(settings)
    extensions: list[Any] = [
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        ParserCache,
        lambda: DocumentLimits(limits=limits),
        CachedValidation,
        InputHygiene,
        HttpSignals,
        AuditFlush,
    ]
    if settings.production:
        extensions.append(DisableIntrospection)
    return CustosSchema(query=Query, mutation=Mutation, extensions=extensions)


def schema_sdl() -> str:
    """The schema as published in `schema.graphql` (development settings: introspection on)."""
    return build_schema(Settings()).as_str() + "\n"
