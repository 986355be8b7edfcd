"""The document limits, checked before anything expands a document (api/pipeline.py calls
`refusal` before validation: the standard rules walk fragments, so they never see a
document that was refused).

A document is measured with its variables (api/query_cost.py, linear in the text) and one
over a limit gets `QUERY_TOO_COMPLEX`. The figures depend on the document and on the
values of its integer variables (`first` can come from one), so they are remembered per
parsed document and those values: the same document sent again with the same page size is
not measured again. Only integers and the variables' names enter the key, never a text
value (which may be a password)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema

from api.query_cost import DocumentRefused, Figures, Limits, check_limits, measure_document
from api.settings import Settings

TOO_COMPLEX = "QUERY_TOO_COMPLEX"
MEASURES_KEPT = 512

_Key = tuple[int, tuple[tuple[str, int | None], ...]]
_measures: dict[_Key, tuple[DocumentNode, Figures | DocumentRefused]] = {}


def limits_of(settings: Settings) -> Limits:
    return Limits(
        depth=settings.max_query_depth,
        aliases=settings.max_aliases,
        fields=settings.max_query_fields,
        cost=settings.max_query_cost,
    )


def _figures(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]
) -> Figures | DocumentRefused:
    try:
        return measure_document(schema, document, variables)
    except DocumentRefused as refused:
        return refused.with_traceback(None)  # may be kept: without the frames it came from


def _measure(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]
) -> Figures | DocumentRefused:
    """The document's figures, or why it cannot be measured; remembered while the
    document is (it is held here, so its id cannot be reused meanwhile)."""
    if len(variables) > 64:  # not worth a key: measure it (linear in the text anyway)
        return _figures(schema, document, variables)
    ints = tuple(sorted((k, v if isinstance(v, int) else None) for k, v in variables.items()))
    key = (id(document), ints)
    kept = _measures.get(key)
    if kept is not None and kept[0] is document:
        return kept[1]
    figures = _figures(schema, document, variables)
    if len(_measures) >= MEASURES_KEPT:
        del _measures[next(iter(_measures))]  # the oldest
    _measures[key] = (document, figures)
    return figures


def refusal(
    schema: GraphQLSchema, document: DocumentNode, variables: object, limits: Limits
) -> GraphQLError | None:
    """The QUERY_TOO_COMPLEX error for a document over a limit, else None."""
    figures = _measure(schema, document, variables if isinstance(variables, Mapping) else {})
    refused = figures if isinstance(figures, DocumentRefused) else None
    if not isinstance(figures, DocumentRefused):
        try:
            check_limits(figures, limits)
        except DocumentRefused as over:
            refused = over
    if refused is None:
        return None
    extensions: dict[str, object] = {"code": TOO_COMPLEX, "limit": refused.limit}
    if refused.maximum is not None:
        extensions["maximum"] = refused.maximum
    return GraphQLError(str(refused), extensions=extensions)
