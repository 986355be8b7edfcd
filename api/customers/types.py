"""GraphQL types of the customer's own account, built from the models."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry

from api.customers.service import current_consents
from authz.registry import CONSENT_PURPOSES
from models import Customer as CustomerModel


@strawberry.type
class Address:
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2.")


@strawberry.type(description="The current state of consent for one purpose.")
class Consent:
    purpose: str
    granted: bool
    at: datetime | None
    source: str | None


@strawberry.type
class Customer:
    id: strawberry.ID
    email: str
    email_verified: bool
    pending_email: str | None = strawberry.field(
        description="A new address awaiting confirmation; `email` changes once it is confirmed."
    )
    phone: str = strawberry.field(description="E.164, e.g. +442079460958.")
    address: Address
    created_at: datetime
    customer_id: strawberry.Private[UUID]

    @classmethod
    def from_model(cls, m: CustomerModel) -> Customer:
        return cls(
            id=strawberry.ID(str(m.id)),
            email=m.email,
            email_verified=m.email_verified_at is not None,
            pending_email=m.pending_email,
            phone=m.phone,
            address=Address(
                line1=m.address_line1,
                line2=m.address_line2 or None,
                city=m.address_city,
                postal_code=m.address_postal_code,
                country=m.address_country,
            ),
            created_at=m.created_at,
            customer_id=m.id,
        )

    @strawberry.field(description="Every purpose that needs consent; off until given.")
    async def consents(self) -> list[Consent]:
        latest = await current_consents(customer_id=self.customer_id)
        result = []
        for purpose in sorted(CONSENT_PURPOSES):
            record = latest.get(purpose)
            result.append(
                Consent(
                    purpose=purpose,
                    granted=bool(record and record.granted),
                    at=record.at if record else None,
                    source=record.source if record else None,
                )
            )
        return result


@strawberry.input
class AddressInput:
    line1: str
    city: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2, e.g. GB.")
    postal_code: str | None = None
    line2: str | None = None


@strawberry.input
class ConsentInput:
    purpose: str = strawberry.field(description="A purpose that needs consent, e.g. analytics.")
    granted: bool


@strawberry.input
class RegisterInput:
    email: str
    password: str = strawberry.field(description="8 to 256 characters, any Unicode.")
    phone: str = strawberry.field(description="With its country code, or local to the address.")
    address: AddressInput
    consents: list[ConsentInput] | None = None


@strawberry.input
class UpdateProfileInput:
    email: str | None = strawberry.field(
        default=None, description="A new address; needs `currentPassword` and confirmation."
    )
    current_password: str | None = None
    phone: str | None = None
    address: AddressInput | None = None


@strawberry.type(description="Registration accepted: a confirmation email is on its way.")
class RegistrationAccepted:
    message: str = (
        "Thanks. Check your inbox: we sent a message to confirm the address. "
        "If you already have an account, the message says so."
    )


@strawberry.type
class EmailVerified:
    customer: Customer


@strawberry.type
class LoginSuccess:
    token: str = strawberry.field(description="Send as `Authorization: Bearer <token>`.")
    expires_at: datetime
    customer: Customer


@strawberry.type
class ProfileUpdated:
    customer: Customer
    email_change_pending: bool = strawberry.field(
        description="True when a confirmation was mailed to the new address."
    )


@strawberry.type
class PasswordChanged:
    other_sessions_revoked: int
