"""The schema extensions that refuse a costly document before anything expands it.

`DocumentLimits` measures every request's document with its variables (api/query_cost.py,
linear in the text) and refuses one over a limit with `QUERY_TOO_COMPLEX`. It runs before
validation, and `CachedValidation` validates only documents it let through: the standard
rules (overlapping fields, for one) walk fragments, so they never see a document that was
refused. Validation results are cached per document, but the limits are not: `first` can
come from a variable, so a document that was cheap once is measured again every time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension, ValidationCache

from api.query_cost import DocumentRefused, Limits, check_limits, measure_document
from api.settings import Settings

TOO_COMPLEX = "QUERY_TOO_COMPLEX"


def limits_of(settings: Settings) -> Limits:
    return Limits(
        depth=settings.max_query_depth,
        aliases=settings.max_aliases,
        fields=settings.max_query_fields,
        cost=settings.max_query_cost,
    )


class DocumentLimits(SchemaExtension):
    def __init__(self, *, limits: Limits) -> None:
        super().__init__()
        self.limits = limits

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        variables = context.variables if isinstance(context.variables, Mapping) else {}
        if context.graphql_document is not None and context.pre_execution_errors is None:
            try:
                figures = measure_document(
                    context.schema._schema, context.graphql_document, variables
                )
                check_limits(figures, self.limits)
            except DocumentRefused as refused:
                extensions: dict[str, object] = {"code": TOO_COMPLEX, "limit": refused.limit}
                if refused.maximum is not None:
                    extensions["maximum"] = refused.maximum
                context.pre_execution_errors = [GraphQLError(str(refused), extensions=extensions)]
        yield


class CachedValidation(ValidationCache):
    """strawberry's validation cache, skipped for a document already refused."""

    def on_validate(self) -> Iterator[None]:
        if self.execution_context.pre_execution_errors is None:
            yield from super().on_validate()
        else:
            yield
