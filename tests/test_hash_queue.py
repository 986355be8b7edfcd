"""The password-hashing queue is bounded (issue 15, point 6; api/security/passwords.py): past
it, sign-in, registration and password changes answer RATE_LIMITED with Retry-After promptly,
having done nothing (no attempt counted, no session, no account, no password changed), and
work again once the queue drains. Small settings: two hash workers, one place to wait."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import argon2
import httpx
import pytest

from api.errors import HashingBusy
from api.security.passwords import Kind, PasswordService
from api.services import Services
from api.settings import Settings
from models import AuditEvent, Customer, LoginFailure, Session
from tests.conftest import (
    GQL,
    LOGIN,
    PASSWORD,
    REGISTER,
    STAFF_LOGIN,
    login,
    register,
    registration,
)
from tests.test_login import assert_rate_limited

EMAIL = "jane.doe@example.com"
CHECK_PLACES = 3  # two workers, and one place to wait
NEW_HASH_PLACES = 2  # one worker (the other is kept for sign-in), and one place to wait
CHANGE_PASSWORD = """
mutation Change($current: String!, $new: String!) {
  changePassword(currentPassword: $current, newPassword: $new) {
    __typename
    ... on InvalidCredentials { code }
  }
}
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Only the count bounds the queue here (the expected wait is tested on its own below)."""
    return settings.model_copy(
        update={"hash_workers": 2, "hash_queue_max": 1, "hash_queue_seconds": 0}
    )


class HeldHasher:
    """Stands in for the PasswordHasher: checks and new hashes wait, once `hold` is set,
    until `release` is set; `started` counts those waiting."""

    def __init__(self, hasher: argon2.PasswordHasher) -> None:
        self._hasher = hasher
        self.holding = False
        self.release = threading.Event()
        self.started = 0
        self._lock = threading.Lock()

    def _wait(self) -> None:
        if self.holding:
            with self._lock:
                self.started += 1
            self.release.wait(timeout=30)

    def verify(self, stored: str, password: str) -> bool:
        self._wait()
        return self._hasher.verify(stored, password)

    def hash(self, password: str) -> str:
        self._wait()
        return self._hasher.hash(password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hasher, name)

    async def until_started(self, count: int) -> None:
        deadline = time.monotonic() + 10
        while self.started < count:
            assert time.monotonic() < deadline, f"{self.started} of {count} started"
            await asyncio.sleep(0.01)

    def hold(self) -> None:
        self.started = 0
        self.release.clear()
        self.holding = True

    def drain(self) -> None:
        self.holding = False
        self.release.set()


async def until_admitted(services: Services, kind: Kind, count: int) -> None:
    """Until `count` operations have their place in the queue (running or waiting)."""
    deadline = time.monotonic() + 10
    while services.passwords.admitted(kind) < count:
        assert time.monotonic() < deadline, f"{services.passwords.admitted(kind)} of {count}"
        await asyncio.sleep(0.01)


@pytest.fixture
async def held(services: Services, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HeldHasher]:
    await services.passwords.warm_up()
    hasher = HeldHasher(services.passwords.hasher)
    monkeypatch.setattr(services.passwords, "hasher", hasher)
    yield hasher
    hasher.drain()


async def refused_promptly(request: Any) -> int:
    """The request is answered 429 RATE_LIMITED while the held hashes still wait (up to 30 s,
    released only when the test ends): a request that queued behind them could not be
    answered before. Within 10 s, so that a CI machine's load cannot fail it (a run took
    2.1 s); returns retryAfter."""
    start = time.monotonic()
    response: httpx.Response = await asyncio.wait_for(request, timeout=20)
    assert time.monotonic() - start < 10
    return assert_rate_limited(response)


@pytest.mark.parametrize("query", [LOGIN, STAFF_LOGIN], ids=["login", "staffLogin"])
async def test_a_sign_in_past_a_full_queue_is_refused_at_once_and_counts_for_nothing(
    gql: GQL, services: Services, held: HeldHasher, query: str
) -> None:
    # given a customer, and as many wrong-password sign-ins as the queue holds, in hashing
    await register(gql)
    await AuditEvent.all().delete()
    held.hold()
    waiting = [
        asyncio.create_task(gql(query, {"email": EMAIL, "password": f"guess {i}"}))
        for i in range(CHECK_PLACES)
    ]
    await until_admitted(services, "check", CHECK_PLACES)
    await held.until_started(2)  # two run; one waits for a worker
    # when more sign-ins arrive, wrong passwords and the right one (more than the account's
    # failure limit: were they counted, the account would be throttled)
    attempts = [f"wrong {i}" for i in range(services.settings.login_max_failures_account)]
    refusals = [
        await refused_promptly(gql.raw(query, {"email": EMAIL, "password": password}))
        for password in [*attempts, PASSWORD]
    ]
    # then each is refused promptly with RATE_LIMITED and Retry-After, and left nothing:
    # no failure counted, no session, no audit event, no password check
    assert all(1 <= seconds <= 60 for seconds in refusals)
    assert await LoginFailure.filter(scope="account").count() == CHECK_PLACES
    assert await Session.all().count() == 0
    assert await AuditEvent.filter(event="auth").count() == 0
    assert held.started == 2
    # and once the queue drains, the waiting ones are answered and signing in works
    held.drain()
    answered = await asyncio.gather(*waiting)
    field = "login" if query is LOGIN else "staffLogin"
    assert [body["data"][field]["__typename"] for body in answered] == [
        "InvalidCredentials"
    ] * CHECK_PLACES
    if query is LOGIN:
        assert await login(gql)
        assert await Session.all().count() == 1


async def test_a_registration_past_a_full_queue_is_refused_and_creates_nothing(
    gql: GQL, services: Services, held: HeldHasher
) -> None:
    # given as many registrations as the new hashes' queue holds, in hashing
    held.hold()
    waiting = [
        asyncio.create_task(register(gql, email=f"new{i}@example.com"))
        for i in range(NEW_HASH_PLACES)
    ]
    await until_admitted(services, "new", NEW_HASH_PLACES)
    await held.until_started(1)  # one worker for new hashes; the other waits for it
    # when one more registers
    refused = gql.raw(REGISTER, {"input": registration()})
    await refused_promptly(refused)
    # then it is refused promptly, and no account exists for it
    assert not await Customer.filter(email=EMAIL).exists()
    # and a sign-in is still answered: new hashes never fill the sign-in's queue
    held.holding = False  # checks go straight through; held new hashes stay held
    body = await asyncio.wait_for(gql(LOGIN, {"email": EMAIL, "password": PASSWORD}), 10)
    assert body["data"]["login"]["__typename"] == "InvalidCredentials"
    # and once the queue drains, registering works
    held.drain()
    results = await asyncio.gather(*waiting)
    assert [r["__typename"] for r in results] == ["RegistrationAccepted"] * NEW_HASH_PLACES
    assert (await register(gql))["__typename"] == "RegistrationAccepted"
    assert await Customer.filter(email=EMAIL).exists()


async def test_a_password_change_past_a_full_queue_is_refused_and_changes_nothing(
    gql: GQL, services: Services, held: HeldHasher
) -> None:
    # given a signed-in customer, and as many registrations as the new hashes' queue holds
    await register(gql)
    token = await login(gql)
    before = (await Customer.get(email=EMAIL)).password_hash
    held.hold()
    waiting = [
        asyncio.create_task(register(gql, email=f"new{i}@example.com"))
        for i in range(NEW_HASH_PLACES)
    ]
    await until_admitted(services, "new", NEW_HASH_PLACES)
    await held.until_started(1)
    # when the customer changes their password (the current one is checked: the sign-in
    # worker is free)
    held.holding = False  # checks go straight through; held new hashes stay held
    change = gql.raw(CHANGE_PASSWORD, {"current": PASSWORD, "new": "a brand new passphrase"}, token)
    await refused_promptly(change)
    # then it is refused, and the password and the sessions are as they were
    assert (await Customer.get(email=EMAIL)).password_hash == before
    assert await Session.filter(revoked_at=None).count() == 1
    held.drain()
    await asyncio.gather(*waiting)
    # and once the queue drains, the change goes through
    body = await gql(CHANGE_PASSWORD, {"current": PASSWORD, "new": "a brand new passphrase"}, token)
    assert body["data"]["changePassword"]["__typename"] == "PasswordChanged"


def floor_service(
    *, workers: int, max_wait_seconds: float, recent_hash_seconds: float, queue_max: int = 0
) -> PasswordService:
    """A password service at argon2's floor whose refusals come at once, and whose recent
    hashes took `recent_hash_seconds`."""
    service = PasswordService(
        time_cost=2,
        memory_kib=19 * 1024,
        parallelism=1,
        workers=workers,
        queue_max=queue_max,
        max_wait_seconds=max_wait_seconds,
        refusal_delay_seconds=0,
    )
    service._observe(recent_hash_seconds)
    return service


async def test_the_expected_wait_bounds_the_queue_too() -> None:
    # given two workers, room for many to wait, and hashes that recently took 1 s each
    service = floor_service(workers=2, queue_max=100, max_wait_seconds=2.5, recent_hash_seconds=1.0)
    leave = asyncio.Event()

    async def sign_in() -> None:
        async with service.check_place():
            await leave.wait()

    try:
        # when sign-ins take their places: two have a hash thread, three wait and would be
        # done in 1.5 s, 2 s and 2.5 s (half a second a place over two workers, then their
        # own hash)
        holding = [asyncio.create_task(sign_in()) for _ in range(5)]
        deadline = time.monotonic() + 5
        while service.admitted("check") < 5:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        # then the next one, which would be done in 3 s, is refused at once with the time
        # the admitted ones need (5 x 1 s over two workers)
        start = time.monotonic()
        with pytest.raises(HashingBusy) as refused:
            async with service.check_place():
                pass
        assert time.monotonic() - start < 0.5
        assert refused.value.retry_after == 3
        assert refused.value.extensions == {"code": "RATE_LIMITED", "retryAfter": 3}
        # and once they are done, there is room again
        leave.set()
        await asyncio.gather(*holding)
        async with service.check_place():
            assert service.admitted("check") == 1
    finally:
        service.close()
