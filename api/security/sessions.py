"""Sessions: opaque random tokens, stored hashed, with an absolute and an idle expiry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from api.clock import Clock
from api.security.tokens import new_token, token_hash
from api.settings import Settings
from models import EmployeeRole, Session

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


@dataclass(frozen=True, slots=True)
class IssuedSession:
    token: str
    expires_at: datetime
    max_age_seconds: int


class SessionService:
    def __init__(self, *, settings: Settings, clock: Clock) -> None:
        self._clock = clock
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

    async def resolve(self, token: str | None) -> Viewer:
        """The viewer a token stands for; anonymous if missing, unknown, revoked or expired."""
        if not token or len(token) > 128:
            return ANONYMOUS
        session = await Session.get_or_none(token_hash=token_hash(token), revoked_at=None)
        now = self._clock.now()
        if session is None or session.expires_at <= now or session.idle_expires_at <= now:
            return ANONYMOUS
        if session.employee_id is not None:
            viewer = await self._employee_viewer(session)
        else:
            viewer = Viewer("customer", UUID(str(session.customer_id)), session.id)
        if viewer is not ANONYMOUS and now - session.last_seen_at >= _TOUCH_EVERY:
            idle = self._lifetimes[viewer.kind][1]
            await Session.filter(id=session.id).update(
                last_seen_at=now, idle_expires_at=min(now + idle, session.expires_at)
            )
        return viewer

    async def _employee_viewer(self, session: Session) -> Viewer:
        await session.fetch_related("employee")
        employee = session.employee
        if employee is None or not employee.active:
            return ANONYMOUS
        roles = await EmployeeRole.filter(employee_id=employee.id).values_list("role", flat=True)
        return Viewer("employee", employee.id, session.id, frozenset(str(r) for r in roles))

    async def revoke(self, *, session_id: int) -> None:
        await Session.filter(id=session_id, revoked_at=None).update(revoked_at=self._clock.now())

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
        return await query.using_db(using_db).update(revoked_at=self._clock.now())
