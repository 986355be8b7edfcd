"""The `custos` command, run as a real process (`python -m api`). Every test uses its own
fresh SQLite file, independent of the suite's database, so both legs behave the same."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from authz.registry import Role
from tests.conftest import LOGIN, ME, PASSWORD, REGISTER, registration
from tests.ports import free_port as _free_port

REPO = Path(__file__).parents[1]
TIMEOUT = 60  # seconds; no CLI call may hang the suite

INSPECT = """
import asyncio, json, sys
from api.db import close_db, init_db
from models import Employee, EmployeeRole

async def main():
    await init_db(sys.argv[1])
    try:
        rows = []
        for e in await Employee.all().order_by("email"):
            roles = sorted(r.role for r in await EmployeeRole.filter(employee_id=e.id))
            rows.append({"id": str(e.id), "email": e.email, "name": e.name,
                         "roles": roles, "active": e.active, "hash": e.password_hash})
        print(json.dumps(rows))
    finally:
        await close_db()

asyncio.run(main())
"""


class Cli:
    """Runs `python -m api ...` against one temporary SQLite database."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.database_url = f"sqlite://{tmp_path / 'cli.sqlite3'}"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CUSTOS_") and k not in {"DATABASE_URL", "TEST_DATABASE_URL"}
        }
        self.env.update(
            DATABASE_URL=self.database_url,
            CUSTOS_ARGON2_TIME_COST="2",
            CUSTOS_ARGON2_MEMORY_KIB="19456",
            CUSTOS_ARGON2_PARALLELISM="1",
            CUSTOS_MAIL_POLL_SECONDS="0",
            PYTHONUNBUFFERED="1",
        )

    def __call__(
        self, *args: str, input: str | None = None, **env: str
    ) -> subprocess.CompletedProcess[str]:
        stdin: dict[str, Any] = (
            {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        )
        return subprocess.run(
            [sys.executable, "-m", "api", *args],
            cwd=REPO,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
            **stdin,
        )

    def migrate(self) -> None:
        done = self("migrate")
        assert done.returncode == 0, done.stderr

    def script(self, code: str) -> subprocess.CompletedProcess[str]:
        """Run Python `code` with the database URL as its argument."""
        return subprocess.run(
            [sys.executable, "-c", code, self.database_url],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )

    def employees(self) -> list[dict[str, Any]]:
        done = self.script(INSPECT)
        assert done.returncode == 0, done.stderr
        rows: list[dict[str, Any]] = json.loads(done.stdout)
        return rows


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


# --- serve and migrate --------------------------------------------------------------


def test_serve_refuses_an_unmigrated_database(cli: Cli) -> None:
    # given a fresh, unmigrated database
    # when the server is started (bounded: it must not hang)
    started = time.monotonic()
    done = cli("serve", "--port", str(_free_port()))
    # then it exits non-zero at once and says what to run
    assert done.returncode != 0
    assert time.monotonic() - started < 30
    assert "custos migrate" in done.stderr
    assert "0001_initial" in done.stderr
    assert "on http://" not in done.stdout  # it never announced itself


def test_app_started_by_uvicorn_directly_refuses_an_unmigrated_database(cli: Cli) -> None:
    # given a fresh database and the app started without the CLI's own check
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.app:create_app",
            "--factory",
            "--port",
            str(_free_port()),
        ],
        cwd=REPO,
        env=cli.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    # then startup fails, and the process exits (it does not hang on an open database)
    assert done.returncode != 0
    assert "Application startup failed" in done.stderr


def test_serve_refuses_without_an_access_policy(cli: Cli) -> None:
    # given a migrated database whose policy rules were all deleted
    import sqlite3

    cli.migrate()
    with sqlite3.connect(cli.tmp_path / "cli.sqlite3") as db:
        db.execute("DELETE FROM policy_rule")
    # then the server refuses to start rather than serve with nothing enforced
    done = cli("serve", "--port", str(_free_port()))
    assert done.returncode != 0
    assert "no access policy loaded" in done.stderr


def test_migrate_applies_every_migration_once(cli: Cli) -> None:
    # given a fresh database and the migrations on disk
    on_disk = sorted(p.stem for p in (REPO / "models" / "migrations").glob("0*.py"))
    # when it is migrated
    first = cli("migrate")
    # then every migration is applied, in order, and named
    assert first.returncode == 0, first.stderr
    assert on_disk[0] == "0001_initial"
    assert first.stdout.strip() == f"applied {len(on_disk)} migration(s): {', '.join(on_disk)}"
    # and a second run has nothing left to do
    second = cli("migrate")
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "applied 0 migration(s)"


