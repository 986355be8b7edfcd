"""Typed errors. Expected failures are union members (see api/types.py); the few
top-level errors a client must handle carry `extensions.code`. Everything else is masked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from graphql import GraphQLError


@dataclass(frozen=True, slots=True)
class FieldProblem:
    field: str
    code: str
    message: str


class InputInvalid(Exception):
    """Domain code raises this with every problem found in one input."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__(f"{len(problems)} invalid field(s)")
        self.problems = problems


class ClientError(Exception):
    """A top-level error shown to the client as is, with `extensions.code`."""

    code = "BAD_REQUEST"
    default_message = "Bad request."

    def __init__(self, message: str | None = None, **extensions: Any) -> None:
        super().__init__(message or self.default_message)
        self.extensions: dict[str, Any] = {"code": self.code, **extensions}


class Unauthenticated(ClientError):
    code = "UNAUTHENTICATED"
    default_message = "Sign in first."


class Forbidden(ClientError):
    code = "FORBIDDEN"
    default_message = "You are not allowed to do this."


class NotFound(ClientError):
    code = "NOT_FOUND"
    default_message = "Not found."


class InvalidArgument(ClientError):
    """A query argument the client got wrong (mutations answer with InputError instead)."""

    code = "VALIDATION"
    default_message = "An argument is not valid."

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message, field=argument)


class RateLimited(ClientError):
    code = "RATE_LIMITED"
    default_message = "Too many attempts; try again later."

    def __init__(self, retry_after: int) -> None:
        super().__init__(None, retryAfter=retry_after)
        self.retry_after = retry_after


class HashingBusy(RateLimited):
    """Every place in the password-hashing queue is taken (api/security/passwords.py):
    refused before anything is read, written or counted, rather than queued for long."""

    default_message = "The server is busy; try again shortly."


def parse_id(value: str, *, what: str) -> UUID:
    """An id from the client; a malformed one is simply not found."""
    try:
        return UUID(value)
    except ValueError:
        raise NotFound(f"No such {what}.") from None


def parse_input_id(value: object, *, field: str, what: str) -> UUID:
    """The same for a mutation answering with a typed `InputError`: a malformed id is a
    NOT_FOUND problem on `field`."""
    try:
        return UUID(str(value))
    except ValueError:
        raise InputInvalid([FieldProblem(field, "NOT_FOUND", f"No such {what}.")]) from None


def is_client_error(error: GraphQLError) -> bool:
    """Parse and validation errors and ClientErrors are for the client; the rest is masked."""
    original = error.original_error
    return original is None or isinstance(original, (ClientError, GraphQLError))


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
"""graphql-core's hint at a name the schema has: in production it would map the schema
field by field with introspection off."""


def for_client(error: GraphQLError, *, suggestions: bool = True) -> GraphQLError:
    """What the client sees of an error: unexpected ones masked, every one with a code,
    and without "Did you mean" hints unless `suggestions`."""
    if not is_client_error(error):
        return GraphQLError(
            "Unexpected error.",
            nodes=error.nodes,
            path=error.path,
            extensions={"code": "INTERNAL_SERVER_ERROR"},
        )
    if not error.extensions or "code" not in error.extensions:
        syntax = error.message.startswith("Syntax Error")
        code = "GRAPHQL_PARSE_FAILED" if syntax else "GRAPHQL_VALIDATION_FAILED"
        error.extensions = {**(error.extensions or {}), "code": code}
    if not suggestions and "Did you mean" in error.message:
        error.message = _SUGGESTION.sub("", error.message)
    return error
