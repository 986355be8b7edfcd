"""Counts of analytics visits grouped by a dimension, k-anonymous.

Only events kept for `analytics` count (security events serve fraud detection, not
marketing). Each group is counted per fixed ISO week (Monday 00:00 UTC): in each week a
group seen by fewer than k distinct people (customers or anonymous visitors) is folded into
"other", and "other" itself is dropped when it too has fewer than k. A range is the sum of
its weeks, and ranges are whole weeks, so the difference of two overlapping queries is a sum
of weekly answers that were each suppressed on their own: differencing cannot single out
one person."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from tortoise import connections
from tortoise.expressions import RawSQL
from tortoise.functions import Count

from api.errors import ClientError, InvalidArgument
from authz.registry import PurposeKey
from models import VisitEvent

OTHER = "other"
MAX_WEEKS = 106


class Dimension(StrEnum):
    PAGE = "page"
    ACTION = "action"
    BROWSER = "browser"
    OS = "os"
    DEVICE_TYPE = "device_type"
    LANGUAGE = "language"
    WEEK = "week"


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


def week_range(start: date, end: date) -> tuple[date, date]:
    """[start, end] widened to whole ISO weeks; InvalidArgument when empty or too long."""
    if end < start:
        raise InvalidArgument("to", "`to` must not be before `from`.")
    monday = start - timedelta(days=start.weekday())
    after = end + timedelta(days=7 - end.weekday())
    if (after - monday).days > MAX_WEEKS * 7:
        raise InvalidArgument("to", f"Ask for at most {MAX_WEEKS} weeks.")
    return monday, after


def _week_expression() -> str:
    if connections.get("default").capabilities.dialect == "postgres":
        return "to_char(date_trunc('week', \"at\" AT TIME ZONE 'UTC'), 'YYYY-MM-DD')"
    return "date(\"at\", 'weekday 0', '-6 days')"


async def visit_counts(*, group_by: list[Dimension], start: date, end: date, k: int) -> Insight:
    if not 1 <= len(group_by) <= 2 or len(set(group_by)) != len(group_by):
        raise InvalidArgument("groupBy", "Group by one or two different dimensions.")
    monday, after = week_range(start, end)
    columns = [d.value for d in group_by if d is not Dimension.WEEK]
    rows = (
        await VisitEvent.filter(
            purpose=PurposeKey.ANALYTICS,
            at__gte=datetime.combine(monday, time(), UTC),
            at__lt=datetime.combine(after, time(), UTC),
        )
        .annotate(
            week=RawSQL(_week_expression()),
            person=RawSQL("COALESCE(CAST(customer_id AS TEXT), visitor_digest)"),
            n=Count("id"),
        )
        .group_by("week", "person", *columns)
        .values("week", "person", "n", *columns)
    )
    weekly: dict[tuple[str, tuple[str, ...]], tuple[set[str], int]] = defaultdict(
        lambda: (set(), 0)
    )
    for row in rows:
        week = str(row["week"])
        keys = tuple(week if d is Dimension.WEEK else str(row[d.value] or "") for d in group_by)
        people, count = weekly[(week, keys)]
        people.add(str(row["person"]))
        weekly[(week, keys)] = (people, count + int(row["n"]))
    return _suppress(weekly, group_by=group_by, start=monday, end=after, k=k)


def _suppress(
    weekly: dict[tuple[str, tuple[str, ...]], tuple[set[str], int]],
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
