"""Sessions: opaque tokens stored hashed, a safe cookie, revocation and expiry."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import httpx
import pytest

from api.clock import FakeClock
from api.services import Services
from api.staff.service import create_employee
from models import AuditEvent, Customer, Employee, Session
from tests.conftest import (
    GQL,
    LOGIN,
    ME,
    PASSWORD,
    STAFF_LOGIN,
    login,
    mails,
    register,
    signed_in_employee,
)
from tests.test_no_oracle import statements

COOKIE = "__Host-custos_session"
STAFF_PASSWORD = "staff password of some length"

STAFF_ME = "{ staffMe { id email roles active } }"
LOGOUT = "mutation { logout }"
DEACTIVATE = """
mutation Deactivate($id: ID!) {
  deactivateEmployee(id: $id) { employee { id active } sessionsRevoked }
}
"""
CHANGE_PASSWORD = """
mutation Change($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) {
    __typename
    ... on PasswordChanged { otherSessionsRevoked }
    ... on InputError { code field message fields { field code } }
    ... on InvalidCredentials { code message }
  }
}
"""


def error_code(body: dict[str, Any]) -> str:
    [error] = body["errors"]
    code: str = error["extensions"]["code"]
    return code


async def signed_in_customer(gql: GQL) -> str:
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    return await login(gql)


async def me_works(gql: GQL, token: str) -> bool:
    body = await gql(ME, token=token)
    if body["data"]["me"] is not None:
        return True
    assert error_code(body) == "UNAUTHENTICATED"
    return False


async def staff_me_works(gql: GQL, token: str) -> bool:
    body = await gql(STAFF_ME, token=token)
    if body["data"]["staffMe"] is not None:
        return True
    assert error_code(body) == "UNAUTHENTICATED"
    return False


async def new_employee(services: Services, email: str, roles: list[str]) -> Employee:
    return await create_employee(
        services=services,
        email=email,
        name=email.split("@")[0],
        roles=roles,
        password=STAFF_PASSWORD,
    )


async def staff_login(gql: GQL, email: str, password: str = STAFF_PASSWORD) -> str:
    body = await gql(STAFF_LOGIN, {"email": email, "password": password})
    assert body["data"]["staffLogin"]["__typename"] == "StaffLoginSuccess", body
    token: str = body["data"]["staffLogin"]["token"]
    return token


def session_cookie_header(response: httpx.Response) -> str:
    [header] = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]
    return header


def cookie_attributes(header: str) -> tuple[str, dict[str, str]]:
    """(value, {lower-case attribute name: value}) of one Set-Cookie header."""
    first, *rest = [part.strip() for part in header.split(";")]
    value = first.partition("=")[2]
    attributes = {}
    for part in rest:
        name, _, attr_value = part.partition("=")
        attributes[name.strip().lower()] = attr_value.strip()
    return value, attributes


async def test_token_is_random_and_only_its_hash_is_stored(gql: GQL) -> None:
    # given a customer who signs in twice
    first = await signed_in_customer(gql)
    second = await login(gql)
    # then each token is urlsafe base64 of 32 random bytes (256 bits), and they differ
    for token in (first, second):
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
        assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert first != second
    # and the database holds only SHA-256 digests, never the tokens
    rows = await Session.all().order_by("id").values()
    assert [row["token_hash"] for row in rows] == [
        hashlib.sha256(t.encode()).hexdigest() for t in (first, second)
    ]
    for row in rows:
        for value in row.values():
            assert first not in str(value)
            assert second not in str(value)


async def test_cookie_is_host_prefixed_secure_and_authenticates(
    gql: GQL, client: httpx.AsyncClient
) -> None:
    # given a registered customer
    await register(gql)
    # when they sign in
    response = await gql.raw(LOGIN, {"email": "jane.doe@example.com", "password": PASSWORD})
    token = response.json()["data"]["login"]["token"]
    # then the cookie carries the token with the __Host- attributes
    value, attributes = cookie_attributes(session_cookie_header(response))
    assert value == token
    assert "secure" in attributes
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert "domain" not in attributes
    # and the cookie alone authenticates a later request (no Authorization header)
    body = await gql(ME)
    assert body["data"]["me"]["email"] == "jane.doe@example.com"
    # and so does the bearer token on a client without cookies
    client.cookies.clear()
    assert (await gql(ME))["data"]["me"] is None
    body = await gql(ME, token=token)
    assert body["data"]["me"]["email"] == "jane.doe@example.com"
    # and a garbage token is refused
    body = await gql(ME, token="not-a-session-token")
    assert body["data"]["me"] is None
    assert error_code(body) == "UNAUTHENTICATED"


async def test_logout_revokes_the_session_and_clears_the_cookie(
    gql: GQL, client: httpx.AsyncClient, clock: FakeClock
) -> None:
    # given a signed-in customer
    token = await signed_in_customer(gql)
    # when they sign out
    response = await gql.raw(LOGOUT, token=token)
    # then the answer is true and the cookie is cleared
    assert response.json()["data"]["logout"] is True
    value, attributes = cookie_attributes(session_cookie_header(response))
    assert value in ("", '""')
    assert attributes["max-age"] == "0"
    # and the session is revoked in the database and no longer works
    [session] = await Session.all()
    assert session.revoked_at == clock.now()
    assert not await me_works(gql, token)
    client.cookies.clear()
    assert not await me_works(gql, token)


async def test_logout_without_a_session_is_unauthenticated(gql: GQL) -> None:
    body = await gql(LOGOUT)
    assert body["data"] == {"logout": None}
    assert error_code(body) == "UNAUTHENTICATED"


async def test_customer_session_ends_at_the_absolute_limit_even_when_used(
    gql: GQL, clock: FakeClock
) -> None:
    # given a customer session used every 6 days (within the 7-day idle timeout)
    token = await signed_in_customer(gql)
    for _ in range(4):
        clock.advance(days=6)
        assert await me_works(gql, token)
    # then it works until just before 30 days
    clock.advance(days=6, seconds=-1)
    assert await me_works(gql, token)
    # and stops at 30 days
    clock.advance(seconds=1)
    assert not await me_works(gql, token)


async def test_customer_session_ends_after_seven_idle_days(gql: GQL, clock: FakeClock) -> None:
    # given a customer session left unused for just under 7 days, it still works
    token = await signed_in_customer(gql)
    clock.advance(days=7, seconds=-1)
    assert await me_works(gql, token)
    # when it is then left unused for more than 7 days
    clock.advance(days=7, seconds=1)
    # then it no longer works
    assert not await me_works(gql, token)


async def test_staff_session_ends_at_twelve_hours_even_when_used(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a staff session used every 25 minutes (within the 30-minute idle timeout)
    await new_employee(services, "ann@example.com", ["customer_care"])
    token = await staff_login(gql, "ann@example.com")
    for _ in range(28):  # 700 minutes
        clock.advance(minutes=25)
        assert await staff_me_works(gql, token)
    # then it works until just before 12 hours
    clock.advance(minutes=20, seconds=-1)
    assert await staff_me_works(gql, token)
    # and stops at 12 hours
    clock.advance(seconds=1)
    assert not await staff_me_works(gql, token)


async def test_staff_session_ends_after_thirty_idle_minutes(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await new_employee(services, "ann@example.com", ["customer_care"])
    token = await staff_login(gql, "ann@example.com")
    clock.advance(minutes=30, seconds=-1)
    assert await staff_me_works(gql, token)
    clock.advance(minutes=30, seconds=1)
    assert not await staff_me_works(gql, token)


async def test_deactivating_an_employee_ends_all_their_sessions(
    gql: GQL, services: Services
) -> None:
    # given an admin and an employee signed in twice
    await new_employee(services, "root@example.com", ["admin"])
    ann = await new_employee(services, "ann@example.com", ["customer_care"])
    admin = await staff_login(gql, "root@example.com")
    sessions = [await staff_login(gql, "ann@example.com") for _ in range(2)]
    assert all([await staff_me_works(gql, t) for t in sessions])
    # when the admin deactivates the employee
    body = await gql(DEACTIVATE, {"id": str(ann.id)}, token=admin)
    # then the employee is inactive and both sessions were revoked
    assert body["data"]["deactivateEmployee"] == {
        "employee": {"id": str(ann.id), "active": False},
        "sessionsRevoked": 2,
    }
    assert not (await Employee.get(id=ann.id)).active
    assert await Session.filter(employee_id=ann.id, revoked_at=None).count() == 0
    # and neither session works on the next request
    assert [await staff_me_works(gql, t) for t in sessions] == [False, False]
    # and the employee can no longer sign in: the answer of an unknown account
    for email in ("ann@example.com", "nobody@example.com"):
        body = await gql(STAFF_LOGIN, {"email": email, "password": STAFF_PASSWORD})
        assert body["data"]["staffLogin"] == {
            "__typename": "InvalidCredentials",
            "code": "INVALID_CREDENTIALS",
            "message": "The email or password is wrong.",
        }
    # and the admin is unaffected
    assert await staff_me_works(gql, admin)


async def test_only_an_admin_may_deactivate_an_employee(
    gql: GQL, services: Services, client: httpx.AsyncClient
) -> None:
    # given two non-admin employees, one signed in twice
    await new_employee(services, "bob@example.com", ["customer_care", "privacy_officer"])
    ann = await new_employee(services, "ann@example.com", ["customer_care"])
    bob = await staff_login(gql, "bob@example.com")
    sessions = [await staff_login(gql, "ann@example.com") for _ in range(2)]
    # when a non-admin tries to deactivate the other
    body = await gql(DEACTIVATE, {"id": str(ann.id)}, token=bob)
    # then it is forbidden
    assert body["data"] == {"deactivateEmployee": None}
    assert error_code(body) == "FORBIDDEN"
    # and when an anonymous caller tries, it is unauthenticated
    client.cookies.clear()
    body = await gql(DEACTIVATE, {"id": str(ann.id)})
    assert body["data"] == {"deactivateEmployee": None}
    assert error_code(body) == "UNAUTHENTICATED"
    # and nothing changed: still active, sessions still valid
    assert (await Employee.get(id=ann.id)).active
    assert await Session.filter(employee_id=ann.id, revoked_at=None).count() == 2
    assert [await staff_me_works(gql, t) for t in sessions] == [True, True]


async def test_change_password_revokes_other_sessions_only(gql: GQL) -> None:
    # given a customer signed in on two devices
    other = await signed_in_customer(gql)
    current = await login(gql)
    new_password = "a brand new passphrase"
    # when they change their password from one of them
    body = await gql(CHANGE_PASSWORD, {"current": PASSWORD, "new": new_password}, token=current)
    # then the other session is revoked and this one is kept
    assert body["data"]["changePassword"] == {
        "__typename": "PasswordChanged",
        "otherSessionsRevoked": 1,
    }
    assert await me_works(gql, current)
    assert not await me_works(gql, other)
    # and only the new password signs in
    old = await gql(LOGIN, {"email": "jane.doe@example.com", "password": PASSWORD})
    assert old["data"]["login"]["__typename"] == "InvalidCredentials"
    await login(gql, password=new_password)
    # and the owner is told by mail
    [notice] = await mails("password_changed")
    assert notice.recipient == "jane.doe@example.com"
    assert notice.customer_id == (await Customer.get()).id


async def test_change_password_with_wrong_current_password_changes_nothing(gql: GQL) -> None:
    other = await signed_in_customer(gql)
    current = await login(gql)
    before = (await Customer.get()).password_hash
    body = await gql(
        CHANGE_PASSWORD, {"current": "not my password", "new": "a brand new passphrase"}, current
    )
    assert body["data"]["changePassword"] == {
        "__typename": "InvalidCredentials",
        "code": "INVALID_CREDENTIALS",
        "message": "The email or password is wrong.",
    }
    await assert_password_unchanged(gql, before, current, other)
    # and the refusal is logged, by the customer
    customer = await Customer.get()
    [refused] = await AuditEvent.filter(event="auth", operation="changePassword")
    assert (refused.decision, refused.reason) == ("deny", "wrong password")
    assert (refused.actor_kind, refused.actor_id) == ("customer", str(customer.id))
    assert refused.subject_id == str(customer.id)


async def test_change_password_to_a_weak_one_changes_nothing(gql: GQL) -> None:
    other = await signed_in_customer(gql)
    current = await login(gql)
    before = (await Customer.get()).password_hash
    body = await gql(CHANGE_PASSWORD, {"current": PASSWORD, "new": "password1"}, token=current)
    result = body["data"]["changePassword"]
    assert result["__typename"] == "InputError"
    assert (result["field"], result["code"]) == ("newPassword", "WEAK_PASSWORD")
    assert result["fields"] == [{"field": "newPassword", "code": "WEAK_PASSWORD"}]
    await assert_password_unchanged(gql, before, current, other)


async def assert_password_unchanged(gql: GQL, before: str, *tokens: str) -> None:
    assert (await Customer.get()).password_hash == before
    assert await Session.filter(revoked_at__isnull=False).count() == 0
    assert [await me_works(gql, t) for t in tokens] == [True] * len(tokens)
    assert await mails("password_changed") == []
    await login(gql)


async def test_customer_and_staff_tokens_do_not_cross(gql: GQL, services: Services) -> None:
    # given a signed-in customer and a signed-in employee
    customer = await signed_in_customer(gql)
    await new_employee(services, "ann@example.com", ["admin"])
    employee = await staff_login(gql, "ann@example.com")
    # then the customer cannot ask staffMe
    body = await gql(STAFF_ME, token=customer)
    assert body["data"]["staffMe"] is None
    assert error_code(body) == "FORBIDDEN"
    # and the employee cannot ask me
    body = await gql(ME, token=employee)
    assert body["data"]["me"] is None
    assert error_code(body) == "FORBIDDEN"
    # while each works on its own side
    assert await me_works(gql, customer)
    assert await staff_me_works(gql, employee)


async def test_a_viewer_is_resolved_in_one_statement(
    gql: GQL, services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    # given a customer and an employee with two roles, both signed in a moment ago
    await register(gql)
    customer_token = await login(gql)
    staff_token, staff_id = await signed_in_employee(
        gql, services, "customer_care", "marketing", name="two-roles"
    )
    # when each token is resolved (within the minute, so the idle expiry does not move)
    with statements(caplog) as customer_sql:
        customer = await services.sessions.resolve(customer_token)
    with statements(caplog) as staff_sql:
        staff = await services.sessions.resolve(staff_token)
    # then each is one statement: the session, the employee's state and roles together
    assert (customer.kind, len(customer_sql)) == ("customer", 1)
    assert (staff.kind, str(staff.subject_id), len(staff_sql)) == ("employee", staff_id, 1)
    assert staff.roles == {"customer_care", "marketing"}
    # and a deactivated employee's token, in the same one statement, is nobody (written
    # straight to the database, as by another process, once this one's cache is empty)
    await Employee.filter(id=staff_id).update(active=False)
    services.sessions.forget_viewers()
    with statements(caplog) as inactive_sql:
        assert (await services.sessions.resolve(staff_token)).kind == "anonymous"
    assert len(inactive_sql) == 1
