"""Reading visit events: a customer's newest first, a page of customers at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise import connections
from tortoise.expressions import Q

from models import VisitEvent


@dataclass(frozen=True, slots=True)
class VisitPageKey:
    customer_id: UUID
    first: int
    after: tuple[datetime, int] | None


async def _newest_ids(customer_ids: Sequence[UUID], limit: int) -> list[int]:
    """The ids of each customer's `limit` newest events, in one query (a window function;
    SQLite and PostgreSQL both have ROW_NUMBER)."""
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    marks = [f"${i + 1}" if postgres else "?" for i in range(len(customer_ids) + 1)]
    # Only our own table and column names and placeholders: no value is ever interpolated.
    sql = (
        "SELECT id FROM (SELECT id, ROW_NUMBER() OVER "  # noqa: S608
        "(PARTITION BY customer_id ORDER BY at DESC, id DESC) AS n "
        f"FROM visit_event WHERE customer_id IN ({', '.join(marks[:-1])})) ranked "
        f"WHERE n <= {marks[-1]}"
    )
    ids = [i if postgres else str(i) for i in customer_ids]
    _, rows = await conn.execute_query(sql, [*ids, limit])
    return [int(row["id"]) for row in rows]


async def visit_pages(keys: list[VisitPageKey]) -> list[list[VisitEvent]]:
    """Each key's page (one more than asked, so the caller can tell there is a next page).
    Keys without a cursor, the usual case for a page of customers, share one query."""
    found: dict[VisitPageKey, list[VisitEvent]] = {k: [] for k in keys}
    fresh = [k for k in keys if k.after is None]
    for limit in {k.first + 1 for k in fresh}:
        group = [k for k in fresh if k.first + 1 == limit]
        ids = await _newest_ids([k.customer_id for k in group], limit)
        by_customer = {k.customer_id: k for k in group}
        for event in await VisitEvent.filter(id__in=ids).order_by("-at", "-id"):
            found[by_customer[UUID(str(event.customer_id))]].append(event)
    for key in keys:
        if key.after is not None:
            at, last_id = key.after
            found[key] = (
                await VisitEvent.filter(customer_id=key.customer_id)
                .filter(Q(at__lt=at) | Q(at=at, id__lt=last_id))
                .order_by("-at", "-id")
                .limit(key.first + 1)
            )
    return [found[k] for k in keys]
