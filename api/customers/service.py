"""Customer accounts: registration, verification, sign-in, self-service (domain code)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import DoesNotExist, IntegrityError
from tortoise.transactions import in_transaction

from api.consent.records import consent_record
from api.customers import validation as v
from api.customers.account_lock import locked_customer
from api.customers.pending_email import drop_pending_email
from api.errors import Unauthenticated
from api.mail import templates
from api.mail.outbox import enqueue
from api.security.authn import InvalidCredentials, authenticate, check_password
from api.security.secret_keys import verifying_keys
from api.security.sessions import IssuedSession
from api.security.tokens import keyed_digest, new_token, token_hash
from api.services import Services
from api.visits.service import attach_visitor_events
from authz.audit import AuditTrail
from authz.registry import ConsentSource
from models import ConsentRecord, Customer, EmailToken


@dataclass(frozen=True, slots=True)
class ConsentChoice:
    purpose: str
    granted: bool


@dataclass(frozen=True, slots=True)
class Registration:
    email: str
    password: str
    phone: str
    address: v.AddressData
    consents: tuple[ConsentChoice, ...]


@dataclass(frozen=True, slots=True)
class RequestMeta:
    ip: str | None
    user_agent: str | None
    trail: AuditTrail | None = None
    visitor_id: str | None = None
    """The anonymous visitor id cookie, if the browser sent one."""


class InvalidToken(Exception):
    def __init__(self, code: str = "INVALID_TOKEN") -> None:
        super().__init__(code)
        self.code = code


def validate_registration(
    *,
    email: str,
    password: str,
    phone: str,
    line1: str,
    line2: str | None,
    city: str,
    postal_code: str | None,
    country: str,
    consents: list[tuple[str, bool]],
) -> Registration:
    """Every problem of the input at once, or the normalised registration."""
    p = v.Problems()
    clean_email = v.email(email, p)
    v.password(password, p)
    clean_address = v.address(
        line1=line1, line2=line2, city=city, postal_code=postal_code, country=country, problems=p
    )
    clean_phone = v.phone(phone, clean_address.country, p)
    seen: set[str] = set()
    for i, (purpose, _granted) in enumerate(consents):
        v.purpose(purpose, p, f"consents[{i}].purpose")
        if purpose in seen:
            p.add(f"consents[{i}].purpose", "Each purpose may appear once.")
        seen.add(purpose)
    p.raise_if_any()
    return Registration(
        email=clean_email,
        password=password,
        phone=clean_phone,
        address=clean_address,
        consents=tuple(ConsentChoice(purpose, granted) for purpose, granted in consents),
    )


async def _issue_email_token(
    *,
    services: Services,
    customer_id: UUID,
    address: str,
    conn: BaseDBAsyncClient,
    void: bool = False,
) -> str:
    """A verification token; a `void` one is written used, so that a path which must not
    mail one does the same writes as one which does (no timing oracle)."""
    now = services.clock.now()
    token = new_token()
    await EmailToken.create(
        customer_id=customer_id,
        token_hash=token_hash(token),
        email_digest=keyed_digest(services.secret, "email", address),
        created_at=now,
        expires_at=now + timedelta(hours=services.settings.email_token_hours),
        used_at=now if void else None,
        using_db=conn,
    )
    return token


async def _mail_verification(
    *, services: Services, customer_id: UUID, address: str, conn: BaseDBAsyncClient
) -> None:
    token = await _issue_email_token(
        services=services, customer_id=customer_id, address=address, conn=conn
    )
    mail = templates.verify_email(
        settings=services.settings,
        token=token,
        hours=services.settings.email_token_hours,
    )
    await enqueue(
        mail=mail, recipient=address, customer_id=customer_id, clock=services.clock, using_db=conn
    )


class _StandIn(Exception):
    """The address has an account: the stand-in account made for equal work goes."""


async def register_customer(
    *, services: Services, registration: Registration, meta: RequestMeta
) -> None:
    """Create the account and mail a verification link, in one transaction.

    A known address gets the same answer and the same work: the hash, then the very same
    writes (an account under a throwaway address, its consents and its token) in a
    savepoint that is rolled back, and one mail, to the owner instead of a token. Neither
    the answer nor its time tells a stranger that the address has an account."""
    password_hash = await services.passwords.hash(registration.password)
    async with in_transaction() as conn:
        owner = await _owner_of(registration.email, conn)
        address = registration.email if owner is None else f"{uuid4().hex}@registering.invalid"
        try:
            async with in_transaction() as savepoint:
                customer, token = await _create_account(
                    services=services,
                    registration=registration,
                    address=address,
                    password_hash=password_hash,
                    meta=meta,
                    conn=savepoint,
                )
                if owner is not None:
                    raise _StandIn
        except _StandIn:
            pass
        except IntegrityError:  # registered by a concurrent request since the check
            owner = await _owner_of(registration.email, conn)
            if owner is None:
                raise
        if owner is not None:
            await _mail_owner(services=services, address=registration.email, owner=owner, conn=conn)
            return
        settings = services.settings
        mail = templates.verify_email(
            settings=settings, token=token, hours=settings.email_token_hours
        )
        await enqueue(
            mail=mail,
            recipient=address,
            customer_id=customer.id,
            clock=services.clock,
            using_db=conn,
        )


async def _create_account(
    *,
    services: Services,
    registration: Registration,
    address: str,
    password_hash: str,
    meta: RequestMeta,
    conn: BaseDBAsyncClient,
) -> tuple[Customer, str]:
    """The account under `address`, its consents and a verification token (returned)."""
    now = services.clock.now()
    policy_version = await services.policies.version_in_force()
    customer = await Customer.create(
        email=address,
        password_hash=password_hash,
        phone=registration.phone,
        address_line1=registration.address.line1,
        address_line2=registration.address.line2,
        address_city=registration.address.city,
        address_postal_code=registration.address.postal_code,
        address_country=registration.address.country,
        created_at=now,
        updated_at=now,
        using_db=conn,
    )
    await ConsentRecord.bulk_create(
        [
            consent_record(
                customer_id=customer.id,
                purpose=choice.purpose,
                granted=choice.granted,
                source=ConsentSource.REGISTRATION,
                meta=meta,
                at=now,
                policy_version=policy_version,
            )
            for choice in registration.consents
        ],
        using_db=conn,
    )
    token = await _issue_email_token(
        services=services, customer_id=customer.id, address=address, conn=conn
    )
    return customer, token


async def _owner_of(address: str, conn: BaseDBAsyncClient) -> UUID | None:
    found = await Customer.filter(email=address).using_db(conn).values_list("id", flat=True)
    return UUID(str(found[0])) if found else None


async def _mail_owner(
    *, services: Services, address: str, owner: UUID, conn: BaseDBAsyncClient
) -> None:
    """The owner learns that someone tried their address; the stranger learns nothing."""
    await enqueue(
        mail=templates.already_registered(settings=services.settings),
        recipient=address,
        customer_id=owner,
        clock=services.clock,
        using_db=conn,
    )


async def verify_email(*, services: Services, token: str) -> Customer:
    """Consume a verification token; for a pending change, the new address takes over."""
    now = services.clock.now()
    async with in_transaction() as conn:
        row = await EmailToken.filter(token_hash=token_hash(token)).using_db(conn).first()
        if row is None or row.used_at is not None:
            raise InvalidToken()
        if row.expires_at <= now:
            raise InvalidToken("TOKEN_EXPIRED")
        # the row first, as every writer of it and its tokens (api/customers/account_lock.py)
        if row.customer_id is None:  # a stand-in's, never committed (api/recovery)
            raise InvalidToken()
        try:
            customer = await locked_customer(customer_id=UUID(str(row.customer_id)), conn=conn)
        except Unauthenticated:  # the account is gone
            raise InvalidToken() from None
        candidates = [customer.pending_email, customer.email]
        target = next(
            (
                a
                for a in candidates
                if a
                and any(
                    keyed_digest(key, "email", a) == row.email_digest
                    for key in verifying_keys(services.secret)
                )
            ),
            None,
        )
        if target is None:
            raise InvalidToken()
        updated = (
            await EmailToken.filter(id=row.id, used_at=None).using_db(conn).update(used_at=now)
        )
        if updated != 1:
            raise InvalidToken()
        if target == customer.pending_email and target != customer.email:
            if await Customer.filter(email=target).using_db(conn).exists():
                raise InvalidToken("EMAIL_UNAVAILABLE")
            customer.email = target
            customer.pending_email = None
        customer.email_verified_at = now
        customer.updated_at = now
        try:
            await customer.save(using_db=conn)
        except IntegrityError:  # another account confirmed the same address since the check
            raise InvalidToken("EMAIL_UNAVAILABLE") from None
    return customer


@dataclass(frozen=True, slots=True)
class SignIn:
    customer: Customer
    session: IssuedSession


async def login_customer(
    *, services: Services, email: str, password: str, meta: RequestMeta
) -> SignIn:
    customer = await authenticate(
        services=services,
        model=Customer,
        email=email,
        password=password,
        ip=meta.ip,
        operation="login",
        trail=meta.trail,
    )
    customer.last_login_at = services.clock.now()
    await customer.save(update_fields=["last_login_at"])
    session = await services.sessions.issue(customer_id=customer.id)
    await attach_visitor_events(
        services=services, customer_id=customer.id, visitor_id=meta.visitor_id
    )
    return SignIn(customer, session)


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    email: str | None
    current_password: str | None
    phone: str | None
    address: v.AddressData | None


def validate_profile_changes(
    *,
    customer: Customer,
    email: str | None,
    current_password: str | None,
    phone: str | None,
    address: dict[str, str | None] | None,
) -> ProfileChanges:
    p = v.Problems()
    clean_email = v.email(email, p) if email is not None else None
    if clean_email is not None and not current_password:
        p.add("currentPassword", "Changing the email address needs your current password.")
    clean_address = None
    if address is not None:
        clean_address = v.address(
            line1=address.get("line1") or "",
            line2=address.get("line2"),
            city=address.get("city") or "",
            postal_code=address.get("postal_code"),
            country=address.get("country") or "",
            problems=p,
        )
    country = clean_address.country if clean_address else customer.address_country
    clean_phone = v.phone(phone, country, p) if phone is not None else None
    p.raise_if_any()
    return ProfileChanges(clean_email, current_password, clean_phone, clean_address)


async def update_profile(
    *,
    services: Services,
    customer_id: UUID,
    changes: ProfileChanges,
    meta: RequestMeta,
    session_id: int | None = None,
) -> tuple[Customer, bool]:
    """Apply a customer's own rectification; returns (customer, email change pending).
    Written to the row as it is under its lock (api/customers/account_lock.py), only the
    columns changed: Unauthenticated if the request's session ended meanwhile (an erasure
    ends them all), InvalidCredentials if the password checked for an email change is no
    longer the account's, or if the address became a change only meanwhile (unchecked)."""
    customer = await Customer.get(id=customer_id)
    checked = customer.password_hash
    password_checked = changes.email is not None and changes.email != customer.email
    if password_checked:
        await check_password(
            services=services,
            account=customer.email,
            stored_hash=checked,
            password=changes.current_password or "",
            ip=meta.ip,
            trail=meta.trail,
            operation="updateProfile",
            actor=customer.id,
        )
    now = services.clock.now()
    async with in_transaction() as conn:
        customer = await locked_customer(customer_id=customer_id, session_id=session_id, conn=conn)
        email_change = changes.email is not None and changes.email != customer.email
        # a change needs the password checked against the account as it is now (a link
        # confirmed meanwhile can make an address that was the account's a change)
        if email_change and (not password_checked or customer.password_hash != checked):
            raise InvalidCredentials()
        written = ["updated_at"]
        if changes.phone is not None:
            customer.phone = changes.phone
            written.append("phone")
        if changes.address is not None:
            for name in ADDRESS_PARTS:
                setattr(customer, f"address_{name}", getattr(changes.address, name))
            written += [f"address_{name}" for name in ADDRESS_PARTS]
        if email_change and changes.email is not None:
            await _request_email_change(
                services=services, customer=customer, address=changes.email, conn=conn
            )
            written.append("pending_email")
        customer.updated_at = now
        await customer.save(using_db=conn, update_fields=written)
    return customer, email_change


