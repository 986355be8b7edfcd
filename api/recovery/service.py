"""Account recovery (issue 18): a forgotten password reset through a mailed link, and the
verification mail again. Both start from an address anyone may type, so neither tells who
is a customer (docs/ARCHITECTURE.md: security floor, "no oracle"):

- the answer is always the same, and so are the statements: the token and the mail are
  written in a savepoint for every address, and rolled back when the address has no
  account that may be mailed (unknown, erased, already verified), as registration does for
  a known address (api/customers/service.py `register_customer`);
- mail goes through `enqueue`, so the per-recipient limit applies (api/security/mail_limits.py);
  the operations declare `MailRateLimit` (per client IP). A mail the limit drops rolls its
  token back too, so a stranger asking again never leaves the owner a dead link.

Reset links live `CUSTOS_PASSWORD_RESET_MINUTES`, work once, and are bound to the password
they replace (`password_digest`, an HMAC of the stored hash): a reset, a password change or
an erasure ends every reset link mailed before it. A verification link sent again is one
more token like the first (older unused ones keep working until they expire, as after an
email change: confirming an address twice changes nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from api.customers import validation as v
from api.customers.pending_email import drop_pending_email
from api.customers.service import InvalidToken
from api.mail import templates
from api.mail.outbox import Mail, enqueue
from api.rights.erasure import NO_PASSWORD
from api.security.authn import account_key
from api.security.secret_keys import verifying_keys
from api.security.tokens import keyed_digest, new_token, token_hash
from api.services import Services
from models import Customer, EmailToken, LoginFailure, PasswordResetToken

_RESET_DIGEST = "password-reset"


class _StandIn(Exception):
    """No account may be mailed: the savepoint's writes, done only for equal work, go."""


def parse_address(email: str, field: str = "email") -> str:
    """The address as registration stores it, or InputInvalid (a malformed address is no
    account's, and saying so tells nothing about anyone)."""
    p = v.Problems()
    address = v.email(email, p, field)
    p.raise_if_any()
    return address


def _reset_digest(secret: str, password_hash: str) -> str:
    return keyed_digest(secret, _RESET_DIGEST, password_hash)


async def _queue_or_stand_in(
    *,
    services: Services,
    mail: Mail,
    address: str,
    customer_id: UUID | None,
    conn: BaseDBAsyncClient,
) -> None:
    """Queue `mail`; without an account to mail (`customer_id` None), or when the limit
    drops it, leave by _StandIn so the caller's savepoint rolls back."""
    queued = await enqueue(
        mail=mail, recipient=address, customer_id=customer_id, clock=services.clock, using_db=conn
    )
    if customer_id is None or queued is None:
        raise _StandIn


async def request_password_reset(*, services: Services, address: str) -> None:
    """Mail a reset link to `address` if an account that is not erased uses it; the same
    statements either way (see the module)."""
    settings, now = services.settings, services.clock.now()
    minutes = settings.password_reset_minutes
    async with in_transaction() as conn:
        rows = await Customer.filter(email=address).using_db(conn).values("id", "password_hash")
        account = rows[0] if rows and rows[0]["password_hash"] != NO_PASSWORD else None
        customer_id = UUID(str(account["id"])) if account else None
        token = new_token()
        try:
            async with in_transaction() as savepoint:
                await PasswordResetToken.create(
                    customer_id=customer_id,
                    token_hash=token_hash(token),
                    password_digest=_reset_digest(
                        services.secret, account["password_hash"] if account else ""
                    ),
                    created_at=now,
                    expires_at=now + timedelta(minutes=minutes),
                    using_db=savepoint,
                )
                mail = templates.password_reset(settings=settings, token=token, minutes=minutes)
                await _queue_or_stand_in(
                    services=services,
                    mail=mail,
                    address=address,
                    customer_id=customer_id,
                    conn=savepoint,
                )
        except _StandIn:
            pass


@dataclass(frozen=True, slots=True)
class Reset:
    customer_id: UUID
    sessions_revoked: int


def _check_new_password(new_password: str) -> None:
    p = v.Problems()
    v.password(new_password, p, "newPassword")
    p.raise_if_any()


