"""Reading visit events: fraud analysts for security, the customer themselves; every other
staff role is refused with FORBIDDEN at the field and the refusal logged. Visits page newest
first with opaque cursors; a page of customers shows each customer's own newest events."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.clock import FakeClock
from api.services import Services
from models import AuditEvent, Customer, VisitEvent
from tests.conftest import CLIENT_IP, GQL, login, register, signed_in_employee, stored_customer

NODE = "at purpose page action referrer campaign browser os deviceType language ip"
ONE = f"""
query($id: ID!, $purpose: Purpose!, $first: Int! = 50, $after: String) {{
  customer(id: $id, purpose: $purpose) {{
    id
    visits(first: $first, after: $after) {{
      edges {{ cursor node {{ {NODE} }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}
"""
ME = f"""
query($first: Int! = 50, $after: String) {{
  me {{ id visits(first: $first, after: $after) {{
    edges {{ node {{ {NODE} }} }} pageInfo {{ hasNextPage endCursor }} }} }}
}}
"""
PAGE = """
query($visits: Int!) {
  customers(purpose: SECURITY, first: 10) {
    edges { node { id visits(first: $visits) {
      edges { node { page } } pageInfo { hasNextPage } } } }
  }
}
"""
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
VISIT_CATEGORIES = {"behavior.browsing", "device.browser", "device.ip"}


async def customer_with_visits(gql: GQL, clock: FakeClock) -> tuple[Customer, str]:
    """A customer with analytics consent who signed in (a security event) and, a minute
    later, viewed a page (an analytics event), both through POST /collect."""
    await register(gql, consents=[{"purpose": "analytics", "granted": True}])
    token = await login(gql)
    gql.client.cookies.clear()
    headers = {
        "authorization": f"Bearer {token}",
        "user-agent": CHROME_WINDOWS,
        "accept-language": "fr-CH, fr;q=0.9, en;q=0.8",
    }
    signed_in = await gql.client.post(
        "/collect", json={"page": "/account", "action": "login"}, headers=headers
    )
    assert signed_in.json() == {"stored": True, "purpose": "security"}
    clock.advance(seconds=60)
    viewed = await gql.client.post(
        "/collect",
        json={
            "page": "/rings?sort=price",
            "action": "view",
            "referrer": "https://search.example/results?q=rings",
        },
        headers=headers,
    )
    assert viewed.json() == {"stored": True, "purpose": "analytics"}
    return await Customer.get(), token


async def make_customer(n: int) -> Customer:
    return await stored_customer(n, at=T0)


async def add_visit(customer: Customer, page: str, at: datetime) -> VisitEvent:
    return await VisitEvent.create(
        customer=customer,
        purpose="analytics",
        at=at,
        page=page,
        action="view",
        ip_truncated="203.0.113.0/24",
    )


async def staff(gql: GQL, services: Services, *roles: str) -> tuple[str, str]:
    token, employee_id = await signed_in_employee(gql, services, *roles, name=f"e{uuid4().hex[:8]}")
    gql.client.cookies.clear()  # the token alone says who asks
    return token, employee_id


def errors_at(body: dict[str, Any], path: list[Any]) -> list[dict[str, Any]]:
    return [e for e in body.get("errors", []) if e.get("path") == path]


def cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


async def stored_visits() -> list[dict[str, Any]]:
    return await VisitEvent.all().order_by("id").values()


# --- who may read -------------------------------------------------------------------------


async def test_a_fraud_analyst_reads_visits_for_security(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a customer with a security event and, later, an analytics event
    customer, _ = await customer_with_visits(gql, clock)
    token, employee_id = await staff(gql, services, "fraud_analyst")
    # when a fraud analyst reads the customer's visits for security
    body = await gql(ONE, {"id": str(customer.id), "purpose": "SECURITY"}, token=token)
    # then every value is there, newest first: the full IP for the security event only
    assert "errors" not in body, body
    visits = body["data"]["customer"]["visits"]
    assert [edge["node"] for edge in visits["edges"]] == [
        {
            "at": (clock.now()).isoformat(),
            "purpose": "analytics",
            "page": "/rings?sort=price",
            "action": "view",
            "referrer": "https://search.example/results",
            "campaign": "",
            "browser": "Chrome 124",
            "os": "Windows",
            "deviceType": "desktop",
            "language": "fr-CH",
            "ip": "203.0.113.0/24",
        },
        {
            "at": (clock.now() - timedelta(seconds=60)).isoformat(),
            "purpose": "security",
            "page": "/account",
            "action": "login",
            "referrer": "",
            "campaign": "",
            "browser": "Chrome 124",
            "os": "Windows",
            "deviceType": "desktop",
            "language": "fr-CH",
            "ip": CLIENT_IP,
        },
    ]
    assert visits["pageInfo"] == {"hasNextPage": False, "endCursor": visits["edges"][-1]["cursor"]}
    # and each category read is logged as allowed, for security, about the customer
    rows = await AuditEvent.filter(event="access", actor_id=employee_id)
    decided = {
        (category, r.decision, r.purpose)
        for r in rows
        if str(customer.id) in r.subject_id.split(",")
        for category in r.category.split(",")
    }
    assert decided == {(c, "allow", "security") for c in VISIT_CATEGORIES}


@pytest.mark.parametrize(
    ("roles", "purpose", "reason"),
    [
        (("marketing",), "SECURITY", "DENY_RULE"),
        (("customer_care",), "SECURITY", "DENY_RULE"),
        (("auditor",), "SECURITY", "VALUE_BLIND_ROLE"),
        (("admin",), "SECURITY", "VALUE_BLIND_ROLE"),
        (("legal",), "LEGAL", "DENY_RULE"),
        (("customer_care",), "SUPPORT", "DENY_RULE"),
        (("marketing",), "MARKETING_EMAIL", "DENY_RULE"),
        (("fraud_analyst",), "SUPPORT", "PURPOSE_NOT_ALLOWED"),
        (("fraud_analyst",), "ANALYTICS", "PURPOSE_NOT_ALLOWED"),
        (("admin", "customer_care"), "SECURITY", "VALUE_BLIND_ROLE"),
    ],
)
async def test_other_roles_and_purposes_are_refused_and_logged(
    gql: GQL,
    services: Services,
    clock: FakeClock,
    roles: tuple[str, ...],
    purpose: str,
    reason: str,
) -> None:
    # given a customer with visits
    customer, _ = await customer_with_visits(gql, clock)
    before = await stored_visits()
    token, employee_id = await staff(gql, services, *roles)
    # when the employee asks for them
    body = await gql(ONE, {"id": str(customer.id), "purpose": purpose}, token=token)
    # then the field is null with FORBIDDEN at its path, and nothing else is revealed
    assert body["data"]["customer"] == {"id": str(customer.id), "visits": None}
    [error] = errors_at(body, ["customer", "visits"])
    assert (error["extensions"]["code"], error["extensions"]["reason"]) == ("FORBIDDEN", reason)
    wanted = purpose.lower().replace("_", ".")
    assert error["message"] == f"Not allowed to read behavior.browsing for purpose {wanted}."
    # and the refusal is in the audit log, with the employee, the customer and the purpose
    rows = await AuditEvent.filter(event="access", actor_id=employee_id)
    decided = {
        (category, r.decision, r.purpose, r.roles)
        for r in rows
        if str(customer.id) in r.subject_id.split(",")
        for category in r.category.split(",")
    }
    assert decided == {("behavior.browsing", "deny", wanted, ",".join(sorted(roles)))}
    # and nothing changed
    assert await stored_visits() == before


async def test_a_customer_reads_their_own_visits(gql: GQL, clock: FakeClock) -> None:
    # given a customer with visits, and another customer with theirs
    customer, token = await customer_with_visits(gql, clock)
    other = await make_customer(9)
    await add_visit(other, "/not-mine", clock.now() + timedelta(seconds=1))
    # when they ask for their visits
    body = await gql(ME, token=token)
    # then they see theirs, every value, newest first, and nobody else's
    assert "errors" not in body, body
    me = body["data"]["me"]
    assert me["id"] == str(customer.id)
    nodes = [edge["node"] for edge in me["visits"]["edges"]]
    assert [(n["action"], n["ip"], n["browser"], n["language"]) for n in nodes] == [
        ("view", "203.0.113.0/24", "Chrome 124", "fr-CH"),
        ("login", CLIENT_IP, "Chrome 124", "fr-CH"),
    ]
    # and the reads are logged with the customer as the actor, for service
    rows = await AuditEvent.filter(event="access", actor_id=str(customer.id))
    categories = {c for r in rows for c in r.category.split(",")}
    assert categories >= VISIT_CATEGORIES
    assert {(r.decision, r.purpose) for r in rows} == {("allow", "service")}


async def test_a_customer_cannot_read_visits_through_staff_reads(
    gql: GQL, clock: FakeClock
) -> None:
    customer, token = await customer_with_visits(gql, clock)
    body = await gql(ONE, {"id": str(customer.id), "purpose": "SECURITY"}, token=token)
    assert body["data"] is None or body["data"]["customer"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# --- paging -------------------------------------------------------------------------------


async def test_visits_page_newest_first(gql: GQL, services: Services) -> None:
    # given a customer with three events a minute apart
    customer = await make_customer(1)
    for n in range(3):
        await add_visit(customer, f"/page/{n}", T0 + timedelta(minutes=n))
    token, _ = await staff(gql, services, "fraud_analyst")
    variables: dict[str, Any] = {"id": str(customer.id), "purpose": "SECURITY", "first": 2}
    # when the first page of two is read
    first = await gql(ONE, variables, token=token)
    page = first["data"]["customer"]["visits"]
    # then it holds the two newest and says there is more
    assert [e["node"]["page"] for e in page["edges"]] == ["/page/2", "/page/1"]
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
    # and the end cursor gives the third, and the end
    second = await gql(ONE, {**variables, "after": page["pageInfo"]["endCursor"]}, token=token)
    rest = second["data"]["customer"]["visits"]
    assert [e["node"]["page"] for e in rest["edges"]] == ["/page/0"]
    assert rest["pageInfo"]["hasNextPage"] is False
    # and past the end there is nothing
    third = await gql(ONE, {**variables, "after": rest["pageInfo"]["endCursor"]}, token=token)
    assert third["data"]["customer"]["visits"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


async def test_events_at_the_same_instant_are_each_paged_once(gql: GQL, services: Services) -> None:
    # given five events at the very same time
    customer = await make_customer(1)
    made = [await add_visit(customer, f"/same/{n}", T0) for n in range(5)]
    token, _ = await staff(gql, services, "fraud_analyst")
    seen: list[str] = []
    after = None
    # when they are paged two at a time
    for _ in range(5):
        body = await gql(
            ONE,
            {"id": str(customer.id), "purpose": "SECURITY", "first": 2, "after": after},
            token=token,
        )
        page = body["data"]["customer"]["visits"]
        seen += [e["node"]["page"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then each comes once, the latest recorded first
    assert seen == [e.page for e in reversed(made)]


@pytest.mark.parametrize(
    "after",
    [
        pytest.param("%%%", id="not-base64"),
        pytest.param(cursor("not-a-cursor"), id="no-kind"),
        pytest.param(cursor(f"customer:{uuid4()}"), id="another-kind"),
        pytest.param(cursor("visit:yesterday|3"), id="bad-time"),
        pytest.param(cursor("visit:2026-01-01T00:00:00+00:00|x"), id="bad-id"),
        pytest.param(cursor("visit:2026-01-01T00:00:00+00:00"), id="no-id"),
    ],
)
async def test_a_malformed_cursor_is_a_validation_error(
    gql: GQL, services: Services, after: str
) -> None:
    customer = await make_customer(1)
    await add_visit(customer, "/rings", T0)
    token, _ = await staff(gql, services, "fraud_analyst")
    body = await gql(
        ONE, {"id": str(customer.id), "purpose": "SECURITY", "after": after}, token=token
    )
    assert body["data"]["customer"]["visits"] is None
    [error] = body["errors"]
    assert error["path"] == ["customer", "visits"]
    assert error["extensions"] == {"code": "VALIDATION", "field": "after"}


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("2026-01-01T00:00:00+00:00|" + "9" * 30, id="id-past-bigint"),
        pytest.param("2026-01-01T00:00:00+00:00|-5", id="negative-id"),
        pytest.param("2026-01-01T00:00:00|5", id="time-without-zone"),
        pytest.param("0001-01-01T00:00:00+14:00|5", id="time-before-year-1-in-utc"),
        pytest.param("9999-12-31T23:59:59-14:00|5", id="time-after-year-9999-in-utc"),
    ],
)
async def test_a_forged_cursor_never_fails_the_request(
    gql: GQL, services: Services, key: str
) -> None:
    """Cursors are opaque, but a client can forge one: it must give a VALIDATION error or
    a page, never an internal error (a database error on a value no cursor ever holds)."""
    customer = await make_customer(1)
    await add_visit(customer, "/rings", T0)
    token, _ = await staff(gql, services, "fraud_analyst")
    body = await gql(
        ONE,
        {"id": str(customer.id), "purpose": "SECURITY", "after": cursor(f"visit:{key}")},
        token=token,
    )
    codes = [e["extensions"]["code"] for e in body.get("errors", [])]
    assert codes in ([], ["VALIDATION"]), body.get("errors")


@pytest.mark.parametrize("first", [0, -1, 201])
async def test_a_page_size_out_of_range_is_a_validation_error(
    gql: GQL, services: Services, first: int
) -> None:
    customer = await make_customer(1)
    token, _ = await staff(gql, services, "fraud_analyst")
    body = await gql(
        ONE, {"id": str(customer.id), "purpose": "SECURITY", "first": first}, token=token
    )
    assert body["data"]["customer"]["visits"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "VALIDATION", "field": "first"}


async def test_a_page_of_customers_shows_each_customers_own_newest_visits(
    gql: GQL, services: Services
) -> None:
    # given three customers with interleaved events, and one without any
    customers = [await make_customer(n) for n in range(4)]
    for minute in range(3):
        for n, customer in enumerate(customers[:3]):
            await add_visit(customer, f"/c{n}/e{minute}", T0 + timedelta(minutes=minute, seconds=n))
    token, _ = await staff(gql, services, "fraud_analyst")
    # when a fraud analyst reads a page of customers with two visits each
    body = await gql(PAGE, {"visits": 2}, token=token)
    # then each customer shows their own two newest, and that there are more
    assert "errors" not in body, body
    shown = {
        edge["node"]["id"]: (
            [v["node"]["page"] for v in edge["node"]["visits"]["edges"]],
            edge["node"]["visits"]["pageInfo"]["hasNextPage"],
        )
        for edge in body["data"]["customers"]["edges"]
    }
    assert shown == {
        str(customers[0].id): (["/c0/e2", "/c0/e1"], True),
        str(customers[1].id): (["/c1/e2", "/c1/e1"], True),
        str(customers[2].id): (["/c2/e2", "/c2/e1"], True),
        str(customers[3].id): ([], False),
    }


async def test_visits_of_a_page_cost_the_same_queries_whatever_its_size(
    gql: GQL, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # given 30 customers with three events each
    for n in range(30):
        customer = await make_customer(n)
        for minute in range(3):
            await add_visit(customer, f"/c{n}/e{minute}", T0 + timedelta(minutes=minute))
    token, _ = await staff(gql, services, "fraud_analyst")
    query = """query($first: Int!) { customers(purpose: SECURITY, first: $first) {
        edges { node { visits(first: 2) { edges { node { page ip browser } } } } } } }"""

    async def count(first: int) -> int:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
            body = await gql(query, {"first": first}, token=token)
        assert "errors" not in body, body
        assert len(body["data"]["customers"]["edges"]) == first
        return len([r for r in caplog.records if r.name == "tortoise.db_client"])

    await count(3)  # warm
    # then reading the visits of 3 or 30 customers costs the same number of queries
    assert await count(3) == await count(30)


async def test_no_visits_for_a_customer_means_an_empty_connection(
    gql: GQL, services: Services
) -> None:
    customer = await make_customer(1)
    token, _ = await staff(gql, services, "fraud_analyst")
    body = await gql(ONE, {"id": str(customer.id), "purpose": "SECURITY"}, token=token)
    assert body["data"]["customer"]["visits"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }
    assert UUID(body["data"]["customer"]["id"]) == customer.id
