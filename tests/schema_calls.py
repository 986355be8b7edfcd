"""Calls built from the schema itself, for tests that walk it: every String and ID a client can
send (arguments of the root fields and of fields nested under Query, strings inside input
objects and lists), and for each a valid-enough call that carries a chosen string there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    get_named_type,
    get_nullable_type,
)
from graphql.language.print_string import print_string
from graphql.pyutils import Undefined

from tests.conftest import PASSWORD

Step = str | int
"""A step into an argument's value: an input field's name or a list index."""

# Values resolvers accept, by argument or input field name, so that a call gets past the
# checks of its other arguments and the chosen string travels as deep as it can.
KNOWN: dict[str, Any] = {
    "email": "jane.doe@example.com",
    "contact": "privacy@processor.example",
    "password": PASSWORD,
    "currentPassword": PASSWORD,
    "newPassword": "another correct horse battery staple",
    "phone": "+44 20 7946 0958",
    "line1": "221B Baker Street",
    "city": "London",
    "postalCode": "NW1 6XE",
    "country": "GB",
    "purpose": "marketing.email",
    "purposes": ["marketing.email"],
    "category": "contact.email",
    "categories": ["contact.email"],
    "role": "marketing",
    "action": "read",
    "condition": "*",
    "effect": "allow",
    "event": "access",
    "version": "2",
    "summary": "What changes",
    "text": "The policy.",
    "subject": "Hello",
    "message": "Please help.",
    "bodyText": "News.",
    "reason": "A court order.",
    "reference": "REF-1",
    "recipient": "The police",
    "name": "Processor Ltd",
    "contractReference": "DPA-1",
    "anchor": "event_time",
    "period": "P30D",
    "status": "open",
    "search": "jane.doe@example.com",
    "token": "not-a-token",
    "code": "123456",
}


OPTIONAL_FILLED = frozenset({"postalCode"})
"""Optional input fields a valid input still needs (a British address has a postal code)."""


def _required_field(input_field: GraphQLInputField) -> bool:
    return isinstance(input_field.type, GraphQLNonNull) and input_field.default_value is Undefined


@dataclass(frozen=True, slots=True, repr=False)
class Target:
    """One String or ID a client can send."""

    operation: str  # query or mutation
    chain: tuple[tuple[str, GraphQLField], ...]  # fields from the root, with definitions
    owner: str  # the type declaring the last field
    argument: str
    steps: tuple[Step, ...]  # into the argument's value
    scalar: str
    key: str  # the registry key (api/hygiene/registry.py)

    @property
    def root_field(self) -> str:
        return self.chain[0][0]

    @property
    def path(self) -> str:
        """As the edge names it: `input.address.line1`, `categories[0]`."""
        out = self.argument
        for step in self.steps:
            out += f"[{step}]" if isinstance(step, int) else f".{step}"
        return out

    def __repr__(self) -> str:
        return f"{'.'.join(name for name, _ in self.chain)}({self.path})"


def targets(schema: GraphQLSchema) -> list[Target]:
    """Every String and ID argument: root fields of Query and Mutation, and fields with
    arguments nested under Query (each object type once, by the first path that reaches it)."""
    found: list[Target] = []
    for operation, root in (("query", schema.query_type), ("mutation", schema.mutation_type)):
        assert root is not None
        for name, definition in root.fields.items():
            found += _field_targets(operation, ((name, definition),), root.name)
    assert schema.query_type is not None
    found += _nested_targets(schema.query_type)
    return found


def _nested_targets(query: GraphQLObjectType) -> list[Target]:
    found: list[Target] = []
    seen = {query.name}
    frontier: list[tuple[GraphQLObjectType, tuple[tuple[str, GraphQLField], ...]]] = [(query, ())]
    for _depth in range(4):
        following = []
        for type_, chain in frontier:
            for name, definition in type_.fields.items():
                inner = get_named_type(definition.type)
                if chain:
                    found += _field_targets("query", (*chain, (name, definition)), type_.name)
                if isinstance(inner, GraphQLObjectType) and inner.name not in seen:
                    seen.add(inner.name)
                    following.append((inner, (*chain, (name, definition))))
        frontier = following
    return found


def _field_targets(
    operation: str, chain: tuple[tuple[str, GraphQLField], ...], owner: str
) -> list[Target]:
    name, definition = chain[-1]
    found = []
    for argument, arg in definition.args.items():
        key = f"{owner}.{name}.{argument}"
        for steps, scalar, inner_key in _text_steps(arg.type, key, ()):
            found.append(Target(operation, chain, owner, argument, steps, scalar, inner_key))
    return found


def _text_steps(
    type_: GraphQLInputType, key: str, steps: tuple[Step, ...]
) -> Iterator[tuple[tuple[Step, ...], str, str]]:
    nullable = get_nullable_type(type_)
    if isinstance(nullable, GraphQLList):
        yield from _text_steps(nullable.of_type, key, (*steps, 0))
    elif isinstance(nullable, GraphQLInputObjectType):
        for name, input_field in nullable.fields.items():
            yield from _text_steps(input_field.type, f"{nullable.name}.{name}", (*steps, name))
    elif isinstance(nullable, GraphQLScalarType) and nullable.name in ("String", "ID"):
        yield steps, nullable.name, key


@dataclass
class Values:
    """Valid-enough values for everything but the chosen string."""

    now: datetime
    ids: dict[str, str] = field(default_factory=dict)  # by argument name: customerId, ...

    def of(self, name: str, type_: GraphQLInputType) -> Any:
        nullable = get_nullable_type(type_)
        if isinstance(nullable, GraphQLList):
            known = KNOWN.get(name)
            return known if isinstance(known, list) else [self.of(name, nullable.of_type)]
        if isinstance(nullable, GraphQLInputObjectType):
            return {
                n: self.of(n, f.type)
                for n, f in nullable.fields.items()
                if (n in OPTIONAL_FILLED or _required_field(f))
            }
        if isinstance(nullable, GraphQLEnumType):
            return next(iter(nullable.values))
        assert isinstance(nullable, GraphQLScalarType)
        return self._scalar(name, nullable.name)

    def _scalar(self, name: str, scalar: str) -> Any:
        if scalar == "ID":
            return self.ids.get(name) or str(uuid.uuid4())
        if scalar == "String":
            known = KNOWN.get(name, "x")
            return known[0] if isinstance(known, list) else known
        if scalar == "Int":
            return 1
        if scalar == "Boolean":
            return False
        if scalar == "DateTime":
            return (self.now + timedelta(days=60)).isoformat()
        if scalar == "Date":
            return self.now.date().isoformat()
        raise AssertionError(f"no value for {scalar} {name}")


@dataclass(frozen=True, slots=True)
class Call:
    query: str
    variables: dict[str, Any]


def call(target: Target, text: str, values: Values, *, literal: bool = False) -> Call:
    """A document reaching `target` through its chain, with `text` as its string; every other
    argument a variable of a valid-enough value. `literal` writes the string's argument inline."""
    variables: dict[str, Any] = {}
    declared: list[str] = []
    selection = ""
    for depth in reversed(range(len(target.chain))):
        name, definition = target.chain[depth]
        written = []
        for argument, arg in definition.args.items():
            last = depth == len(target.chain) - 1 and argument == target.argument
            if not last and not _required(arg):
                continue
            value = values.of(argument, arg.type)
            if last:
                value = _with(value, target.steps, text, arg.type, values)
            if last and literal:
                written.append(f"{argument}: {_literal(value, arg.type)}")
                continue
            variable = f"v{depth}_{argument}"
            variables[variable] = value
            declared.append(f"${variable}: {arg.type}")
            written.append(f"{argument}: ${variable}")
        arguments = f"({', '.join(written)})" if written else ""
        inner = selection or _leaf_selection(definition)
        selection = f"{name}{arguments}{inner}"
        selection = f" {{ {selection} }}" if depth else selection
    header = f"({', '.join(declared)})" if declared else ""
    return Call(f"{target.operation} Hostile{header} {{ {selection} }}", variables)


