"""Guarded staff reads of customers: every personal-data field decided by role, category,
purpose and the customer's conditions; masked where only `read_masked` is granted; null with
a FORBIDDEN error at its path when denied; every decision logged; constant SQL per page."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.services import Services
from authz.audit import verify
from authz.log_tree import integrate
from models import (
    AuditEvent,
    AuditSubject,
    ConsentRecord,
    Customer,
    Employee,
    EmployeeRole,
    SupportCase,
)
from tests.conftest import GQL, ME, login, register, signed_in_employee, stored_customer
from tests.test_no_oracle import statements

FIELDS = (
    "id email phone address { line1 city postalCode country } "
    "consents { purpose granted } supportCases { id }"
)
ONE = (
    f"query($id: ID!, $purpose: Purpose!) {{ customer(id: $id, purpose: $purpose) {{ {FIELDS} }} }}"
)
PAGE = """
query($purpose: Purpose!, $first: Int!, $after: String, $search: String) {
  customers(purpose: $purpose, first: $first, after: $after, search: $search) {
    edges { cursor node { id email phone address { city } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def make_customer(
    n: int = 0, *, open_case: bool = False, marketing_consent: bool = False
) -> Customer:
    customer = await stored_customer(n, at=T0)
    if open_case:
        await SupportCase.create(customer=customer, subject="Ring", message="Where?", created_at=T0)
    if marketing_consent:
        await ConsentRecord.create(
            customer=customer, purpose="marketing.email", granted=True, source="registration", at=T0
        )
    return customer


async def staff_token(gql: GQL, services: Services, *roles: str) -> tuple[str, str]:
    """An employee holding `roles` (possibly none, or one unknown to the policy), signed in."""
    known = [r for r in roles if r != "intern"]
    token, employee_id = await signed_in_employee(gql, services, *known, name=f"e{uuid4().hex[:8]}")
    if "intern" in roles:  # a role the policy does not know, as if written by an old release
        await EmployeeRole.create(employee_id=UUID(employee_id), role="intern", granted_at=T0)
        await services.authorizer.reload()
    return token, employee_id


def forbidden_paths(body: dict[str, Any]) -> set[tuple[Any, ...]]:
    return {
        tuple(e["path"]) for e in body.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN"
    }


F, M, D = "full", "masked", "denied"
OPEN, CONSENT = "open_case", "consent"

# role(s), purpose, the customer's conditions, expected email/phone/address/consents/supportCases
API_MATRIX = [
    (("customer_care",), "SUPPORT", {OPEN}, (F, F, F, D, F)),
    (("customer_care",), "SUPPORT", set(), (D, D, D, D, F)),
    (("customer_care",), "MARKETING_EMAIL", {OPEN, CONSENT}, (D, D, D, D, D)),
    (("marketing",), "MARKETING_EMAIL", {CONSENT}, (F, D, D, D, D)),
    (("marketing",), "MARKETING_EMAIL", set(), (D, D, D, D, D)),
    (("marketing",), "SUPPORT", {OPEN, CONSENT}, (D, D, D, D, D)),
    (("fraud_analyst",), "SECURITY", set(), (M, M, M, D, D)),
    (("fraud_analyst",), "SUPPORT", {OPEN}, (D, D, D, D, D)),
    (("privacy_officer",), "LEGAL", {OPEN, CONSENT}, (D, D, D, D, D)),
    (("legal",), "LEGAL", set(), (F, F, F, F, D)),
    (("legal",), "SUPPORT", {OPEN}, (D, D, D, D, D)),
    (("auditor",), "LEGAL", {OPEN, CONSENT}, (D, D, D, D, D)),
    (("admin",), "SERVICE", {OPEN, CONSENT}, (D, D, D, D, D)),
    # a value-blind role wins over any other role held with it (issue 14)
    (("admin", "customer_care"), "SUPPORT", {OPEN}, (D, D, D, D, D)),
    (("intern",), "SUPPORT", {OPEN, CONSENT}, (D, D, D, D, D)),
    ((), "SUPPORT", {OPEN, CONSENT}, (D, D, D, D, D)),
]
CATEGORIES = (
    "contact.email",
    "contact.phone",
    "contact.address",
    "consent.history",
    "support.cases",
)
NAMES = ("email", "phone", "address", "consents", "supportCases")


@pytest.mark.parametrize(("roles", "purpose", "conditions", "expected"), API_MATRIX)
async def test_matrix_through_the_api(
    gql: GQL,
    services: Services,
    roles: tuple[str, ...],
    purpose: str,
    conditions: set[str],
    expected: tuple[str, ...],
) -> None:
    # given a customer with the conditions, and an employee with the roles
    customer = await make_customer(
        open_case=OPEN in conditions, marketing_consent=CONSENT in conditions
    )
    token, employee_id = await staff_token(gql, services, *roles)
    before = await AuditEvent.filter(event="access").count()
    # when the employee reads the customer for the purpose
    body = await gql(ONE, {"id": str(customer.id), "purpose": purpose}, token=token)
    # then each field is full, masked or null with FORBIDDEN at its path
    node = body["data"]["customer"]
    assert node["id"] == str(customer.id)
    denied = forbidden_paths(body)
    for name, outcome in zip(NAMES, expected, strict=True):
        if outcome == D:
            assert node[name] is None, name
            assert ("customer", name) in denied, name
        else:
            assert node[name] is not None, name
            assert ("customer", name) not in denied, name
    if expected[0] == F:
        assert node["email"] == "jane0@example.com"
    if expected[0] == M:
        assert node["email"] == "j***@example.com"
        assert node["phone"] == "+44 **** ***100"
        assert node["address"] == {
            "line1": "***",
            "city": "London",
            "postalCode": "***",
            "country": "GB",
        }
    # and every decision is logged once, with the employee, roles, purpose and outcome
    rows = await AuditEvent.filter(event="access").order_by("id").offset(before)
    logged = {category: r for r in rows for category in r.category.split(",")}
    assert sorted(c for r in rows for c in r.category.split(",")) == sorted(CATEGORIES)
    wanted = purpose.lower().replace("_", ".")
    for category, outcome in zip(CATEGORIES, expected, strict=True):
        row = logged[category]
        assert (row.actor_kind, row.actor_id, row.subject_id, row.purpose) == (
            "employee",
            employee_id,
            str(customer.id),
            wanted,
        )
        assert row.roles == ",".join(sorted(roles))
        assert row.decision == ("deny" if outcome == D else "allow"), category
        assert row.action == ("read_masked" if outcome == M else "read"), category
        assert row.request_id


async def test_a_denied_field_logs_no_traceback(
    gql: GQL, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    customer = await make_customer()
    token, _ = await staff_token(gql, services, "auditor")
    with (
        caplog.at_level(logging.DEBUG, logger="strawberry"),
        caplog.at_level(logging.DEBUG, logger="custos"),
    ):
        body = await gql(ONE, {"id": str(customer.id), "purpose": "LEGAL"}, token=token)
    assert len(forbidden_paths(body)) == 5
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    email_error = next(e for e in body["errors"] if e["path"] == ["customer", "email"])
    assert email_error == {
        "message": "Not allowed to read contact.email for purpose legal.",
        "locations": [{"line": 1, "column": ONE.index("email") + 1}],
        "path": ["customer", "email"],
        "extensions": {
            "code": "FORBIDDEN",
            "reason": "VALUE_BLIND_ROLE",
            "policyVersion": services.authorizer.version,
        },
    }


async def test_customers_read_their_own_data_logged_as_themselves(gql: GQL) -> None:
    # given a signed-in customer
    await register(gql)
    token = await login(gql)
    customer = await Customer.get()
    before = await AuditEvent.filter(event="access").count()
    # when they read their own profile
    body = await gql(ME + "", token=token)
    # then they see everything, and each read is logged with them as the actor, for service
    me = body["data"]["me"]
    assert "errors" not in body
    assert me["email"] == "jane.doe@example.com"
    assert me["phone"] == "+442079460958"
    rows = await AuditEvent.filter(event="access").order_by("id").offset(before)
    assert {(c, r.action, r.decision) for r in rows for c in r.category.split(",")} == {
        ("contact.email", "read", "allow"),
        ("contact.phone", "read", "allow"),
        ("contact.address", "read", "allow"),
        ("consent.history", "read", "allow"),
    }
    assert {(r.actor_kind, r.actor_id, r.subject_id, r.purpose) for r in rows} == {
        ("customer", str(customer.id), str(customer.id), "service")
    }
    assert all("self" in r.rule for r in rows)


async def test_a_customer_cannot_use_staff_reads(gql: GQL) -> None:
    await register(gql)
    token = await login(gql)
    customer = await Customer.get()
    body = await gql(ONE, {"id": str(customer.id), "purpose": "SERVICE"}, token=token)
    assert body["data"] is None or body["data"]["customer"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    gql.client.cookies.clear()
    anonymous = await gql(ONE, {"id": str(customer.id), "purpose": "SERVICE"})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_pages_walk_every_customer_once(gql: GQL, services: Services) -> None:
    # given 7 customers, 3 of them with an open case
    made = [await make_customer(n, open_case=n < 3) for n in range(7)]
    token, _ = await staff_token(gql, services, "customer_care")
    seen: list[str] = []
    emails: dict[str, str | None] = {}
    after = None
    # when care pages through 3 at a time
    while True:
        body = await gql(PAGE, {"purpose": "SUPPORT", "first": 3, "after": after}, token=token)
        page = body["data"]["customers"]
        for edge in page["edges"]:
            seen.append(edge["node"]["id"])
            emails[edge["node"]["id"]] = edge["node"]["email"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then every customer comes once, and only those with an open case show their email
    assert sorted(seen) == sorted(str(c.id) for c in made)
    assert len(seen) == len(set(seen))
    assert {i for i, e in emails.items() if e} == {str(c.id) for c in made[:3]}


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"first": 0}, "first"),
        ({"first": 201}, "first"),
        ({"first": 5, "after": "bm90LWEtY3Vyc29y"}, "after"),
        ({"first": 5, "after": "%%%"}, "after"),
        ({"first": 5, "after": "Y3VzdG9tZXI6bm90LWEtdXVpZA=="}, "after"),
    ],
)
async def test_bad_page_arguments_are_typed_errors(
    gql: GQL, services: Services, variables: dict[str, Any], field: str
) -> None:
    token, _ = await staff_token(gql, services, "customer_care")
    body = await gql(PAGE, {"purpose": "SUPPORT", **variables}, token=token)
    [error] = body["errors"]
    assert error["extensions"] == {"code": "VALIDATION", "field": field}


async def test_an_unknown_purpose_is_refused_by_the_schema(gql: GQL, services: Services) -> None:
    token, _ = await staff_token(gql, services, "customer_care")
    body = await gql(PAGE, {"purpose": "GOSSIP", "first": 5}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert await AuditEvent.filter(event="access").count() == 0


async def test_search_is_exact_and_no_oracle(gql: GQL, services: Services) -> None:
    # given one customer with an open case and one without
    with_case = await make_customer(1, open_case=True)
    without = await make_customer(2)
    token, _ = await staff_token(gql, services, "customer_care")

    async def search(term: str) -> list[str]:
        body = await gql(PAGE, {"purpose": "SUPPORT", "first": 5, "search": term}, token=token)
        return [e["node"]["id"] for e in body["data"]["customers"]["edges"]]

    # then care finds the first by exact email (any case) or phone, not by a fragment
    assert await search("JANE1@example.com") == [str(with_case.id)]
    assert await search("+44 20 7946 0101") == [str(with_case.id)]
    assert await search("jane1@") == []
    # and finding the second would tell care it exists, though care may not read its email
    assert await search("jane2@example.com") == []
    # and the log says nothing of who matched: no row names the hidden customer, and the
    # search is a denied search event like one for an address nobody has
    assert await AuditEvent.filter(subject_id=str(without.id)).count() == 0
    searches = AuditEvent.filter(event="search").order_by("id")
    assert await searches.values_list("decision", "reason") == [
        ("allow", "contact.email: 1 shown"),
        ("allow", "contact.phone: 1 shown"),
        ("deny", "contact.email: 0 shown"),
        ("deny", "contact.email: 0 shown"),
    ]


async def test_an_unknown_customer_is_not_found(gql: GQL, services: Services) -> None:
    token, _ = await staff_token(gql, services, "legal")
    for bad in (str(uuid4()), "not-a-uuid"):
        body = await gql(ONE, {"id": bad, "purpose": "LEGAL"}, token=token)
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_query_count_does_not_grow_with_the_page(
    gql: GQL, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    """A page of N customers with guarded fields (conditions, consents, support cases)
    runs the same number of SQL queries for N=10 and N=100."""
    for n in range(100):
        await make_customer(n, open_case=n % 2 == 0, marketing_consent=n % 3 == 0)
    token, _ = await staff_token(gql, services, "customer_care")
    query = f"""query($first: Int!) {{ customers(purpose: SUPPORT, first: $first) {{
        edges {{ node {{ {FIELDS} }} }} pageInfo {{ hasNextPage }} }} }}"""

    async def count(first: int) -> int:
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="tortoise.db_client"):
            body = await gql(query, {"first": first}, token=token)
        assert len(body["data"]["customers"]["edges"]) == first
        return len([r for r in caplog.records if r.name == "tortoise.db_client"])

    await count(10)  # warm: the session's idle expiry may slide once
    ten, hundred = await count(10), await count(100)
    assert ten == hundred
    assert ten <= 12, ten


async def test_an_inactive_employees_token_reads_nothing(gql: GQL, services: Services) -> None:
    customer = await make_customer(open_case=True)
    token, employee_id = await staff_token(gql, services, "customer_care")
    await Employee.filter(id=UUID(employee_id)).update(
        active=False, deactivated_at=T0 + timedelta(1)
    )
    body = await gql(ONE, {"id": str(customer.id), "purpose": "SUPPORT"}, token=token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_page_is_one_log_row_per_decision_naming_every_customer(
    gql: GQL, services: Services
) -> None:
    # given three customers with an open case and two without
    with_case = [await make_customer(n, open_case=True) for n in range(3)]
    without = [await make_customer(n) for n in range(3, 5)]
    token, _ = await staff_token(gql, services, "customer_care")
    # when care reads the emails of the page
    query = "{ customers(purpose: SUPPORT, first: 10) { edges { node { email } } } }"
    await gql(query, token=token)
    # then one allowed row names the three, one denied row names the two
    rows = await AuditEvent.filter(event="access", category="contact.email").order_by("id")
    by_decision = {r.decision: r for r in rows}
    assert len(rows) == 2
    assert by_decision["allow"].subject_id == ",".join(sorted(str(c.id) for c in with_case))
    assert by_decision["deny"].subject_id == ",".join(sorted(str(c.id) for c in without))
    # and, once the rows are in the tree, each customer finds theirs through the subject index
    await integrate()
    for customer, decision in [(with_case[0], "allow"), (without[1], "deny")]:
        [link] = await AuditSubject.filter(subject_id=str(customer.id))
        assert link.event_id == by_decision[decision].id


async def test_concurrent_reads_are_each_logged_once_on_one_chain(
    gql: GQL, services: Services
) -> None:
    """Reads commit their logs together (group commit): each request still gets its own
    rows before it is answered, and the chain stays whole."""
    customers = [await make_customer(n, open_case=True) for n in range(3)]
    token, _ = await staff_token(gql, services, "customer_care")
    before = await AuditEvent.filter(event="access").count()
    query = (
        "query($id: ID!) { customer(id: $id, purpose: SUPPORT) { email phone address { city } } }"
    )
    responses = await asyncio.gather(
        *(gql.raw(query, {"id": str(c.id)}, token=token) for c in customers * 4)
    )
    request_ids = {r.headers["x-request-id"] for r in responses}
    assert all("errors" not in r.json() for r in responses)
    rows = await AuditEvent.filter(event="access").offset(before)
    assert {r.request_id for r in rows} == request_ids
    assert sorted(len(r.category.split(",")) for r in rows) == [3] * 12
    assert (await verify()).ok


async def test_grouped_rows_never_claim_a_read_that_was_not_decided(
    gql: GQL, services: Services
) -> None:
    # given two customers, and legal reading the email of one and the phone of the other
    first, second = await make_customer(1), await make_customer(2)
    token, _ = await staff_token(gql, services, "legal")
    query = """query($a: ID!, $b: ID!) {
        a: customer(id: $a, purpose: LEGAL) { email phone }
        b: customer(id: $b, purpose: LEGAL) { phone } }"""
    await gql(query, {"a": str(first.id), "b": str(second.id)}, token=token)
    # then the log pairs each customer with exactly the categories decided for them
    rows = await AuditEvent.filter(event="access").order_by("id")
    pairs = {
        (subject, category)
        for r in rows
        for subject in r.subject_id.split(",")
        for category in r.category.split(",")
    }
    assert pairs == {
        (str(first.id), "contact.email"),
        (str(first.id), "contact.phone"),
        (str(second.id), "contact.phone"),
    }
    # and an auditor's category filter finds a row that lists several categories
    auditor, _ = await staff_token(gql, services, "auditor")
    body = await gql(
        """query($s: ID!) { accessDecisions(filter: { subjectId: $s, category: "contact.email" })
           { edges { node { category categories subjectId subjectIds } } } }""",
        {"s": str(first.id)},
        token=auditor,
    )
    [edge] = body["data"]["accessDecisions"]["edges"]
    assert edge["node"]["categories"] == ["contact.email", "contact.phone"]
    assert edge["node"]["category"] == "contact.email,contact.phone"
    assert edge["node"]["subjectIds"] == [str(first.id)]


async def test_staff_reads_never_load_the_password_hash(
    gql: GQL, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # given customers and a care agent
    customer = await make_customer(0, open_case=True)
    await make_customer(1, open_case=True)
    token, _ = await staff_token(gql, services, "customer_care")
    page = "{ customers(purpose: SUPPORT, first: 10) { edges { node { id email phone } } } }"
    # when the agent reads a page and one customer
    with statements(caplog) as sql:
        listed = await gql(page, token=token)
        one = await gql(ONE, {"id": str(customer.id), "purpose": "SUPPORT"}, token=token)
    # then both are answered, and no statement read the password hash
    assert len(listed["data"]["customers"]["edges"]) == 2
    assert one["data"]["customer"]["email"]
    customer_reads = [s for s in sql if 'FROM "customer"' in s]
    assert len(customer_reads) == 2, sql
    assert not [s for s in customer_reads if "password_hash" in s]


async def test_a_page_reads_its_customers_and_their_facts_in_one_statement(
    gql: GQL, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # given 100 customers, some with an open case, a running request or a consent
    for n in range(100):
        await make_customer(n, open_case=n % 2 == 0, marketing_consent=n % 3 == 0)
    token, _ = await staff_token(gql, services, "customer_care")
    query = """query($first: Int!) { customers(purpose: SUPPORT, first: $first) {
        edges { node { id email phone address { city } } } } }"""

    async def reads(first: int) -> list[str]:
        with statements(caplog) as sql:
            body = await gql(query, {"first": first}, token=token)
        assert len(body["data"]["customers"]["edges"]) == first
        # the page's own reads: of customers and of the facts about them
        tables = (
            '"customer"',
            '"consent_current"',
            '"customer_fact"',
            '"support_case"',
            '"rights_request"',
        )
        return [s for s in sql if s.startswith("SELECT") and any(t in s for t in tables)]

    await reads(1)  # warm: the session's idle expiry may slide once
    # when pages of 1, 10 and 100 are read
    one, ten, hundred = await reads(1), await reads(10), await reads(100)
    # then each is one statement: the customers with their conditions as columns of their
    # row of customer_fact (no purpose has an ask-again bound)
    for sql in (one, ten, hundred):
        assert len(sql) == 1, sql
        assert sql[0].startswith('SELECT "customer".')
        assert 'LEFT JOIN "customer_fact"' in sql[0]
