"""Every String and ID value an operation passes as an argument, wherever it is written:
literal or variable, on a root or a nested field, inside fragments, input objects and lists,
and defaults. Values are read after graphql-core's own coercion, as resolvers get them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    get_operation_ast,
    type_from_ast,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values

TEXT_SCALARS = frozenset({"String", "ID"})


@dataclass(frozen=True, slots=True)
class TextArgument:
    key: str
    """Where it is declared: `Type.field.argument` or `InputType.field` (registry keys)."""
    scalar: str
    path: str
    """Where the client wrote it, from the argument: `input.address.line1`, `categories[2]`."""
    value: str
    node: ArgumentNode | FieldNode
    """Its argument in the document (the field, for a default): the error's location."""


def text_arguments(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> Iterator[TextArgument]:
    """Nothing when the operation or its variables are invalid: graphql-core refuses those
    itself with a typed error before anything runs."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return
    root = schema.get_root_type(operation.operation)
    if root is None:
        return
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    yield from _Walk(schema, fragments, coerced).selections(root, operation.selection_set)


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.seen: set[str] = set()  # a fragment's arguments are the same wherever it is spread

    def selections(
        self, parent: GraphQLNamedType, selection_set: SelectionSetNode
    ) -> Iterator[TextArgument]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield from self.field(parent, selection)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = type_from_ast(self.schema, condition) if condition else parent
                if isinstance(inner, GraphQLNamedType):
                    yield from self.selections(inner, selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in self.seen:
                    continue
                self.seen.add(name)
                inner = type_from_ast(self.schema, fragment.type_condition)
                if isinstance(inner, GraphQLNamedType):
                    yield from self.selections(inner, fragment.selection_set)

    def field(self, parent: GraphQLNamedType, node: FieldNode) -> Iterator[TextArgument]:
        if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return
        definition = parent.fields.get(node.name.value)
        if definition is None:  # __typename, __schema, __type: introspection, not our data
            return
        try:
            values = get_argument_values(definition, node, self.variables)
        except GraphQLError:
            return  # graphql-core refuses it when it executes the field
        written = {a.name.value: a for a in node.arguments or ()}
        for name, value in values.items():
            key = f"{parent.name}.{node.name.value}.{name}"
            type_ = definition.args[name].type
            yield from self.value(key, name, type_, value, written.get(name, node))
        if node.selection_set is not None:
            yield from self.selections(get_named_type(definition.type), node.selection_set)

    def value(
        self,
        key: str,
        path: str,
        type_: GraphQLInputType,
        value: Any,
        node: ArgumentNode | FieldNode,
    ) -> Iterator[TextArgument]:
        nullable = get_nullable_type(type_)
        if value is None:
            return
        if isinstance(nullable, GraphQLList):
            for i, item in enumerate(value):
                yield from self.value(key, f"{path}[{i}]", nullable.of_type, item, node)
        elif isinstance(nullable, GraphQLInputObjectType):
            for name, item in value.items():
                field = nullable.fields[name]
                yield from self.value(
                    f"{nullable.name}.{name}", f"{path}.{name}", field.type, item, node
                )
        elif (
            isinstance(nullable, GraphQLScalarType)
            and nullable.name in TEXT_SCALARS
            and isinstance(value, str)
        ):
            yield TextArgument(key, nullable.name, path, value, node)