async def _usable(*, services: Services, token: str, now: datetime) -> tuple[int, Customer]:
    """(token row id, its customer), or InvalidToken: INVALID_TOKEN when unknown, used or
    outdated by a password change or an erasure, TOKEN_EXPIRED when too old."""
    row = await PasswordResetToken.filter(token_hash=token_hash(token)).first()
    if row is None or row.used_at is not None or row.customer_id is None:
        raise InvalidToken()
    if row.expires_at <= now:
        raise InvalidToken("TOKEN_EXPIRED")
    customer = await Customer.filter(id=row.customer_id).first()
    if customer is None or customer.password_hash == NO_PASSWORD:
        raise InvalidToken()
    current = customer.password_hash
    if not any(
        _reset_digest(k, current) == row.password_digest for k in verifying_keys(services.secret)
    ):
        raise InvalidToken()
    return row.id, customer


async def reset_password(*, services: Services, token: str, new_password: str) -> Reset:
    """Set a new password with a mailed reset token: InputInvalid for a password the policy
    refuses (the token stays usable), InvalidToken for a bad token. Takes effect once,
    whatever the number of identical concurrent requests: the token and the password are
    each changed only from the values read (compare-and-set), in one transaction. Then
    every session of the customer is revoked, a pending change of the email address dropped
    (api/customers/pending_email.py), the account's sign-in failures forgiven (as after any
    successful password check) and a notice mailed."""
    _check_new_password(new_password)
    now = services.clock.now()
    row_id, customer = await _usable(services=services, token=token, now=now)
    new_hash = await services.passwords.hash(new_password)  # in the hashing pool
    async with in_transaction() as conn:  # a savepoint inside the request's transaction
        await drop_pending_email(
            secret=services.secret, customer_id=customer.id, now=now, conn=conn
        )
        changed = (
            await Customer.filter(id=customer.id, password_hash=customer.password_hash)
            .using_db(conn)
            .update(password_hash=new_hash, updated_at=now)
        )
        used = (
            await PasswordResetToken.filter(id=row_id, used_at=None)
            .using_db(conn)
            .update(used_at=now)
        )
        if changed != 1 or used != 1:  # another request got there first: undo, refuse
            raise InvalidToken()
        revoked = await services.sessions.revoke_all(customer_id=customer.id, using_db=conn)
        await _forgive_sign_in_failures(services=services, email=customer.email, conn=conn)
        await enqueue(
            mail=templates.password_changed(),
            recipient=customer.email,
            customer_id=customer.id,
            clock=services.clock,
            using_db=conn,
        )
    return Reset(customer_id=customer.id, sessions_revoked=revoked)


async def _forgive_sign_in_failures(
    *, services: Services, email: str, conn: BaseDBAsyncClient
) -> None:
    """The account's failed sign-ins are forgiven, as a right password does
    (api/security/throttle.py `succeeded`); the client IP's stay."""
    key = keyed_digest(services.secret, "throttle-account", account_key(email))
    await LoginFailure.filter(scope="account", key=key).using_db(conn).delete()


def _awaiting(rows: list[dict[str, Any]], address: str) -> UUID | None:
    """The account waiting for `address` to be confirmed: its own unverified address, or
    the latest pending change to it (rows newest first) while no account has it."""
    live = [r for r in rows if r["password_hash"] != NO_PASSWORD]
    if any(r["email"] == address for r in rows):
        owner = next((r for r in live if r["email"] == address), None)
        if owner is None or owner["email_verified_at"] is not None:
            return None
        return UUID(str(owner["id"]))
    pending = next((r for r in live if r["pending_email"] == address), None)
    return UUID(str(pending["id"])) if pending else None


async def resend_verification(*, services: Services, address: str) -> None:
    """Mail a fresh verification link to `address` if an account waits for it to be
    confirmed (unverified, or a pending change to it); the same statements for a verified
    or unknown address, whose savepoint is rolled back (see the module)."""
    settings, now = services.settings, services.clock.now()
    hours = settings.email_token_hours
    async with in_transaction() as conn:
        rows = (
            await Customer.filter(Q(email=address) | Q(pending_email=address))
            .using_db(conn)
            .order_by("-updated_at", "id")
            .values("id", "email", "pending_email", "email_verified_at", "password_hash")
        )
        customer_id = _awaiting(rows, address)
        token = new_token()
        try:
            async with in_transaction() as savepoint:
                await EmailToken.create(
                    customer_id=customer_id,
                    token_hash=token_hash(token),
                    email_digest=keyed_digest(services.secret, "email", address),
                    created_at=now,
                    expires_at=now + timedelta(hours=hours),
                    using_db=savepoint,
                )
                mail = templates.verify_email(settings=settings, token=token, hours=hours)
                await _queue_or_stand_in(
                    services=services,
                    mail=mail,
                    address=address,
                    customer_id=customer_id,
                    conn=savepoint,
                )
        except _StandIn:
            pass
