"""The GraphQL schema: every feature's Query and Mutation merged, run through the request
pipeline (api/pipeline.py: caches, limits, input rules, the decision log), with errors
logged without their messages and no introspection in production."""

from __future__ import annotations

import logging
import traceback
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from api.access.schema import AccessMutation, AccessQuery
from api.audit.schema import AuditQuery
from api.consent.schema import ConsentMutation, ConsentQuery
from api.customers.schema import CustomerMutation, CustomerQuery
from api.customers.staff import CustomerDirectoryQuery
from api.db import unavailable_reason
from api.document_limits import limits_of
from api.errors import is_client_error
from api.guards import install_plain_attributes, install_plain_guards
from api.insights.schema import InsightQuery
from api.marketing.campaign_schema import CampaignMutation, CampaignQuery
from api.marketing.schema import UnsubscribeMutation
from api.pipeline import RequestPipeline
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
    extensions: list[Any] = [
        lambda: RequestPipeline(max_tokens=settings.max_tokens, limits=limits_of(settings))
    ]
    if settings.production:
        extensions.append(DisableIntrospection)
    schema = CustosSchema(query=Query, mutation=Mutation, extensions=extensions)
    install_plain_guards(schema._schema)
    install_plain_attributes(schema._schema)
    return schema


def schema_sdl() -> str:
    """The schema as published in `schema.graphql` (development settings: introspection on)."""
    return build_schema(Settings()).as_str() + "\n"
