"""Where the time of a request goes: five workloads side by side in one run, each with
requests/s, SQL statements, server CPU and database CPU per request answered:

1. the guarded staff page (bench/guards.py's PAGE: 100 customers x 3 guarded fields),
   allowed (purpose SUPPORT); 2. the same page denied (purpose LEGAL); 3. the same page
   with guards and audit off (bench/unguarded_app.py); 4. the light query `{ me { id } }`
   with a customer's bearer token, as `light` does; 5. plain strawberry `{ hello }`.

Targets: light / plain >= 0.8, guarded / unguarded >= 0.8, deny / allow >= 0.9, and the
guarded page at most 4 SQL statements and at most 8 ms of server CPU per page of 100.
As in bench/guards.py the servers run at once, pinned to core 0 (the load on core 1), and
the workloads take turns in `--rounds` rounds (10), `--seconds` in all for each, in the
reverse order every other round (the work a turn leaves behind, its last second of log rows
joining the tree, then falls on the turn before it as often as on the one after). A ratio is
judged by its median turn by turn (`turn_ratios`), shown with its lowest and highest turn
and the whole run's ratio: on a shared 2-core machine the whole run's ratio of the same code
moved by more than the targets' margins from one run to the next.

- CPU per field: the page's server CPU less the light query's (the fixed cost of a
  request), over the PAGE_FIELDS fields it resolves: what strawberry, graphql-core and the
  guards cost per field.
- Server CPU: utime+stime (and cutime+cstime) of the server process and its children from
  /proc/<pid>/stat, before and after each turn.
- Busy: the server's CPU over the wall time of its turns (`busy_share`). Two servers
  that cost the same CPU per page answer at different rates if one of them waits (for
  the write lock, a commit, or a core the database is using) more of its turns.
- Log CPU: the same for the log follower (`custos audit follow`, bench/guards.py
  log_follower), which brings the log's rows into its Merkle tree and signs checkpoints
  in a process of its own, pinned to core 1: Custos runs with
  CUSTOS_AUDIT_INTEGRATE_SECONDS=0, as a deployment would beside a follower. Its work for a
  turn's last second of rows falls in the next turn (hence the alternating order).
- Database CPU (PostgreSQL on this machine only): the same sums over the postmaster (the
  first line of DATA_DIR/postmaster.pid, DATA_DIR from `SHOW data_directory`) and every
  process whose parent it is; the postmaster's cutime+cstime hold backends that exited.
- SQL statements (PostgreSQL with pg_stat_statements only; see tests/pgcluster.py's
  PGCLUSTER_STAT_STATEMENTS=1): the sum of `calls` in this database, reset before each
  turn, leaving out the bench's own statements (those naming pg_stat_statements). BEGIN and
  COMMIT count, and so do the few of the servers' background pollers. The 4 statements
  asyncpg's pool sends in one round trip each time a connection goes back to it
  (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;`) are left out of
  "SQL/req" and counted apart as "resets/req" (one per release: calls of `RESET ALL`).
On SQLite the database columns are "n/a": SQLite runs inside the server process, so its
CPU is in the server column. Last, the page's statement is timed alone, with the facts its
guards decide on and without (bench/page_statement.py)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.guards import CUSTOMER, PASSWORD, _merge, page_request, staff_servers, turn_order
from bench.load import Result, post_request, run

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")
PAGE_FIELDS = 2 + 100 * 7
"""Fields the page resolves: customers and edges, then per customer the edge, node, id,
email, phone, address and city."""
OWN = "%pg_stat_statements%"  # the bench's own reset and read
POOL_RESET = ["SELECT pg_advisory_unlock_all()", "CLOSE ALL", "UNLISTEN *", "RESET ALL"]


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: [0] state, [1] ppid,
    [11:15] utime, stime, cutime, cstime."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_ticks(root: int) -> int:
    """utime+stime+cutime+cstime of `root` and of every process whose parent it is."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(entry.name) == root or int(fields[1]) == root:
            total += sum(int(f) for f in fields[11:15])
    return total


