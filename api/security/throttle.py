"""Login throttling per account and per IP, stored in the database so that every process
sharing it sees the same counts. Keys are HMACs: no email or IP is stored.

An attempt is counted before its password is checked (`reserve`), atomically with the
check of the limits, so that of any number of concurrent attempts at most `limit` reach
the hash: each attempt writes its rows and counts the window while holding the keys'
lock (on PostgreSQL a transaction advisory lock on each key; SQLite lets one writer at a
time), and the lock is released only once its rows are visible to the next attempt.
The rows stand as failures unless the password turns out right (`succeeded`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.clock import Clock
from api.errors import RateLimited
from api.security.tokens import keyed_digest
from api.settings import Settings
from models import LoginFailure


@dataclass(frozen=True, slots=True)
class Reservation:
    """One attempt's rows, counted as failures until the password turns out right."""

    account_digest: str
    """The account's keyed digest, whose earlier failures a success forgives."""
    row_ids: tuple[int, ...]


async def _lock(conn: BaseDBAsyncClient, keys: list[str]) -> None:
    """Serialize attempts on the same keys until `conn`'s transaction ends, in one global
    order (no deadlock). SQLite needs none: its write lock is held the same way."""
    if conn.capabilities.dialect != "postgres":
        return
    for lock_id in sorted({int(key[:15], 16) for key in keys}):
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [lock_id])


class LoginThrottle:
    def __init__(self, *, settings: Settings, clock: Clock) -> None:
        self._secret = settings.secret_key.get_secret_value()
        self._window = timedelta(seconds=settings.login_window_seconds)
        self._limits = {
            "account": settings.login_max_failures_account,
            "ip": settings.login_max_failures_ip,
        }
        self._clock = clock

    def _keys(self, *, account: str, ip: str | None) -> list[tuple[str, str]]:
        keys = [("account", keyed_digest(self._secret, "throttle-account", account))]
        if ip:
            keys.append(("ip", keyed_digest(self._secret, "throttle-ip", ip)))
        return keys

    async def reserve(self, *, account: str, ip: str | None) -> Reservation:
        """Count this attempt, or raise RateLimited (keeping nothing) when either key
        already has `limit` attempts within the window. Inside a caller's transaction the
        keys stay locked until it ends."""
        now = self._clock.now()
        keys = self._keys(account=account, ip=ip)
        async with in_transaction() as conn:
            await _lock(conn, [key for _, key in keys])
            rows = [
                await LoginFailure.create(scope=scope, key=key, at=now, using_db=conn)
                for scope, key in keys
            ]
            waits = [await self._wait(row, now, conn) for row in rows]
            limited = [wait for wait in waits if wait is not None]
            if limited:  # leaving by an exception rolls the rows back
                raise RateLimited(max(1, math.ceil(max(limited))))
        return Reservation(account_digest=keys[0][1], row_ids=tuple(row.id for row in rows))

    async def _wait(
        self, row: LoginFailure, now: datetime, conn: BaseDBAsyncClient
    ) -> float | None:
        """Seconds until fewer than `limit` other attempts share the row's key within the
        window; None when fewer already do."""
        limit = self._limits[row.scope]
        others = (
            await LoginFailure.filter(scope=row.scope, key=row.key, at__gt=now - self._window)
            .exclude(id=row.id)
            .order_by("-at")
            .limit(limit)
            .using_db(conn)
            .values_list("at", flat=True)
        )
        if len(others) < limit:
            return None
        oldest_counted: datetime = others[limit - 1]  # type: ignore[assignment]
        return (oldest_counted + self._window - now).total_seconds()

    async def succeeded(self, reservation: Reservation) -> None:
        """The password was right: the attempt was no failure, and the account's earlier
        failures are forgiven (the IP's stay)."""
        await LoginFailure.filter(id__in=list(reservation.row_ids)).delete()
        await LoginFailure.filter(scope="account", key=reservation.account_digest).delete()

    async def cancel(self, reservation: Reservation) -> None:
        """The password was never checked (no hash thread came in time): the attempt does
        not count."""
        await LoginFailure.filter(id__in=list(reservation.row_ids)).delete()

    async def record_failure(self, *, account: str, ip: str | None) -> None:
        """Count one failure outright, without checking the limits (to seed data)."""
        now = self._clock.now()
        await LoginFailure.bulk_create(
            [LoginFailure(scope=s, key=k, at=now) for s, k in self._keys(account=account, ip=ip)]
        )

    async def failed(self) -> None:
        """The password was wrong: the reserved rows stay as failures; expired ones go."""
        await LoginFailure.filter(at__lt=self._clock.now() - self._window).delete()