def _required(arg: GraphQLArgument) -> bool:
    return isinstance(arg.type, GraphQLNonNull) and arg.default_value is Undefined


def _leaf_selection(definition: GraphQLField) -> str:
    named = get_named_type(definition.type)
    return "" if isinstance(named, GraphQLScalarType | GraphQLEnumType) else " { __typename }"


def _with(
    value: Any, steps: tuple[Step, ...], text: str, type_: GraphQLInputType, values: Values
) -> Any:
    """`value` with `text` at `steps`, building what is missing on the way."""
    if not steps:
        return text
    nullable = get_nullable_type(type_)
    step = steps[0]
    if isinstance(nullable, GraphQLList):
        items = list(value) if isinstance(value, list) and value else [None]
        inner = items[0] if items[0] is not None else values.of("", nullable.of_type)
        items[0] = _with(inner, steps[1:], text, nullable.of_type, values)
        return items
    assert isinstance(nullable, GraphQLInputObjectType)
    assert isinstance(step, str)
    fields = dict(value or {})
    field_type = nullable.fields[step].type
    inner = fields.get(step)
    if inner is None:
        inner = values.of(step, field_type)
    fields[step] = _with(inner, steps[1:], text, field_type, values)
    return fields


def _literal(value: Any, type_: GraphQLInputType) -> str:
    """`value` written in the document, as a client would type it."""
    nullable = get_nullable_type(type_)
    if value is None:
        return "null"
    if isinstance(nullable, GraphQLList):
        return f"[{', '.join(_literal(item, nullable.of_type) for item in value)}]"
    if isinstance(nullable, GraphQLInputObjectType):
        items = (f"{k}: {_literal(v, nullable.fields[k].type)}" for k, v in value.items())
        return f"{{{', '.join(items)}}}"
    if isinstance(nullable, GraphQLEnumType):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return print_string(value)
