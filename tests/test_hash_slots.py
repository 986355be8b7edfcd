"""Sign-in stays usable on a busy server (issue 15, point 6): at most one hash runs per
usable core, checks before new hashes (api/security/hash_slots.py); hash threads get a
bounded share of a saturated core, not next to none; and an admitted sign-in that finds no
hash thread in time is refused, having counted nothing (api/security/passwords.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import argon2
import pytest

from api.errors import HashingBusy
from api.security.hash_slots import Kind, Slots
from api.security.passwords import HASH_THREAD_NICE, PasswordService
from api.services import Services
from api.settings import Settings
from models import AuditEvent, LoginFailure, Session
from tests.conftest import GQL, LOGIN, PASSWORD, register
from tests.test_hash_queue import floor_service
from tests.test_login import assert_rate_limited


async def started(slots: Slots, kind: Kind, order: list[str], name: str) -> None:
    await slots.take(kind)
    order.append(name)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_checks_waiting_go_before_new_hashes_waiting() -> None:
    # given one slot, taken
    slots = Slots(1)
    await slots.take("new")
    order: list[str] = []
    # when new hashes and then checks wait for it
    waiting = [
        asyncio.create_task(started(slots, kind, order, name))
        for kind, name in [("new", "new 1"), ("new", "new 2"), ("check", "check 1")]
    ]
    await settle()
    assert order == []
    # then each slot given back goes to the check first, then to new hashes in turn
    for kind in ("new", "check", "new"):
        slots.give(kind)
        await settle()
    await asyncio.gather(*waiting)
    assert order == ["check 1", "new 1", "new 2"]


async def test_new_hashes_never_take_the_last_slot() -> None:
    # given two slots
    slots = Slots(2)
    order: list[str] = []
    # when three new hashes and then a check ask for one
    news = [asyncio.create_task(started(slots, "new", order, f"new {i}")) for i in range(3)]
    await settle()
    check = asyncio.create_task(started(slots, "check", order, "check"))
    await settle()
    # then one new hash runs, the check has the other slot, and two new hashes wait
    assert order == ["new 0", "check"]
    assert [task.done() for task in news] == [True, False, False]
    # and with the check's slot free again, still only one new hash runs at a time
    slots.give("check")
    await settle()
    assert [task.done() for task in news] == [True, False, False]
    for _ in range(2):
        slots.give("new")
        await settle()
    await asyncio.wait_for(asyncio.gather(*news, check), timeout=1)
    assert order == ["new 0", "check", "new 1", "new 2"]


async def test_a_waiter_cancelled_leaves_no_slot_taken() -> None:
    # given one slot, taken, and a check and a new hash waiting for it
    slots = Slots(1)
    await slots.take("check")
    order: list[str] = []
    check = asyncio.create_task(started(slots, "check", order, "check"))
    new = asyncio.create_task(started(slots, "new", order, "new"))
    await settle()
    # when the waiting check is cancelled (its client went away), and the slot given back
    check.cancel()
    await settle()
    slots.give("check")
    await settle()
    # then the new hash has the slot, and once it gives it back the slot is free
    assert new.done()
    assert order == ["new"]
    slots.give("new")
    await asyncio.wait_for(slots.take("check"), timeout=1)


async def test_a_waiter_cancelled_just_after_its_slot_came_gives_it_back() -> None:
    # given one slot, taken, and a check waiting for it
    slots = Slots(1)
    await slots.take("check")
    waiter = asyncio.create_task(slots.take("check"))
    await settle()
    # when the slot is given to it and the waiter is cancelled before it runs again
    slots.give("check")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # then the slot is free again
    await asyncio.wait_for(slots.take("check"), timeout=1)


def test_one_hash_thread_per_core_this_process_may_use() -> None:
    # given a process allowed on one core only (a container's cpuset, taskset)
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
        "from api.security.passwords import PasswordService;"
        "s = PasswordService(time_cost=2, memory_kib=19456, parallelism=1, workers=0);"
        "print(s._slots.count, s._pool._max_workers)"
    )
    # when it builds the password service with the default number of workers
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # then it runs one hash at a time, not one per core of the machine
    assert out.stdout.split() == ["1", "1"]


async def test_hash_threads_run_at_a_moderate_priority() -> None:
    # given the password service
    service = PasswordService(time_cost=2, memory_kib=19 * 1024, parallelism=1, workers=1)
    seen: list[int] = []

    def niceness() -> None:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    # when a hash thread runs
    try:
        await service._run("check", niceness)
    finally:
        service.close()
    # then it runs at HASH_THREAD_NICE: below the event loop, so reads keep most of a
    # saturated core, but not at the lowest priority, where a sign-in took many seconds
    assert HASH_THREAD_NICE == 5
    assert seen == [max(HASH_THREAD_NICE, os.getpriority(os.PRIO_PROCESS, 0))]


async def test_a_hash_running_long_makes_the_estimate_refuse_at_once() -> None:
    # given one worker, hashes that recently took 0.1 s, at most 1 s to be done, and a
    # hash that has now run for 1.2 s (the CPU just got busy)
    service = floor_service(workers=1, max_wait_seconds=1.0, recent_hash_seconds=0.1)
    release = threading.Event()

    async def running() -> None:
        async with service.check_place():
            await service._run("check", lambda: release.wait(5))

    task = asyncio.create_task(running())
    await asyncio.sleep(1.2)
    try:
        # when another sign-in comes
        start = time.monotonic()
        with pytest.raises(HashingBusy):
            async with service.check_place():
                pass
        # then it is refused at once: the running hash says hashes now take 1.2 s or more
        assert time.monotonic() - start < 0.3
    finally:
        release.set()
        await task
        service.close()


class HeldHasher:
    """Stands in for the PasswordHasher: checks wait until `release` is set; `started` is
    set when one does."""

    def __init__(self, hasher: argon2.PasswordHasher) -> None:
        self._hasher = hasher
        self.release = threading.Event()
        self.started = threading.Event()

    def verify(self, stored: str, password: str) -> bool:
        self.started.set()
        self.release.wait(timeout=30)
        return self._hasher.verify(stored, password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hasher, name)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """One hash thread, room to wait, and at most 0.5 s of waiting for it."""
    return settings.model_copy(
        update={"hash_workers": 1, "hash_queue_max": 10, "hash_queue_seconds": 0.5}
    )


@pytest.fixture
async def held(services: Services, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HeldHasher]:
    await services.passwords.warm_up()
    hasher = HeldHasher(services.passwords.hasher)
    monkeypatch.setattr(services.passwords, "hasher", hasher)
    yield hasher
    hasher.release.set()


async def test_a_sign_in_without_a_hash_thread_in_time_is_refused_and_counts_nothing(
    gql: GQL, services: Services, held: HeldHasher
) -> None:
    # given a customer, and a sign-in whose password check holds the only hash thread
    held.release.set()
    await register(gql)
    held.release.clear()
    held.started.clear()
    await AuditEvent.all().delete()
    first = asyncio.create_task(gql(LOGIN, {"email": "jane.doe@example.com", "password": "x1"}))
    assert await asyncio.to_thread(held.started.wait, 10)
    failures = await LoginFailure.all().count()
    # when the customer signs in with the right password
    start = time.monotonic()
    response = await gql.raw(LOGIN, {"email": "jane.doe@example.com", "password": PASSWORD})
    waited = time.monotonic() - start
    # then, the thread still busy after 0.5 s, it is refused with RATE_LIMITED and
    # Retry-After, having counted no attempt and opened no session nor logged anything
    assert 0.4 < waited < 2
    assert assert_rate_limited(response) >= 1
    assert await LoginFailure.all().count() == failures
    assert await Session.all().count() == 0
    assert await AuditEvent.filter(event="auth").count() == 0
    # and once the thread is free, signing in works
    held.release.set()
    await first
    body = await gql(LOGIN, {"email": "jane.doe@example.com", "password": PASSWORD})
    assert body["data"]["login"]["__typename"] == "LoginSuccess"


async def test_a_throttled_sign_in_is_paced_without_holding_a_place(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a customer whose account allows one failure, spent
    await register(gql)
    monkeypatch.setitem(services.throttle._limits, "account", 1)
    wrong = {"email": "jane.doe@example.com", "password": "wrong password"}
    assert (await gql(LOGIN, wrong))["data"]["login"]["__typename"] == "InvalidCredentials"
    # when a client asks again, and again at once when refused (ignoring Retry-After)
    start = time.monotonic()
    attempt = asyncio.create_task(gql.raw(LOGIN, wrong))
    await asyncio.sleep(0.2)
    admitted_meanwhile = services.passwords.admitted("check")
    response = await attempt
    # then it is refused with RATE_LIMITED, after the refusal delay (so a client that does
    # not wait costs two requests a second per connection, not hundreds), and while it
    # waited it held no place a sign-in could have had
    assert assert_rate_limited(response) >= 1
    assert time.monotonic() - start >= 0.45
    assert admitted_meanwhile == 0