def test_migrate_creates_a_missing_directory(cli: Cli) -> None:
    # given a database URL in a directory that does not exist yet
    file = cli.tmp_path / "new" / "data" / "custos.sqlite3"
    # when it is migrated
    done = cli("migrate", DATABASE_URL=f"sqlite://{file}")
    # then the directory and the database are made
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("applied ")
    assert file.is_file()


# --- create-employee ----------------------------------------------------------------

CREATED = re.compile(r"^created employee ([0-9a-f-]{36}) with role\(s\) (.+)$")


def test_create_employee_reads_the_password_from_stdin(cli: Cli) -> None:
    # given a migrated database
    cli.migrate()
    # when an employee is created with two roles, the password piped on stdin
    done = cli(
        "create-employee",
        "--email",
        " Ann.Admin@Example.COM ",
        "--name",
        "Ann Admin",
        "--role",
        "admin",
        "--role",
        "auditor",
        input=PASSWORD + "\n",
    )
    # then the id is printed
    assert done.returncode == 0, done.stderr
    match = CREATED.match(done.stdout.strip())
    assert match, done.stdout
    assert match.group(2) == "admin, auditor"
    # and the employee is stored, normalised, with both roles and the piped password
    [employee] = cli.employees()
    assert employee["id"] == match.group(1)
    assert employee["email"] == "ann.admin@example.com"
    assert employee["name"] == "Ann Admin"
    assert employee["roles"] == ["admin", "auditor"]
    assert employee["active"] is True
    assert employee["hash"].startswith("$argon2id$")
    assert PasswordHasher().verify(employee["hash"], PASSWORD)
    assert PASSWORD not in done.stdout + done.stderr


def test_create_employee_with_a_taken_email_is_refused(cli: Cli) -> None:
    # given an existing employee
    cli.migrate()
    first = cli(
        "create-employee",
        "--email",
        "ann@example.com",
        "--name",
        "Ann",
        "--role",
        "admin",
        input=PASSWORD + "\n",
    )
    assert first.returncode == 0, first.stderr
    # when another is created with the same email (other case)
    second = cli(
        "create-employee",
        "--email",
        "ANN@example.com",
        "--name",
        "Other",
        "--role",
        "legal",
        input=PASSWORD + "\n",
    )
    # then it is refused, naming the email field, and nothing changed
    assert second.returncode != 0
    assert "custos: email: An employee has this email." in second.stderr
    assert "created employee" not in second.stdout
    [employee] = cli.employees()
    assert (employee["name"], employee["roles"]) == ("Ann", ["admin"])


def test_create_employee_has_no_password_argument(cli: Cli) -> None:
    # given a migrated database
    cli.migrate()
    # when a password is passed as an argument (it would land in shell history and ps)
    done = cli(
        "create-employee",
        "--email",
        "ann@example.com",
        "--name",
        "Ann",
        "--role",
        "admin",
        "--password",
        PASSWORD,
    )
    # then it is refused as a usage error, on one line, and nobody is created
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "custos create-employee: No such option '--password' "
        '(see "custos create-employee --help")'
    ]
    assert PASSWORD not in done.stderr
    assert cli.employees() == []


def test_create_employee_refuses_a_weak_password(cli: Cli) -> None:
    # given a migrated database
    cli.migrate()
    # when a common password is piped in
    done = cli(
        "create-employee",
        "--email",
        "ann@example.com",
        "--name",
        "Ann",
        "--role",
        "admin",
        input="password123\n",
    )
    # then it is refused, naming the password field, and nobody is created
    assert done.returncode != 0
    assert re.search(r"^custos: password: ", done.stderr, re.MULTILINE), done.stderr
    assert "password123" not in done.stderr
    assert cli.employees() == []


def test_create_employee_refuses_an_unknown_role(cli: Cli) -> None:
    # given a migrated database
    cli.migrate()
    # when a role outside the registry is asked for
    done = cli(
        "create-employee",
        "--email",
        "ann@example.com",
        "--name",
        "Ann",
        "--role",
        "wizard",
        input=PASSWORD + "\n",
    )
    # then it is refused as a usage error naming the roles, and nobody is created
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("custos create-employee: Invalid value for '--role': 'wizard' is not")
    assert "'privacy_officer'" in line
    assert cli.employees() == []


# --- employees list -----------------------------------------------------------------

