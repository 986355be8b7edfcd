"""Reading rights requests: the officer's queue (keyset pages) and a customer's own."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.expressions import Q

from api.rights.rules import RUNNING, Status
from models import DataExport, RightsRequest, RightsTransition


async def transitions_of(request_ids: list[UUID]) -> list[list[RightsTransition]]:
    """Each request's transitions, oldest first, in one query (a batch loader)."""
    found: dict[str, list[RightsTransition]] = defaultdict(list)
    rows = await RightsTransition.filter(request_id__in=request_ids).order_by("at", "id")
    for row in rows:
        found[str(row.request_id)].append(row)
    return [found[str(i)] for i in request_ids]


def parse_cursor(key: str) -> tuple[datetime, UUID]:
    at, _, request_id = key.partition("|")
    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None:
        raise ValueError("not a request cursor")
    return moment, UUID(request_id)


async def queue_page(
    *,
    status: Status | None,
    overdue: bool | None,
    now: datetime,
    first: int,
    after: tuple[datetime, UUID] | None,
) -> list[RightsRequest]:
    """Requests oldest first (`first + 1`, to tell a next page); `overdue` keeps only (or
    leaves out) the received, unanswered ones past their due date."""
    query = RightsRequest.all()
    if status is not None:
        query = query.filter(status=status)
    late = Q(status__in=list(RUNNING), due_at__lt=now)
    if overdue is True:
        query = query.filter(late)
    elif overdue is False:
        query = query.filter(~late)
    if after is not None:
        at, last = after
        query = query.filter(Q(submitted_at__gt=at) | Q(submitted_at=at, id__gt=last))
    return await query.order_by("submitted_at", "id").limit(first + 1)


async def requests_of(customer_ids: list[UUID]) -> list[list[RightsRequest]]:
    """Each customer's requests, newest first (a batch loader)."""
    found: dict[str, list[RightsRequest]] = defaultdict(list)
    rows = await RightsRequest.filter(customer_id__in=customer_ids).order_by("-submitted_at")
    for row in rows:
        found[str(row.customer_id)].append(row)
    return [found[str(i)] for i in customer_ids]


@dataclass(frozen=True, slots=True)
class ExportRow:
    """What a customer may know of an export: never its token (only its hash is stored)
    nor its document."""

    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


async def exports_of(request_ids: list[UUID]) -> list[ExportRow | None]:
    """Each access request's latest export, or None (a batch loader; the document is not
    read)."""
    found: dict[str, ExportRow] = {}
    rows = (
        await DataExport.filter(request_id__in=request_ids)
        .order_by("created_at", "id")
        .values("request_id", "created_at", "expires_at", "used_at")
    )
    for row in rows:
        found[str(row["request_id"])] = ExportRow(
            created_at=row["created_at"], expires_at=row["expires_at"], used_at=row["used_at"]
        )
    return [found.get(str(i)) for i in request_ids]
