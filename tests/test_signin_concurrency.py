"""A sign-in's password hashing holds no database transaction: while one sign-in is
hashing, other requests keep using the database (a flood of sign-ins must not stall reads;
see `make bench`). On SQLite an open transaction would hold the whole database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.services import Services
from models import AuditEvent
from tests.conftest import GQL, LOGIN, PASSWORD, login, register


async def test_other_requests_proceed_while_a_sign_in_hashes(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a signed-in customer, and a password check that waits until released
    await register(gql)
    token = await login(gql)
    hashing, release = asyncio.Event(), asyncio.Event()
    verify = services.passwords.verify

    async def slow_verify(stored: Any, password: str) -> bool:
        hashing.set()
        await release.wait()
        return await verify(stored, password)

    monkeypatch.setattr(services.passwords, "verify", slow_verify)
    # when a sign-in is in the middle of its password check
    signing_in = asyncio.create_task(
        gql(LOGIN, {"email": "jane.doe@example.com", "password": PASSWORD})
    )
    await asyncio.wait_for(hashing.wait(), timeout=5)
    # then another request reads the database and is answered meanwhile
    me = await asyncio.wait_for(gql("{ me { id email } }", token=token), timeout=5)
    assert me["data"]["me"]["email"] == "jane.doe@example.com"
    release.set()
    body = await signing_in
    assert body["data"]["login"]["__typename"] == "LoginSuccess"
    # and the sign-in was still logged
    assert await AuditEvent.filter(event="auth", operation="login", decision="allow").count() == 2
