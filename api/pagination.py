"""Relay-style cursor pagination shared by every connection in the schema."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

import strawberry

from api.errors import InvalidArgument

MAX_PAGE = 200
T = TypeVar("T")


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(kind: str, key: object) -> str:
    """An opaque cursor: clients pass it back as `after`, never build one."""
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(kind: str, cursor: str, parse: Callable[[str], T]) -> T:
    """The key inside a cursor of this kind; anything else is a VALIDATION error."""
    try:
        prefix, _, key = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if prefix == kind:
            return parse(key)
    except (binascii.Error, UnicodeError, ValueError):
        pass
    raise InvalidArgument("after", "This cursor is not valid.")


def page_size(first: int) -> int:
    if not 1 <= first <= MAX_PAGE:
        raise InvalidArgument("first", f"Ask for 1 to {MAX_PAGE} items.")
    return first
