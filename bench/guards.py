"""Guard benchmark (issue 3, docs/ARCHITECTURE.md: numbers): a staff page of 100 customers with 3
guarded fields (email, phone, address), measured side by side in one run:

- guards and audit on, every field allowed (customer care, purpose support, open cases);
- the same query on, every field denied (the same employee, purpose legal);
- guards and audit off (bench/unguarded_app.py), the same query as the allowed one.

Targets: on/off >= 0.8, deny/allow >= 0.9."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from bench.load import Result, post_request, run

T = TypeVar("T")

PAGE = (
    "{ customers(purpose: %s, first: 100) { edges { node { id email phone address { city } } } } }"
)
AGENT = "agent@bench.example.com"
CUSTOMER = "bench0@example.com"  # signs in with PASSWORD too
PASSWORD = "bench password that is long"  # noqa: S105 (a throwaway benchmark account)


async def seed(database_url: str) -> None:
    """100 customers, each with an open support case and a consent history (two records
    a purpose that needs consent: given at registration, changed later), and one
    customer-care agent. The first customer (CUSTOMER) can sign in with PASSWORD, for
    bench/page.py's light query."""
    from api.db import close_db, init_db
    from api.services import build_services
    from api.settings import Settings
    from api.staff.service import create_employee
    from authz.registry import CONSENT_PURPOSES
    from models import ConsentRecord, Customer, SupportCase

    await init_db(database_url)
    services = build_services(Settings(database_url=database_url))
    try:
        now = datetime.now(UTC)
        customers = [
            Customer(
                email=f"bench{n}@example.com",
                password_hash="-",  # noqa: S106 (never signs in)
                phone=f"+4420794{n:05d}",
                address_line1=f"{n} Bench Street",
                address_city="London",
                address_postal_code="NW1 6XE",
                address_country="GB",
                created_at=now,
                updated_at=now,
            )
            for n in range(100)
        ]
        customers[0].password_hash = await services.passwords.hash(PASSWORD)
        customers[0].email_verified_at = now
        await Customer.bulk_create(customers)
        await SupportCase.bulk_create(
            [
                SupportCase(customer_id=c.id, subject="s", message="m", created_at=now)
                for c in customers
            ]
        )
        await ConsentRecord.bulk_create(
            [
                ConsentRecord(
                    customer_id=c.id,
                    purpose=purpose,
                    granted=(n + i + later) % (2 + later) != 0,
                    source="registration" if later == 0 else "preference_centre",
                    at=now - timedelta(days=2 - later),
                )
                for n, c in enumerate(customers)
                for i, purpose in enumerate(sorted(CONSENT_PURPOSES))
                for later in (0, 1)
            ]
        )
        await create_employee(
            services=services,
            email=AGENT,
            name="Agent",
            roles=["customer_care"],
            password=PASSWORD,
        )
    finally:
        services.close()
        await close_db()


def _row(name: str, r: Result) -> str:
    return (
        f"  {name:<28}{r.rps:8.1f} req/s  p50 {r.percentile(0.5) * 1000:6.1f} ms  "
        f"p99 {r.percentile(0.99) * 1000:6.1f} ms  ({r.failures} failures)"
    )


ROUNDS = 4


def _merge(into: Result, part: Result) -> None:
    into.latencies += part.latencies
    into.failures += part.failures
    into.seconds += part.seconds


Case = tuple[int, str, str, bool]  # port, purpose, token, errors_ok


def page_request(port: int, purpose: str, token: str) -> bytes:
    return post_request(port, {"query": PAGE % purpose}, token)


@contextmanager
def log_follower(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`custos audit follow`, the decision log's tree and checkpoints in a process of its
    own, pinned to core 1 beside the load (a deployment runs it beside its servers, which
    then spend no CPU on the tree: CUSTOS_AUDIT_INTEGRATE_SECONDS=0)."""
    cmd = [sys.executable, "-m", "api", "audit", "follow", "--every", "1"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "1", *cmd]
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.DEVNULL)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def staff_servers(
    *, server: Any, login: Any, port_of: Any, env: dict[str, str]
) -> Iterator[tuple[dict[str, Case], dict[str, Any]]]:
    """Custos and the unguarded baseline running at once (both pinned to the same core),
    the agent signed in on each, and Custos's log follower (`log_follower`): the three
    cases (name -> port, purpose, token, errors_ok) and the process of each ("on", "off",
    "log")."""
    custos = [sys.executable, "-m", "api", "serve", "--log-level", "warning"]
    uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning", "--factory"]
    on_port, off_port = port_of(), port_of()
    off_server = [*uvicorn, "bench.unguarded_app:create", "--port", str(off_port)]
    # Neither server joins rows to the log's tree (the follower does, on core 1): the
    # baseline, idle on core 0 while the guarded server is measured, would otherwise do
    # the guarded server's tree work there, in the middle of its turn.
    on_env = dict(env, CUSTOS_AUDIT_INTEGRATE_SECONDS="0")
    with (
        server([*custos, "--port", str(on_port)], on_port, on_env) as on_proc,
        server(off_server, off_port, on_env) as off_proc,
        log_follower(env) as log_proc,
    ):
        on_token, off_token = login(on_port, AGENT, PASSWORD), login(off_port, AGENT, PASSWORD)
        cases = {
            "off": (off_port, "SUPPORT", off_token, False),
            "allowed": (on_port, "SUPPORT", on_token, False),
            "denied": (on_port, "LEGAL", on_token, True),
        }
        yield cases, {"on": on_proc, "off": off_proc, "log": log_proc}


def turn_order(workloads: dict[str, T], round_: int) -> list[tuple[str, T]]:
    """The workloads of one round, in the reverse order every other round. A turn leaves
    work behind that it caused (the log's tree joins its last second of rows after it):
    in a fixed order, that work would always fall on the same next workload."""
    order = list(workloads.items())
    return order[::-1] if round_ % 2 else order


def measure(*, server: Any, login: Any, port_of: Any, env: dict[str, str], args: Any) -> None:
    """Both servers run at once (only one is loaded at a time, both pinned to the same
    core); the three cases take turns in ROUNDS rounds, so a drift over the run (the log
    growing, the database's background work) falls on all of them alike, in the reverse
    order every other round (`turn_order`)."""
    asyncio.run(seed(env["DATABASE_URL"]))

    def load(port: int, purpose: str, token: str, errors_ok: bool, seconds: float) -> Result:
        request = page_request(port, purpose, token)
        return asyncio.run(
            run(port, request, connections=args.connections, seconds=seconds, errors_ok=errors_ok)
        )

    with staff_servers(server=server, login=login, port_of=port_of, env=env) as (cases, _):
        for case in cases.values():
            load(*case, 1.0)  # warm up
        results = {name: Result() for name in cases}
        for round_ in range(ROUNDS):
            for name, case in turn_order(cases, round_):
                _merge(results[name], load(*case, args.seconds / ROUNDS))
    off, allowed, denied = results["off"], results["allowed"], results["denied"]

    print("staff page: 100 customers x 3 guarded fields (email, phone, address)")
    print(_row("guards+audit off", off))
    print(_row("guards+audit on, allowed", allowed))
    print(_row("guards+audit on, denied", denied))
    print(f"  ratio on/off:      {allowed.rps / off.rps:.2f}x (target >= 0.8x)")
    print(f"  ratio deny/allow:  {denied.rps / allowed.rps:.2f}x (target >= 0.9x)")
