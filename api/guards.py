"""Field-level guards for personal data (docs/ARCHITECTURE.md: authorization).

Every personal-data field declares its category with `personal(category)`. The object it
belongs to says whose data it is, for which purpose it is read and which conditions hold
(`Access`). The guard asks Casbin (once per request and key, see Context.read_access):
a full read returns the value, a `read_masked` grant returns the value masked, anything
else returns null with a FORBIDDEN error at the field's path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

import phonenumbers
import strawberry
from graphql import GraphQLObjectType, GraphQLSchema
from strawberry.extensions.field_extension import FieldExtension

from api.context import Read
from authz.registry import Category

Mask = Callable[[Any], Any]
# The outcomes as plain names: an enum member read off its class costs a descriptor call,
# and the guard of a plain field tests them hundreds of times a page.
_FULL, _MASKED, _DENIED = Read.FULL, Read.MASKED, Read.DENIED


class Access(NamedTuple):
    """Whose data an object holds (the customer's id as text, as the log writes it: made
    once per object, not once per field or log row), the purpose it is read for, and the
    conditions that hold for it (e.g. `open_case`, `consent:marketing.email`). Immutable;
    a tuple rather than a frozen dataclass, which costs twice as much to build, once per
    object shown."""

    subject_id: str
    purpose: str
    conditions: tuple[str, ...] = ()


class HasAccess(Protocol):
    access: Access


def mask_email(value: str | None) -> str | None:
    """`jane@example.com` -> `j***@example.com`."""
    if not value:
        return value
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(value: str | None) -> str | None:
    """`+442079460123` -> `+44 **** ***123`: the country and the last three digits."""
    if not value:
        return value
    try:
        country = phonenumbers.parse(value).country_code
    except phonenumbers.NumberParseException:
        return "**** ***" + value[-3:]
    return f"+{country} **** ***{value[-3:]}"


class PersonalData(FieldExtension):
    """The guard of one personal-data field."""

    def __init__(self, category: Category, mask: Mask | None = None) -> None:
        self.category = category
        self.mask = mask

    def outcome(self, source: HasAccess, info: Any) -> Read:
        """Decide (and log) this field's read of `source`; `info` is strawberry's or
        graphql-core's own."""
        raw = getattr(info, "_raw_info", info)
        path = raw.path
        return self.outcome_at(source, raw.context, raw.field_nodes, path.prev, path.key)

    def outcome_at(
        self, source: HasAccess, context: Any, nodes: Any, parent: Any, key: str
    ) -> Read:
        """The same, from the parts of an info that it needs (api/executor.py builds none):
        the request's context, the field's nodes in the query, its parent's response path
        and its response key (the field's own path is built only if it is denied)."""
        subject_id, purpose, conditions = source.access
        outcome: Read = context.read_access(self.category, purpose, subject_id, conditions)
        if outcome is _MASKED and self.mask is None:
            outcome = _DENIED
        if outcome is _DENIED:
            context.deny_field(nodes, parent, key, self.category, purpose)
        return outcome

    def resolve(self, next_: Callable[..., Any], source: Any, info: Any, **kwargs: Any) -> Any:
        outcome = self.outcome(source, info)
        if outcome is Read.DENIED:
            return None
        value = next_(source, info, **kwargs)
        return value if outcome is Read.FULL else self.mask(value)  # type: ignore[misc]

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Any, **kwargs: Any
    ) -> Any:
        outcome = self.outcome(source, info)
        if outcome is Read.DENIED:
            return None
        value = await next_(source, info, **kwargs)
        return value if outcome is Read.FULL else self.mask(value)  # type: ignore[misc]


def _plain_resolver(guard: PersonalData, attribute: str) -> Callable[..., Any]:
    """The guard of a field that shows an attribute as it is, as graphql-core's own
    resolver: the same decision and log row as `PersonalData.resolve`, without
    strawberry's per-field wrapping (an Info built, the extension chain entered), which
    cost more than the guard itself on a page of hundreds of fields. api/executor.py asks
    for an object's guarded fields together (Context.read_fields) and reads the attribute
    itself when the outcome is FULL (and writes a denial): `shown` answers a masked one."""

    def shown(
        outcome: Read, denial: Any, source: Any, context: Any, nodes: Any, parent: Any, key: str
    ) -> Any:
        """A masked outcome: the value masked, or denied for want of a mask."""
        if outcome is _MASKED and guard.mask is not None:
            return guard.mask(getattr(source, attribute))
        context.deny_field(nodes, parent, key, guard.category, source.access.purpose, denial)
        return None

    def resolve(source: Any, info: Any) -> Any:
        path = info.path
        outcome = guard.outcome_at(source, info.context, info.field_nodes, path.prev, path.key)
        if outcome is _DENIED:
            return None
        value = getattr(source, attribute)
        return value if outcome is _FULL else guard.mask(value)  # type: ignore[misc]

    resolve.guard = guard  # type: ignore[attr-defined]  # what install_plain_guards set
    resolve.attribute = attribute  # type: ignore[attr-defined]  # for api/executor.py
    resolve.shown = shown  # type: ignore[attr-defined]
    return resolve


def install_plain_guards(schema: GraphQLSchema) -> list[str]:
    """Give every guarded field without a resolver of its own (`personal(category)` on an
    attribute) its guard as graphql-core's resolver (`_plain_resolver`); the fields with
    resolvers keep strawberry's path through `PersonalData.resolve_async`. The declaration
    stays the extension on the field, so the schema walk still finds every guard. Returns
    the fields it set, as `Type.field`."""
    installed = []
    for type_ in schema.type_map.values():
        for name, field in getattr(type_, "fields", {}).items():
            definition = field.extensions.get("strawberry-definition")
            guard = guard_of(definition) if definition is not None else None
            if guard is None or definition.base_resolver is not None:
                continue
            if len(definition.extensions) != 1:  # only the guard: nothing else to run
                continue
            field.resolve = _plain_resolver(guard, definition.python_name)
            installed.append(f"{type_.name}.{name}")
    return installed


def _attribute(name: str) -> Callable[..., Any]:
    def resolve(source: Any, info: Any) -> Any:
        return getattr(source, name)

    def value_of(source: Any, context: Any, nodes: Any, parent: Any, key: str) -> Any:
        return getattr(source, name)

    resolve.value_of = value_of  # type: ignore[attr-defined]  # for api/executor.py
    return resolve


def install_plain_attributes(schema: GraphQLSchema) -> int:
    """Give every field that only shows an attribute (no resolver, no extension: no guard,
    no permission) a plain getattr as graphql-core's resolver, as strawberry's default
    does through two more calls. Returns how many it set."""
    count = 0
    for type_ in schema.type_map.values():
        if not isinstance(type_, GraphQLObjectType):
            continue
        for field in type_.fields.values():
            definition = field.extensions.get("strawberry-definition")
            if definition is None or definition.base_resolver or definition.extensions:
                continue
            field.resolve = _attribute(definition.python_name)
            count += 1
    return count


def personal(
    category: Category, *, mask: Mask | None = None, description: str | None = None
) -> Any:
    """A guarded personal-data field (nullable: null when denied)."""
    return strawberry.field(
        extensions=[PersonalData(category, mask)],
        description=f"Personal data ({category}); null with a FORBIDDEN error when denied."
        + (f" {description}" if description else ""),
    )


def guard_of(field: Any) -> PersonalData | None:
    """The guard declared on a strawberry field, if any (the schema test walks these)."""
    for extension in getattr(field, "extensions", None) or ():
        if isinstance(extension, PersonalData):
            return extension
    return None
