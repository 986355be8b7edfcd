"""Password sign-in: enumeration-safe answers and work, throttling, rehashing."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import argon2
import httpx
import pytest

from api.clock import FakeClock
from api.services import Services
from api.settings import Settings
from api.staff.service import create_employee, deactivate_employee
from models import Customer, LoginFailure, Session
from tests.conftest import (
    CLIENT_IP,
    GQL,
    LOGIN,
    PASSWORD,
    REGISTER,
    STAFF_LOGIN,
    login,
    register,
    registration,
)
from tests.real_servers import servers

ROOT = Path(__file__).resolve().parent.parent
SERVE = [sys.executable, "-m", "api", "serve"]
EMAIL = "jane.doe@example.com"
STAFF_PASSWORD = "staff password of some length"
INVALID = {
    "__typename": "InvalidCredentials",
    "code": "INVALID_CREDENTIALS",
    "message": "The email or password is wrong.",
}


class VerifySpy:
    """Stands in for the PasswordHasher (whose attributes are read-only slots): counts
    `verify` calls and calls through to the real hasher for everything."""

    def __init__(self, hasher: argon2.PasswordHasher) -> None:
        self._hasher = hasher
        self.calls = 0

    def verify(self, *args: Any, **kwargs: Any) -> bool:
        self.calls += 1
        return self._hasher.verify(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hasher, name)


@pytest.fixture
def spy(services: Services, monkeypatch: pytest.MonkeyPatch) -> VerifySpy:
    wrapper = VerifySpy(services.passwords.hasher)
    monkeypatch.setattr(services.passwords, "hasher", wrapper)
    return wrapper


async def attempt(gql: GQL, email: str, password: str, query: str = LOGIN) -> dict[str, Any]:
    """The payload of one sign-in that is answered with a union member."""
    body = await gql(query, {"email": email, "password": password})
    field = "login" if query is LOGIN else "staffLogin"
    result: dict[str, Any] = body["data"][field]
    return result


async def counted(spy: VerifySpy, gql: GQL, email: str, password: str, query: str = LOGIN) -> Any:
    spy.calls = 0
    result = await attempt(gql, email, password, query)
    assert spy.calls == 1, (email, spy.calls)
    return result


def assert_rate_limited(response: httpx.Response) -> int:
    """The HTTP and GraphQL shape of a throttled sign-in; returns retryAfter."""
    assert response.status_code == 429
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    retry_after = error["extensions"]["retryAfter"]
    assert isinstance(retry_after, int)
    assert 0 < retry_after <= 900
    assert response.headers["retry-after"] == str(retry_after)
    return retry_after


async def test_wrong_password_and_unknown_account_look_and_cost_the_same(
    gql: GQL, spy: VerifySpy
) -> None:
    # given a registered customer
    await register(gql)
    # when someone signs in with a wrong password, and with an unknown address
    wrong = await counted(spy, gql, EMAIL, "not the password")
    unknown = await counted(spy, gql, "nobody@example.com", PASSWORD)
    # then both answers are identical, each after one argon2 verification
    assert wrong == unknown == INVALID
    assert await Session.all().count() == 0


async def test_staff_login_looks_and_costs_the_same_for_wrong_unknown_and_inactive(
    gql: GQL, services: Services, spy: VerifySpy
) -> None:
    # given an active and a deactivated employee
    employees = [
        await create_employee(
            services=services, email=email, name="E", roles=["admin"], password=STAFF_PASSWORD
        )
        for email in ("ann@example.com", "old@example.com")
    ]
    old = await attempt(gql, "old@example.com", STAFF_PASSWORD, STAFF_LOGIN)
    assert old["__typename"] == "StaffLoginSuccess"
    await deactivate_employee(services=services, employee_id=employees[1].id)
    # when each kind of bad sign-in is tried
    answers = [
        await counted(spy, gql, "ann@example.com", "not the password", STAFF_LOGIN),
        await counted(spy, gql, "nobody@example.com", STAFF_PASSWORD, STAFF_LOGIN),
        await counted(spy, gql, "old@example.com", STAFF_PASSWORD, STAFF_LOGIN),
    ]
    # then all answers are identical, each after one argon2 verification
    assert answers == [INVALID] * 3
    assert await Session.filter(revoked_at=None).count() == 0


async def test_sixth_attempt_on_an_account_is_throttled_even_with_the_right_password(
    gql: GQL, clock: FakeClock
) -> None:
    # given five failures for one account within the window
    await register(gql)
    for _ in range(5):
        assert await attempt(gql, EMAIL, "not the password") == INVALID
        clock.advance(seconds=10)
    # when the right password is tried
    response = await gql.raw(LOGIN, {"email": EMAIL, "password": PASSWORD})
    # then it is refused with 429 and Retry-After, and no session is created
    retry_after = assert_rate_limited(response)
    assert await Session.all().count() == 0
    # and it stays refused until retryAfter has passed, no longer
    clock.advance(seconds=retry_after - 1)
    assert_rate_limited(await gql.raw(LOGIN, {"email": EMAIL, "password": PASSWORD}))
    clock.advance(seconds=1)
    await login(gql)
    assert await Session.all().count() == 1


async def test_unknown_accounts_are_throttled_like_known_ones(gql: GQL) -> None:
    # given five failures for a known and for an unknown account
    await register(gql)
    for email in (EMAIL, "nobody@example.com"):
        for _ in range(5):
            assert await attempt(gql, email, "not the password") == INVALID
    # then the sixth attempts get the same refusal
    known = await gql.raw(LOGIN, {"email": EMAIL, "password": PASSWORD})
    unknown = await gql.raw(LOGIN, {"email": "nobody@example.com", "password": PASSWORD})
    assert assert_rate_limited(known) == assert_rate_limited(unknown)
    assert known.json() == unknown.json()
    assert await Session.all().count() == 0


async def test_a_successful_login_resets_the_account_failure_count(gql: GQL) -> None:
    # given four failures, then a successful sign-in
    await register(gql)
    for _ in range(4):
        assert await attempt(gql, EMAIL, "not the password") == INVALID
    await login(gql)
    # when four more failures follow (eight in the window in all)
    for _ in range(4):
        assert await attempt(gql, EMAIL, "not the password") == INVALID
    # then the right password still signs in
    await login(gql)
    assert await Session.all().count() == 2


async def test_many_failures_from_one_ip_block_it_without_storing_pii(gql: GQL) -> None:
    # given 50 failures from one IP, spread over 50 addresses
    await register(gql)
    emails = [f"visitor{i}@example.com" for i in range(50)]
    for email in emails:
        assert await attempt(gql, email, "not the password") == INVALID
    # then an account with no failures of its own is refused from that IP
    assert_rate_limited(await gql.raw(LOGIN, {"email": EMAIL, "password": PASSWORD}))
    assert await Session.all().count() == 0
    # and the failures are stored under keyed digests, never raw or plainly hashed
    rows = await LoginFailure.all().values()
    assert {row["scope"] for row in rows} == {"account", "ip"}
    assert len({row["key"] for row in rows if row["scope"] == "ip"}) == 1
    plain = {hashlib.sha256(v.encode()).hexdigest() for v in [*emails, EMAIL, CLIENT_IP]}
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", row["key"])
        assert row["key"] not in plain
        for value in map(str, row.values()):
            assert CLIENT_IP not in value
            assert "@example.com" not in value


async def test_login_rehashes_a_hash_made_with_weaker_parameters(
    gql: GQL, services: Services
) -> None:
    # given a customer whose stored hash uses weaker argon2 parameters
    await register(gql)
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    assert services.passwords.hasher.check_needs_rehash(weak)
    await Customer.filter(email=EMAIL).update(password_hash=weak)
    # when they sign in
    await login(gql)
    # then the stored hash was replaced with one at the current parameters
    rehashed = (await Customer.get(email=EMAIL)).password_hash
    assert rehashed != weak
    assert not services.passwords.hasher.check_needs_rehash(rehashed)
    # and the same password still signs in, without another rehash
    await login(gql)
    assert (await Customer.get(email=EMAIL)).password_hash == rehashed


@pytest.fixture
def two_servers(settings: Settings, tmp_path: Path) -> Iterator[list[str]]:
    """Two real server processes on free ports, sharing the test database."""
    with servers(settings.database_url, 2, tmp_path) as started:
        yield [server.url for server in started]


async def test_throttle_holds_across_server_processes(two_servers: list[str]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:

        async def post(url: str, query: str, variables: dict[str, Any]) -> httpx.Response:
            return await http.post(f"{url}/graphql", json={"query": query, "variables": variables})

        # given a customer registered through the first process
        response = await post(two_servers[0], REGISTER, {"input": registration()})
        assert response.json()["data"]["register"]["__typename"] == "RegistrationAccepted"
        # when five wrong passwords alternate between the two processes
        for i in range(5):
            wrong = await post(two_servers[i % 2], LOGIN, {"email": EMAIL, "password": "nope!"})
            assert wrong.status_code == 200
            assert wrong.json()["data"]["login"] == INVALID
        # then the sixth attempt is throttled on either process, even with the right password
        for url in two_servers:
            assert_rate_limited(await post(url, LOGIN, {"email": EMAIL, "password": PASSWORD}))
    assert await Session.all().count() == 0
