"""Customer operations: glue between GraphQL and api/customers/service.py."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import strawberry

from api.context import Info
from api.customers import service
from api.customers.types import (
    ROW_FREE,
    Customer,
    EmailChangeCancelled,
    EmailVerified,
    LoginSuccess,
    PasswordChanged,
    ProfileUpdated,
    RegisterInput,
    RegistrationAccepted,
    UpdateProfileInput,
    columns_for,
)
from api.errors import InputInvalid
from api.permissions import IsCustomer, IsSignedIn
from api.security.authn import InvalidCredentials as BadCredentials
from api.security.mail_limits import MailRateLimit
from api.selection import selected_names
from api.types import ErrorCode, InputError, InvalidCredentials, TokenError

RegisterPayload = Annotated[RegistrationAccepted | InputError, strawberry.union("RegisterPayload")]
VerifyEmailPayload = Annotated[EmailVerified | TokenError, strawberry.union("VerifyEmailPayload")]
LoginPayload = Annotated[LoginSuccess | InvalidCredentials, strawberry.union("LoginPayload")]
UpdateProfilePayload = Annotated[
    ProfileUpdated | InputError | InvalidCredentials, strawberry.union("UpdateProfilePayload")
]
ChangePasswordPayload = Annotated[
    PasswordChanged | InputError | InvalidCredentials, strawberry.union("ChangePasswordPayload")
]

_TOKEN_MESSAGES = {
    "INVALID_TOKEN": "This link is not valid (it may have been used already).",
    "TOKEN_EXPIRED": "This link has expired; ask for a new one.",
    "EMAIL_UNAVAILABLE": "That address is no longer available.",
}


@strawberry.type
class CustomerQuery:
    @strawberry.field(permission_classes=[IsCustomer], description="The signed-in customer.")
    def me(self, info: Info) -> Customer | None:
        # Not `async`: a selection of ROW_FREE fields alone (`{ me { id } }`, the light
        # query of every page view) is answered at once, without a read or an await.
        customer_id = info.context.subject_id
        selected = selected_names(info)
        if selected <= ROW_FREE:
            return Customer.of_id(customer_id)
        return _read(customer_id, columns_for(selected))  # type: ignore[return-value]  # graphql-core awaits it


async def _read(customer_id: UUID, columns: tuple[str, ...]) -> Customer:
    return Customer.from_row(await service.customer_row(customer_id, columns))


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(
        permission_classes=[MailRateLimit],
        description="Create an account; answers the same for known addresses.",
    )
    async def register(self, info: Info, input: RegisterInput) -> RegisterPayload:
        try:
            registration = service.validate_registration(
                email=input.email,
                password=input.password,
                phone=input.phone,
                line1=input.address.line1,
                line2=input.address.line2,
                city=input.address.city,
                postal_code=input.address.postal_code,
                country=input.address.country,
                consents=[(c.purpose, c.granted) for c in input.consents or []],
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        await service.register_customer(
            services=info.context.services, registration=registration, meta=info.context.meta
        )
        return RegistrationAccepted()

    @strawberry.mutation(description="Confirm an email address with the token mailed to it.")
    async def verify_email(self, info: Info, token: str) -> VerifyEmailPayload:
        try:
            customer = await service.verify_email(services=info.context.services, token=token)
        except service.InvalidToken as exc:
            return TokenError(code=ErrorCode(exc.code), message=_TOKEN_MESSAGES[exc.code])
        info.context.act_as_customer(customer.id)
        return EmailVerified(customer=Customer.from_model(customer))

    @strawberry.mutation(description="Sign in; also sets the session cookie.")
    async def login(self, info: Info, email: str, password: str) -> LoginPayload:
        try:
            signed_in = await service.login_customer(
                services=info.context.services,
                email=email,
                password=password,
                meta=info.context.meta,
            )
        except BadCredentials:
            return InvalidCredentials()
        info.context.set_session_cookie(signed_in.session)
        info.context.act_as_customer(signed_in.customer.id)
        return LoginSuccess(
            token=signed_in.session.token,
            expires_at=signed_in.session.expires_at,
            customer=Customer.from_model(signed_in.customer),
        )

    @strawberry.mutation(permission_classes=[IsSignedIn], description="End this session.")
    async def logout(self, info: Info) -> bool | None:
        session_id = info.context.viewer.session_id
        if session_id is not None:
            await info.context.services.sessions.revoke(session_id=session_id)
        info.context.audit_event(event="auth", operation="logout")
        info.context.clear_session_cookie()
        return True

    @strawberry.mutation(
        permission_classes=[IsCustomer, MailRateLimit], description="Correct your own data."
    )
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> UpdateProfilePayload:
        services = info.context.services
        customer = await service.get_customer(customer_id=info.context.subject_id)
        address = vars(input.address) if input.address is not None else None
        try:
            changes = service.validate_profile_changes(
                customer=customer,
                email=input.email,
                current_password=input.current_password,
                phone=input.phone,
                address=address,
            )
            updated, pending = await service.update_profile(
                services=services,
                customer_id=customer.id,
                changes=changes,
                meta=info.context.meta,
                session_id=info.context.viewer.session_id,
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        except BadCredentials:
            return InvalidCredentials()
        return ProfileUpdated(customer=Customer.from_model(updated), email_change_pending=pending)

    @strawberry.mutation(
        permission_classes=[IsCustomer, MailRateLimit],
        description="Change password; signs out other sessions.",
    )
    async def change_password(
        self, info: Info, current_password: str, new_password: str
    ) -> ChangePasswordPayload:
        viewer = info.context.viewer
        try:
            revoked = await service.change_password(
                services=info.context.services,
                customer_id=info.context.subject_id,
                session_id=viewer.session_id,
                current_password=current_password,
                new_password=new_password,
                meta=info.context.meta,
            )
        except InputInvalid as exc:
            return InputError.from_problems(exc.problems)
        except BadCredentials:
            return InvalidCredentials()
        return PasswordChanged(other_sessions_revoked=revoked)

    @strawberry.mutation(
        permission_classes=[IsCustomer],
        description="Cancel a pending change of your email address (a password change does too).",
    )
    async def cancel_email_change(self, info: Info) -> EmailChangeCancelled:
        cancelled = await service.cancel_email_change(
            services=info.context.services,
            customer_id=info.context.subject_id,
            session_id=info.context.viewer.session_id,
        )
        return EmailChangeCancelled(cancelled=cancelled)
