"""Reading the decision log (docs/ARCHITECTURE.md: decision log): auditors filter and page through
every decision; a customer sees who accessed their data, by role and purpose."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from uuid import UUID

from tortoise.expressions import Q, Subquery
from tortoise.functions import Max

from api.clock import as_utc
from api.errors import InvalidArgument
from api.pagination import decode_cursor, encode_cursor, page_size
from authz import log_tree
from models import AuditEvent, AuditSubject

_CURSOR = "audit"
_LOG_CURSOR = "access-log"
_ROW_ID = re.compile(r"[1-9][0-9]{0,18}", re.ASCII)
_MICROS = re.compile(r"[0-9]{1,17}", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page, newest first; `cursors[i]` continues after `items[i]`."""

    items: list[T]
    cursors: list[str]
    has_next: bool


@dataclass(frozen=True, slots=True)
class DecisionFilter:
    """Conditions on the log, all optional, all ANDed; `until` is exclusive."""

    actor_id: str | None = None
    subject_id: str | None = None
    category: str | None = None
    decision: str | None = None
    event: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AccessLogEntry:
    """One request in which staff accessed a customer's data; no employee id or name."""

    reference: str
    at: datetime
    roles: list[str]
    purpose: str
    categories: list[str]
    actions: list[str]
    # The log's rows behind the entry, oldest first: what its evidence proves.
    event_ids: tuple[int, ...] = ()


def _row_id(key: str) -> int:
    """A positive id that fits the BIGINT column (else the cursor is not ours)."""
    if not _ROW_ID.fullmatch(key) or int(key) >= 2**63:
        raise ValueError(key)
    return int(key)


def _id_cursor(row_id: int) -> str:
    return encode_cursor(_LOG_CURSOR, row_id)


def _id_from(cursor: str) -> int:
    return decode_cursor(_LOG_CURSOR, cursor, _row_id)


def _position(key: str) -> tuple[datetime, int]:
    """A row's place in time order: microseconds since the epoch, then its id."""
    micros, dot, row_id = key.partition(".")
    if not dot or not _MICROS.fullmatch(micros):
        raise ValueError(key)
    return _EPOCH + timedelta(microseconds=int(micros)), _row_id(row_id)


def _time_cursor(row: AuditEvent) -> str:
    micros = (row.at - _EPOCH) // timedelta(microseconds=1)
    return encode_cursor(_CURSOR, f"{micros}.{row.id}")


def _older_than(cursor: str) -> Q:
    """Rows after the cursor's row in newest-first order (keyset on `at`, then id)."""
    at, row_id = decode_cursor(_CURSOR, cursor, _position)
    return Q(at__lte=at) & (Q(at__lt=at) | Q(id__lt=row_id))


async def _about(
    subject_id: str, since: datetime | None = None, until: datetime | None = None
) -> Q:
    """Rows about a subject (a row may name a whole page of subjects): those in the tree
    through the subject's posting lists (the `audit_subject` view), those of lists whose
    times meet the period, and those not yet in it (indexed when they join it, a second or
    so later) by their own `subject_id`, read in one more statement. The rows' own times
    are the caller's filter."""
    links = AuditSubject.filter(subject_id=subject_id)
    if since is not None:
        links = links.filter(last_at__gte=since)
    if until is not None:
        links = links.filter(first_at__lt=until)
    indexed = Q(id__in=Subquery(links.values("event_id")))
    pending = await log_tree.rows_not_yet_indexed(subject_id)
    return indexed | Q(id__in=pending) if pending else indexed


def _in_category(category: str) -> Q:
    """A row about `category`: one row may list several (`contact.email,contact.phone`),
    and no category name contains a comma."""
    return (
        Q(category=category)
        | Q(category__startswith=f"{category},")
        | Q(category__endswith=f",{category}")
        | Q(category__contains=f",{category},")
    )


def _conditions(where: DecisionFilter) -> dict[str, Any]:
    since, until = _period(where)
    wanted = {
        "actor_id": where.actor_id,
        "decision": where.decision,
        "event": where.event,
        "at__gte": since,
        "at__lt": until,
    }
    return {name: value for name, value in wanted.items() if value is not None}


def _period(where: DecisionFilter) -> tuple[datetime | None, datetime | None]:
    since = as_utc(where.since) if where.since else None
    until = as_utc(where.until) if where.until else None
    if since and until and since >= until:
        raise InvalidArgument("filter.until", "`until` must be later than `since`.")
    return since, until


async def access_decisions(
    *, where: DecisionFilter, first: int, after: str | None
) -> Page[AuditEvent]:
    """Rows matching `where`, newest first: one query, keyset on (`at`, id), the order of
    the indexes (subject_id, at), (actor_id, at) and (at)."""
    page_size(first)
    query = AuditEvent.filter(**_conditions(where))
    if where.subject_id:
        query = query.filter(await _about(where.subject_id, *_period(where)))
    if where.category is not None:
        query = query.filter(_in_category(where.category))
    if after is not None:
        query = query.filter(_older_than(after))
    rows = await query.order_by("-at", "-id").limit(first + 1)
    items = rows[:first]
    return Page(items, [_time_cursor(r) for r in items], len(rows) > first)


_ALLOWED_STAFF_ACCESS = {"event": "access", "actor_kind": "employee", "decision": "allow"}


async def access_log(*, customer_id: UUID, first: int, after: str | None) -> Page[AccessLogEntry]:
    """Staff accesses allowed on one customer's data, one entry per request, roles and
    purpose; newest first. Three queries: the rows not yet indexed, the page of groups,
    then their rows."""
    page_size(first)
    if after is not None:
        before = _id_from(after)  # an invalid cursor is refused before anything is read
    about = await _about(str(customer_id))
    groups = (
        AuditEvent.filter(about, **_ALLOWED_STAFF_ACCESS)
        .annotate(last_id=Max("id"))
        .group_by("request_id", "roles", "purpose")
    )
    if after is not None:
        groups = groups.filter(last_id__lt=before)
    keys = (
        await groups.order_by("-last_id")
        .limit(first + 1)
        .values("request_id", "roles", "purpose", "last_id")
    )
    page = keys[:first]
    entries = await _entries(about, page)
    cursors = [_id_cursor(int(str(k["last_id"]))) for k in page]
    return Page(entries, cursors, len(keys) > first)


async def _entries(about: Q, keys: list[dict[str, Any]]) -> list[AccessLogEntry]:
    if not keys:
        return []
    rows = await AuditEvent.filter(
        about, **_ALLOWED_STAFF_ACCESS, request_id__in=sorted({k["request_id"] for k in keys})
    ).values("id", "request_id", "roles", "purpose", "category", "action", "at")
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["request_id"], row["roles"], row["purpose"]].append(row)
    entries = []
    for key in keys:
        group = grouped[key["request_id"], key["roles"], key["purpose"]]
        entries.append(
            AccessLogEntry(
                reference=key["request_id"],
                at=min(r["at"] for r in group),
                roles=[r for r in key["roles"].split(",") if r],
                purpose=key["purpose"],
                categories=sorted({c for r in group for c in r["category"].split(",") if c}),
                actions=sorted({r["action"] for r in group if r["action"]}),
                event_ids=tuple(sorted(int(r["id"]) for r in group)),
            )
        )
    return entries
