"""Auditors query and verify the decision log over GraphQL; a customer sees who accessed
their data (role and purpose, never the employee). Reading the log is itself logged."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from tortoise import connections

from api.clock import FakeClock
from api.services import Services
from authz import log_tree
from authz.audit import AuditRecord, append
from authz.registry import Role
from models import AuditEvent, Customer
from tests.conftest import GQL, login, register, signed_in_employee

DECISIONS = """
query($filter: AccessDecisionFilter, $first: Int! = 50, $after: String) {
  accessDecisions(filter: $filter, first: $first, after: $after) {
    edges { cursor node { id at requestId actorKind actorId roles event operation category
                          action subjectId purpose decision rule reason hash } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
VERIFY = "{ verifyAuditLog { ok checked firstBrokenId problem } }"
ACCESS_LOG = """
query($first: Int! = 20, $after: String) {
  me { accessLog(first: $first, after: $after) {
    edges { cursor node { reference at roles purpose categories actions } }
    pageInfo { hasNextPage endCursor }
  } }
}
"""
JOHN = "john.roe@example.com"


async def customer(gql: GQL, email: str = "jane.doe@example.com") -> tuple[str, str]:
    await register(gql, email=email)
    token = await login(gql, email)
    gql.client.cookies.clear()  # each call below says who it is with its bearer token
    return token, str((await Customer.get(email=email)).id)


def access(at: datetime, label: str, **fields: str) -> AuditRecord:
    values = {
        "actor_kind": "employee",
        "event": "access",
        "decision": "allow",
        "action": "read",
        "reason": label,
        **fields,
    }
    return AuditRecord(at=at, **values)


def base(clock: FakeClock) -> datetime:
    """Known rows are dated before any sign-in of the test (the clock's now)."""
    return clock.now() - timedelta(days=10)


async def into_tree(rows: int) -> None:
    """Bring the log's first `rows` rows into the tree, which indexes their subjects (the
    server's loop does it within a second; tests choose when)."""
    if rows:
        assert (await log_tree._integrate_batch(rows))[:2] == (rows, rows)


async def known_rows(clock: FakeClock) -> None:
    """Five decisions, one an hour: who, about whom, on what, with which outcome."""
    t0 = base(clock)
    await append(
        [
            access(t0, "r1", actor_id="e-ann", subject_id="c-1", category="contact.email"),
            access(
                t0 + timedelta(hours=1),
                "r2",
                actor_id="e-ann",
                subject_id="c-2",
                category="contact.phone",
                decision="deny",
            ),
            access(
                t0 + timedelta(hours=2),
                "r3",
                actor_id="e-bo",
                subject_id="c-1",
                category="device.ip",
                decision="deny",
            ),
            access(
                t0 + timedelta(hours=3),
                "r4",
                actor_id="e-bo",
                subject_id="c-2",
                category="contact.email",
            ),
            access(
                t0 + timedelta(hours=4),
                "r5",
                actor_id="e-ann",
                subject_id="c-1",
                category="contact.email",
                decision="deny",
            ),
        ]
    )


def nodes(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["accessDecisions"]["edges"]]


def labels(body: dict[str, Any]) -> list[str]:
    return [node["reason"] for node in nodes(body)]


def error(body: dict[str, Any]) -> tuple[str, Any]:
    [first] = body["errors"]
    return first["extensions"]["code"], first["extensions"].get("field")


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


async def tamper(sql: str) -> None:
    """What an intruder with database access would do (the append-only trigger set aside)."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        sql = (
            "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only;"
            f"{sql};"
            "ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only;"
        )
    await conn.execute_script(sql)


# --- accessDecisions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"actorId": "e-ann"}, ["r5", "r2", "r1"]),
        ({"subjectId": "c-1"}, ["r5", "r3", "r1"]),
        ({"category": "contact.email"}, ["r5", "r4", "r1"]),
        ({"decision": "DENY", "event": "access"}, ["r5", "r3", "r2"]),
        ({"decision": "ALLOW", "event": "access"}, ["r4", "r1"]),
        ({"since": 1, "until": 3}, ["r3", "r2"]),
        ({"actorId": "e-ann", "subjectId": "c-1", "decision": "ALLOW"}, ["r1"]),
        ({"actorId": "nobody"}, []),
    ],
)
@pytest.mark.parametrize("in_tree", [0, 3, 5])
async def test_each_filter_returns_exactly_its_rows(
    gql: GQL,
    services: Services,
    clock: FakeClock,
    condition: dict[str, Any],
    expected: list[str],
    in_tree: int,
) -> None:
    # given five known decisions, the first `in_tree` of them in the tree (so in the
    # subject index, the others not yet), and a signed-in auditor
    await known_rows(clock)
    await into_tree(in_tree)
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    # when the auditor filters the log (hours counted from the first row, UTC)
    where = dict(condition)
    for bound in ("since", "until"):
        if bound in where:
            where[bound] = (base(clock) + timedelta(hours=where[bound])).isoformat()
    body = await gql(DECISIONS, {"filter": where}, token=token)
    # then exactly the matching rows come back, newest first
    assert labels(body) == expected
    assert body["data"]["accessDecisions"]["pageInfo"]["hasNextPage"] is False


async def test_a_node_carries_every_field_of_its_row(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await append(
        [
            access(
                clock.now(),
                "no open case",
                request_id="req-1",
                actor_id="e-ann",
                roles="customer_care,legal",
                subject_id="c-1",
                category="contact.phone",
                purpose="support",
                decision="deny",
                rule="customer_care, contact.*, read, support, open_case, allow",
            )
        ]
    )
    row = await AuditEvent.get(reason="no open case")
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    body = await gql(DECISIONS, {"filter": {"actorId": "e-ann"}}, token=token)
    assert nodes(body) == [
        {
            "id": str(row.id),
            "at": "2026-01-01T12:00:00+00:00",
            "requestId": "req-1",
            "actorKind": "employee",
            "actorId": "e-ann",
            "roles": ["customer_care", "legal"],
            "event": "access",
            "operation": None,
            "category": "contact.phone",
            "action": "read",
            "subjectId": "c-1",
            "purpose": "support",
            "decision": "DENY",
            "rule": "customer_care, contact.*, read, support, open_case, allow",
            "reason": "no open case",
            "hash": row.hash,
        }
    ]


async def test_pages_walk_every_row_once_newest_first(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given 23 decisions, many at the same moment, appended out of time order, and an
    # auditor (whose sign-in is a row too)
    t0 = base(clock)
    await append(
        [access(t0 + timedelta(hours=i % 4), f"n{i}", actor_id="e-ann") for i in range(23)]
    )
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    existing = await AuditEvent.all().order_by("-at", "-id").values_list("id", flat=True)
    # when the auditor walks the whole log five rows at a time
    seen: list[int] = []
    after = None
    pages = 0
    while True:
        body = await gql(DECISIONS, {"first": 5, "after": after}, token=token)
        page = body["data"]["accessDecisions"]
        seen += [int(node["id"]) for node in nodes(body)]
        assert page["pageInfo"]["endCursor"] == (page["edges"][-1]["cursor"] or None)
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then every row that existed when the walk began came once, newest first (ties by
    # id), no gaps; the rows the walk itself added (each read is logged) did not slip in
    assert seen == list(existing)
    assert seen != sorted(seen, reverse=True)  # time order, not insertion order
    assert pages == 5
    assert await AuditEvent.filter(event="audit", operation="accessDecisions").count() == 5


async def test_an_empty_page_has_no_end_cursor(gql: GQL, services: Services) -> None:
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    body = await gql(DECISIONS, {"filter": {"actorId": "nobody"}}, token=token)
    assert body["data"]["accessDecisions"] == {
        "edges": [],
        "pageInfo": {"hasNextPage": False, "endCursor": None},
    }


@pytest.mark.parametrize(
    "after",
    [
        "not a cursor",
        "",
        cursor("audit:"),
        cursor("audit:3"),
        cursor("audit:1767268800000000."),
        cursor("audit:1767268800000000.-3"),
        cursor("audit:1767268800000000. 3"),
        cursor("audit:1767268800000000.0"),
        cursor("audit:1767268800000000.99999999999999999999"),
        cursor("audit:-1767268800000000.3"),
        cursor("audit:999999999999999999999.3"),
        cursor("customer:1767268800000000.3"),
        cursor("audit:1767268800000000.3")[:-2],  # truncated
    ],
)
async def test_a_malformed_cursor_is_a_validation_error(
    gql: GQL, services: Services, after: str
) -> None:
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    body = await gql(DECISIONS, {"after": after}, token=token)
    assert error(body) == ("VALIDATION", "after")
    assert body["data"]["accessDecisions"] is None


@pytest.mark.parametrize("first", [0, -1, 201])
async def test_page_size_is_one_to_two_hundred(gql: GQL, services: Services, first: int) -> None:
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    body = await gql(DECISIONS, {"first": first}, token=token)
    assert error(body) == ("VALIDATION", "first")


async def test_a_time_range_must_not_be_empty(gql: GQL, services: Services) -> None:
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    at = "2026-01-01T12:00:00Z"
    body = await gql(DECISIONS, {"filter": {"since": at, "until": at}}, token=token)
    assert error(body) == ("VALIDATION", "filter.until")


async def test_reading_and_verifying_the_log_are_logged(gql: GQL, services: Services) -> None:
    # given an auditor
    token, auditor_id = await signed_in_employee(gql, services, Role.AUDITOR)
    # when they query one subject's decisions, then verify the chain
    await gql(DECISIONS, {"filter": {"subjectId": "c-1"}}, token=token)
    await gql(VERIFY, token=token)
    # then both reads are rows of the log, by the auditor, with their role
    rows = await AuditEvent.filter(event="audit").order_by("id")
    assert [(r.operation, r.actor_id, r.roles, r.subject_id, r.decision) for r in rows] == [
        ("accessDecisions", auditor_id, "auditor", "c-1", "allow"),
        ("verifyAuditLog", auditor_id, "auditor", "", "allow"),
    ]


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.AUDITOR])
async def test_other_roles_are_refused_and_the_refusal_is_logged(
    gql: GQL, services: Services, clock: FakeClock, role: Role
) -> None:
    # given the log and an employee who is not an auditor (admin included: separation of
    # duties)
    await known_rows(clock)
    token, employee_id = await signed_in_employee(gql, services, role)
    # when they try to read and to verify the log
    read = await gql(DECISIONS, token=token)
    verified = await gql(VERIFY, token=token)
    # then both are FORBIDDEN at their paths, nothing is returned, and both denials are logged
    assert (error(read), read["errors"][0]["path"]) == (("FORBIDDEN", None), ["accessDecisions"])
    assert read["data"]["accessDecisions"] is None
    assert (error(verified), verified["data"]["verifyAuditLog"]) == (("FORBIDDEN", None), None)
    denials = await AuditEvent.filter(actor_id=employee_id, decision="deny").order_by("id")
    assert [(d.operation, d.roles) for d in denials] == [
        ("accessDecisions", role.value),
        ("verifyAuditLog", role.value),
    ]
    assert not await AuditEvent.filter(event="audit").exists()


async def test_customers_are_refused_and_anonymous_must_sign_in(gql: GQL) -> None:
    token, customer_id = await customer(gql)
    read = await gql(DECISIONS, token=token)
    assert error(read) == ("FORBIDDEN", None)
    denied = await AuditEvent.get(actor_id=customer_id, decision="deny")
    assert (denied.actor_kind, denied.operation) == ("customer", "accessDecisions")
    anonymous = await gql(VERIFY)
    assert error(anonymous) == ("UNAUTHENTICATED", None)
    assert not await AuditEvent.filter(event="audit").exists()


# --- verifyAuditLog -------------------------------------------------------------------


async def test_verify_answers_ok_on_an_intact_chain(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await known_rows(clock)
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    rows = await AuditEvent.all().count()
    body = await gql(VERIFY, token=token)
    assert body["data"]["verifyAuditLog"] == {
        "ok": True,
        "checked": rows,
        "firstBrokenId": None,
        "problem": None,
    }


async def test_verify_names_the_row_edited_in_the_database(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given the log and an auditor
    await known_rows(clock)
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    victim = await AuditEvent.get(reason="r3")
    before = await AuditEvent.filter(id__lt=victim.id).count()
    # when someone turns a denial into an allowance directly in the database
    await tamper(f"UPDATE audit_event SET decision = 'allow' WHERE id = {victim.id}")
    body = await gql(VERIFY, token=token)
    # then verification fails at exactly that row
    assert body["data"]["verifyAuditLog"] == {
        "ok": False,
        "checked": before,
        "firstBrokenId": str(victim.id),
        "problem": "hash does not match the row's content",
    }


# --- me { accessLog } -----------------------------------------------------------------


async def staff_accesses(clock: FakeClock, jane: str, john: str) -> None:
    """Requests by staff touching Jane's data (and John's, and denied ones)."""
    t0 = base(clock)
    care = {"actor_id": "e-care", "roles": "customer_care", "purpose": "support"}
    fraud = {"actor_id": "e-fraud", "roles": "fraud_analyst,legal", "purpose": "security"}
    await append(
        [
            access(t0, "a1", request_id="req-a", subject_id=jane, category="contact.email", **care),
            access(t0, "a2", request_id="req-a", subject_id=jane, category="contact.phone", **care),
            access(t0, "a3", request_id="req-a", subject_id=john, category="contact.email", **care),
        ]
    )
    await append(
        [
            access(
                t0 + timedelta(hours=1),
                "b1",
                request_id="req-b",
                subject_id=jane,
                category="device.ip",
                **fraud,
            ),
            access(
                t0 + timedelta(hours=1),
                "b2",
                request_id="req-b",
                subject_id=jane,
                category="device.browser",
                action="read_masked",
                **fraud,
            ),
            access(
                t0 + timedelta(hours=1),
                "b3",
                request_id="req-b",
                subject_id=jane,
                category="contact.address",
                decision="deny",
                **fraud,
            ),
        ]
    )
    await append(
        [
            access(
                t0 + timedelta(hours=2),
                "c1",
                request_id="req-c",
                subject_id=jane,
                category="contact.email",
                decision="deny",
                actor_id="e-mkt",
                roles="marketing",
                purpose="marketing.email",
            ),
            access(
                t0 + timedelta(hours=3),
                "d1",
                request_id="req-d",
                subject_id=john,
                category="contact.phone",
                **care,
            ),
            access(
                t0 + timedelta(hours=4),
                "e1",
                request_id="req-e",
                subject_id=jane,
                category="contact.email",
                actor_kind="customer",
                actor_id=jane,
                roles="",
                purpose="service",
            ),
        ]
    )


def log_entries(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["me"]["accessLog"]["edges"]]


@pytest.mark.parametrize("in_tree", ["none", "some", "all"])
async def test_a_customer_sees_role_and_purpose_of_each_staff_access(
    gql: GQL, clock: FakeClock, in_tree: str
) -> None:
    # given staff accesses to Jane's and John's data, some of them denied, and none, some
    # or all of the log's rows in the tree (and so in the subject index)
    jane_token, jane = await customer(gql)
    _, john = await customer(gql, JOHN)
    await staff_accesses(clock, jane, john)
    if in_tree == "all":
        await log_tree.integrate()
    elif in_tree == "some":
        await into_tree(await AuditEvent.filter(request_id="req-a").count())
    # when Jane reads her access log
    body = await gql(ACCESS_LOG, token=jane_token)
    # then one entry per staff request that read her data: role, purpose, what, when
    t0 = base(clock)
    assert log_entries(body) == [
        {
            "reference": "req-b",
            "at": (t0 + timedelta(hours=1)).isoformat(),
            "roles": ["fraud_analyst", "legal"],
            "purpose": "security",
            "categories": ["device.browser", "device.ip"],
            "actions": ["read", "read_masked"],
        },
        {
            "reference": "req-a",
            "at": t0.isoformat(),
            "roles": ["customer_care"],
            "purpose": "support",
            "categories": ["contact.email", "contact.phone"],
            "actions": ["read"],
        },
    ]
    # and never who: no employee id appears anywhere in the answer
    text = json.dumps(body)
    assert all(e not in text for e in ("e-care", "e-fraud", "e-mkt"))


async def test_another_customer_sees_only_their_own(gql: GQL, clock: FakeClock) -> None:
    _, jane = await customer(gql)
    john_token, john = await customer(gql, JOHN)
    await staff_accesses(clock, jane, john)
    body = await gql(ACCESS_LOG, token=john_token)
    assert [(e["reference"], e["categories"]) for e in log_entries(body)] == [
        ("req-d", ["contact.phone"]),
        ("req-a", ["contact.email"]),
    ]


async def test_the_access_log_pages_and_its_reading_is_logged(gql: GQL, clock: FakeClock) -> None:
    # given three staff requests about Jane
    token, jane = await customer(gql)
    await append(
        [
            access(clock.now(), f"x{i}", request_id=f"req-{i}", subject_id=jane, roles="legal")
            for i in range(3)
        ]
    )
    # when she reads her log one entry at a time
    references = []
    after = None
    while True:
        body = await gql(ACCESS_LOG, {"first": 1, "after": after}, token=token)
        references += [e["reference"] for e in log_entries(body)]
        info = body["data"]["me"]["accessLog"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    # then each request once, newest first; and each reading is logged with her as actor
    assert references == ["req-2", "req-1", "req-0"]
    reads = await AuditEvent.filter(operation="accessLog").order_by("id")
    assert [(r.actor_kind, r.actor_id, r.subject_id, r.decision) for r in reads] == [
        ("customer", jane, jane, "allow")
    ] * 3
    bad = await gql(ACCESS_LOG, {"after": "nope"}, token=token)
    assert error(bad) == ("VALIDATION", "after")


async def test_staff_cannot_read_a_customers_access_log(gql: GQL, services: Services) -> None:
    # given Jane, and a legal employee who may read customers for purpose legal
    _, jane = await customer(gql)
    token, _ = await signed_in_employee(gql, services, Role.LEGAL)
    # when they ask for her access log through the staff read of one customer
    body = await gql(
        "query($id: ID!) { customer(id: $id, purpose: LEGAL) {"
        " id accessLog { edges { cursor } } } }",
        {"id": jane},
        token=token,
    )
    # then only the account holder may see it
    assert body["data"]["customer"] == {"id": jane, "accessLog": None}
    assert error(body) == ("FORBIDDEN", None)
    assert body["errors"][0]["path"] == ["customer", "accessLog"]


async def test_a_real_staff_read_shows_in_the_customers_log(gql: GQL, services: Services) -> None:
    # given Jane and a legal employee
    jane_token, jane = await customer(gql)
    staff_token, staff_id = await signed_in_employee(gql, services, Role.LEGAL)
    # when the employee reads Jane's email for purpose legal
    response = await gql.raw(
        "query($id: ID!) { customer(id: $id, purpose: LEGAL) { email } }",
        {"id": jane},
        token=staff_token,
    )
    assert response.json()["data"]["customer"]["email"] == "jane.doe@example.com"
    # then Jane sees that request, by reference, with role and purpose, and not who
    body = await gql(ACCESS_LOG, token=jane_token)
    [entry] = log_entries(body)
    assert entry["reference"] == response.headers["x-request-id"]
    assert (entry["roles"], entry["purpose"], entry["categories"], entry["actions"]) == (
        ["legal"],
        "legal",
        ["contact.email"],
        ["read"],
    )
    assert staff_id not in json.dumps(body)


@pytest.mark.parametrize("subject", ["%", "_-1", "c-_", "C-1", "c-1,c-2", "c-", "-1", " c-1"])
@pytest.mark.parametrize("in_tree", [0, 5])
async def test_a_subject_filter_matches_whole_ids_only_in_the_tree_or_not(
    gql: GQL, services: Services, clock: FakeClock, subject: str, in_tree: int
) -> None:
    # given the five known rows about c-1 and c-2, in the tree or not yet
    await known_rows(clock)
    await into_tree(in_tree)
    token, _ = await signed_in_employee(gql, services, Role.AUDITOR)
    # when an auditor filters on a pattern, a part, another case or a list of ids
    body = await gql(DECISIONS, {"filter": {"subjectId": subject}}, token=token)
    # then no row matches: a subject is one whole id, compared exactly, wherever it is kept
    assert labels(body) == [], body