SIGNED_IN = """
import asyncio, sys
from datetime import UTC, datetime
from api.db import close_db, init_db
from models import Employee

async def main():
    await init_db(sys.argv[1])
    try:
        await Employee.filter(email="ann@example.com").update(
            last_sign_in_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    finally:
        await close_db()

asyncio.run(main())
"""


def test_employees_list_shows_ids_roles_activity_and_last_sign_in_only(cli: Cli) -> None:
    # given two employees, one signed in once, the other deactivated
    cli.migrate()
    for email, name, roles in (
        ("ann@example.com", "Ann Admin", ["admin", "auditor"]),
        ("bob@example.com", "Bob Legal", ["legal"]),
    ):
        args = [a for role in roles for a in ("--role", role)]
        made = cli("create-employee", "--email", email, "--name", name, *args, input=PASSWORD)
        assert made.returncode == 0, made.stderr
    assert cli.script(SIGNED_IN).returncode == 0
    assert cli("deactivate-employee", "--email", "bob@example.com").returncode == 0
    ids = {e["email"]: e["id"] for e in cli.employees()}
    # when an admin lists them, for reading
    table = cli("employees", "list")
    # then one line each by email, under a header, and nothing else about them
    assert table.returncode == 0, table.stderr
    lines = [line.split() for line in table.stdout.splitlines()]
    assert lines == [
        ["id", "email", "roles", "active", "last", "sign-in"],
        [ids["ann@example.com"], "ann@example.com", "admin,auditor", "yes",
         "2026-03-01T09:30:00.000000+00:00"],
        [ids["bob@example.com"], "bob@example.com", "legal", "no", "never"],
    ]  # fmt: skip
    assert table.stderr == "2 employee(s)\n"
    # and for programs: JSON Lines with exactly these fields, CSV with plain cells
    rows = [
        json.loads(line)
        for line in cli("employees", "list", "--format", "jsonl").stdout.splitlines()
    ]
    assert rows[0] == {
        "id": ids["ann@example.com"],
        "email": "ann@example.com",
        "roles": ["admin", "auditor"],
        "active": True,
        "last_sign_in_at": "2026-03-01T09:30:00.000000+00:00",
    }
    assert rows[1]["last_sign_in_at"] is None
    csv_out = cli("employees", "list", "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "id,email,roles,active,last_sign_in_at"
    assert csv_out[1].endswith(
        ",ann@example.com,admin;auditor,true,2026-03-01T09:30:00.000000+00:00"
    )
    assert csv_out[2].endswith(",bob@example.com,legal,false,")
    assert "Ann Admin" not in table.stdout + json.dumps(rows)
    assert "Bob Legal" not in table.stdout + json.dumps(rows)


# --- seed-demo ----------------------------------------------------------------------

ROLES = [
    "customer_care",
    "marketing",
    "fraud_analyst",
    "privacy_officer",
    "legal",
    "auditor",
    "admin",
]


def test_roles_under_test_are_the_registry() -> None:
    # the seed test expects one employee per role of the registry, no more, no less
    assert sorted(r.value for r in Role) == sorted(ROLES)


def _seeded_roles(stdout: str) -> list[str]:
    return re.findall(r"^\s+\S+@staff\.example\.com\s+role (\S+)$", stdout, re.MULTILINE)


def test_seed_demo_creates_one_employee_per_role_and_is_idempotent(cli: Cli) -> None:
    # given a migrated database
    cli.migrate()
    # when demo data is seeded
    first = cli("seed-demo")
    # then the demo password and one employee per role are printed
    assert first.returncode == 0, first.stderr
    assert "Demo password for every demo account: custos-demo-password" in first.stdout
    assert _seeded_roles(first.stdout) == ROLES
    employees = cli.employees()
    assert sorted(role for e in employees for role in e["roles"]) == sorted(ROLES)
    assert all(len(e["roles"]) == 1 for e in employees)
    # and seeding again succeeds without adding anyone
    second = cli("seed-demo")
    assert second.returncode == 0, second.stderr
    assert _seeded_roles(second.stdout) == ROLES
    assert [e["id"] for e in cli.employees()] == [e["id"] for e in employees]
    # and three demo processors, once
    for done in (first, second):
        assert done.stdout.count("  Northwind Mail (IE): marketing.email") == 1
        assert "  FraudShield (US): security" in done.stdout


def test_seed_demo_is_refused_in_production(cli: Cli, tmp_path: Path) -> None:
    # given a migrated database and valid production settings
    cli.migrate()
    policy = tmp_path / "privacy-policy.txt"
    policy.write_text("The shop's own policy.", "utf-8")
    # when demo data is seeded in production
    done = cli(
        "seed-demo",
        CUSTOS_ENV="production",
        CUSTOS_SECRET_KEY=secrets.token_urlsafe(48),
        CUSTOS_PUBLIC_URL="https://shop.example",
        CUSTOS_POLICY_FILE=str(policy),
        CUSTOS_CONTROLLER_NAME="Shop Ltd",
        CUSTOS_CONTROLLER_CONTACT="privacy@shop.example",
        CUSTOS_DPO_CONTACT="dpo@shop.example",
    )
    # then it is refused and nothing is written
    assert done.returncode != 0
    assert "seed-demo is for development only" in done.stderr
    assert "custos-demo-password" not in done.stdout
    assert cli.employees() == []


# --- export-schema ------------------------------------------------------------------


def test_export_schema_writes_the_committed_schema(cli: Cli, tmp_path: Path) -> None:
    output = tmp_path / "exported.graphql"
    done = cli("export-schema", "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert output.read_text(encoding="utf-8") == (REPO / "schema.graphql").read_text(
        encoding="utf-8"
    )


# --- a real server ------------------------------------------------------------------


def _wait_until_healthy(
    process: subprocess.Popen[bytes], base_url: str, logs: Path
) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{logs.read_text()}")
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2)
        except httpx.TransportError:
            time.sleep(0.1)  # bounded wait for the process to start listening
    pytest.fail(f"server did not answer /healthz within 30 s:\n{logs.read_text()}")


