"""Limits on the mail a request can cause, so no one can bomb an address or spam from us.

Two counts per fixed window (`mail_window_seconds`), kept in the database so every process
sharing it counts together, and incremented by one atomic upsert (a concurrent hit of the
same key waits for the row, then counts on top of it):

- per recipient, inside the outbox (api/mail/outbox.py `enqueue`): at most
  `mail_max_per_recipient` mails of one kind to one address. A further one is simply not
  queued and the operation answers as usual, so the answer tells nothing about the address.
- per client IP, declared on the operations that send mail (`MailRateLimit`): at most
  `mail_max_requests_ip` requests; further ones are refused with RATE_LIMITED and
  Retry-After, which tells nothing about any address.

Keys are HMACs: no address or IP is stored."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strawberry.permission import BasePermission
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from api.clock import Clock
from api.errors import RateLimited
from api.security.tokens import keyed_digest
from api.settings import Settings
from models import RateCount

if TYPE_CHECKING:
    from api.context import Info

RECIPIENT = "mail-to"
IP = "mail-ip"

_UPSERT = (
    "INSERT INTO rate_count (scope, key, bucket, hits) VALUES ({}, {}, {}, 1) "
    "ON CONFLICT (scope, key, bucket) DO UPDATE SET hits = rate_count.hits + 1 RETURNING hits"
)
_PLACEHOLDERS = {"postgres": ("$1", "$2", "$3"), "sqlite": ("?", "?", "?")}

STAFF_DECIDED = frozenset(
    {"rights_decided", "rights_extended", "rights_completed", "rights_erased", "export_ready"}
)
"""Mail kinds only an officer's decision on a verified request sends: no request from
outside can repeat them, and each answers the person as the law requires, so none is
ever dropped."""


async def _hit(conn: BaseDBAsyncClient, *, scope: str, key: str, bucket: int) -> int:
    """Count one hit; returns the window's hits including this one."""
    sql = _UPSERT.format(*_PLACEHOLDERS[conn.capabilities.dialect])
    rows = await conn.execute_query_dict(sql, [scope, key, bucket])
    return int(rows[0]["hits"])


async def _hits(conn: BaseDBAsyncClient, *, scope: str, key: str, bucket: int) -> int:
    """The window's hits so far, read without taking the row: a key already over its limit
    is refused without waiting for concurrent requests holding it."""
    row = await RateCount.filter(scope=scope, key=key, bucket=bucket).using_db(conn).first()
    return row.hits if row else 0


@dataclass(frozen=True, slots=True)
class MailLimits:
    secret: str
    window_seconds: int
    per_recipient: int
    per_ip: int

    @classmethod
    def from_settings(cls, settings: Settings) -> MailLimits:
        return cls(
            secret=settings.secret_key.get_secret_value(),
            window_seconds=settings.mail_window_seconds,
            per_recipient=settings.mail_max_per_recipient,
            per_ip=settings.mail_max_requests_ip,
        )

    def _bucket(self, clock: Clock) -> tuple[int, float]:
        """The current window's number, and seconds until it ends."""
        now = clock.now().timestamp()
        bucket = int(now // self.window_seconds)
        return bucket, (bucket + 1) * self.window_seconds - now

    async def may_mail(
        self, *, kind: str, recipient: str, clock: Clock, conn: BaseDBAsyncClient | None = None
    ) -> bool:
        """Whether one more mail of `kind` may be queued to `recipient`, counting it. Runs
        in the caller's transaction (`conn`): a mail rolled back is not counted."""
        if kind in STAFF_DECIDED:
            return True
        conn = conn or connections.get("default")
        address = recipient.strip().lower()
        key = keyed_digest(self.secret, "mail-recipient", f"{kind}\x00{address}")
        bucket, _ = self._bucket(clock)
        if await _hits(conn, scope=RECIPIENT, key=key, bucket=bucket) >= self.per_recipient:
            return False
        return await _hit(conn, scope=RECIPIENT, key=key, bucket=bucket) <= self.per_recipient

    async def ip_retry_after(self, *, ip: str, clock: Clock) -> int | None:
        """Count one mail-sending request from `ip`: None when allowed, else the seconds
        until the window ends."""
        hits, retry_after = await self.count_ip(scope=IP, ip=ip, limit=self.per_ip, clock=clock)
        return retry_after if hits > self.per_ip else None

    async def count_ip(self, *, scope: str, ip: str, limit: int, clock: Clock) -> tuple[int, int]:
        """Count one request of `scope` from `ip` in the current window, unless the window
        already holds more than `limit` (then nothing is written): the window's hits with
        this one, and the seconds until the window ends."""
        conn = connections.get("default")
        key = keyed_digest(self.secret, scope, ip)
        bucket, left = self._bucket(clock)
        retry_after = max(1, math.ceil(left))
        if (hits := await _hits(conn, scope=scope, key=key, bucket=bucket)) > limit:
            return hits + 1, retry_after  # where this one would come
        hits = await _hit(conn, scope=scope, key=key, bucket=bucket)
        if hits == 1:
            await _forget_old(conn, bucket)
        return hits, retry_after


async def _forget_old(conn: BaseDBAsyncClient, bucket: int) -> None:
    """Delete counts of past windows (once per IP and window), skipping rows another
    transaction holds, so the clean-up never waits."""
    old = (
        await RateCount.filter(bucket__lt=bucket)
        .select_for_update(skip_locked=True)
        .limit(1000)
        .using_db(conn)
        .values_list("id", flat=True)
    )
    if old:
        await RateCount.filter(id__in=list(old)).using_db(conn).delete()


class MailRateLimit(BasePermission):
    """Declared on every operation that can send mail: at most `mail_max_requests_ip`
    such requests per client IP and window, else RATE_LIMITED with Retry-After."""

    message = "Too many requests; try again later."
    error_extensions = {"code": "RATE_LIMITED"}

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        ip = context.client_ip
        if ip is None:
            return True
        services = context.services
        retry_after = await services.mail_limits.ip_retry_after(ip=ip, clock=services.clock)
        if retry_after is not None:
            raise RateLimited(retry_after)
        return True
