"""What a GraphQL document would cost, measured before any rule expands it.

A document can spread a fragment that spreads another twice, and so on: 22 such levels
describe four million fields in about a kilobyte. Any check that walks the document with
its fragments expanded (depth and alias limiters, field counting) then takes time
exponential in the text. Here each fragment is measured once and its figures are reused
at every spread, so the whole measure takes time linear in the document, whatever it
describes; a fragment cycle is found on the way, and an unused fragment before anything.

The figures, all counted as if every fragment were expanded:
- depth: the deepest nesting of selection sets below the root (`{ me { id } }` is 1),
  introspection fields and what they select excepted (GraphiQL's own query is deep, and
  introspection is off in production);
- aliases and fields: how many aliased fields, and how many fields, would be resolved once;
- cost: an estimate of how many values the answer holds. A field costs 1 plus what it
  selects, and a list field with a `first` argument multiplies what it selects by `first`
  (the request's value, else the variable's or the argument's default). Lists without
  `first` are a customer's own short lists (consents, cases) and count once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)
from graphql.type.definition import GraphQLInterfaceType

PAGE_ARGUMENT = "first"
MAX_NESTING = 64
"""Selection sets and fragment spreads nested in one another, whatever the depth limit
says of them: a bound on this measure's own recursion."""


@dataclass(frozen=True, slots=True)
class Figures:
    depth: int = 0
    aliases: int = 0
    fields: int = 0
    cost: int = 0


class DocumentRefused(Exception):
    """The document is refused before validation: `limit` names what it broke."""

    def __init__(self, limit: str, message: str, *, maximum: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.maximum = maximum


@dataclass(frozen=True, slots=True)
class Limits:
    depth: int
    aliases: int
    fields: int
    cost: int


class _Measure:
    """One request's measure: the document, the schema and the variables' values."""

    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments: dict[str, FragmentDefinitionNode] = {}
        self.operations: list[OperationDefinitionNode] = []
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                name = definition.name.value
                if name in self.fragments:
                    raise DocumentRefused("fragments", f'Fragment "{name}" is defined twice.')
                self.fragments[name] = definition
            elif isinstance(definition, OperationDefinitionNode):
                self.operations.append(definition)
        self.measured: dict[str, Figures] = {}
        self.in_progress: set[str] = set()
        self.defaults: dict[str, Any] = {}

    def fragment(self, name: str, level: int = 0) -> Figures:
        if name in self.measured:
            return self.measured[name]
        definition = self.fragments.get(name)
        if definition is None:
            return Figures()  # unknown: validation names it
        if name in self.in_progress:
            raise DocumentRefused("fragments", f'Fragment "{name}" spreads itself.')
        self.in_progress.add(name)
        parent = self.schema.get_type(definition.type_condition.name.value)
        figures = self.selections(definition.selection_set, parent, level + 1)
        self.in_progress.discard(name)
        self.measured[name] = figures
        return figures

    def selections(
        self, selection_set: SelectionSetNode | None, parent: Any, level: int
    ) -> Figures:
        if level > MAX_NESTING:
            raise DocumentRefused("depth", "The query is nested too deeply.")
        depth = aliases = fields = cost = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                inner, multiplier = self.field(selection, parent, level)
                introspection = selection.name.value.startswith("__")
                nested = inner.depth + 1 if selection.selection_set else 0
                depth = max(depth, 0 if introspection else nested)
                aliases += inner.aliases + (1 if selection.alias else 0)
                fields += inner.fields + 1
                cost += 1 + multiplier * inner.cost
                continue
            if isinstance(selection, FragmentSpreadNode):
                inner = self.fragment(selection.name.value, level)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                scope = self.schema.get_type(condition.name.value) if condition else parent
                inner = self.selections(selection.selection_set, scope, level + 1)
            else:  # pragma: no cover - the parser makes no other selection
                continue
            depth = max(depth, inner.depth)
            aliases += inner.aliases
            fields += inner.fields
            cost += inner.cost
        return Figures(depth=depth, aliases=aliases, fields=fields, cost=cost)

    def field(self, node: FieldNode, parent: Any, level: int) -> tuple[Figures, int]:
        """What the field selects, and by how much a page of it multiplies that."""
        definition = None
        if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            definition = parent.fields.get(node.name.value)
        child = get_named_type(definition.type) if definition is not None else None
        inner = self.selections(node.selection_set, child, level + 1)
        multiplier = 1
        if definition is not None and PAGE_ARGUMENT in definition.args:
            multiplier = self.page(node, definition.args[PAGE_ARGUMENT].default_value)
        return inner, multiplier

    def page(self, node: FieldNode, default: Any) -> int:
        value: Any = default
        for argument in node.arguments or ():
            if argument.name.value != PAGE_ARGUMENT:
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                name = argument.value.name.value
                value = self.variables.get(name, self.defaults.get(name, default))
        return value if isinstance(value, int) and value > 0 else 1

    def operation(self, operation: OperationDefinitionNode) -> Figures:
        self.defaults = {}
        for definition in operation.variable_definitions or ():
            if isinstance(definition.default_value, IntValueNode):
                self.defaults[definition.variable.name.value] = int(definition.default_value.value)
        root = self.schema.get_root_type(operation.operation)
        return self.selections(operation.selection_set, root, 0)


def _spread_names(selection_set: SelectionSetNode | None, into: set[str]) -> None:
    pending = [selection_set]
    while pending:
        current = pending.pop()
        for selection in current.selections if current else ():
            if isinstance(selection, FragmentSpreadNode):
                into.add(selection.name.value)
            elif isinstance(selection, FieldNode | InlineFragmentNode):
                pending.append(selection.selection_set)


def _refuse_unused(measure: _Measure) -> None:
    """Every fragment must be spread somewhere: one that is not could hide any amount of
    work from the figures of the operations."""
    spread: set[str] = set()
    for operation in measure.operations:
        _spread_names(operation.selection_set, spread)
    for definition in measure.fragments.values():
        _spread_names(definition.selection_set, spread)
    unused = sorted(set(measure.fragments) - spread)
    if unused:
        raise DocumentRefused("fragments", f'Fragment "{unused[0]}" is never used.')


def measure_document(
    schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, Any] | None
) -> Figures:
    """The largest figures of any operation in the document (DocumentRefused for a
    fragment defined twice, spreading itself, or never used)."""
    measure = _Measure(schema, document, variables or {})
    _refuse_unused(measure)
    worst = Figures()
    for operation in measure.operations:
        figures = measure.operation(operation)
        worst = Figures(
            depth=max(worst.depth, figures.depth),
            aliases=max(worst.aliases, figures.aliases),
            fields=max(worst.fields, figures.fields),
            cost=max(worst.cost, figures.cost),
        )
    for name in measure.fragments:  # a cycle among fragments no operation reaches
        measure.fragment(name)
    return worst


_REFUSALS = (
    ("depth", "The query is nested {} levels deep; at most {}."),
    ("aliases", "The query has {} aliases; at most {}."),
    ("fields", "The query selects {} fields; at most {}."),
    ("cost", "The query could return about {} values; at most {}. Ask for smaller pages."),
)


def check_limits(figures: Figures, limits: Limits) -> None:
    """DocumentRefused naming the first limit the figures exceed."""
    for name, message in _REFUSALS:
        found, maximum = getattr(figures, name), getattr(limits, name)
        if found > maximum:
            raise DocumentRefused(name, message.format(found, maximum), maximum=maximum)
