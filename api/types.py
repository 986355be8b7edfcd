"""GraphQL types shared by every feature: error codes and expected-failure members."""

from __future__ import annotations

from enum import Enum

import strawberry

from api.errors import FieldProblem


@strawberry.enum
class ErrorCode(Enum):
    VALIDATION = "VALIDATION"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_TOKEN = "INVALID_TOKEN"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    EMAIL_UNAVAILABLE = "EMAIL_UNAVAILABLE"
    DUPLICATE_VERSION = "DUPLICATE_VERSION"
    EFFECTIVE_TOO_SOON = "EFFECTIVE_TOO_SOON"
    UNKNOWN_VERSION = "UNKNOWN_VERSION"
    NOT_IN_EFFECT = "NOT_IN_EFFECT"
    DUPLICATE_REQUEST = "DUPLICATE_REQUEST"
    INVALID_CODE = "INVALID_CODE"
    CODE_EXPIRED = "CODE_EXPIRED"
    CODE_LOCKED = "CODE_LOCKED"
    NOT_FOUND = "NOT_FOUND"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    ALREADY_EXTENDED = "ALREADY_EXTENDED"
    PAST_DUE = "PAST_DUE"
    FORBIDDEN = "FORBIDDEN"
    DUPLICATE_NAME = "DUPLICATE_NAME"
    PROCESSOR_INACTIVE = "PROCESSOR_INACTIVE"
    PURPOSE_NOT_ALLOWED = "PURPOSE_NOT_ALLOWED"
    CATEGORY_NOT_ALLOWED = "CATEGORY_NOT_ALLOWED"
    CONSENT_REQUIRED = "CONSENT_REQUIRED"
    NEGATIVE_DURATION = "NEGATIVE_DURATION"
    UNKNOWN_TARGET = "UNKNOWN_TARGET"
    SEPARATION_OF_DUTIES = "SEPARATION_OF_DUTIES"
    VALUE_BLIND_ROLE = "VALUE_BLIND_ROLE"
    PROPOSAL_EXPIRED = "PROPOSAL_EXPIRED"
    ALREADY_DECIDED = "ALREADY_DECIDED"
    ALREADY_SETTLED = "ALREADY_SETTLED"


@strawberry.type(description="One problem with one input field.")
class FieldError:
    field: str = strawberry.field(description="Path in the input, e.g. `address.postalCode`.")
    code: ErrorCode
    message: str


@strawberry.type(
    description="The input was refused; nothing was written. `code`, `field` and `message` "
    "describe the first problem, `fields` lists them all."
)
class InputError:
    code: ErrorCode
    field: str
    message: str
    fields: list[FieldError]

    @classmethod
    def from_problems(cls, problems: list[FieldProblem]) -> InputError:
        items = [
            FieldError(field=p.field, code=ErrorCode(p.code), message=p.message) for p in problems
        ]
        first = items[0]
        return cls(code=first.code, field=first.field, message=first.message, fields=items)


@strawberry.type(description="Wrong email or password (the same answer for unknown accounts).")
class InvalidCredentials:
    code: ErrorCode = ErrorCode.INVALID_CREDENTIALS
    message: str = "The email or password is wrong."


@strawberry.type(description="The token is unknown, used, expired or no longer applicable.")
class TokenError:
    code: ErrorCode
    message: str
