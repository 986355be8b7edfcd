"""Field-level guards for personal data (DESIGN section 3).

Every personal-data field declares its category with `personal(category)`. The object it
belongs to says whose data it is, for which purpose it is read and which conditions hold
(`Access`). The guard asks Casbin (once per request and key, see Context.read_access):
a full read returns the value, a `read_masked` grant returns the value masked, anything
else returns null with a FORBIDDEN error at the field's path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import phonenumbers
import strawberry
from strawberry.extensions.field_extension import FieldExtension

from api.context import Read
from authz.registry import Category

Mask = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Access:
    """Whose data an object holds, the purpose it is read for, and the conditions that
    hold for it (e.g. `open_case`, `consent:marketing.email`)."""

    subject_id: object
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

    def _outcome(self, source: HasAccess, info: Any) -> Read:
        access = source.access
        outcome: Read = info.context.read_access(
            category=self.category,
            purpose=access.purpose,
            subject_id=access.subject_id,
            conditions=access.conditions,
        )
        if outcome is Read.MASKED and self.mask is None:
            outcome = Read.DENIED
        if outcome is Read.DENIED:
            info.context.deny_field(info, category=self.category, purpose=access.purpose)
        return outcome

    def resolve(self, next_: Callable[..., Any], source: Any, info: Any, **kwargs: Any) -> Any:
        outcome = self._outcome(source, info)
        if outcome is Read.DENIED:
            return None
        value = next_(source, info, **kwargs)
        return value if outcome is Read.FULL else self.mask(value)  # type: ignore[misc]

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Any, **kwargs: Any
    ) -> Any:
        outcome = self._outcome(source, info)
        if outcome is Read.DENIED:
            return None
        value = await next_(source, info, **kwargs)
        return value if outcome is Read.FULL else self.mask(value)  # type: ignore[misc]


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
