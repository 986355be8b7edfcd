"""Sessions: opaque random tokens, stored hashed, with an absolute and an idle expiry.

A process reuses a resolved viewer for CUSTOS_VIEWER_CACHE_SECONDS (issue 16, point 2), so
a busy client costs one session lookup per that time, not one per request. A revocation
made in this process (logout, deactivation, a password change, an erasure) clears the
cache at once; one made in another process reaches this one when the cached viewer ages
out, within the setting (1 s by default, under the 2 s in which policy changes reach every
process). A role change moves the policy version, and a viewer cached under another
version is looked up again, so roles follow the policy. A cached viewer never outlives its
session's expiry, and its idle expiry is pushed forward as for a lookup."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from api.clock import Clock
from api.security.tokens import new_token, token_hash
from api.settings import Settings
from models import Session

COOKIE_NAME = "__Host-custos_session"
# Idle expiry is pushed forward at most this often, so light reads do not write every time.
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: anonymous, a customer, or an employee with roles."""

    kind: Literal["anonymous", "customer", "employee"] = "anonymous"
    subject_id: UUID | None = None
    session_id: int | None = None
    roles: frozenset[str] = frozenset()

    @property
    def is_customer(self) -> bool:
        return self.kind == "customer"

    @property
    def is_employee(self) -> bool:
        return self.kind == "employee"


ANONYMOUS = Viewer()


@dataclass(slots=True)
class _Cached:
    viewer: Viewer
    expires_at: datetime
    idle_expires_at: datetime
    last_seen_at: datetime
    policy_version: int
    until: float
    """time.monotonic() after which it is looked up again."""


# Viewers kept at most; past it the cache starts again empty (a flood of distinct tokens
# costs lookups, never memory).
_CACHE_MAX = 10_000


@dataclass(frozen=True, slots=True)
class IssuedSession:
    token: str
    expires_at: datetime
    max_age_seconds: int


class SessionService:
    def __init__(self, *, settings: Settings, clock: Clock) -> None:
        self._clock = clock
        self._cache_seconds = settings.viewer_cache_seconds
        self._cache: dict[str, _Cached] = {}
        self._loading: dict[str, asyncio.Future[Viewer]] = {}
        self._cache_epoch = 0
        """Moved by every revocation here: a lookup begun before one is not cached."""
        self._lifetimes = {
            "customer": (
                timedelta(hours=settings.customer_session_hours),
                timedelta(minutes=settings.customer_idle_minutes),
            ),
            "employee": (
                timedelta(hours=settings.staff_session_hours),
                timedelta(minutes=settings.staff_idle_minutes),
            ),
        }

    async def issue(
        self,
        *,
        customer_id: UUID | None = None,
        employee_id: UUID | None = None,
        using_db: BaseDBAsyncClient | None = None,
    ) -> IssuedSession:
        kind = "customer" if customer_id is not None else "employee"
        absolute, idle = self._lifetimes[kind]
        now = self._clock.now()
        token = new_token()
        await Session.create(
            token_hash=token_hash(token),
            customer_id=customer_id,
            employee_id=employee_id,
            created_at=now,
            expires_at=now + absolute,
            idle_expires_at=now + idle,
            last_seen_at=now,
            using_db=using_db,
        )
        return IssuedSession(token, now + absolute, int(absolute.total_seconds()))

    async def resolve(self, token: str | None, *, policy_version: int = 0) -> Viewer:
        """The viewer a token stands for; anonymous if missing, unknown, revoked or expired.
        From the cache when this process resolved it lately under the same policy version
        (see the module), else one statement: the session, its employee's state and roles
        (one row per role)."""
        if not token or len(token) > 128:
            return ANONYMOUS
        digest = token_hash(token)
        now = self._clock.now()
        cached = self._cache.get(digest)
        if (
            cached is not None
            and time.monotonic() < cached.until
            and cached.policy_version == policy_version
            and now < cached.expires_at
            and now < cached.idle_expires_at
        ):
            await self._touch(cached, now)
            return cached.viewer
        if self._cache_seconds <= 0:
            return await self._look_up(digest, now, policy_version)
        # One lookup per token at a time: the requests that find its entry aged out
        # together (a client's burst) share the first one's lookup.
        loading = self._loading.get(digest)
        if loading is None:
            loading = asyncio.ensure_future(self._look_up(digest, now, policy_version))
            self._loading[digest] = loading
            loading.add_done_callback(lambda _: self._loading.pop(digest, None))
        return await asyncio.shield(loading)

    async def _look_up(self, digest: str, now: datetime, policy_version: int) -> Viewer:
        """The session, its employee's state and roles in one statement; cached."""
        epoch = self._cache_epoch
        rows = await Session.filter(token_hash=digest, revoked_at=None).values(
            "id",
            "customer_id",
            "employee_id",
            "expires_at",
            "idle_expires_at",
            "last_seen_at",
            active="employee__active",
            role="employee__roles__role",
        )
        if not rows:
            return ANONYMOUS
        session = rows[0]
        if session["expires_at"] <= now or session["idle_expires_at"] <= now:
            return ANONYMOUS
        viewer = self._viewer_of(session, rows)
        if viewer is ANONYMOUS:
            return viewer
        entry = _Cached(
            viewer,
            session["expires_at"],
            session["idle_expires_at"],
            session["last_seen_at"],
            policy_version,
            time.monotonic() + self._cache_seconds,
        )
        await self._touch(entry, now)
        if self._cache_seconds > 0 and self._cache_epoch == epoch:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = entry
        return viewer

    async def _touch(self, entry: _Cached, now: datetime) -> None:
        """Push the idle expiry forward, at most every _TOUCH_EVERY."""
        if now - entry.last_seen_at < _TOUCH_EVERY:
            return
        idle = min(now + self._lifetimes[entry.viewer.kind][1], entry.expires_at)
        await Session.filter(id=entry.viewer.session_id).update(
            last_seen_at=now, idle_expires_at=idle
        )
        entry.last_seen_at, entry.idle_expires_at = now, idle

    def forget_viewers(self) -> None:
        """Drop every cached viewer and every lookup in flight: a session was revoked
        here (the next request looks it up again, after the revocation)."""
        self._cache.clear()
        self._loading.clear()
        self._cache_epoch += 1

    @staticmethod
    def _viewer_of(session: dict[str, Any], rows: list[dict[str, Any]]) -> Viewer:
        if session["employee_id"] is None:
            return Viewer("customer", UUID(str(session["customer_id"])), session["id"])
        if not session["active"]:
            return ANONYMOUS
        roles = frozenset(str(row["role"]) for row in rows if row["role"] is not None)
        return Viewer("employee", UUID(str(session["employee_id"])), session["id"], roles)

    async def revoke(self, *, session_id: int) -> None:
        await Session.filter(id=session_id, revoked_at=None).update(revoked_at=self._clock.now())
        self.forget_viewers()

    async def revoke_all(
        self,
        *,
        customer_id: UUID | None = None,
        employee_id: UUID | None = None,
        except_session_id: int | None = None,
        using_db: BaseDBAsyncClient | None = None,
    ) -> int:
        query = Session.filter(revoked_at=None)
        if customer_id is not None:
            query = query.filter(customer_id=customer_id)
        elif employee_id is not None:
            query = query.filter(employee_id=employee_id)
        else:
            raise ValueError("revoke_all needs customer_id or employee_id")
        if except_session_id is not None:
            query = query.exclude(id=except_session_id)
        revoked = await query.using_db(using_db).update(revoked_at=self._clock.now())
        self.forget_viewers()
        return revoked
