"""The edge check: before any resolver runs, every text argument of the operation is held to
its rule (api/hygiene/registry.py). One that breaks it refuses the whole operation with a
top-level VALIDATION error naming the argument, so nothing is read, written or logged for a
half-done mutation, and no resolver, database or mail header ever sees such a value.
api/pipeline.py calls `input_errors` first in execution."""

from __future__ import annotations

from graphql import DocumentNode, GraphQLError, GraphQLSchema
from strawberry.types import ExecutionContext

from api.hygiene.registry import rule_for
from api.hygiene.rules import problem
from api.hygiene.walk import text_arguments

MAX_ERRORS = 10
"""Enough to fix a form at once; a flood of bad list items is not worth answering in full."""

CLEAN_KEPT = 512
_clean: dict[tuple[int, str | None], DocumentNode] = {}
"""Operations without variables whose text arguments all keep their rules."""


def _walk(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, object] | None,
) -> list[GraphQLError]:
    errors: list[GraphQLError] = []
    for argument in text_arguments(schema, document, operation_name, variables):
        why = problem(argument.value, rule_for(argument.key, argument.scalar))
        if why is None:
            continue
        errors.append(
            GraphQLError(
                f"`{argument.path}` {why}",
                nodes=[argument.node],
                extensions={"code": "VALIDATION", "field": argument.path},
            )
        )
        if len(errors) == MAX_ERRORS:
            break
    return errors


def input_errors(context: ExecutionContext) -> list[GraphQLError]:
    """One error per argument that breaks its rule; the message never quotes the value.
    An operation without variables is a function of its document alone: one found clean
    is remembered with its parsed document (held here, so its id is not reused)."""
    document = context.graphql_document
    if document is None:
        return []
    if context.variables:
        return _walk(context.schema._schema, document, context.operation_name, context.variables)
    key = (id(document), context.operation_name)
    if _clean.get(key) is document:
        return []
    errors = _walk(context.schema._schema, document, context.operation_name, None)
    if not errors:
        if len(_clean) >= CLEAN_KEPT:
            del _clean[next(iter(_clean))]  # the oldest
        _clean[key] = document
    return errors
