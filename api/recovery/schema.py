"""Account recovery over GraphQL: glue between GraphQL and api/recovery/service.py."""

from __future__ import annotations

from typing import Annotated

import strawberry

from api.context import Info
from api.customers.service import InvalidToken
from api.errors import InputInvalid
from api.recovery import service
from api.recovery.types import PasswordReset, PasswordResetRequested, VerificationResent
from api.security.mail_limits import MailRateLimit
from api.types import ErrorCode, InputError, TokenError

RequestPasswordResetPayload = Annotated[
    PasswordResetRequested | InputError, strawberry.union("RequestPasswordResetPayload")
]
ResetPasswordPayload = Annotated[
    PasswordReset | TokenError | InputError, strawberry.union("ResetPasswordPayload")
]
ResendVerificationEmailPayload = Annotated[
    VerificationResent | InputError, strawberry.union("ResendVerificationEmailPayload")
]

_TOKEN_MESSAGES = {
    "INVALID_TOKEN": "This link is not valid (it was used, or the password changed since).",
    "TOKEN_EXPIRED": "This link has expired; ask for a new one.",
}


@strawberry.type
class RecoveryMutation:
    @strawberry.mutation(
        permission_classes=[MailRateLimit],
        description="Mail a link to choose a new password to this address, if an account "
        "uses it; the same answer for every address.",
    )
    async def request_password_reset(self, info: Info, email: str) -> RequestPasswordResetPayload:
        try:
            address = service.parse_address(email)
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        await service.request_password_reset(services=info.context.services, address=address)
        minutes = info.context.services.settings.password_reset_minutes
        return PasswordResetRequested(link_valid_minutes=minutes)

    @strawberry.mutation(
        permission_classes=[MailRateLimit],
        description="Choose a new password with the token of a reset link (once); signs "
        "the account out everywhere.",
    )
    async def reset_password(
        self, info: Info, token: str, new_password: str
    ) -> ResetPasswordPayload:
        try:
            reset = await service.reset_password(
                services=info.context.services, token=token, new_password=new_password
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        except InvalidToken as exc:
            return TokenError(code=ErrorCode(exc.code), message=_TOKEN_MESSAGES[exc.code])
        if info.context.viewer.subject_id == reset.customer_id:  # this browser's, now revoked
            info.context.clear_session_cookie()
        info.context.act_as_customer(reset.customer_id)
        info.context.audit_event(
            event="auth", operation="resetPassword", subject_id=reset.customer_id
        )
        return PasswordReset(sessions_revoked=reset.sessions_revoked)

    @strawberry.mutation(
        permission_classes=[MailRateLimit],
        description="Mail a new confirmation link to this address, if an account waits for "
        "it to be confirmed; the same answer for every address.",
    )
    async def resend_verification_email(
        self, info: Info, email: str
    ) -> ResendVerificationEmailPayload:
        try:
            address = service.parse_address(email)
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        await service.resend_verification(services=info.context.services, address=address)
        hours = info.context.services.settings.email_token_hours
        return VerificationResent(link_valid_hours=hours)