@dataclass
class Tally:
    result: Result = field(default_factory=Result)
    turns: list[float] = field(default_factory=list)  # requests/s of each turn
    server_ticks: int = 0
    log_ticks: int = 0  # the log follower's (bench/guards.py log_follower)
    db_ticks: int = 0
    seconds: float = 0.0  # the turns' wall time
    statements: int = 0
    resets: int = 0

    @property
    def answered(self) -> int:
        return max(1, len(self.result.latencies) + self.result.failures)


class Postgres:
    """The database's side: statement counts (if `statements`) and the cluster's CPU (if
    `postmaster`); when either cannot be had, the reason is in `notes`."""

    def __init__(self) -> None:
        self.conn: Any = None
        self.postmaster: int | None = None
        self.statements = False
        self.notes: list[str] = []

    async def open(self, url: str) -> None:
        if not url.startswith(("postgres://", "postgresql://", "asyncpg://")):
            self.notes.append("SQL statements and DB CPU: n/a on SQLite (in-process)")
            return
        import asyncpg  # type: ignore[import-untyped]

        self.conn = await asyncpg.connect("postgresql://" + url.split("://", 1)[1])
        try:
            data = await self.conn.fetchval("SHOW data_directory")
            self.postmaster = int((Path(data) / "postmaster.pid").read_text().split()[0])
            cpu_ticks(self.postmaster)
            self.notes.append(pin_database(self.postmaster))
        except (asyncpg.PostgresError, OSError, ValueError, IndexError) as exc:
            self.notes.append(f"DB CPU: n/a (no local postmaster: {exc})")
            self.postmaster = None
        preload = await self.conn.fetchval("SELECT current_setting('shared_preload_libraries')")
        if "pg_stat_statements" not in preload:
            self.notes.append(
                "SQL statements: n/a (pg_stat_statements is not in shared_preload_libraries; "
                "e.g. PGCLUSTER_STAT_STATEMENTS=1 python tests/pgcluster.py -- ...)"
            )
            return
        try:
            await self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await self.conn.fetchval("SELECT pg_stat_statements_reset()")
            self.statements = True
        except asyncpg.PostgresError as exc:
            self.notes.append(f"SQL statements: n/a (pg_stat_statements: {exc})")

    async def reset(self) -> None:
        if self.statements:
            await self.conn.fetchval("SELECT pg_stat_statements_reset()")

    async def calls(self) -> tuple[int, int]:
        """Statements since the reset, and connections given back to a pool."""
        if not self.statements:
            return 0, 0
        row = await self.conn.fetchrow(
            "SELECT coalesce(sum(calls) FILTER (WHERE query <> ALL($2)), 0)::bigint, "
            "coalesce(sum(calls) FILTER (WHERE query = 'RESET ALL'), 0)::bigint "
            "FROM pg_stat_statements WHERE query NOT LIKE $1 "
            "AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            OWN,
            POOL_RESET,
        )
        return row[0], row[1]

    def ticks(self) -> int:
        return cpu_ticks(self.postmaster) if self.postmaster else 0

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()


