"""Benchmarks, each printing ratios measured side by side in one run.

    python -m bench [all|light|guards|page|collect|rights|campaign|retention|oracle|hostile|what-if
                     |login|audit-log]
                    [--seconds 5] [--connections 32] [--rows 1000000] [--log-rows 100000]

1. A light authenticated query (`{ me { id } }` with a bearer token) against plain strawberry
   `{ hello }` with the parser and validation caches (target: at least 0.8x).
2. p99 of that light query during a flood of logins (argon2 with production parameters)
   against its p99 without one (target: within 2x).
3. A staff page of 100 customers x 3 guarded fields: guards and audit on against off
   (target: at least 0.8x), all denied against all allowed (target: at least 0.9x); see
   bench/guards.py.
4. `POST /collect` with the consent check and User-Agent parsing against a bare endpoint
   inserting the same row (target: at least 0.8x); see bench/collect.py.
5. Rights requests: the access export of a customer with 10,000 visit events, built and
   its link issued (target: under 1 s); see bench/rights_export.py. Erasure of a customer
   with 10,000 visit events (target: under 1 s); see bench/rights_erasure.py.
6. Retention: purging `--rows` expired visit events in batches while a reader in another
   process keeps querying: rows/s, and the reader's p50/p99/max before and during the
   purge (target: readers not blocked); see bench/retention.py.
7. Timing oracle: `submitRightsRequestByEmail`, `requestPasswordReset` and
   `resendVerificationEmail` for a known against an unknown address, medians and their
   ratio (target: 1.00 within noise); see bench/oracle.py.
8. Hostile documents: how long the worst document of each kind (fragment fan-out and
   cycles, nested pages, depth, tokens) takes to be refused, against a trivial query
   (target: about 1x, none expanded); see bench/hostile.py.

9. What-if: replaying `--log-rows` logged access decisions against one proposal and against
   five in one scan, each against a bare scan of the same rows; see bench/what_if.py.

10. Sign-in under load: login p50/p99 with the server saturated by reads against quiet, and
    reads' p99 during a login flood against quiet (target: within 2x); see bench/login_load.py.

12. The verifiable decision log (`audit-log`, not part of `all`: it seeds `--log-rows`, by
    default 1,000,000, rows): integration into the Merkle tree, the chain walk against the
    full verification (target: 100,000 rows/s), an auditor's query by subject and time
    range (target: under 50 ms) and inclusion and consistency proofs (target: under 10 ms),
    with SQL statements per proof; see bench/audit_log.py.

11. Where the time goes: the guarded page allowed, denied and unguarded, the light query
    and plain `{ hello }` side by side: requests/s, SQL statements, server CPU and
    PostgreSQL CPU per request (targets: the ratios above, the guarded page in at most 4
    statements and 8 ms of server CPU); see bench/page.py.

Each run uses a fresh SQLite file, or BENCH_DATABASE_URL (an empty PostgreSQL database).

Servers run pinned to core 0 and the load to core 1 when `taskset` exists.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.load import post_request, run

ROOT = Path(__file__).resolve().parents[1]
DEMO_PASSWORD = "custos-demo-password"  # noqa: S105 (the printed demo password)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pinned(cmd: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *cmd] if shutil.which("taskset") else cmd


@contextmanager
def server(cmd: list[str], port: int, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """The server process, once it answers (bench/page.py reads its CPU time)."""
    proc = subprocess.Popen(_pinned(cmd, 0), cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/graphql", timeout=1)
                break
            except OSError as exc:
                if getattr(exc, "code", None):  # an HTTP error means it is up
                    break
                time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _graphql(port: int, query: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body: dict[str, object] = json.load(response)
        return body


def _login(port: int, email: str, password: str) -> str:
    body = _graphql(
        port,
        f'mutation {{ staffLogin(email: "{email}", password: "{password}") '
        "{ ... on StaffLoginSuccess { token } } }",
    )
    token: str = body["data"]["staffLogin"]["token"]  # type: ignore[index]
    return token


def _seed_demo(custos: list[str], env: dict[str, str]) -> None:
    """The demo customers and employees (idempotent): what `all` gets from `light`."""
    subprocess.run([*custos, "seed-demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "which",
        nargs="?",
        choices=[
            "all",
            "light",
            "guards",
            "page",
            "collect",
            "rights",
            "campaign",
            "retention",
            "oracle",
            "hostile",
            "what-if",
            "login",
            "audit-log",
        ],
        default="all",
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rounds", type=int, default=10, help="page: turns of each workload (ratios: median)"
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="retention: expired rows")
    parser.add_argument(
        "--log-rows",
        type=int,
        default=None,
        help="what-if: access decisions in the log (100,000); audit-log: rows (1,000,000)",
    )
    args = parser.parse_args()
    if shutil.which("taskset"):
        os.sched_setaffinity(0, {1})

    workdir = Path(tempfile.mkdtemp(prefix="custos-bench-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=os.environ.get("BENCH_DATABASE_URL")
        or os.environ.get("TEST_DATABASE_URL")
        or f"sqlite://{workdir / 'bench.sqlite3'}",
        CUSTOS_MAIL_POLL_SECONDS="0",
        CUSTOS_LOGIN_MAX_FAILURES_IP="1000000",
    )
    custos = [sys.executable, "-m", "api"]
    subprocess.run([*custos, "migrate"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    if args.which in ("all", "guards"):
        from bench import guards

        guards.measure(server=server, login=_login, port_of=_free_port, env=env, args=args)
    if args.which in ("all", "page"):
        from bench import guards, page

        # `all` seeded in `guards`; this runs before `light`, whose demo customers (no open
        # support case) would join the page
        if args.which == "page":
            asyncio.run(guards.seed(env["DATABASE_URL"]))
        page.measure(
            server=server,
            login=_login,
            graphql=_graphql,
            port_of=_free_port,
            env=env,
            args=args,
        )
        from bench import page_statement

        page_statement.report(env["DATABASE_URL"])
    if args.which in ("all", "light"):
        light(args, env, custos)
    if args.which in ("all", "login"):
        from bench import login_load

        if args.which == "login":
            _seed_demo(custos, env)
        login_load.measure(
            server=server,
            graphql=_graphql,
            port_of=_free_port,
            env=env,
            args=args,
            custos=custos,
            password=DEMO_PASSWORD,
        )
    if args.which in ("all", "collect"):
        from bench import collect

        if args.which == "collect":
            _seed_demo(custos, env)
        collect.measure(
            server=server,
            graphql=_graphql,
            port_of=_free_port,
            env=env,
            args=args,
            password=DEMO_PASSWORD,
        )
    if args.which in ("all", "campaign"):
        from bench import campaign

        campaign.report(env["DATABASE_URL"])
    if args.which in ("all", "rights"):
        from bench import rights_export

        rights_export.report(env["DATABASE_URL"])
        from bench import rights_erasure

        asyncio.run(rights_erasure.measure_erasure(env["DATABASE_URL"]))
    if args.which in ("all", "retention"):
        from bench import retention

        retention.measure(env["DATABASE_URL"], rows=args.rows, seconds=args.seconds, batch=1000)
    if args.which in ("all", "oracle"):
        from bench import oracle

        oracle.report(env["DATABASE_URL"])
    if args.which in ("all", "hostile"):
        from bench import hostile

        asyncio.run(hostile.measure())
    if args.which in ("all", "what-if"):
        from bench import what_if

        what_if.report(env["DATABASE_URL"], rows=args.log_rows or 100_000)
    if args.which == "audit-log":
        from bench import audit_log

        audit_log.report(env["DATABASE_URL"], rows=args.log_rows or 1_000_000)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def light(args: argparse.Namespace, env: dict[str, str], custos: list[str]) -> None:
    _seed_demo(custos, env)

    plain_port, custos_port = _free_port(), _free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "--log-level", "warning"]
    with server([*uvicorn, "bench.plain_app:app", "--port", str(plain_port)], plain_port, env):
        plain = asyncio.run(
            run(
                plain_port,
                post_request(plain_port, {"query": "{ hello }"}),
                connections=args.connections,
                seconds=args.seconds,
            )
        )

    serve = [*custos, "serve", "--port", str(custos_port), "--log-level", "warning"]
    with server(serve, custos_port, env):
        login = _graphql(
            custos_port,
            f'mutation {{ login(email: "ada@example.com", password: "{DEMO_PASSWORD}") '
            "{ ... on LoginSuccess { token } } }",
        )
        token = login["data"]["login"]["token"]  # type: ignore[index]
        light = post_request(custos_port, {"query": "{ me { id } }"}, token)
        guarded = asyncio.run(
            run(custos_port, light, connections=args.connections, seconds=args.seconds)
        )
        quiet = asyncio.run(run(custos_port, light, connections=8, seconds=args.seconds))
        flood_request = post_request(
            custos_port,
            {
                "query": f'mutation {{ login(email: "ben@example.com", '
                f'password: "{DEMO_PASSWORD}") {{ __typename }} }}'
            },
        )

        async def flooded() -> tuple[object, object]:
            return await asyncio.gather(
                run(custos_port, light, connections=8, seconds=args.seconds),
                run(custos_port, flood_request, connections=16, seconds=args.seconds),
            )

        during, logins = asyncio.run(flooded())

    print(f"plain strawberry {{ hello }} (caches on): {plain.rps:8.0f} req/s")
    print(
        f"custos {{ me {{ id }} }} with bearer:       {guarded.rps:8.0f} req/s "
        f"({guarded.failures} failures)"
    )
    print(f"  ratio light authenticated / plain: {guarded.rps / plain.rps:.2f}x (target >= 0.8x)")
    print(f"light query p99, quiet:          {quiet.percentile(0.99) * 1000:7.1f} ms")
    print(
        f"light query p99, login flood:    {during.percentile(0.99) * 1000:7.1f} ms "  # type: ignore[attr-defined]
        f"({logins.rps:.1f} logins/s)"
    )  # type: ignore[attr-defined]
    print(
        f"  ratio flood / quiet p99: {during.percentile(0.99) / quiet.percentile(0.99):.2f}x "  # type: ignore[attr-defined]
        "(target <= 2x)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
