"""The list of employees that admins read (issue 17): who works here, with which roles,
whether the account is active and when it last signed in. No personal data beyond the
work email: not the name, nor anything from the sessions or the audit log.

A page is two statements whatever its size: the employees (filtered, in a stable order,
one more than asked to tell whether a next page follows) and the roles of all of them."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.expressions import Q, Subquery

from api.db_select import select_in
from models import Employee, EmployeeRole

_COLUMNS = ("id", "email", "active", "created_at", "last_sign_in_at")


@dataclass(frozen=True, slots=True)
class EmployeeRow:
    """One employee as the list shows it."""

    id: UUID
    email: str
    active: bool
    created_at: datetime
    last_sign_in_at: datetime | None
    roles: tuple[str, ...]


def parse_cursor(key: str) -> tuple[datetime, UUID]:
    """(created_at, id) of the last employee of a page, from a cursor's key."""
    at, _, employee_id = key.partition("|")
    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None:
        raise ValueError("not an employee cursor")
    return moment, UUID(employee_id)


def cursor_key(row: EmployeeRow) -> str:
    return f"{row.created_at.isoformat()}|{row.id}"


async def employee_page(
    *,
    first: int,
    after: tuple[datetime, UUID] | None,
    active: bool | None,
    role: str | None,
) -> tuple[list[EmployeeRow], bool]:
    """Employees oldest first, at most `first`, and whether more follow."""
    query = Employee.all()
    if active is not None:
        query = query.filter(active=active)
    if role is not None:
        holders = EmployeeRole.filter(role=role).values("employee_id")
        query = query.filter(id__in=Subquery(holders))
    if after is not None:
        at, last = after
        query = query.filter(Q(created_at__gt=at) | Q(created_at=at, id__gt=last))
    rows = await query.order_by("created_at", "id").limit(first + 1).values(*_COLUMNS)
    page = rows[:first]
    grants = await select_in(
        EmployeeRole, "employee_id", [r["id"] for r in page], order_by=("employee_id", "role")
    )
    roles: dict[UUID, list[str]] = defaultdict(list)
    for grant in grants:
        roles[UUID(str(grant.employee_id))].append(grant.role)
    return [
        EmployeeRow(
            id=UUID(str(r["id"])),
            email=r["email"],
            active=r["active"],
            created_at=r["created_at"],
            last_sign_in_at=r["last_sign_in_at"],
            roles=tuple(sorted(roles[UUID(str(r["id"]))])),
        )
        for r in page
    ], len(rows) > first
