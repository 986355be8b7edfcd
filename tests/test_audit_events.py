"""Authentication and administrative events land in the decision log: ids only."""

from __future__ import annotations

from typing import Any

import pytest

import authz.audit
from api.services import Services
from api.staff.service import create_employee
from authz.audit import verify
from models import AuditEvent, Customer, Employee, Session
from tests.conftest import CLIENT_IP, GQL, LOGIN, PASSWORD, STAFF_LOGIN, login, register

EMAIL = "jane.doe@example.com"


async def events() -> list[AuditEvent]:
    return await AuditEvent.all().order_by("id")


async def assert_no_pii(*secrets: str) -> None:
    for row in await AuditEvent.all().values():
        text = " ".join(str(v) for v in row.values())
        for secret in (EMAIL, CLIENT_IP, PASSWORD, *secrets):
            assert secret not in text, (secret, row)


async def test_login_success_and_failures_are_logged(gql: GQL) -> None:
    # given a customer
    await register(gql)
    customer = await Customer.get()
    # when they sign in, someone guesses their password, and someone tries an unknown address
    token = await login(gql)
    await gql(LOGIN, {"email": EMAIL, "password": "wrong password guess"})
    await gql(LOGIN, {"email": "nobody@example.com", "password": "wrong password guess"})
    # then three auth events, by id only
    rows = [
        (e.event, e.operation, e.decision, e.actor_kind, e.actor_id, e.subject_id, e.reason)
        for e in await events()
        if e.event == "auth"
    ]
    cid = str(customer.id)
    assert rows == [
        ("auth", "login", "allow", "customer", cid, cid, ""),
        ("auth", "login", "deny", "anonymous", "", cid, "wrong password"),
        ("auth", "login", "deny", "anonymous", "", "", "unknown account"),
    ]
    # and the signed-in customer's read of their own email in the answer, as the customer
    reads = [
        (e.actor_kind, e.actor_id, e.subject_id, e.category, e.action, e.purpose, e.decision)
        for e in await events()
        if e.event == "access"
    ]
    assert reads == [("customer", cid, cid, "contact.email", "read", "service", "allow")]
    assert all(e.request_id for e in await events())
    await assert_no_pii(token, "nobody@example.com")
    assert (await verify()).ok


async def test_throttled_login_is_logged_as_rate_limited(gql: GQL) -> None:
    await register(gql)
    for _ in range(6):
        await gql(LOGIN, {"email": EMAIL, "password": "wrong password guess"})
    last = (await events())[-1]
    assert (last.operation, last.decision, last.reason) == ("login", "deny", "rate limited")


async def test_logout_staff_login_and_deactivation_are_logged(gql: GQL, services: Services) -> None:
    # given an admin and another employee
    admin = await create_employee(
        services=services,
        email="root@staff.example.com",
        name="Root",
        roles=["admin"],
        password=PASSWORD,
    )
    other = await create_employee(
        services=services,
        email="kim@staff.example.com",
        name="Kim",
        roles=["legal"],
        password=PASSWORD,
    )
    body = await gql(STAFF_LOGIN, {"email": "root@staff.example.com", "password": PASSWORD})
    token = body["data"]["staffLogin"]["token"]
    # when the admin deactivates the other employee and signs out
    await gql(
        "mutation($id: ID!) { deactivateEmployee(id: $id) { sessionsRevoked } }",
        {"id": str(other.id)},
        token=token,
    )
    await gql("mutation { logout }", token=token)
    # then the log shows each step, by the admin, with their role
    rows = [
        (e.event, e.operation, e.decision, e.actor_kind, e.actor_id, e.roles, e.subject_id)
        for e in await events()
    ]
    aid = str(admin.id)
    assert rows == [
        ("auth", "staffLogin", "allow", "employee", aid, "", aid),
        ("admin", "deactivateEmployee", "allow", "employee", aid, "admin", str(other.id)),
        ("auth", "logout", "allow", "employee", aid, "admin", ""),
    ]
    await assert_no_pii(token, "root@staff.example.com", "kim@staff.example.com")


async def test_a_mutation_and_its_log_commit_together(
    gql: GQL, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a customer, and a log that cannot be written
    await register(gql)
    sessions_before = await Session.all().count()

    async def broken(records: list[Any]) -> None:
        raise RuntimeError("log storage unavailable")

    monkeypatch.setattr(authz.audit, "append", broken)
    # when they sign in
    body = await gql(LOGIN, {"email": EMAIL, "password": PASSWORD})
    # then the sign-in fails as a whole: no session was left behind unlogged
    assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert body["errors"][0]["message"] == "Unexpected error."
    assert await Session.all().count() == sessions_before
    assert (await Customer.get()).last_login_at is None
    assert await AuditEvent.all().count() == 0


async def test_employee_rows_never_hold_personal_values(gql: GQL, services: Services) -> None:
    await create_employee(
        services=services,
        email="root@staff.example.com",
        name="Root",
        roles=["admin"],
        password=PASSWORD,
    )
    await gql(STAFF_LOGIN, {"email": "root@staff.example.com", "password": "not it at all"})
    [row] = await events()
    assert (row.operation, row.decision, row.reason) == ("staffLogin", "deny", "wrong password")
    assert row.subject_id == str((await Employee.get()).id)
    await assert_no_pii("root@staff.example.com")
