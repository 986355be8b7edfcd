"""A process reuses a resolved viewer for CUSTOS_VIEWER_CACHE_SECONDS (api/security/
sessions.py; issue 16, point 2): no statement while it is fresh, revocations made here at
once, role changes with the policy version, and revocations made in another process within
the setting (under 2 s, tested across two real servers on PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import httpx
import pytest

from api.security.sessions import SessionService
from api.services import Services
from api.settings import Settings
from models import Employee, EmployeeRole
from tests.conftest import (
    GQL,
    LOGIN,
    PASSWORD,
    STAFF_LOGIN,
    login,
    register,
    signed_in_employee,
)
from tests.test_no_oracle import statements
from tests.test_policy_propagation import WITHIN, _employee, _postgres, _servers, _until
from tests.test_sessions import DEACTIVATE, LOGOUT

STAFF_ME = "{ staffMe { id } }"


@pytest.fixture
def cached(services: Services, settings: Settings) -> SessionService:
    """A session service like the process's, with viewers kept 0.5 s."""
    return SessionService(
        settings=settings.model_copy(update={"viewer_cache_seconds": 0.5}),
        clock=services.clock,
    )


async def test_a_fresh_viewer_costs_no_statement(
    gql: GQL, cached: SessionService, caplog: pytest.LogCaptureFixture
) -> None:
    # given a customer's token, resolved once
    await register(gql)
    token = await login(gql)
    first = await cached.resolve(token)
    # when it is resolved again within the setting
    with statements(caplog) as sql:
        again = await cached.resolve(token)
    # then it is the same viewer, without a statement
    assert again == first
    assert again.kind == "customer"
    assert sql == []


async def test_a_revocation_here_takes_effect_at_once(gql: GQL, cached: SessionService) -> None:
    # given a customer's token, resolved and cached
    await register(gql)
    token = await login(gql)
    viewer = await cached.resolve(token)
    assert viewer.session_id is not None
    # when its session is revoked through this process's session service
    await cached.revoke(session_id=viewer.session_id)
    # then the next resolution looks it up again, and finds nobody
    assert (await cached.resolve(token)).kind == "anonymous"


async def test_a_new_policy_version_looks_the_roles_up_again(
    gql: GQL, services: Services, cached: SessionService
) -> None:
    # given an employee's viewer cached under policy version 1
    token, employee_id = await signed_in_employee(gql, services, "customer_care", name="v")
    assert (await cached.resolve(token, policy_version=1)).roles == {"customer_care"}
    # when a role is added (which moves the policy version)
    await EmployeeRole.create(
        employee_id=employee_id, role="marketing", granted_at=services.clock.now()
    )
    # then under the same version the cached roles stand, under the next the new ones
    assert (await cached.resolve(token, policy_version=1)).roles == {"customer_care"}
    assert (await cached.resolve(token, policy_version=2)).roles == {
        "customer_care",
        "marketing",
    }


async def test_a_change_made_elsewhere_is_seen_once_the_viewer_ages_out(
    gql: GQL, services: Services, cached: SessionService
) -> None:
    # given an employee's viewer, cached
    token, employee_id = await signed_in_employee(gql, services, "customer_care", name="w")
    assert (await cached.resolve(token)).kind == "employee"
    # when the employee is deactivated by another process (straight in the database)
    await Employee.filter(id=employee_id).update(active=False)
    # then this process still knows the viewer for at most the setting, then nobody
    await asyncio.sleep(0.6)
    assert (await cached.resolve(token)).kind == "anonymous"


def test_the_setting_cannot_outlast_the_propagation_bound(settings: Settings) -> None:
    with pytest.raises(ValueError, match="viewer_cache_seconds"):
        Settings.model_validate({**settings.model_dump(), "viewer_cache_seconds": 2.5})


@pytest.fixture
async def two_servers(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    if not _postgres():
        pytest.skip("several processes share PostgreSQL (SQLite's are tested in test_db_faults)")
    with _servers(database_url, 2) as (a, b):
        async with httpx.AsyncClient(base_url=a) as ca, httpx.AsyncClient(base_url=b) as cb:
            yield ca, cb


async def _signed_in(server: httpx.AsyncClient, query: str, field: str, email: str) -> str:
    variables = {"email": email, "password": PASSWORD}
    response = await server.post("/graphql", json={"query": query, "variables": variables})
    token: str = response.json()["data"][field]["token"]
    return token


async def _answers(server: httpx.AsyncClient, query: str, token: str) -> bool:
    """Whether `server` answers `query` for the token's viewer (not UNAUTHENTICATED)."""
    response = await server.post(
        "/graphql", json={"query": query}, headers={"authorization": f"Bearer {token}"}
    )
    body = response.json()
    return not body.get("errors") and body["data"] is not None


async def test_logout_and_deactivation_on_one_server_reach_the_other_within_2_seconds(
    gql: GQL, services: Services, two_servers: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = two_servers
    # given a customer and an employee, signed in on server A (on the real clock, which the
    # servers keep), each known to server B (its cache warm)
    await register(gql)
    customer = await _signed_in(a, LOGIN, "login", "jane.doe@example.com")
    far = await _employee(services, "far", "customer_care")
    await _employee(services, "root", "admin")
    staff = await _signed_in(a, STAFF_LOGIN, "staffLogin", "far@staff.example.com")
    admin = await _signed_in(a, STAFF_LOGIN, "staffLogin", "root@staff.example.com")
    staff_id = str(far.id)
    assert await _answers(b, "{ me { id } }", customer)
    assert await _answers(b, STAFF_ME, staff)
    # when the customer signs out on server A
    response = await a.post(
        "/graphql", json={"query": LOGOUT}, headers={"authorization": f"Bearer {customer}"}
    )
    assert response.json()["data"]["logout"] is True
    # then B refuses the token within 2 s
    assert await _until(lambda: _not(_answers(b, "{ me { id } }", customer))) < WITHIN
    # when the admin deactivates the employee on server A
    response = await a.post(
        "/graphql",
        json={"query": DEACTIVATE, "variables": {"id": staff_id}},
        headers={"authorization": f"Bearer {admin}"},
    )
    assert response.json()["data"]["deactivateEmployee"]["employee"]["active"] is False
    # then B refuses the employee within 2 s
    assert await _until(lambda: _not(_answers(b, STAFF_ME, staff))) < WITHIN


async def _not(check: Awaitable[bool]) -> bool:
    return not await check
