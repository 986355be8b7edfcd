"""Database faults, for real (issue 15, points 4 and 5): two server processes on one
SQLite file, every CLI command on a database it cannot open, a database that cannot be
written (readiness and typed 503s), and a PostgreSQL restart under requests."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tortoise import connections

from tests.cli_helpers import REPO
from tests.conftest import REGISTER, registration
from tests.pgcluster import find_bindir
from tests.real_servers import Server, cluster, migrate, server_env, servers

SET_CONSENT = """
mutation($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) { __typename }
}
"""
ME = "{ me { id consents { purpose granted } } }"
COMMANDS = [
    ["migrate"],
    ["serve", "--port", "1"],
    ["mail", "send-pending"],
    ["audit", "verify"],
    ["policy", "test"],
    ["rights", "overdue"],
    ["retention", "run", "--dry-run"],
]


def _post(client: httpx.Client, query: str, variables: dict[str, Any], token: str = "") -> Any:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


def _outcome(operation: str, response: httpx.Response) -> tuple[str, str]:
    """(operation, "ok") or (operation, what went wrong: the status and error codes)."""
    body = response.json()
    if response.status_code == 200 and "errors" not in body:
        return operation, "ok"
    codes = [e.get("extensions", {}).get("code") for e in body.get("errors") or []]
    return operation, f"{response.status_code} {codes}"


def _customer_session(server: Server, token: str) -> list[tuple[str, str]]:
    """A signed-in customer changes two consents four times, reading back after each
    round: every response's outcome."""
    answers: list[tuple[str, str]] = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for round_ in range(4):
            for purpose in ("analytics", "marketing.email"):
                variables = {"purpose": purpose, "granted": round_ % 2 == 0}
                answers.append(_outcome("setConsent", _post(client, SET_CONSENT, variables, token)))
            answers.append(_outcome("me", _post(client, ME, {}, token)))
    return answers


# Customers and their sessions written straight to the database: signing in hashes a
# password, whose bounded queue (point 6) may answer RATE_LIMITED on a busy machine,
# which is not what this test is about.
SEED = """
import asyncio, json, sys
from datetime import UTC, datetime
from api.db import close_db, init_db
from api.services import build_services
from api.settings import get_settings
from models import Customer

async def main(url, count):
    await init_db(url)
    services = build_services(get_settings())
    now = datetime.now(UTC)
    tokens = []
    for n in range(count):
        customer = await Customer.create(
            email=f"two.processes.{n}@example.com", password_hash="x",
            phone=f"+4420794610{n:02d}", address_line1=f"{n} Baker Street",
            address_city="London", address_postal_code="NW1 6XE", address_country="GB",
            email_verified_at=now, created_at=now, updated_at=now,
        )
        tokens.append((await services.sessions.issue(customer_id=customer.id)).token)
    await close_db()
    print(json.dumps(tokens))

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _seed_sessions(database_url: str, count: int) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", SEED, database_url, str(count)],
        cwd=REPO,
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    tokens: list[str] = json.loads(done.stdout)
    return tokens


def _sqlite_only() -> None:
    if connections.get("default").capabilities.dialect != "sqlite":
        pytest.skip("SQLite with several processes")


def test_two_processes_on_one_sqlite_file_answer_every_request(tmp_path: Path) -> None:
    _sqlite_only()
    url = f"sqlite://{tmp_path / 'shared.sqlite3'}"
    migrate(url)
    customers = 24
    tokens = _seed_sessions(url, customers)
    with servers(url, 2, tmp_path) as (one, two):
        with concurrent.futures.ThreadPoolExecutor(max_workers=12) as pool:
            futures = [
                pool.submit(_customer_session, one if n % 2 else two, token)
                for n, token in enumerate(tokens)
            ]
            answers = [a for f in futures for a in f.result()]
        logs = one.log.read_text() + two.log.read_text()
    failed = [a for a in answers if a[1] != "ok"]
    print(f"two SQLite processes: {len(answers)} requests, {len(failed)} failed")
    assert len(answers) == customers * 12
    assert failed == []
    assert "database is locked" not in logs
    assert "Traceback" not in logs


def _run_cli(args: list[str], database_url: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=REPO,
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stderr, time.monotonic() - started


@contextlib.contextmanager
def _read_only_directory(tmp_path: Path) -> Iterator[Path]:
    """A directory no one may write: its mode for a user, a read-only file system for
    root (whom modes do not stop); skipped where root may not mount one."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    if os.geteuid() != 0:
        directory.chmod(0o555)
        yield directory
        directory.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(directory)]
    if subprocess.run(mount, capture_output=True, check=False).returncode != 0:
        pytest.skip("cannot mount a read-only file system here")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], capture_output=True, check=False)


