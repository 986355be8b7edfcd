"""The GraphQL schema: every feature's Query and Mutation merged, run through the request
pipeline (api/pipeline.py: caches, limits, input rules, the decision log), with errors
logged without their messages and no introspection in production."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule, specified_rules
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from api.access.schema import AccessMutation, AccessQuery
from api.audit.proof_types import LOG_INDEX, LogIndex
from api.audit.schema import AuditMutation, AuditQuery
from api.consent.schema import ConsentMutation, ConsentQuery
from api.customers.schema import CustomerMutation, CustomerQuery
from api.customers.staff import CustomerDirectoryQuery
from api.db import unavailable_reason
from api.document_limits import limits_of
from api.errors import is_client_error
from api.executor import CustosExecutor
from api.guards import install_plain_attributes, install_plain_guards
from api.insights.schema import InsightQuery
from api.marketing.campaign_schema import CampaignMutation, CampaignQuery
from api.marketing.schema import UnsubscribeMutation
from api.permissions import install_plain_permissions
from api.pipeline import RequestPipeline
from api.policy.schema import PolicyMutation, PolicyQuery
from api.recipients.schema import RecipientsMutation, RecipientsQuery
from api.recovery.schema import RecoveryMutation
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
        RecipientsQuery,
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
        RecoveryMutation,
        ConsentMutation,
        PolicyMutation,
        StaffMutation,
        AccessMutation,
        SupportMutation,
        HoldMutation,
        RightsMutation,
        RecipientsMutation,
        CampaignMutation,
        UnsubscribeMutation,
        RetentionMutation,
        SharingMutation,
        AuditMutation,
    ),
)


class CustosSchema(strawberry.Schema):
    pipeline: RequestPipeline

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """strawberry's contract, run through the request pipeline (api/pipeline.py)."""
        context = self._create_execution_context(
            query=query,
            allowed_operation_types=DEFAULT_ALLOWED_OPERATION_TYPES
            if allowed_operation_types is None
            else allowed_operation_types,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
        )
        return await self.pipeline.run(self, context)

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
    rules = tuple(specified_rules)
    if settings.production:
        rules += (NoSchemaIntrospectionCustomRule,)
    schema = CustosSchema(
        query=Query,
        mutation=Mutation,
        execution_context_class=CustosExecutor,
        config=StrawberryConfig(scalar_map={LogIndex: LOG_INDEX}),
    )
    schema.pipeline = RequestPipeline(
        max_tokens=settings.max_tokens, limits=limits_of(settings), rules=rules
    )
    install_plain_guards(schema._schema)
    install_plain_attributes(schema._schema)
    install_plain_permissions(schema._schema, schema.config.info_class)
    return schema


def schema_sdl() -> str:
    """The schema as published in `schema.graphql` (development settings: introspection on)."""
    return build_schema(Settings()).as_str() + "\n"
