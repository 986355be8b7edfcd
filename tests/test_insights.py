"""Anonymised insights: counts of customers, consent grants and analytics visits with groups
of fewer than k people suppressed per fixed ISO week, so neither a small group nor the
difference of two overlapping queries singles anyone out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from api.rights.erasure import NO_PASSWORD
from api.services import Services
from models import AuditEvent, ConsentRecord, Customer, VisitEvent
from tests.conftest import GQL, signed_in_employee, stored_customer

INSIGHTS = """
query ($metric: InsightMetric! = VISITS, $groupBy: [InsightDimension!]!, $from: Date!,
       $to: Date!) {
  insights(metric: $metric, groupBy: $groupBy, from: $from, to: $to) {
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


async def customers(
    numbers: range, *, at: datetime = MONDAY, country: str = "GB"
) -> list[Customer]:
    """Customers registered at `at`, living in `country`."""
    created = [await stored_customer(n, at=at) for n in numbers]
    await Customer.filter(id__in=[c.id for c in created]).update(address_country=country)
    return created


async def consent(
    people: list[Customer], *, purpose: str, granted: bool = True, at: datetime = MONDAY
) -> None:
    await ConsentRecord.bulk_create(
        [
            ConsentRecord(customer=c, purpose=purpose, granted=granted, source="profile", at=at)
            for c in people
        ]
    )


async def ask(
    gql: GQL, token: str, group_by: list[str], start: str, end: str, *, metric: str = "VISITS"
) -> dict[str, Any]:
    variables = {"metric": metric, "groupBy": group_by, "from": start, "to": end}
    return await gql(INSIGHTS, variables, token=token)


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


# --- customers and consents ---------------------------------------------------------------


async def test_customers_by_country(gql: GQL, services: Services) -> None:
    # given 6 customers in GB and 2 in FR, registered in one week
    await customers(range(6))
    await customers(range(10, 12), country="FR")
    token, _ = await signed_in_employee(gql, services, "marketing")
    # when marketing counts customers by country
    body = await ask(gql, token, ["COUNTRY"], "2026-03-02", "2026-03-08", metric="CUSTOMERS")
    # then only GB shows; the 2 in FR make an "other" smaller than k, dropped too
    insight = body["data"]["insights"]
    assert insight["groups"] == [{"keys": ["GB"], "count": 6}]
    assert insight["suppressedGroups"] == 1
    # and the query is logged by what it counted
    [event] = await AuditEvent.filter(event="insights")
    assert (event.decision, event.reason) == ("allow", "customers by country")


async def test_customers_by_week(gql: GQL, services: Services) -> None:
    # given 5 customers registered in the week of 2 March, 7 in the next, and 6 in the
    # week after the range
    await customers(range(5))
    await customers(range(10, 17), at=MONDAY + timedelta(days=10))
    await customers(range(20, 26), at=MONDAY + timedelta(days=14))
    token, _ = await signed_in_employee(gql, services, "fraud_analyst")
    # when the weeks of 2 and 9 March are counted by week
    body = await ask(gql, token, ["WEEK"], "2026-03-02", "2026-03-15", metric="CUSTOMERS")
    # then each week is one group; the week after the range is not counted
    assert body["data"]["insights"]["groups"] == [
        {"keys": ["2026-03-09"], "count": 7},
        {"keys": ["2026-03-02"], "count": 5},
    ]
    assert body["data"]["insights"]["suppressedGroups"] == 0


async def test_erased_customers_are_not_counted(gql: GQL, services: Services) -> None:
    # given 6 customers in GB in one week, one of them erased (the address kept, as under
    # a legal hold on it)
    [erased, *_] = await customers(range(6))
    await Customer.filter(id=erased.id).update(password_hash=NO_PASSWORD)
    token, _ = await signed_in_employee(gql, services, "marketing")
    # when customers are counted by country
    body = await ask(gql, token, ["COUNTRY"], "2026-03-02", "2026-03-08", metric="CUSTOMERS")
    # then the erased account is not one of them
    assert body["data"]["insights"]["groups"] == [{"keys": ["GB"], "count": 5}]
    assert body["data"]["insights"]["suppressedGroups"] == 0


async def test_customers_differencing_overlapping_ranges_reveals_nobody(
    gql: GQL, services: Services
) -> None:
    # given 5 customers in GB registered in week 1, and one more in week 2
    await customers(range(5))
    await customers(range(99, 100), at=MONDAY + timedelta(days=7))
    token, _ = await signed_in_employee(gql, services, "marketing")
    # when marketing asks for week 1, then for weeks 1 and 2 (mid-week dates included)
    week1 = await ask(gql, token, ["COUNTRY"], "2026-03-03", "2026-03-05", metric="CUSTOMERS")
    both = await ask(gql, token, ["COUNTRY"], "2026-03-02", "2026-03-10", metric="CUSTOMERS")
    # then the lone customer of week 2 is suppressed in its own week and adds nothing
    assert week1["data"]["insights"]["groups"] == [{"keys": ["GB"], "count": 5}]
    assert both["data"]["insights"]["groups"] == [{"keys": ["GB"], "count": 5}]
    assert (
        week1["data"]["insights"]["suppressedGroups"],
        both["data"]["insights"]["suppressedGroups"],
    ) == (0, 1)
    assert (both["data"]["insights"]["start"], both["data"]["insights"]["end"]) == (
        "2026-03-02",
        "2026-03-16",
    )


async def test_customers_grouped_too_finely_are_all_suppressed(
    gql: GQL, services: Services
) -> None:
    # given 4 customers in one week, fewer than k=5
    await customers(range(4))
    token, _ = await signed_in_employee(gql, services, "marketing")
    # when they are counted by country and week
    body = await ask(
        gql, token, ["COUNTRY", "WEEK"], "2026-03-02", "2026-03-08", metric="CUSTOMERS"
    )
    # then nothing can be shown: a typed error, and no answer logged
    assert body["data"]["insights"] is None
    assert body["errors"][0]["extensions"]["code"] == "ALL_SUPPRESSED"
    assert not await AuditEvent.filter(event="insights").exists()


async def test_consents_by_purpose(gql: GQL, services: Services) -> None:
    # given 6 customers granting marketing.email (the first grants, withdraws and grants
    # again), 5 granting analytics, and 5 withdrawing marketing.ads, in one week
    people = await customers(range(16))
    await consent(people[:6], purpose="marketing.email")
    await consent(
        people[:1], purpose="marketing.email", granted=False, at=MONDAY + timedelta(hours=1)
    )
    await consent(people[:1], purpose="marketing.email", at=MONDAY + timedelta(hours=2))
    await consent(people[6:11], purpose="analytics")
    await consent(people[11:16], purpose="marketing.ads", granted=False)
    token, _ = await signed_in_employee(gql, services, "marketing")
    # when marketing counts consents by purpose
    body = await ask(gql, token, ["PURPOSE"], "2026-03-02", "2026-03-08", metric="CONSENTS")
    # then grants count (7 of marketing.email by 6 people), withdrawals do not
    assert body["data"]["insights"]["groups"] == [
        {"keys": ["marketing.email"], "count": 7},
        {"keys": ["analytics"], "count": 5},
    ]
    assert body["data"]["insights"]["suppressedGroups"] == 0
    [event] = await AuditEvent.filter(event="insights")
    assert event.reason == "consents by purpose"


async def test_consents_by_purpose_and_country(gql: GQL, services: Services) -> None:
    # given marketing.email granted by 6 customers in GB and 5 in FR, and analytics by 2
    # of those in FR, in one week
    gb = await customers(range(6))
    fr = await customers(range(10, 15), country="FR")
    await consent(gb + fr, purpose="marketing.email")
    await consent(fr[:2], purpose="analytics", at=MONDAY + timedelta(days=3))
    token, _ = await signed_in_employee(gql, services, "marketing")
    # when consents are counted by purpose and the customer's country
    body = await ask(
        gql, token, ["PURPOSE", "COUNTRY"], "2026-03-02", "2026-03-08", metric="CONSENTS"
    )
    # then the two large groups show; the 2 analytics grants are suppressed
    assert body["data"]["insights"]["groups"] == [
        {"keys": ["marketing.email", "GB"], "count": 6},
        {"keys": ["marketing.email", "FR"], "count": 5},
    ]
    assert body["data"]["insights"]["suppressedGroups"] == 1


async def test_dimension_a_metric_does_not_have_is_refused(gql: GQL, services: Services) -> None:
    # given data any of the queries could count
    await visits(range(5), page="/a")
    await consent(await customers(range(5)), purpose="analytics")
    token, _ = await signed_in_employee(gql, services, "marketing")
    cases = [
        ("CUSTOMERS", ["PAGE"], "CUSTOMERS can be grouped by COUNTRY, WEEK."),
        ("CUSTOMERS", ["WEEK", "PURPOSE"], "CUSTOMERS can be grouped by COUNTRY, WEEK."),
        ("CONSENTS", ["BROWSER"], "CONSENTS can be grouped by PURPOSE, COUNTRY, WEEK."),
        (
            "VISITS",
            ["COUNTRY"],
            "VISITS can be grouped by PAGE, ACTION, BROWSER, OS, DEVICE_TYPE, LANGUAGE, WEEK.",
        ),
    ]
    for metric, group_by, message in cases:
        # when a metric is grouped by a dimension it does not have
        body = await ask(gql, token, group_by, "2026-03-02", "2026-03-08", metric=metric)
        # then a typed error names the dimensions it has
        assert body["data"]["insights"] is None
        [error] = body["errors"]
        assert error["extensions"] == {"code": "VALIDATION", "field": "groupBy"}, metric
        assert error["message"] == message
    # and nothing was answered, so nothing is logged as allowed (nor denied)
    assert not await AuditEvent.filter(operation="insights").exists()


async def test_customer_care_may_not_count_customers(gql: GQL, services: Services) -> None:
    # given customers to count
    await customers(range(5))
    token, employee_id = await signed_in_employee(gql, services, "customer_care")
    # when customer care asks for customers by country
    body = await ask(gql, token, ["COUNTRY"], "2026-03-02", "2026-03-08", metric="CUSTOMERS")
    # then it is forbidden, and the denial is logged
    assert body["data"]["insights"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    [denial] = await AuditEvent.filter(actor_id=employee_id, operation="insights")
    assert (denial.decision, denial.reason) == ("deny", "requires role fraud_analyst or marketing")
    assert not await AuditEvent.filter(event="insights").exists()
