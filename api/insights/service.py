"""Counts of customers, consent grants or analytics visits grouped by a dimension,
k-anonymous.

What each metric counts, and by what it can be grouped (every metric also by WEEK):
- CUSTOMERS: accounts registered in the weeks (erased accounts not), by COUNTRY;
- CONSENTS: consent grants recorded in the weeks (withdrawals not), by PURPOSE and the
  customer's COUNTRY;
- VISITS: events kept for `analytics` (security events serve fraud detection, not
  marketing), by PAGE, ACTION, BROWSER, OS, DEVICE_TYPE and LANGUAGE.

Each group is counted per fixed ISO week (Monday 00:00 UTC): in each week a group seen by
fewer than k distinct people (customers, or anonymous visitors) is folded into "other", and
"other" itself is dropped when it too has fewer than k. A range is the sum of its weeks, and
ranges are whole weeks, so the difference of two overlapping queries is a sum of weekly
answers that were each suppressed on their own: differencing cannot single out one
person."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from tortoise import connections
from tortoise.expressions import RawSQL
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from api.errors import ClientError, InvalidArgument
from api.rights.erasure import NO_PASSWORD
from authz.registry import PurposeKey
from models import ConsentRecord, Customer, VisitEvent

OTHER = "other"
MAX_WEEKS = 106


class Metric(StrEnum):
    VISITS = "visits"
    CUSTOMERS = "customers"
    CONSENTS = "consents"


class Dimension(StrEnum):
    PAGE = "page"
    ACTION = "action"
    BROWSER = "browser"
    OS = "os"
    DEVICE_TYPE = "device_type"
    LANGUAGE = "language"
    COUNTRY = "country"
    PURPOSE = "purpose"
    WEEK = "week"


D = Dimension
COLUMNS: dict[Metric, dict[Dimension, str]] = {
    Metric.VISITS: {
        d: d.value for d in (D.PAGE, D.ACTION, D.BROWSER, D.OS, D.DEVICE_TYPE, D.LANGUAGE)
    },
    Metric.CUSTOMERS: {D.COUNTRY: "address_country"},
    Metric.CONSENTS: {D.PURPOSE: "purpose", D.COUNTRY: "customer__address_country"},
}
"""The column (or related field) holding each dimension a metric supports, WEEK aside."""


class AllSuppressed(ClientError):
    code = "ALL_SUPPRESSED"
    default_message = "Every group is smaller than the minimum group size; group more coarsely."


@dataclass(frozen=True, slots=True)
class Group:
    keys: tuple[str, ...]
    count: int


@dataclass(frozen=True, slots=True)
class Insight:
    start: date
    end: date
    """Whole ISO weeks: from Monday `start` up to (not including) Monday `end`."""
    k: int
    groups: list[Group]
    suppressed_groups: int
    """Weekly groups folded into "other" or dropped."""


Weekly = dict[tuple[str, tuple[str, ...]], tuple[set[str], int]]
"""(week, group keys) -> (the distinct people in the group that week, the count)."""


@dataclass(frozen=True, slots=True)
class _Range:
    """The rows of a metric in whole weeks, grouped by `columns` (dimension -> column)."""

    group_by: list[Dimension]
    columns: dict[Dimension, str]
    start: datetime
    end: datetime


def week_range(start: date, end: date) -> tuple[date, date]:
    """[start, end] widened to whole ISO weeks; InvalidArgument when empty or too long."""
    if end < start:
        raise InvalidArgument("to", "`to` must not be before `from`.")
    monday = start - timedelta(days=start.weekday())
    after = end + timedelta(days=7 - end.weekday())
    if (after - monday).days > MAX_WEEKS * 7:
        raise InvalidArgument("to", f"Ask for at most {MAX_WEEKS} weeks.")
    return monday, after


def check_group_by(*, metric: Metric, group_by: list[Dimension]) -> None:
    """One or two different dimensions, each one `metric` supports."""
    if not 1 <= len(group_by) <= 2 or len(set(group_by)) != len(group_by):
        raise InvalidArgument("groupBy", "Group by one or two different dimensions.")
    supported = [*COLUMNS[metric], Dimension.WEEK]
    if any(d not in supported for d in group_by):
        names = ", ".join(d.name for d in supported)
        raise InvalidArgument("groupBy", f"{metric.name} can be grouped by {names}.")


async def counts(
    *, metric: Metric, group_by: list[Dimension], start: date, end: date, k: int
) -> Insight:
    """`metric` over the whole ISO weeks covering [start, end], grouped by `group_by`,
    with the groups of fewer than k people suppressed week by week."""
    check_group_by(metric=metric, group_by=group_by)
    monday, after = week_range(start, end)
    rows = _Range(
        group_by=group_by,
        columns={d: COLUMNS[metric][d] for d in group_by if d is not Dimension.WEEK},
        start=datetime.combine(monday, time(), UTC),
        end=datetime.combine(after, time(), UTC),
    )
    weekly = await _WEEKLY[metric](rows)
    return _suppress(weekly, group_by=group_by, start=monday, end=after, k=k)


async def _visits(rows: _Range) -> Weekly:
    query = VisitEvent.filter(purpose=PurposeKey.ANALYTICS, at__gte=rows.start, at__lt=rows.end)
    person = "COALESCE(CAST(customer_id AS TEXT), visitor_digest)"
    return await _weekly(query, rows, week=_week_expression("at"), person=person)


async def _customers(rows: _Range) -> Weekly:
    query = Customer.filter(created_at__gte=rows.start, created_at__lt=rows.end).exclude(
        password_hash=NO_PASSWORD
    )
    week = _week_expression("created_at")
    return await _weekly(query, rows, week=week, person='CAST("customer"."id" AS TEXT)')


async def _consents(rows: _Range) -> Weekly:
    query = ConsentRecord.filter(granted=True, at__gte=rows.start, at__lt=rows.end)
    person = 'CAST("consent_record"."customer_id" AS TEXT)'
    week = _week_expression("at", table="consent_record")
    return await _weekly(query, rows, week=week, person=person)


_WEEKLY: dict[Metric, Callable[[_Range], Awaitable[Weekly]]] = {
    Metric.VISITS: _visits,
    Metric.CUSTOMERS: _customers,
    Metric.CONSENTS: _consents,
}


def _week_expression(column: str, *, table: str | None = None) -> str:
    """SQL for the Monday (YYYY-MM-DD, UTC) of the ISO week of timestamp `column`."""
    quoted = f'"{table}"."{column}"' if table else f'"{column}"'
    if connections.get("default").capabilities.dialect == "postgres":
        return f"to_char(date_trunc('week', {quoted} AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
    return f"date({quoted}, 'weekday 0', '-6 days')"


async def _weekly(query: QuerySet[Any], rows: _Range, *, week: str, person: str) -> Weekly:
    """The rows of `query` counted per week, group and person."""
    columns = list(rows.columns.values())
    found = (
        await query.annotate(week=RawSQL(week), person=RawSQL(person), n=Count("id"))
        .group_by("week", "person", *columns)
        .values("week", "person", "n", *columns)
    )
    weekly: Weekly = defaultdict(lambda: (set(), 0))
    for row in found:
        week_of = str(row["week"])
        keys = tuple(
            week_of if d is Dimension.WEEK else str(row[rows.columns[d]] or "")
            for d in rows.group_by
        )
        people, count = weekly[(week_of, keys)]
        people.add(str(row["person"]))
        weekly[(week_of, keys)] = (people, count + int(row["n"]))
    return weekly


def _suppress(
    weekly: Weekly,
    *,
    group_by: list[Dimension],
    start: date,
    end: date,
    k: int,
) -> Insight:
    totals: dict[tuple[str, ...], int] = defaultdict(int)
    other: dict[str, tuple[set[str], int]] = defaultdict(lambda: (set(), 0))
    suppressed = 0
    for (week, keys), (people, count) in weekly.items():
        if len(people) >= k:
            totals[keys] += count
        else:
            suppressed += 1
            folded, folded_count = other[week]
            other[week] = (folded | people, folded_count + count)
    for week, (people, count) in other.items():
        if len(people) >= k:
            keys = tuple(week if d is Dimension.WEEK else OTHER for d in group_by)
            totals[keys] += count
    if not totals and weekly:
        raise AllSuppressed()
    groups = sorted(
        (Group(keys, n) for keys, n in totals.items()), key=lambda g: (-g.count, g.keys)
    )
    return Insight(start=start, end=end, k=k, groups=groups, suppressed_groups=suppressed)
