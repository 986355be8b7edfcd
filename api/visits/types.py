"""GraphQL types of visit events: every value is guarded by its data category."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import strawberry

from api.guards import Access, personal
from api.pagination import PageInfo, encode_cursor
from authz.registry import Category
from models import VisitEvent


@strawberry.type(
    description="An event collected by POST /collect. `purpose` says why it is kept: "
    "security (strictly necessary, full IP) or analytics (with consent, IP truncated)."
)
class Visit:
    id: strawberry.ID
    at: datetime
    purpose: str
    page: str | None = personal(Category.BEHAVIOR_BROWSING)
    action: str | None = personal(Category.BEHAVIOR_BROWSING)
    referrer: str | None = personal(Category.BEHAVIOR_BROWSING, description="Origin and path.")
    campaign: str | None = personal(Category.BEHAVIOR_BROWSING)
    browser: str | None = personal(Category.DEVICE_BROWSER)
    os: str | None = personal(Category.DEVICE_BROWSER)
    device_type: str | None = personal(
        Category.DEVICE_BROWSER, description="desktop, mobile, tablet, bot or other."
    )
    language: str | None = personal(Category.DEVICE_BROWSER)
    ip: str | None = personal(
        Category.DEVICE_IP,
        description="The full address for security events; the /24 or /48 network otherwise.",
    )
    access: strawberry.Private[Access]

    @classmethod
    def from_model(cls, m: VisitEvent, *, access: Access) -> Visit:
        return cls(
            id=strawberry.ID(str(m.id)),
            at=m.at,
            purpose=m.purpose,
            page=m.page,
            action=m.action,
            referrer=m.referrer,
            campaign=m.campaign,
            browser=m.browser,
            os=m.os,
            device_type=m.device_type,
            language=m.language,
            ip=m.ip_full or m.ip_truncated,
            access=Access(
                subject_id=str(m.customer_id),
                purpose=access.purpose,
                conditions=access.conditions,
            ),
        )


@strawberry.type
class VisitEdge:
    cursor: str
    node: Visit


@strawberry.type
class VisitConnection:
    edges: list[VisitEdge]
    page_info: PageInfo


_MAX_ID = 2**63 - 1


def parse_visit_cursor(key: str) -> tuple[datetime, int]:
    """(time, id) of the last visit seen; ValueError for anything we did not issue."""
    at_text, _, id_text = key.partition("|")
    at, last_id = datetime.fromisoformat(at_text), int(id_text)
    if at.tzinfo is None or not 0 < last_id <= _MAX_ID:
        raise ValueError("not a visit cursor")
    try:
        return at.astimezone(UTC), last_id
    except OverflowError as exc:
        raise ValueError("not a visit cursor") from exc


def visit_connection(
    events: Sequence[VisitEvent], *, first: int, access: Access
) -> VisitConnection:
    """A page from `first + 1` events (the extra one only says there is a next page)."""
    page = list(events[:first])
    edges = [
        VisitEdge(
            cursor=encode_cursor("visit", f"{e.at.isoformat()}|{e.id}"),
            node=Visit.from_model(e, access=access),
        )
        for e in page
    ]
    return VisitConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(events) > first,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