def pin_database(postmaster: int) -> str:
    """Run the database where the load runs (this process's cores: core 1), off the
    servers' core: the postmaster and its processes now, and every backend it starts later
    (a child inherits its parent's cores). Left to the scheduler, the database's work for a
    page (about 1 ms of CPU) ran partly on core 0, in the measured server's turns: a page
    whose guards cost the database more then counted that cost twice, in the database's
    column and as the server's lost share of its core. Returns the note the report prints."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if not cores or len(cores) == (os.cpu_count() or 1):
        return "database processes: not pinned (the load is not pinned either)"
    pids = [postmaster] + [
        int(entry.name)
        for entry in os.scandir("/proc")
        if entry.name.isdigit() and _parent(int(entry.name)) == postmaster
    ]
    try:
        for pid in pids:
            os.sched_setaffinity(pid, cores)
    except OSError as exc:
        return f"database processes: not pinned ({exc.strerror})"
    return f"database processes: pinned to core {','.join(map(str, sorted(cores)))} with the load"


def _parent(pid: int) -> int | None:
    try:
        return int(_stat(pid)[1])
    except (OSError, ValueError, IndexError):
        return None  # gone meanwhile


def _ms(ticks: int, n: int) -> float:
    return ticks * TICK_MS / n


def busy_share(ticks: int, seconds: float) -> float:
    """The share of `seconds` of wall time a process spent on the CPU (`ticks`): a server
    below 1.0 waited for something (a lock, a commit, the core) part of its turns."""
    return ticks * TICK_MS / 1000 / seconds if seconds > 0 else 0.0


def _fmt(value: float | None, width: int, digits: int) -> str:
    return f"{value:{width}.{digits}f}" if value is not None else f"{'n/a':>{width}}"


async def _turns(
    workloads: dict[str, tuple[int, bytes, bool, int]], db: Postgres, log_pid: int, args: Any
) -> dict[str, Tally]:
    def load(port: int, request: bytes, errors_ok: bool, seconds: float) -> Any:
        return run(
            port, request, connections=args.connections, seconds=seconds, errors_ok=errors_ok
        )

    tallies = {name: Tally() for name in workloads}
    for port, request, errors_ok, _ in workloads.values():
        await load(port, request, errors_ok, 1.0)  # warm up
    for round_ in range(args.rounds):
        for name, (port, request, errors_ok, pid) in turn_order(workloads, round_):
            tally = tallies[name]
            await db.reset()
            server0, log0, db0 = cpu_ticks(pid), cpu_ticks(log_pid), db.ticks()
            started = time.monotonic()
            part = await load(port, request, errors_ok, args.seconds / args.rounds)
            tally.seconds += time.monotonic() - started
            tally.server_ticks += cpu_ticks(pid) - server0
            tally.log_ticks += cpu_ticks(log_pid) - log0
            tally.db_ticks += db.ticks() - db0
            statements, resets = await db.calls()
            tally.statements += statements
            tally.resets += resets
            tally.turns.append(part.rps)
            _merge(tally.result, part)
    return tallies


def measure(
    *,
    server: Any,
    login: Any,
    graphql: Any,
    port_of: Any,
    env: dict[str, str],
    args: Any,
) -> None:
    """Expects bench/guards.py's seed done (and no other customers: they would join the
    page); the light query signs in as its CUSTOMER."""
    plain_port = port_of()
    plain_server = [sys.executable, "-m", "uvicorn", "--log-level", "warning"]
    plain_server += ["bench.plain_app:app", "--port", str(plain_port)]
    staff = staff_servers(server=server, login=login, port_of=port_of, env=env)
    with staff as (cases, procs), server(plain_server, plain_port, env) as plain_proc:
        on_port = cases["allowed"][0]
        body = graphql(
            on_port,
            f'mutation {{ login(email: "{CUSTOMER}", password: "{PASSWORD}") '
            "{ ... on LoginSuccess { token } } }",
        )
        light = post_request(on_port, {"query": "{ me { id } }"}, body["data"]["login"]["token"])
        hello = post_request(plain_port, {"query": "{ hello }"})
        on, off = procs["on"].pid, procs["off"].pid
        workloads: dict[str, tuple[int, bytes, bool, int]] = {
            "page allowed (SUPPORT)": (*_page(cases["allowed"]), on),
            "page denied (LEGAL)": (*_page(cases["denied"]), on),
            "page unguarded": (*_page(cases["off"]), off),
            "light { me { id } }": (on_port, light, False, on),
            "plain { hello }": (plain_port, hello, False, plain_proc.pid),
        }

        async def measured() -> tuple[dict[str, Tally], Postgres]:
            db = Postgres()
            await db.open(env["DATABASE_URL"])
            try:
                return await _turns(workloads, db, procs["log"].pid, args), db
            finally:
                await db.close()

        tallies, db = asyncio.run(measured())
    _report(tallies, db, args)


def _page(case: tuple[int, str, str, bool]) -> tuple[int, bytes, bool]:
    port, purpose, token, errors_ok = case
    return port, page_request(port, purpose, token), errors_ok


def _report(tallies: dict[str, Tally], db: Postgres, args: Any) -> None:
    print(
        f"where the time goes: {args.seconds:g} s per workload in {args.rounds} turns, "
        f"{args.connections} connections; CPU in ms per request"
    )
    print(
        f"  {'workload':<24}{'req/s':>8}{'SQL/req':>9}{'resets/req':>11}{'server CPU':>11}"
        f"{'log CPU':>8}{'DB CPU':>8}{'busy':>6}  failures"
    )
    for name, t in tallies.items():
        n, stats = t.answered, db.statements
        print(
            f"  {name:<24}{t.result.rps:8.1f}{_fmt(t.statements / n if stats else None, 9, 1)}"
            f"{_fmt(t.resets / n if stats else None, 11, 1)}{_ms(t.server_ticks, n):11.2f}"
            f"{_ms(t.log_ticks, n):8.2f}"
            f"{_fmt(_ms(t.db_ticks, n) if db.postmaster else None, 8, 2)}"
            f"{busy_share(t.server_ticks, t.seconds):6.0%}  {t.result.failures}"
        )
    allowed, denied, off, light, plain = tallies.values()

    def ratio(label: str, a: Tally, b: Tally, target: float) -> None:
        overall = a.result.rps / b.result.rps if b.result.rps else 0.0
        value, low, high = turn_ratios(a.turns, b.turns)
        print(
            f"  ratio {label:<22}{value:5.2f}x (target >= {target}x) {_ok(value >= target)}"
            f"  turns {low:.2f} to {high:.2f}, whole run {overall:.2f}x"
        )

    ratio("light / plain:", light, plain, 0.8)
    ratio("guarded / unguarded:", allowed, off, 0.8)
    ratio("deny / allow:", denied, allowed, 0.9)
    if db.statements:
        sql = allowed.statements / allowed.answered
        print(f"  guarded page SQL statements: {sql:.1f} (target <= 4) {_ok(sql <= 4)}")
    else:
        print("  guarded page SQL statements: n/a (target <= 4)")
    cpu = _ms(allowed.server_ticks, allowed.answered)
    print(f"  guarded page server CPU: {cpu:.2f} ms (target <= 8 ms) {_ok(cpu <= 8)}")
    both = cpu + _ms(allowed.log_ticks, allowed.answered)
    print(f"  guarded page server and log follower CPU: {both:.2f} ms {_ok(both <= 8)}")
    for label, page in (("guarded", allowed), ("unguarded", off)):
        fields = _ms(page.server_ticks, page.answered) - _ms(light.server_ticks, light.answered)
        print(
            f"  CPU per field, {label} (page minus light, {PAGE_FIELDS} fields): "
            f"{fields * 1000 / PAGE_FIELDS:.1f} us"
        )
    for note in db.notes:
        print(f"  {note}")


def turn_ratios(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """The median, lowest and highest of a / b turn by turn. Turns of the workloads
    alternate, so each pair ran seconds apart: a change in the machine's speed over the run
    (other tenants, the log growing) moves both sides of a pair, and one disturbed turn moves
    the median less than it moves the whole run's sum."""
    ratios = sorted(x / y for x, y in zip(a, b, strict=True) if y)
    if not ratios:
        return 0.0, 0.0, 0.0
    middle = len(ratios) // 2
    median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    return median, ratios[0], ratios[-1]


def _ok(met: bool) -> str:
    return "ok" if met else "MISSED"
