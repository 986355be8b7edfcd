"""The vocabulary and fixed rules of rights requests: kinds, statuses and the transitions
between them, the deadline arithmetic, and the identity verification codes."""

from __future__ import annotations

import hmac
import secrets
from enum import StrEnum
from uuid import UUID

from api.rights.deadlines import add_months
from api.security.secret_keys import verifying_keys
from api.security.tokens import keyed_digest

CODE_MINUTES = 15
CODE_ATTEMPTS = 5
__all__ = ["add_months"]  # with the deadline rules (api/rights/deadlines.py); imported from here


class Kind(StrEnum):
    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"


class Status(StrEnum):
    UNVERIFIED = "unverified"
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    IN_PROGRESS = "in_progress"
    NOTIFYING = "notifying"
    """Done on our side; waiting for the recipients of the data to acknowledge."""
    COMPLETED = "completed"
    EXTENDED = "extended"
    CANCELLED = "cancelled"


CLOSED = frozenset({Status.REFUSED, Status.COMPLETED, Status.CANCELLED})
"""A request in one of these is answered: it no longer runs against its deadline."""
RUNNING = frozenset(
    {Status.PENDING, Status.APPROVED, Status.IN_PROGRESS, Status.EXTENDED, Status.NOTIFYING}
)
"""Received (identity verified) and not yet answered, or answered with recipients still to
acknowledge: these can be overdue."""
REPEATABLE = frozenset({*CLOSED, Status.NOTIFYING})
"""A new request of the same kind is a new intent once the open one is in one of these."""


class RightsProblem(Exception):
    """An expected refusal, with the code the client sees; `field` names the argument it is
    about (`details`, `changes.address.postalCode`), `attempts_left` the codes a request
    still takes after a wrong one."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        attempts_left: int | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.field = field
        self.attempts_left = attempts_left


def new_code() -> str:
    """Six random digits."""
    return f"{secrets.randbelow(10**6):06d}"


def code_digest(*, secret: str, request_id: UUID, code: str) -> str:
    """The stored form of a code: an HMAC bound to its request."""
    return keyed_digest(secret, "rights-code", f"{request_id}:{code}")


def code_matches(*, secret: str, request_id: UUID, code: str, digest: str | None) -> bool:
    """Compared in constant time, with the current key and each previous one (a code
    mailed just before a key rotation still works)."""
    if digest is None:
        return False
    matches = [
        hmac.compare_digest(
            code_digest(secret=key, request_id=request_id, code=code.strip()), digest
        )
        for key in verifying_keys(secret)
    ]
    return any(matches)
