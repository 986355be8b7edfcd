"""Reading visit events: a customer's newest first, a page of customers at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise import connections

from models import VisitEvent


@dataclass(frozen=True, slots=True)
class VisitPageKey:
    customer_id: UUID
    first: int
    after: tuple[datetime, int] | None


async def _newest(
    customer_ids: Sequence[UUID], limit: int, after: tuple[datetime, int] | None
) -> list[VisitEvent]:
    """Each customer's `limit` newest events (older than `after` when given), newest
    first, in one statement (a window function; SQLite and PostgreSQL both have
    ROW_NUMBER): no list of event ids is sent back, however many a page holds."""
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    params: list[object] = []

    def mark(value: object) -> str:
        params.append(value)
        return f"${len(params)}" if postgres else "?"

    customers = ", ".join(mark(i if postgres else str(i)) for i in customer_ids)
    where = f"customer_id IN ({customers})"
    if after is not None:
        at, last_id = after
        moment = VisitEvent._meta.fields_map["at"].to_db_value(at, VisitEvent)
        where += f" AND (at < {mark(moment)} OR (at = {mark(moment)} AND id < {mark(last_id)}))"
    columns = ", ".join(f'"{column}"' for column in VisitEvent._meta.db_fields)
    # Only our own table and column names and placeholders: no value is ever interpolated.
    sql = (
        f"SELECT {columns} FROM (SELECT *, ROW_NUMBER() OVER "  # noqa: S608
        "(PARTITION BY customer_id ORDER BY at DESC, id DESC) AS n "
        f"FROM visit_event WHERE {where}) ranked "
        f"WHERE n <= {mark(limit)} ORDER BY at DESC, id DESC"
    )
    select = conn.executor_class(model=VisitEvent, db=conn).execute_select
    events: list[VisitEvent] = await select(sql, params)
    return events


async def visit_pages(keys: list[VisitPageKey]) -> list[list[VisitEvent]]:
    """Each key's page (one more than asked, so the caller can tell there is a next page):
    one query per page size and cursor, so a page of customers shares one."""
    found: dict[VisitPageKey, list[VisitEvent]] = {k: [] for k in keys}
    alike: dict[tuple[int, tuple[datetime, int] | None], list[VisitPageKey]] = defaultdict(list)
    for key in keys:
        alike[key.first, key.after].append(key)
    for (first, after), group in alike.items():
        by_customer = {k.customer_id: k for k in group}
        for event in await _newest(list(by_customer), first + 1, after):
            found[by_customer[UUID(str(event.customer_id))]].append(event)
    return [found[k] for k in keys]
