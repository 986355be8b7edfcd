"""GraphQL answers of account recovery (api/recovery/service.py). The answers to a request
by address are the same for every address: they never tell whether it has an account.
They hold no text to show: the pages word them in the reader's language."""

from __future__ import annotations

import strawberry


@strawberry.type(
    description="Accepted, whether or not the address has an account: if it has one, a "
    "link to choose a new password is on its way."
)
class PasswordResetRequested:
    link_valid_minutes: int = strawberry.field(
        description="How long the link works, once (CUSTOS_PASSWORD_RESET_MINUTES)."
    )


@strawberry.type(description="The password was changed and every session signed out.")
class PasswordReset:
    sessions_revoked: int = strawberry.field(
        description="Sessions of the account that were signed out."
    )


@strawberry.type(
    description="Accepted, whatever the address: if an account waits for it to be "
    "confirmed, a new confirmation link is on its way."
)
class VerificationResent:
    link_valid_hours: float = strawberry.field(
        description="How long the link works, once (CUSTOS_EMAIL_TOKEN_HOURS)."
    )
