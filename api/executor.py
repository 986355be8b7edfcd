"""graphql-core's executor with one shortcut: a field that shows an attribute of its object,
guarded or not (api/guards.py's plain resolvers), is answered without a resolve info when
it is a scalar or an object type that needs none (no `is_type_of`).

graphql-core builds a resolve info for every field it resolves, calls the resolver through
a generic path (arguments, awaitables) and completes the value through another (lists,
objects, abstract types, leaves). A page of 100 customers resolves 600 such fields; for
them the resolver's `value_of(source, context, nodes, path)` gives the value, completed as
graphql-core's `complete_value` completes a scalar or an object, with its errors. Lists,
abstract types, fields with arguments or resolvers of their own, `__typename` and anything
under middleware take the generic path. The guard's decision and log row are the same on
both paths."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from graphql import (
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class CustosExecutor(StrawberryGraphQLCoreExecutionContext):
    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any = None,
    ) -> Any:
        node = field_details_list[0].node
        field_def = self.schema.get_field(parent_type, node.name.value)
        value_of = getattr(field_def.resolve, "value_of", None) if field_def else None
        if value_of is None or self.middleware_manager or node.arguments:
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )
        return_type = field_def.type  # type: ignore[union-attr]
        named = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        scalar = isinstance(named, GraphQLScalarType)
        if not scalar and not (isinstance(named, GraphQLObjectType) and not named.is_type_of):
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )
        try:
            nodes = [details.node for details in field_details_list]
            value = value_of(source, self.context_value, nodes, path)
            if isinstance(value, Exception):
                raise value
            if value is None or value is Undefined:
                completed = None
            elif scalar:
                completed = self.complete_leaf_value(named, value)  # type: ignore[arg-type]
            else:  # an object type without is_type_of: its completion needs no info
                completed = self.complete_object_value(
                    named,  # type: ignore[arg-type]  # an object type, tested above
                    field_details_list,
                    None,  # type: ignore[arg-type]
                    path,
                    value,
                    position_context,
                )
                if self.is_awaitable(completed):
                    return self._completed_later(completed, return_type, field_details_list, path)
            if completed is None and named is not return_type:
                raise TypeError(
                    f"Cannot return null for non-nullable field {parent_type}.{node.name.value}."
                )
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        return completed

    async def _completed_later(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        path: Path,
    ) -> Any:
        """An object whose fields complete later: errors handled as graphql-core does."""
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
