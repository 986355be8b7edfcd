"""The edge check: before any resolver runs, every text argument of the operation is held to
its rule (api/hygiene/registry.py). One that breaks it refuses the whole operation with a
top-level VALIDATION error naming the argument, so nothing is read, written or logged for a
half-done mutation, and no resolver, database or mail header ever sees such a value."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from api.hygiene.registry import rule_for
from api.hygiene.rules import problem
from api.hygiene.walk import text_arguments

MAX_ERRORS = 10
"""Enough to fix a form at once; a flood of bad list items is not worth answering in full."""


def input_errors(context: ExecutionContext) -> list[GraphQLError]:
    """One error per argument that breaks its rule; the message never quotes the value."""
    if context.graphql_document is None:
        return []
    errors: list[GraphQLError] = []
    arguments = text_arguments(
        context.schema._schema,
        context.graphql_document,
        context.operation_name,
        context.variables,
    )
    for argument in arguments:
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


class InputHygiene(SchemaExtension):
    """Runs first in execution: a refused operation gets its errors as its result, which
    strawberry returns without executing anything."""

    def on_execute(self) -> Iterator[None]:
        errors = input_errors(self.execution_context)
        if errors:
            self.execution_context.result = ExecutionResult(data=None, errors=errors)
        yield
