"""Anonymised insights: counts of analytics visits with groups of fewer than k people
suppressed per fixed ISO week, so neither a small group nor the difference of two
overlapping queries singles anyone out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.services import Services
from models import AuditEvent, VisitEvent
from tests.conftest import GQL, signed_in_employee

INSIGHTS = """
query ($groupBy: [InsightDimension!]!, $from: Date!, $to: Date!) {
  insights(metric: VISITS, groupBy: $groupBy, from: $from, to: $to) {
    start end k suppressedGroups groups { keys count } } }
"""
MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


async def visits(
    people: range, *, page: str, at: datetime = MONDAY, purpose: str = "analytics", **extra: str
) -> None:
    await VisitEvent.bulk_create(
        [
            VisitEvent(
                visitor_digest=f"person-{n}",
                purpose=purpose,
                at=at,
                page=page,
                action="view",
                browser=extra.get("browser", "Firefox 120"),
            )
            for n in people
        ]
    )


async def ask(gql: GQL, token: str, group_by: list[str], start: str, end: str) -> dict[str, Any]:
    return await gql(INSIGHTS, {"groupBy": group_by, "from": start, "to": end}, token=token)


async def test_small_groups_are_folded_and_dropped(gql: GQL, services: Services) -> None:
    # given 6 people on /rings, 2 on /secret-page and 1 on /other-page in one week
    await visits(range(6), page="/rings")
    await visits(range(10, 12), page="/secret-page")
    await visits(range(20, 21), page="/other-page")
    token, _ = await signed_in_employee(gql, services, "marketing")
    # when marketing groups by page
    body = await ask(gql, token, ["PAGE"], "2026-03-04", "2026-03-04")
    # then only the large group shows; the 3 people of the small ones make an "other" of
    # fewer than k=5, which is dropped too
    insight = body["data"]["insights"]
    assert insight["groups"] == [{"keys": ["/rings"], "count": 6}]
    assert insight["suppressedGroups"] == 2
    assert (insight["start"], insight["end"], insight["k"]) == ("2026-03-02", "2026-03-09", 5)
    # and the query is logged, without any personal data
    [event] = await AuditEvent.filter(event="insights")
    assert (event.decision, event.reason) == ("allow", "visits by page")


async def test_small_groups_together_can_form_other(gql: GQL, services: Services) -> None:
    await visits(range(6), page="/rings")
    for n in range(5):  # five pages with one person each
        await visits(range(100 + n, 101 + n), page=f"/page-{n}")
    token, _ = await signed_in_employee(gql, services, "fraud_analyst")
    body = await ask(gql, token, ["PAGE"], "2026-03-02", "2026-03-08")
    assert body["data"]["insights"]["groups"] == [
        {"keys": ["/rings"], "count": 6},
        {"keys": ["other"], "count": 5},
    ]


async def test_differencing_overlapping_ranges_reveals_nobody(gql: GQL, services: Services) -> None:
    # given 5 people on /rings in week 1, and one more person on /rings in week 2
    await visits(range(5), page="/rings")
    await visits(range(99, 100), page="/rings", at=MONDAY + timedelta(days=7))
    token, _ = await signed_in_employee(gql, services, "marketing")
    # when marketing asks for week 1, then for weeks 1 and 2 (mid-week dates included)
    week1 = await ask(gql, token, ["PAGE"], "2026-03-03", "2026-03-05")
    both = await ask(gql, token, ["PAGE"], "2026-03-02", "2026-03-10")
    # then the ranges are whole weeks and the lone person of week 2 adds nothing
    assert week1["data"]["insights"]["groups"] == [{"keys": ["/rings"], "count": 5}]
    assert both["data"]["insights"]["groups"] == [{"keys": ["/rings"], "count": 5}]
    assert (both["data"]["insights"]["start"], both["data"]["insights"]["end"]) == (
        "2026-03-02",
        "2026-03-16",
    )


async def test_two_dimensions_and_weeks(gql: GQL, services: Services) -> None:
    await visits(range(5), page="/a", browser="Firefox 120")
    await visits(range(5), page="/a", browser="Chrome 120", at=MONDAY + timedelta(days=8))
    token, _ = await signed_in_employee(gql, services, "marketing")
    body = await ask(gql, token, ["WEEK", "BROWSER"], "2026-03-02", "2026-03-15")
    assert body["data"]["insights"]["groups"] == [
        {"keys": ["2026-03-02", "Firefox 120"], "count": 5},
        {"keys": ["2026-03-09", "Chrome 120"], "count": 5},
    ]


async def test_security_events_are_not_counted(gql: GQL, services: Services) -> None:
    await visits(range(5), page="/a")
    await visits(range(50, 60), page="/checkout", purpose="security")
    token, _ = await signed_in_employee(gql, services, "marketing")
    body = await ask(gql, token, ["PAGE"], "2026-03-02", "2026-03-08")
    assert body["data"]["insights"]["groups"] == [{"keys": ["/a"], "count": 5}]


async def test_grouping_so_finely_that_all_is_suppressed_is_an_error(
    gql: GQL, services: Services
) -> None:
    await visits(range(3), page="/a")
    token, _ = await signed_in_employee(gql, services, "marketing")
    body = await ask(gql, token, ["PAGE", "BROWSER"], "2026-03-02", "2026-03-08")
    assert body["data"]["insights"] is None
    assert body["errors"][0]["extensions"]["code"] == "ALL_SUPPRESSED"


async def test_bad_arguments(gql: GQL, services: Services) -> None:
    token, _ = await signed_in_employee(gql, services, "marketing")
    cases = [
        (["PAGE"], "2026-03-09", "2026-03-02"),
        (["PAGE", "OS", "BROWSER"], "2026-03-02", "2026-03-08"),
        (["PAGE", "PAGE"], "2026-03-02", "2026-03-08"),
        (["PAGE"], "2020-01-01", "2026-03-08"),
    ]
    for group_by, start, end in cases:
        body = await ask(gql, token, group_by, start, end)
        assert body["data"]["insights"] is None
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION", (group_by, start, end)


async def test_roles_without_insights_are_refused_and_logged(gql: GQL, services: Services) -> None:
    await visits(range(5), page="/a")
    for role in ("customer_care", "auditor", "admin"):
        token, employee_id = await signed_in_employee(gql, services, role)
        body = await ask(gql, token, ["PAGE"], "2026-03-02", "2026-03-08")
        assert body["data"]["insights"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        denial = await AuditEvent.get(actor_id=employee_id, operation="insights")
        assert denial.decision == "deny"
    gql.client.cookies.clear()  # the staff session cookies
    anonymous = await gql(INSIGHTS, {"groupBy": ["PAGE"], "from": "2026-03-02", "to": "2026-03-08"})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert not await AuditEvent.filter(event="insights", decision="allow").exists()
