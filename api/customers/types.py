"""GraphQL types of the customer's own account, built from the models."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import strawberry

from api.audit.schema import customer_access_log
from api.audit.types import AccessLogConnection
from api.consent.service import histories
from api.consent.state import ConsentState
from api.consent.state import consent_states as states_of
from api.consent.types import ConsentEvent
from api.context import Info
from api.customers.directory import latest_consents
from api.guards import Access, PersonalData, mask_email, mask_phone, personal
from api.pagination import decode_cursor, page_size
from api.permissions import IsAccountHolder
from api.policy.service import pending_policy
from api.policy.types import PolicyVersion
from api.rights.queries import requests_of, transitions_of
from api.rights.types import RightsRequest
from api.sharing.schema import customer_disclosures
from api.sharing.types import CustomerDisclosure
from api.support.service import cases_of_customers
from api.support.types import SupportCase
from api.visits.queries import VisitPageKey, visit_pages
from api.visits.service import recently_viewed
from api.visits.types import VisitConnection, parse_visit_cursor, visit_connection
from authz.registry import Category
from models import ConsentRecord
from models import Customer as CustomerModel


@strawberry.type
class Address:
    line1: str
    line2: str | None
    city: str
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2.")


def mask_address(value: Address | None) -> Address | None:
    """City and country only: enough to place a customer, not to find their door."""
    if value is None:
        return None
    return Address(
        line1="***", line2=None, city=value.city, postal_code="***", country=value.country
    )


strawberry.enum(
    ConsentState,
    name="ConsentState",
    description="GRANTED, WITHDRAWN, NOT_ASKED (never given), or ASK_AGAIN: given before a "
    "material policy change of the purpose's scope took effect, so no longer relied on.",
)


@strawberry.type(description="The current state of consent for one purpose.")
class Consent:
    purpose: str
    granted: bool = strawberry.field(description="True only when `state` is GRANTED.")
    at: datetime | None
    source: str | None
    state: ConsentState


def consent_states(
    latest: dict[str, ConsentRecord], *, ask_again_since: dict[str, datetime]
) -> list[Consent]:
    result = []
    for purpose, state in states_of(latest, ask_again_since=ask_again_since).items():
        record = latest.get(purpose)
        result.append(
            Consent(
                purpose=purpose,
                granted=state is ConsentState.GRANTED,
                at=record.at if record else None,
                source=record.source if record else None,
                state=state,
            )
        )
    return result


@strawberry.type(
    description="A customer. Personal-data fields are guarded: each is decided by role, "
    "category and purpose, logged, and null with a FORBIDDEN error when denied."
)
class Customer:
    id: strawberry.ID
    email: str | None = personal(Category.CONTACT_EMAIL, mask=mask_email)
    email_verified: bool
    pending_email: str | None = personal(
        Category.CONTACT_EMAIL,
        mask=mask_email,
        description="A new address awaiting confirmation; `email` changes once it is confirmed.",
    )
    phone: str | None = personal(
        Category.CONTACT_PHONE, mask=mask_phone, description="E.164, e.g. +442079460958."
    )
    address: Address | None = personal(Category.CONTACT_ADDRESS, mask=mask_address)
    created_at: datetime
    customer_id: strawberry.Private[UUID]
    access: strawberry.Private[Access]

    @classmethod
    def from_model(
        cls,
        m: CustomerModel,
        *,
        purpose: str = "service",
        conditions: tuple[str, ...] = (),
    ) -> Customer:
        row = {column: getattr(m, column) for column in ROW_COLUMNS}
        return cls.from_row(row, purpose=purpose, conditions=conditions)

    @classmethod
    def from_row(
        cls,
        row: Mapping[str, Any],
        *,
        purpose: str = "service",
        conditions: tuple[str, ...] = (),
    ) -> Customer:
        """From a row holding `id` and the columns of the fields a query selects
        (`columns_for`); the fields of columns it lacks are never resolved."""
        customer_id = row["id"] if isinstance(row["id"], UUID) else UUID(str(row["id"]))
        text = str(customer_id)  # once, for the id shown and the subject logged
        address = None
        if "address_line1" in row:
            address = Address(
                line1=row["address_line1"],
                line2=row["address_line2"] or None,
                city=row["address_city"],
                postal_code=row["address_postal_code"],
                country=row["address_country"],
            )
        return cls(
            id=strawberry.ID(text),
            email=row.get("email"),
            email_verified=row.get("email_verified_at") is not None,
            pending_email=row.get("pending_email"),
            phone=row.get("phone"),
            address=address,
            created_at=row.get("created_at") or datetime.min,
            customer_id=customer_id,
            access=Access(subject_id=text, purpose=purpose, conditions=conditions),
        )

    @classmethod
    def of_id(cls, customer_id: UUID) -> Customer:
        """The account holder's own view before its row is read: enough for the fields in
        ROW_FREE, each of which reads what it needs by the customer's id."""
        return cls.from_row({"id": customer_id})

    @personal(Category.CONSENT_HISTORY, description="Every purpose that needs consent.")
    async def consents(self, info: Info) -> list[Consent] | None:
        latest = await info.context.load(latest_consents, self.customer_id)
        since = await info.context.services.policies.ask_again_since()
        return consent_states(latest, ask_again_since=since)

    @personal(Category.CONSENT_HISTORY, description="Every consent record, newest first.")
    async def consent_history(self, info: Info) -> list[ConsentEvent] | None:
        records = await info.context.load(histories, self.customer_id)
        return [ConsentEvent.from_model(r) for r in records]

    @personal(Category.SUPPORT_CASES, description="Support cases, newest first.")
    async def support_cases(self, info: Info) -> list[SupportCase] | None:
        cases = await info.context.load(cases_of_customers, self.customer_id)
        access = self.access
        return [
            SupportCase.from_model(c, purpose=access.purpose, conditions=access.conditions)
            for c in cases
        ]

    @strawberry.field(
        permission_classes=[IsAccountHolder],
        description="Who accessed your data: each request by our staff, with their role(s) "
        "and purpose (not their name), newest first.",
    )
    async def access_log(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> AccessLogConnection | None:
        return await customer_access_log(
            info, customer_id=self.customer_id, first=first, after=after
        )

    @strawberry.field(
        permission_classes=[IsAccountHolder],
        description="Disclosures of your data to processors and authorities, newest first "
        "(one the law lets us not tell you about yet appears once it may).",
    )
    async def disclosures(self, info: Info) -> list[CustomerDisclosure] | None:
        return await customer_disclosures(info, customer_id=self.customer_id)

    @strawberry.field(
        permission_classes=[IsAccountHolder],
        description="The privacy policy in force, when a material change took effect since "
        "you registered and you have not accepted it yet (`acceptPolicy`); else null.",
    )
    async def pending_policy(self, info: Info) -> PolicyVersion | None:
        services = info.context.services
        entry = await pending_policy(
            services=services, customer_id=self.customer_id, customer_since=self.created_at
        )
        return PolicyVersion.from_entry(entry, now=services.clock.now()) if entry else None

    @strawberry.field(
        permission_classes=[IsAccountHolder],
        description="Your requests to access, rectify or erase your data, newest first.",
    )
    async def rights_requests(self, info: Info) -> list[RightsRequest] | None:
        requests = await info.context.load(requests_of, self.customer_id)
        transitions = await transitions_of([r.id for r in requests])
        now = info.context.services.clock.now()
        return [
            RightsRequest.from_model(r, transitions=t, now=now, purpose=self.access.purpose)
            for r, t in zip(requests, transitions, strict=True)
        ]

    @strawberry.field(
        permission_classes=[IsAccountHolder],
        extensions=[PersonalData(Category.BEHAVIOR_BROWSING)],
        description="Pages you viewed lately, newest first, to pick up where you left off: "
        "only with your `personalization` consent (empty otherwise).",
    )
    async def recently_viewed(self, info: Info, first: int = 10) -> list[str] | None:
        return await recently_viewed(
            services=info.context.services, customer_id=self.customer_id, limit=page_size(first)
        )

    @personal(
        Category.BEHAVIOR_BROWSING,
        description="Visit events collected by POST /collect, newest first; each value is "
        "guarded by its own category (device.ip, device.browser, behavior.browsing).",
    )
    async def visits(
        self, info: Info, first: int = 50, after: str | None = None
    ) -> VisitConnection | None:
        key = VisitPageKey(
            customer_id=self.customer_id,
            first=page_size(first),
            after=decode_cursor("visit", after, parse_visit_cursor) if after else None,
        )
        events = await info.context.load(visit_pages, key)
        return visit_connection(events, first=key.first, access=self.access)


COLUMNS_OF_FIELD: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "emailVerified": ("email_verified_at",),
    "pendingEmail": ("pending_email",),
    "phone": ("phone",),
    "address": (
        "address_line1",
        "address_line2",
        "address_city",
        "address_postal_code",
        "address_country",
    ),
    "createdAt": ("created_at",),
    "pendingPolicy": ("created_at",),
}
"""The stored columns each field of `Customer` shows; the other fields read by id."""
ROW_COLUMNS = ("id", *dict.fromkeys(c for cs in COLUMNS_OF_FIELD.values() for c in cs))
"""Every column `Customer` shows: never the password hash, nor bookkeeping."""


def columns_for(selected: frozenset[str]) -> tuple[str, ...]:
    """The columns a selection of `Customer` fields needs (always the id)."""
    return ("id", *dict.fromkeys(c for f in selected for c in COLUMNS_OF_FIELD.get(f, ())))


ROW_FREE = frozenset(
    {
        "__typename",
        "id",
        "consents",
        "consentHistory",
        "supportCases",
        "accessLog",
        "disclosures",
        "rightsRequests",
        "recentlyViewed",
        "visits",
    }
)
"""The fields of `Customer` that need only whose account it is (`Customer.of_id`): a
selection of these alone reads no customer row. A field not named here is read from the
row (`from_model`), so a new field is right by default, at the cost of one read."""

FACT_FREE = frozenset({"__typename", "id", "emailVerified", "createdAt"})
"""The fields of `Customer` that no guard decides: a staff page selecting only these
loads no conditions or consents (the facts the guards decide on)."""


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


@strawberry.type
class EmailChangeCancelled:
    cancelled: bool = strawberry.field(
        description="True when a change was pending: its confirmation link no longer works."
    )
