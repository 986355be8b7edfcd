"""A role change on one process reaches every other process sharing the database within
2 s: PostgreSQL LISTEN/NOTIFY between two real servers, and the version poll without it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise import connections

import authz.watcher
from api.services import Services
from api.staff.roles import grant_role, revoke_role
from api.staff.service import create_employee
from authz.enforcer import Authorizer
from authz.watcher import run_policy_watcher
from models import Employee
from tests.conftest import PASSWORD, STAFF_LOGIN, TEST_SECRET

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "{ supportQueue { id } }"
REVOKE = 'mutation($e: ID!) { revokeRole(employeeId: $e, role: "customer_care") { __typename } }'
GRANT = 'mutation($e: ID!) { grantRole(employeeId: $e, role: "customer_care") { __typename } }'
WITHIN = 2.0


def _postgres() -> bool:
    return connections.get("default").capabilities.dialect == "postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _until(check: Callable[[], Awaitable[bool]]) -> float:
    """Seconds until `check` holds; fails after 10 s."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < 10, "condition never held"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@contextlib.contextmanager
def _servers(database_url: str, count: int) -> Iterator[list[str]]:
    """`count` real servers on the database; the poll is slowed to 60 s, so only NOTIFY
    can carry a change within 2 s. Always terminated."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        CUSTOS_ENV="development",
        CUSTOS_SECRET_KEY=TEST_SECRET,
        CUSTOS_MAIL_POLL_SECONDS="0",
        CUSTOS_POLICY_POLL_SECONDS="60",
    )
    ports = [_free_port() for _ in range(count)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            cmd = [
                sys.executable,
                "-m",
                "api",
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL))
        for port, proc in zip(ports, procs, strict=True):
            _wait_up(port, proc)
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_up(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError("the server did not start")


class Server:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def gql(self, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {token}"},
        )
        body: dict[str, Any] = response.json()
        return body

    async def sign_in(self, email: str) -> str:
        variables = {"email": email, "password": PASSWORD}
        response = await self.client.post(
            "/graphql", json={"query": STAFF_LOGIN, "variables": variables}
        )
        token: str = response.json()["data"]["staffLogin"]["token"]
        return token

    async def queue_allowed(self, token: str) -> bool:
        body = await self.gql(QUEUE, {}, token)
        if body.get("data") == {"supportQueue": []}:
            return True
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        return False


@pytest.fixture
async def two_servers(database_url: str) -> AsyncIterator[tuple[Server, Server]]:
    if not _postgres():
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; on SQLite processes follow the version poll")
    with _servers(database_url, 2) as (a, b):
        async with httpx.AsyncClient(base_url=a) as ca, httpx.AsyncClient(base_url=b) as cb:
            yield Server(ca), Server(cb)


async def test_a_revocation_on_one_server_reaches_the_other_within_2_seconds(
    two_servers: tuple[Server, Server], services: Services
) -> None:
    a, b = two_servers
    # given an admin and a care agent, created while both servers run
    await create_employee(
        services=services,
        email="root@staff.example.com",
        name="R",
        roles=["admin"],
        password=PASSWORD,
    )
    agent = await create_employee(
        services=services,
        email="cara@staff.example.com",
        name="C",
        roles=["customer_care"],
        password=PASSWORD,
    )
    admin = await a.sign_in("root@staff.example.com")
    care = await b.sign_in("cara@staff.example.com")
    assert await _until(lambda: b.queue_allowed(care)) < WITHIN  # the creation reached B too
    # when the admin revokes customer care on server A
    body = await a.gql(REVOKE, {"e": str(agent.id)}, admin)
    assert body["data"]["revokeRole"]["__typename"] == "RoleChanged"
    # then A refuses the agent at once, and B within 2 s
    assert not await a.queue_allowed(care)
    assert await _until(lambda: _not(b.queue_allowed(care))) < WITHIN
    # when the admin grants it again, B allows the agent within 2 s
    body = await a.gql(GRANT, {"e": str(agent.id)}, admin)
    assert body["data"]["grantRole"]["__typename"] == "RoleChanged"
    assert await a.queue_allowed(care)
    assert await _until(lambda: b.queue_allowed(care)) < WITHIN


async def _not(check: Awaitable[bool]) -> bool:
    return not await check


async def _watch(other: Authorizer, database_url: str, poll_seconds: float) -> asyncio.Task[None]:
    return asyncio.create_task(
        run_policy_watcher(authorizer=other, database_url=database_url, poll_seconds=poll_seconds)
    )


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _has_care(other: Authorizer, employee_id: object) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return "customer_care" in other.roles_of(employee_id)

    return check


async def _admin_and_agent(services: Services) -> tuple[Employee, Employee]:
    """An admin, and a legal employee whose roles the admin changes."""
    admin = await create_employee(
        services=services,
        email="root@staff.example.com",
        name="R",
        roles=["admin"],
        password=PASSWORD,
    )
    agent = await create_employee(
        services=services,
        email="ann@staff.example.com",
        name="A",
        roles=["legal"],
        password=PASSWORD,
    )
    return admin, agent


async def test_without_notify_the_version_poll_carries_a_change(
    services: Services, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given another process's authorizer whose watcher cannot LISTEN (as on SQLite)
    monkeypatch.setattr(authz.watcher, "listen_params", lambda _url: None)
    admin, agent = await _admin_and_agent(services)
    other = await Authorizer.load()
    task = await _watch(other, database_url, poll_seconds=0.2)
    try:
        # when a role is granted here, the other authorizer has it within 2 s
        await grant_role(
            employee_id=agent.id,
            role="customer_care",
            granted_by=admin.id,
            now=services.clock.now(),
        )
        assert await _until(_has_care(other, agent.id)) < WITHIN
        # and a revocation too
        await revoke_role(employee_id=agent.id, role="customer_care", revoked_by=admin.id)
        assert await _until(lambda: _not(_has_care(other, agent.id)())) < WITHIN
    finally:
        await _stop(task)


async def test_a_lost_listen_connection_is_reestablished(
    services: Services, database_url: str
) -> None:
    if not _postgres():
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    admin, agent = await _admin_and_agent(services)
    other = await Authorizer.load()
    task = await _watch(other, database_url, poll_seconds=60)  # only NOTIFY can be in time
    try:
        first = await _until_listening(set())
        # when the database drops the watcher's connection, the watcher connects again
        conn = connections.get("default")
        await conn.execute_query("SELECT pg_terminate_backend($1)", [first.pop()])
        await _until_listening(first)
        # and a change still arrives by NOTIFY within 2 s
        await grant_role(
            employee_id=agent.id,
            role="customer_care",
            granted_by=admin.id,
            now=services.clock.now(),
        )
        assert await _until(_has_care(other, agent.id)) < WITHIN
    finally:
        await _stop(task)


async def _until_listening(old: set[int]) -> set[int]:
    """The pids of LISTEN connections, once there is one not in `old`."""
    pids: set[int] = set()

    async def check() -> bool:
        rows = await connections.get("default").execute_query_dict(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%'"
        )
        pids.clear()
        pids.update(int(r["pid"]) for r in rows)
        return bool(pids - old)

    await _until(check)
    return pids - old


async def _rows(query: Awaitable[list[dict[str, Any]]]) -> bool:
    return bool(await query)
