"""Throttles hold under concurrency: an attempt is counted before its password is checked,
atomically, so a burst of simultaneous guesses gets no more checks than the limit allows
(api/security/throttle.py), per account and per IP, for every password-checking operation."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from api.services import Services
from api.settings import Settings
from api.staff.service import create_employee
from models import Customer, LoginFailure, Session
from tests.conftest import GQL, LOGIN, PASSWORD, STAFF_LOGIN, login, register

BURST = 30
ACCOUNT_LIMIT = 5  # the default `login_max_failures_account`
IP_LIMIT = 8
EMAIL = "jane.doe@example.com"
CHANGE_PASSWORD = """
mutation Change($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) {
    __typename
    ... on InvalidCredentials { code }
  }
}
"""


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    """A per-IP limit low enough to reach quickly, above the per-account one."""
    return settings.model_copy(update={"login_max_failures_ip": IP_LIMIT})


class CheckCounter:
    """Counts password checks (calls of `PasswordService.verify`), calling through."""

    def __init__(self, services: Services) -> None:
        self.calls = 0
        self._verify = services.passwords.verify

    async def __call__(self, stored_hash: str | None, password: str) -> bool:
        self.calls += 1
        return await self._verify(stored_hash, password)


@pytest.fixture
def checks(services: Services, monkeypatch: pytest.MonkeyPatch) -> CheckCounter:
    counter = CheckCounter(services)
    monkeypatch.setattr(services.passwords, "verify", counter)
    return counter


async def burst(
    gql: GQL, query: str, variables: list[dict[str, Any]], token: str | None = None
) -> list[httpx.Response]:
    """All requests at once, over real HTTP."""
    return await asyncio.gather(*(gql.raw(query, v, token) for v in variables))


def outcomes(responses: list[httpx.Response], field: str) -> Counter[str]:
    """How many answers were INVALID_CREDENTIALS and how many RATE_LIMITED (with 429 and a
    Retry-After header); anything else fails the test."""
    seen: Counter[str] = Counter()
    for response in responses:
        body = response.json()
        if response.status_code == 429:
            [error] = body["errors"]
            assert error["extensions"]["code"] == "RATE_LIMITED"
            assert response.headers["retry-after"] == str(error["extensions"]["retryAfter"])
            seen["RATE_LIMITED"] += 1
        else:
            assert body["data"][field]["code"] == "INVALID_CREDENTIALS", body
            seen["INVALID_CREDENTIALS"] += 1
    return seen


async def test_a_burst_of_wrong_passwords_for_one_account_gets_only_the_limit_checked(
    gql: GQL, checks: CheckCounter
) -> None:
    # given a customer
    await register(gql)
    checks.calls = 0
    # when 30 wrong passwords for the account arrive at once
    wrong = [{"email": EMAIL, "password": f"guess {i}"} for i in range(BURST)]
    responses = await burst(gql, LOGIN, wrong)
    # then only the limit's worth are checked and answered; the rest are throttled
    assert checks.calls == ACCOUNT_LIMIT
    assert outcomes(responses, "login") == {
        "INVALID_CREDENTIALS": ACCOUNT_LIMIT,
        "RATE_LIMITED": BURST - ACCOUNT_LIMIT,
    }
    # and a throttled attempt left no failure behind
    assert await LoginFailure.filter(scope="account").count() == ACCOUNT_LIMIT
    assert await Session.all().count() == 0


async def test_a_burst_from_one_ip_over_many_accounts_gets_only_the_ip_limit_checked(
    gql: GQL, checks: CheckCounter
) -> None:
    # when 30 sign-ins for 30 different addresses arrive at once from one IP
    guesses = [{"email": f"visitor{i}@example.com", "password": PASSWORD} for i in range(BURST)]
    responses = await burst(gql, LOGIN, guesses)
    # then only the per-IP limit's worth are checked
    assert checks.calls == IP_LIMIT
    assert outcomes(responses, "login") == {
        "INVALID_CREDENTIALS": IP_LIMIT,
        "RATE_LIMITED": BURST - IP_LIMIT,
    }
    assert await LoginFailure.filter(scope="ip").count() == IP_LIMIT


async def test_a_burst_of_staff_sign_ins_gets_only_the_limit_checked(
    gql: GQL, services: Services, checks: CheckCounter
) -> None:
    # given an employee
    email = "ann@staff.example.com"
    await create_employee(services=services, email=email, name="Ann", roles=[], password=PASSWORD)
    checks.calls = 0
    # when 30 wrong passwords for them arrive at once
    wrong = [{"email": email, "password": f"guess {i}"} for i in range(BURST)]
    responses = await burst(gql, STAFF_LOGIN, wrong)
    # then only the limit's worth are checked
    assert checks.calls == ACCOUNT_LIMIT
    assert outcomes(responses, "staffLogin") == {
        "INVALID_CREDENTIALS": ACCOUNT_LIMIT,
        "RATE_LIMITED": BURST - ACCOUNT_LIMIT,
    }
    assert await Session.all().count() == 0


async def test_a_burst_of_wrong_current_passwords_gets_only_the_limit_checked(
    gql: GQL, checks: CheckCounter
) -> None:
    # given a signed-in customer
    await register(gql)
    token = await login(gql)
    before = (await Customer.get()).password_hash
    checks.calls = 0
    # when 30 password changes with a wrong current password arrive at once
    wrong = [{"current": f"guess {i}", "new": f"a brand new passphrase {i}"} for i in range(BURST)]
    responses = await burst(gql, CHANGE_PASSWORD, wrong, token)
    # then only the limit's worth are checked; the rest are throttled
    assert checks.calls == ACCOUNT_LIMIT
    assert outcomes(responses, "changePassword") == {
        "INVALID_CREDENTIALS": ACCOUNT_LIMIT,
        "RATE_LIMITED": BURST - ACCOUNT_LIMIT,
    }
    # and the password and the session are as they were
    assert (await Customer.get()).password_hash == before
    assert await Session.filter(revoked_at=None).count() == 1
