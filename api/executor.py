"""graphql-core's executor with one shortcut: a scalar field that shows an attribute of its
object, guarded or not (api/guards.py's plain resolvers), is answered without an info.

graphql-core builds a resolve info for every field it resolves, calls the resolver through
a generic path (arguments, awaitables) and completes the value through another (lists,
objects, abstract types, leaves). A page of 100 customers resolves 400 such scalars; for
them the resolver's `value_of(source, context, nodes, path)` gives the value, serialized
as graphql-core's `complete_leaf_value` does and with its errors. Everything else (objects,
lists, fields with arguments or resolvers of their own, `__typename`) takes the generic
path. The guard's decision and log row are the same on both paths."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLNonNull, GraphQLObjectType, GraphQLScalarType, Undefined
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
        leaf = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
        if not isinstance(leaf, GraphQLScalarType):
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )
        try:
            nodes = [details.node for details in field_details_list]
            value = value_of(source, self.context_value, nodes, path)
            if isinstance(value, Exception):
                raise value
            completed = (
                None
                if value is None or value is Undefined
                else self.complete_leaf_value(leaf, value)
            )
            if completed is None and leaf is not return_type:
                raise TypeError(
                    f"Cannot return null for non-nullable field {parent_type}.{node.name.value}."
                )
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        return completed