def test_serve_answers_over_real_http(cli: Cli, tmp_path: Path) -> None:
    # given a migrated database and a server on a free port
    cli.migrate()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    logs = tmp_path / "server.log"
    with logs.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port), "--log-level", "warning"],
            cwd=REPO,
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        # when it is up
        health = _wait_until_healthy(process, base_url, logs)
        # then it is healthy
        assert health.status_code == 200
        assert health.json()["status"] == "ok"  # and the version (tests/test_served.py)
        assert health.headers["x-content-type-options"] == "nosniff"
        with httpx.Client(base_url=base_url, timeout=30) as http:
            assert http.get("/readyz").json() == {"status": "ready"}

            def gql(query: str, variables: dict[str, Any], token: str | None = None) -> Any:
                headers = {"authorization": f"Bearer {token}"} if token else {}
                response = http.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
                assert response.status_code == 200, response.text
                return response.json()

            # and a customer can register, sign in and read their data
            registered = gql(REGISTER, {"input": registration()})
            assert registered["data"]["register"]["__typename"] == "RegistrationAccepted"
            signed_in = gql(LOGIN, {"email": "jane.doe@example.com", "password": PASSWORD})
            assert signed_in["data"]["login"]["__typename"] == "LoginSuccess", signed_in
            token = signed_in["data"]["login"]["token"]
            me = gql(ME, {}, token=token)
            assert me["data"]["me"]["email"] == "jane.doe@example.com"
            assert me["data"]["me"]["phone"] == "+442079460958"
            # while without the token nobody is signed in
            anonymous = gql(ME, {})
            assert [e["extensions"]["code"] for e in anonymous["errors"]] == ["UNAUTHENTICATED"]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


QUEUE_MAIL = """
import asyncio, sys
from datetime import UTC, datetime
from api.db import close_db, init_db
from models import OutboxMessage

async def main():
    await init_db(sys.argv[1])
    try:
        now = datetime.now(UTC)
        for n in range(3):
            await OutboxMessage.create(kind="verify_email", recipient=f"c{n}@example.com",
                                       subject=f"Hello {n}", body_text="b",
                                       next_attempt_at=now, created_at=now)
    finally:
        await close_db()

asyncio.run(main())
"""


def test_mail_send_pending_delivers_what_is_due(cli: Cli) -> None:
    # given three messages waiting in the outbox
    cli.migrate()
    queued = cli.script(QUEUE_MAIL)
    assert queued.returncode == 0, queued.stderr
    # when the operator sends what is pending (the console backend prints each message)
    done = cli("mail", "send-pending", CUSTOS_MAIL_BACKEND="console")
    # then all three went out, and a second run finds nothing
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("----- mail -----") == 3
    assert done.stdout.strip().endswith("delivered 3 message(s)")
    again = cli("mail", "send-pending", CUSTOS_MAIL_BACKEND="console")
    assert again.stdout.strip() == "delivered 0 message(s)"