@pytest.mark.parametrize("where", ["missing directory", "read-only directory"])
@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a[:2]))
def test_every_command_fails_clearly_on_an_unopenable_database(
    tmp_path: Path, where: str, args: list[str]
) -> None:
    with contextlib.ExitStack() as stack:
        if where == "missing directory":
            directory = tmp_path / "no" / "such" / "dir"
        else:
            directory = stack.enter_context(_read_only_directory(tmp_path))
        code, stderr, seconds = _run_cli(args, f"sqlite://{directory / 'custos.sqlite3'}")
    print(f"{' '.join(args)} ({where}): exit {code} after {seconds:.2f} s")
    lines = stderr.strip().splitlines()
    assert seconds < 10
    assert "Traceback" not in stderr
    if args[0] == "migrate" and where == "missing directory":
        assert code == 0, stderr  # migrate makes the directory (issue 17)
        return
    assert code != 0
    assert len(lines) == 1, stderr
    if args[0] in {"migrate", "serve"}:  # the commands that may create the file
        assert lines[0].startswith("custos: database unavailable: cannot open"), lines[0]
    else:  # the others do not try: there is no file (issue 17)
        assert lines[0].startswith("custos: no database at "), lines[0]


def test_readiness_and_requests_when_sqlite_cannot_be_written(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock past the busy timeout: not ready, and a
    write is answered a typed 503 with Retry-After; ready again once it lets go."""
    _sqlite_only()
    file = tmp_path / "locked.sqlite3"
    url = f"sqlite://{file}"
    migrate(url)
    with servers(f"{url}?busy_timeout=200", 1, tmp_path) as (server,):
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/readyz").status_code == 200
            holder = sqlite3.connect(file, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            try:
                ready = client.get("/readyz")
                variables = {"input": registration(email="locked.out@example.com")}
                write = _post(client, REGISTER, variables)
            finally:
                holder.execute("ROLLBACK")
                holder.close()
            assert ready.status_code == 503
            assert write.status_code == 503, write.text
            assert write.headers["retry-after"] == "2"
            codes = [e["extensions"]["code"] for e in write.json()["errors"]]
            assert codes == ["DATABASE_UNAVAILABLE"]
            assert client.get("/readyz").status_code == 200
            again = _post(client, REGISTER, variables)
            assert again.json()["data"]["register"]["__typename"] == "RegistrationAccepted"
        log = server.log.read_text()
    assert "Traceback" not in log


def _pg_restart_available() -> None:
    if connections.get("default").capabilities.dialect != "postgres":
        pytest.skip("a PostgreSQL restart: PostgreSQL only")
    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries not found")


def test_postgres_restart_gives_typed_503s_then_recovers(tmp_path: Path) -> None:
    _pg_restart_available()
    with cluster() as pg:
        migrate(pg.url)
        with servers(pg.url, 1, tmp_path) as (server,):
            with httpx.Client(base_url=server.url, timeout=30) as client:
                n = 0

                def attempt() -> httpx.Response:
                    nonlocal n
                    n += 1
                    email = f"restart.{n}@example.com"
                    phone = f"+44 20 7946 {n:04d}"
                    variables = {"input": registration(email=email, phone=phone)}
                    return _post(client, REGISTER, variables)

                assert attempt().status_code == 200
                pg.stop()
                during = [attempt() for _ in range(10)]
                ready_during = client.get("/readyz")
                pg.start()
                restarted = time.monotonic()
                while True:
                    last = attempt()
                    if last.status_code == 200:
                        break
                    during.append(last)
                    assert time.monotonic() - restarted < 20, "never recovered"
                    time.sleep(0.1)
                recovery = time.monotonic() - restarted
                ready_after = client.get("/readyz")
            log = server.log.read_text()
    print(f"PostgreSQL restart: {len(during)} typed 503s, recovered {recovery:.2f} s after start")
    assert during
    for response in during:
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["retry-after"] == "2"
        assert [e["extensions"]["code"] for e in response.json()["errors"]] == [
            "DATABASE_UNAVAILABLE"
        ]
    assert last.json()["data"]["register"]["__typename"] == "RegistrationAccepted"
    assert ready_during.status_code == 503
    assert ready_after.status_code == 200
    assert "Traceback" not in log