ADDRESS_PARTS = ("line1", "line2", "city", "postal_code", "country")


async def _request_email_change(
    *, services: Services, customer: Customer, address: str, conn: BaseDBAsyncClient
) -> None:
    """The new address must confirm first; the current one is told. A taken address gets
    a notice instead of a token, and the caller sees the same answer either way."""
    clock = services.clock
    await enqueue(
        mail=templates.email_change_requested(),
        recipient=customer.email,
        customer_id=customer.id,
        clock=clock,
        using_db=conn,
    )
    customer.pending_email = address  # shown the same way whether or not the address is taken
    if await Customer.filter(email=address).using_db(conn).exists():
        await _issue_email_token(
            services=services, customer_id=customer.id, address=address, conn=conn, void=True
        )
        await enqueue(
            mail=templates.email_change_collision(),
            recipient=address,
            customer_id=None,
            clock=clock,
            using_db=conn,
        )
        return
    await _mail_verification(services=services, customer_id=customer.id, address=address, conn=conn)


async def change_password(
    *,
    services: Services,
    customer_id: UUID,
    session_id: int | None,
    current_password: str,
    new_password: str,
    meta: RequestMeta,
) -> int:
    """Returns how many other sessions were revoked. A pending change of the email address
    is dropped (api/customers/pending_email.py). The row is locked and read again before
    it is written (api/customers/account_lock.py): Unauthenticated if the request's
    session ended meanwhile, InvalidCredentials if the password checked is no longer the
    account's (another change won, or an erasure)."""
    p = v.Problems()
    v.password(new_password, p, "newPassword")
    p.raise_if_any()
    customer = await Customer.get(id=customer_id)
    await check_password(
        services=services,
        account=customer.email,
        stored_hash=customer.password_hash,
        password=current_password,
        ip=meta.ip,
        trail=meta.trail,
        operation="changePassword",
        actor=customer.id,
    )
    new_hash = await services.passwords.hash(new_password)
    now = services.clock.now()
    checked = customer.password_hash
    async with in_transaction() as conn:
        customer = await locked_customer(customer_id=customer_id, session_id=session_id, conn=conn)
        if customer.password_hash != checked:  # changed (or erased) since it was checked
            raise InvalidCredentials()
        await drop_pending_email(
            secret=services.secret, customer_id=customer.id, now=now, conn=conn
        )
        customer.password_hash = new_hash
        customer.updated_at = now
        await customer.save(using_db=conn, update_fields=["password_hash", "updated_at"])
        revoked = await services.sessions.revoke_all(
            customer_id=customer.id, except_session_id=session_id, using_db=conn
        )
        await enqueue(
            mail=templates.password_changed(),
            recipient=customer.email,
            customer_id=customer.id,
            clock=services.clock,
            using_db=conn,
        )
    return revoked


async def current_consents(*, customer_id: UUID) -> dict[str, ConsentRecord]:
    """The latest record per purpose (history is append-only)."""
    latest: dict[str, ConsentRecord] = {}
    for record in await ConsentRecord.filter(customer_id=customer_id).order_by("at", "id"):
        latest[record.purpose] = record
    return latest


async def get_customer(*, customer_id: UUID) -> Customer:
    return await Customer.get(id=customer_id)


async def customer_row(customer_id: UUID, columns: Sequence[str]) -> dict[str, Any]:
    """The customer's `columns` only (a view names what its fields show)."""
    rows = await Customer.filter(id=customer_id).values(*columns)
    if not rows:
        raise DoesNotExist(Customer)
    return rows[0]


async def cancel_email_change(
    *, services: Services, customer_id: UUID, session_id: int | None = None
) -> bool:
    """Drop the customer's pending change of address; whether one was pending.
    Unauthenticated if the request's session ended meanwhile (account_lock.py)."""
    async with in_transaction() as conn:
        await locked_customer(customer_id=customer_id, session_id=session_id, conn=conn)
        return await drop_pending_email(
            secret=services.secret, customer_id=customer_id, now=services.clock.now(), conn=conn
        )
