"""Password sign-in shared by customers and staff: throttled, enumeration-safe, rehashing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeVar

from email_validator import EmailNotValidError, validate_email
from tortoise.models import Model
from tortoise.transactions import in_transaction

from api.errors import HashingBusy, RateLimited
from api.security.throttle import Reservation
from api.services import Services
from authz.audit import AuditTrail


class InvalidCredentials(Exception):
    pass


A = TypeVar("A", bound=Model)


def account_key(email: str) -> str:
    """The address as registration stores it; raw lower-case text when it is not one."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return email.strip().lower()[:320]


@contextlib.asynccontextmanager
async def _paced(services: Services) -> AsyncIterator[None]:
    """A throttled attempt is answered after the hashing queue's refusal delay, outside its
    place in the queue (a refusal of the queue itself is paced already): a client that
    ignores Retry-After and asks again at once then costs two requests a second per
    connection, not hundreds of throttle transactions."""
    try:
        yield
    except HashingBusy:
        raise
    except RateLimited:
        await services.passwords.pause_refusal()
        raise


async def _verify(
    services: Services, reservation: Reservation, stored_hash: str | None, password: str
) -> bool:
    """The password check of a counted attempt; when no hash thread comes in time
    (HashingBusy) the attempt is uncounted, as if never made."""
    try:
        return await services.passwords.verify(stored_hash, password)
    except HashingBusy:
        await services.throttle.cancel(reservation)
        raise


async def check_password(
    *,
    services: Services,
    account: str,
    stored_hash: str | None,
    password: str,
    ip: str | None,
    trail: AuditTrail | None = None,
    operation: str = "",
    actor: object = "",
    actor_kind: str = "customer",
) -> None:
    """Throttled password check for operations that re-confirm the password: RateLimited
    when throttled, InvalidCredentials (counted) when wrong. The attempt is counted before
    the hash (see api/security/throttle.py), so concurrent guesses cannot outrun the limit;
    a place in the hashing queue is taken before that, so HashingBusy (RATE_LIMITED) when
    the queue is full leaves nothing counted. A refusal is an audit event of `operation`
    by `actor` (the signed-in account), written with the failure's count in one
    transaction: the answer is a typed error, not a failed request, so nothing else would
    write it."""

    def refused(reason: str) -> None:
        if trail is not None:
            trail.event(
                at=services.clock.now(),
                event="auth",
                operation=operation,
                decision="deny",
                actor_kind=actor_kind,
                actor_id=actor,
                subject_id=actor,
                reason=reason,
            )

    key = account_key(account)
    async with _paced(services), services.passwords.check_place():
        try:
            reservation = await services.throttle.reserve(account=key, ip=ip)
        except RateLimited:
            refused("rate limited")
            raise
        matches = await _verify(services, reservation, stored_hash, password)
    if not matches:
        async with in_transaction():
            await services.throttle.failed()
            refused("wrong password")
            if trail is not None:
                await trail.flush()
        raise InvalidCredentials()
    await services.throttle.succeeded(reservation)


async def authenticate(
    *,
    services: Services,
    model: type[A],
    email: str,
    password: str,
    ip: str | None,
    operation: str,
    trail: AuditTrail | None,
    **conditions: object,
) -> A:
    """The account whose password matches, or InvalidCredentials (same code and about the
    same time for a wrong password and an unknown account); RateLimited when throttled.
    Either way the attempt is an audit event: the account's id when it is known, never
    the address or the IP."""
    key = account_key(email)
    kind = "employee" if model.__name__ == "Employee" else "customer"
    account: A | None = None

    def audit(decision: str, reason: str) -> None:
        if trail is not None:
            trail.event(
                at=services.clock.now(),
                event="auth",
                operation=operation,
                decision=decision,
                actor_kind=kind if decision == "allow" else "anonymous",
                actor_id=account.pk if account is not None and decision == "allow" else "",
                subject_id=account.pk if account is not None else "",
                reason=reason,
            )

    # A place in the hashing queue first: when it is full (HashingBusy, a RATE_LIMITED) the
    # attempt is refused before anything is read, counted or logged, as if it had not been
    # made, at next to no cost to the server.
    async with _paced(services), services.passwords.check_place():
        account = await model.filter(email=key, **conditions).first()
        stored = getattr(account, "password_hash", None)
        try:
            reservation = await services.throttle.reserve(account=key, ip=ip)
        except RateLimited:
            audit("deny", "rate limited")
            raise
        matches = await _verify(services, reservation, stored, password)
    # The attempt was counted in a short transaction of its own, and the hash is checked
    # outside any: a transaction held open during hashing would hold a database connection
    # (on SQLite, the database) for its length, and a flood of sign-ins would stall every
    # other request. The outcome and its audit event then commit together.
    async with in_transaction():
        if matches and account is not None:
            await services.throttle.succeeded(reservation)
            audit("allow", "")
        else:
            await services.throttle.failed()
            audit("deny", "unknown account" if account is None else "wrong password")
        if trail is not None:
            await trail.flush()
    if not matches or account is None:
        raise InvalidCredentials()
    # An upgrade of the stored hash waits for a sign-in when the hashing queue has room.
    rehashed = None
    if services.passwords.needs_rehash(str(stored)):
        rehashed = await services.passwords.rehash(password)
    if rehashed is not None:
        account.password_hash = rehashed
        await account.save(update_fields=["password_hash"])
    return account
