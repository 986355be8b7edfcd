"""Registration cannot starve sign-in of password hashing (api/security/hash_slots.py): new
hashes take all hash threads but one, which stays free for checking passwords."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import argon2
import pytest

from api.services import Services
from api.settings import Settings
from tests.conftest import GQL, LOGIN, PASSWORD, register


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Two hash threads, whatever the machine's cores. Twenty new hashes wait here on
    purpose: only the queue's count bounds it, not the expected wait (tests/test_hash_queue.py
    tests both bounds)."""
    return settings.model_copy(update={"hash_workers": 2, "hash_queue_seconds": 0})


class HeldHasher:
    """Stands in for the PasswordHasher (whose attributes are read-only slots): every new
    hash waits until `release` is set; checks go straight through."""

    def __init__(self, hasher: argon2.PasswordHasher) -> None:
        self._hasher = hasher
        self._loop = asyncio.get_running_loop()
        self.release = threading.Event()
        self.started = asyncio.Event()

    def hash(self, password: str) -> str:
        self._loop.call_soon_threadsafe(self.started.set)
        self.release.wait(timeout=30)
        return self._hasher.hash(password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hasher, name)


@pytest.fixture
async def held(services: Services, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[HeldHasher]:
    await services.passwords.warm_up()  # the dummy hash for unknown accounts is made already
    hasher = HeldHasher(services.passwords.hasher)
    monkeypatch.setattr(services.passwords, "hasher", hasher)
    yield hasher
    hasher.release.set()


async def test_a_password_check_is_not_queued_behind_new_hashes(
    services: Services, held: HeldHasher
) -> None:
    # given a stored hash, and twenty new hashes in flight that do not finish until released
    stored = held._hasher.hash(PASSWORD)
    hashing = [asyncio.create_task(services.passwords.hash(f"new {i}")) for i in range(20)]
    await asyncio.wait_for(held.started.wait(), timeout=10)
    # when a password is checked (with the right and with a wrong password)
    checks = [services.passwords.verify(stored, PASSWORD), services.passwords.verify(None, "x")]
    try:
        answers = await asyncio.wait_for(asyncio.gather(*checks), timeout=10)
        waiting = [not task.done() for task in hashing]
    finally:
        held.release.set()
        hashes = await asyncio.gather(*hashing)
    # then both are answered while every new hash still waits
    assert answers == [True, False]
    assert all(waiting)
    assert len(set(hashes)) == 20


async def test_sign_in_is_answered_while_registrations_wait_for_hashing(
    gql: GQL, held: HeldHasher
) -> None:
    # given a customer, and twenty registrations whose hashing does not finish until released
    held.release.set()
    await register(gql)
    held.release.clear()
    held.started.clear()
    emails = [f"new{i}@example.com" for i in range(20)]
    registering = [asyncio.create_task(register(gql, email=email)) for email in emails]
    await asyncio.wait_for(held.started.wait(), timeout=10)
    # when the customer signs in
    sign_in = gql(LOGIN, {"email": "jane.doe@example.com", "password": PASSWORD})
    try:
        body = await asyncio.wait_for(sign_in, timeout=10)
        waiting = [not task.done() for task in registering]
    finally:
        held.release.set()
        results = await asyncio.gather(*registering)
    # then they are signed in while every registration still waits
    assert body["data"]["login"]["__typename"] == "LoginSuccess"
    assert all(waiting)
    assert [r["__typename"] for r in results] == ["RegistrationAccepted"] * len(emails)
