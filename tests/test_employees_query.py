"""The admins' `employees` list (issue 17, point 5): id, work email, roles, active, created
and last sign-in; nothing else about a person. Admins only: every other viewer is refused
with a typed error, logged, and shown nothing. Pages cost the same statements whatever
their size."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from api.clock import FakeClock
from api.pagination import encode_cursor
from api.services import Services
from api.staff.service import create_employee
from authz.registry import Role
from models import AuditEvent, Employee
from tests.conftest import (
    GQL,
    PASSWORD,
    STAFF_LOGIN,
    login,
    register,
    signed_in_employee,
)
from tests.test_no_oracle import statements

EMPLOYEES = """
query ($first: Int, $after: String, $active: Boolean, $role: String) {
  employees(first: $first, after: $after, active: $active, role: $role) {
    edges { cursor node { id workEmail roles active createdAt lastSignInAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
DEACTIVATE = "mutation ($id: ID!) { deactivateEmployee(id: $id) { sessionsRevoked } }"


async def employees(gql: GQL, token: str, **variables: Any) -> dict[str, Any]:
    return await gql(EMPLOYEES, {"first": 50, **variables}, token=token)


def nodes(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert "errors" not in body, body
    return [edge["node"] for edge in body["data"]["employees"]["edges"]]


async def admin(gql: GQL, services: Services) -> tuple[str, str]:
    token, admin_id = await signed_in_employee(gql, services, "admin", name="root")
    gql.client.cookies.clear()
    return token, admin_id


async def test_an_admin_sees_each_employee_without_other_personal_data(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given an admin who signed in, and a care agent who signed in ten minutes later
    token, admin_id = await admin(gql, services)
    signed_in_at = clock.now()
    clock.advance(minutes=10)
    _, care_id = await signed_in_employee(gql, services, "customer_care", name="cara")
    gql.client.cookies.clear()
    # and a legal employee, created a minute later, who never signed in
    clock.advance(minutes=1)
    never = await create_employee(
        services=services,
        email="lee@staff.example.com",
        name="Lee",
        roles=["legal"],
        password=PASSWORD,
    )
    # when the admin lists the employees
    body = await employees(gql, token)
    # then each is shown with its id, work email, roles, state and dates, oldest first
    assert nodes(body) == [
        {
            "id": admin_id,
            "workEmail": "root@staff.example.com",
            "roles": ["admin"],
            "active": True,
            "createdAt": signed_in_at.isoformat(),
            "lastSignInAt": signed_in_at.isoformat(),
        },
        {
            "id": care_id,
            "workEmail": "cara@staff.example.com",
            "roles": ["customer_care"],
            "active": True,
            "createdAt": (signed_in_at + timedelta(minutes=10)).isoformat(),
            "lastSignInAt": (signed_in_at + timedelta(minutes=10)).isoformat(),
        },
        {
            "id": str(never.id),
            "workEmail": "lee@staff.example.com",
            "roles": ["legal"],
            "active": True,
            "createdAt": clock.now().isoformat(),
            "lastSignInAt": None,
        },
    ]
    # and the type has no field for the name or any other personal data
    fields = await gql('{ __type(name: "StaffMember") { fields { name } } }')
    names = {f["name"] for f in fields["data"]["__type"]["fields"]}
    assert names == {"id", "workEmail", "roles", "active", "createdAt", "lastSignInAt"}
    # and the read is logged as an admin event
    event = await AuditEvent.get(operation="employees")
    assert (event.event, event.decision, event.actor_id) == ("admin", "allow", admin_id)


async def test_a_sign_in_sets_the_last_sign_in_and_a_failed_one_does_not(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given an employee who signed in once
    _, employee_id = await signed_in_employee(gql, services, "legal", name="lee")
    first = (await Employee.get(id=employee_id)).last_sign_in_at
    assert first == clock.now()
    # when a wrong password is tried a minute later
    clock.advance(minutes=1)
    wrong = {"email": "lee@staff.example.com", "password": "not the password at all"}
    body = await gql(STAFF_LOGIN, wrong)
    assert body["data"]["staffLogin"]["__typename"] == "InvalidCredentials"
    # then the last sign-in is unchanged
    assert (await Employee.get(id=employee_id)).last_sign_in_at == first
    # and the next successful sign-in moves it
    clock.advance(minutes=1)
    right = {"email": "lee@staff.example.com", "password": PASSWORD}
    body = await gql(STAFF_LOGIN, right)
    assert body["data"]["staffLogin"]["__typename"] == "StaffLoginSuccess"
    assert (await Employee.get(id=employee_id)).last_sign_in_at == clock.now()


async def test_filters_by_active_and_by_role(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given an admin, two care agents and a marketer, one care agent deactivated
    token, admin_id = await admin(gql, services)
    clock.advance(seconds=1)
    _, care1 = await signed_in_employee(gql, services, "customer_care", name="c1")
    clock.advance(seconds=1)
    _, care2 = await signed_in_employee(gql, services, "customer_care", name="c2")
    clock.advance(seconds=1)
    _, marketer = await signed_in_employee(gql, services, "marketing", name="m1")
    gql.client.cookies.clear()
    deactivated = await gql(DEACTIVATE, {"id": care2}, token=token)
    assert "errors" not in deactivated, deactivated
    # then each filter and their combination keep only the matching employees
    ids = lambda body: [n["id"] for n in nodes(body)]  # noqa: E731
    assert ids(await employees(gql, token, role="customer_care")) == [care1, care2]
    assert ids(await employees(gql, token, active=False)) == [care2]
    assert ids(await employees(gql, token, active=True)) == [admin_id, care1, marketer]
    assert ids(await employees(gql, token, active=True, role="customer_care")) == [care1]
    assert ids(await employees(gql, token, role="auditor")) == []


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"role": "superuser"}, "role"),
        ({"role": "admin'; DROP TABLE employee; --"}, "role"),
        ({"first": 0}, "first"),
        ({"first": 201}, "first"),
        ({"after": "bm90IGEgY3Vyc29y"}, "after"),
        ({"after": encode_cursor("customer", "2026-01-01T00:00:00+00:00|x")}, "after"),
    ],
)
async def test_bad_arguments_are_typed_errors(
    gql: GQL, services: Services, variables: dict[str, Any], field: str
) -> None:
    token, _ = await admin(gql, services)
    body = await employees(gql, token, **variables)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "VALIDATION"
    assert error["extensions"]["field"] == field
    assert body["data"]["employees"] is None
    assert await Employee.all().count() == 1


async def test_pages_follow_one_another_without_overlap(gql: GQL, services: Services) -> None:
    # given an admin and four more employees
    token, _ = await admin(gql, services)
    for n in range(4):
        await signed_in_employee(gql, services, "legal", name=f"legal{n}")
    gql.client.cookies.clear()
    everyone = [n["id"] for n in nodes(await employees(gql, token))]
    # when the list is read two at a time
    seen: list[str] = []
    after = None
    while True:
        page = (await employees(gql, token, first=2, after=after))["data"]["employees"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then the pages hold everyone once, in order
    assert seen == everyone
    assert len(seen) == 5


async def test_a_page_costs_the_same_statements_whatever_its_size(
    gql: GQL, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # given an admin, and employees holding two roles each
    token, _ = await admin(gql, services)
    counts = {}
    total = 1
    for size in (1, 10, 30):
        while total < size:
            await create_employee(
                services=services,
                email=f"e{total}@staff.example.com",
                name=f"E {total}",
                roles=["legal", "marketing"],
                password=PASSWORD,
            )
            total += 1
        await employees(gql, token, first=size)  # warm up (the session's idle expiry)
        # when a page of `size` is read with every field
        with statements(caplog) as seen:
            body = await employees(gql, token, first=size)
        assert len(nodes(body)) == size
        counts[size] = len(seen)
    # then the statements do not grow with the page
    assert counts[1] == counts[10] == counts[30], counts


NOT_ADMINS = [r.value for r in Role if r is not Role.ADMIN]


@pytest.mark.parametrize("role", NOT_ADMINS)
async def test_every_other_role_is_refused_and_the_refusal_logged(
    gql: GQL, services: Services, role: str
) -> None:
    # given an employee holding a role other than admin
    token, employee_id = await signed_in_employee(gql, services, role, name="other")
    gql.client.cookies.clear()
    before = await Employee.all().values("id", "active", "last_sign_in_at")
    # when they ask for the employees
    body = await employees(gql, token)
    # then they are refused with a typed error and shown nothing
    assert body["data"]["employees"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "FORBIDDEN", "reason": "ROLE_REQUIRED"}
    assert "@staff.example.com" not in str(body)
    # and nothing changed, and the refusal is in the decision log
    assert await Employee.all().values("id", "active", "last_sign_in_at") == before
    denial = await AuditEvent.get(operation="employees")
    assert (denial.decision, denial.actor_id, denial.reason) == (
        "deny",
        employee_id,
        "requires role admin",
    )


async def test_a_customer_is_refused_and_the_refusal_logged(gql: GQL, services: Services) -> None:
    # given a signed-in customer and an employee
    await signed_in_employee(gql, services, "admin", name="root")
    gql.client.cookies.clear()
    await register(gql)
    token = await login(gql)
    gql.client.cookies.clear()
    # when the customer asks for the employees
    body = await employees(gql, token)
    # then they are refused, shown nothing, and the refusal is logged
    assert body["data"]["employees"] is None
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "reason": "ROLE_REQUIRED"}
    assert "root@staff.example.com" not in str(body)
    denial = await AuditEvent.get(operation="employees")
    assert (denial.decision, denial.actor_kind) == ("deny", "customer")


async def test_an_anonymous_visitor_is_refused(gql: GQL, services: Services) -> None:
    # given an employee, and a visitor who is not signed in
    await signed_in_employee(gql, services, "admin", name="root")
    gql.client.cookies.clear()
    logged = await AuditEvent.all().count()
    # when the visitor asks for the employees
    body = await employees(gql, "")
    # then they are asked to sign in (typed, as every staff operation does) and shown nothing
    assert body["data"]["employees"] is None
    assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert "root@staff.example.com" not in str(body)
    # and no admin read was logged for them
    assert await AuditEvent.filter(operation="employees", decision="allow").count() == 0
    assert await AuditEvent.all().count() == logged
