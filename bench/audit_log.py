"""The verifiable decision log's benchmark (issue 19, point 6), measured side by side in one run.

Seeds `--log-rows` rows (default 1,000,000) through authz.audit.append in large batches, so
that the chain is real: a year of a few hundred employees and 100,000 customers, where a
staff page is one row naming 20 to 100 customers (and as many subject links), a staff
view of one customer or a customer's read of their own data names one, and sign-ins and
other events name one or none. Then it integrates them into the Merkle tree (rows/s),
signs a checkpoint (a key in a temporary directory) and prints, each against its target:

- the chain walk (authz.audit.verify) against the full verification
  (authz.log_verify.verify_log with the checkpoint held), in one process and in id ranges
  by one worker process per core (as `custos audit verify` runs it): rows/s (target:
  100,000);
- an auditor's query by subject and time range (api/audit/service.py `access_decisions`,
  as `accessDecisions` runs it): p50/p99 ms (target: under 50 ms);
- inclusion and consistency proofs (api/audit/proofs.py, as `auditInclusionProof` and
  `auditConsistencyProof` run them, and the bare tree reads of authz/log_tree.py): p50/p99
  ms (target: under 10 ms) and SQL statements per proof (BEGIN and COMMIT included).

The staff page's guards on/off ratio (appending kept off the read path) is
`python -m bench guards` / `page`. This bench runs no server: it uses both cores."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise import connections

from api.audit import proofs
from api.audit.service import DecisionFilter, access_decisions
from api.db import close_db, init_db
from authz import checkpoints, log_tree
from authz.audit import AuditRecord, append, verify
from authz.checkpoints import LogConfig
from authz.log_verify import open_held, published_verifiers, verify_log
from authz.registry import Category

ORIGIN = "bench.custos.test/audit-log"
EMPLOYEES = 300
CUSTOMERS = 100_000
BATCH = 10_000
SAMPLES = 200
TARGETS = {"verify": 100_000.0, "query": 50.0, "proof": 10.0}
_ROLES = ("customer_care", "marketing", "fraud_analyst", "privacy_officer", "legal")
_PURPOSES = {
    "customer_care": "support",
    "marketing": "marketing.email",
    "fraud_analyst": "security",
    "privacy_officer": "legal",
    "legal": "legal",
}
_CATEGORIES = [c.value for c in Category]
_PAGE_FIELDS = "contact.address,contact.email,contact.phone"


class People:
    """The log's actors and subjects: ids as the app writes them (UUIDs)."""

    def __init__(self, rng: random.Random) -> None:
        self.employees = [
            (str(uuid.UUID(int=rng.getrandbits(128))), rng.choice(_ROLES)) for _ in range(EMPLOYEES)
        ]
        self.customers = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(CUSTOMERS)]


def _record(rng: random.Random, people: People, at: datetime, request: str) -> AuditRecord:
    """One row of the mix: 8% staff pages, 37% staff views of one customer, 30% customers'
    own reads, 25% sign-ins and other events."""
    draw = rng.random()
    if draw < 0.45:
        employee, role = rng.choice(people.employees)
        page = draw < 0.08
        subjects = rng.sample(people.customers, rng.randint(20, 100)) if page else []
        denied = rng.random() < 0.1
        return AuditRecord(
            at=at,
            request_id=request,
            actor_kind="employee",
            actor_id=employee,
            roles=role,
            event="access",
            category=_PAGE_FIELDS
            if page
            else ",".join(sorted(rng.sample(_CATEGORIES, rng.randint(1, 3)))),
            action="read",
            purpose=_PURPOSES[role],
            decision="deny" if denied else "allow",
            rule=f"p, {role}, contact.*, read, {_PURPOSES[role]}, *, "
            + ("deny" if denied else "allow"),
            subject_id=",".join(sorted(subjects)) if page else rng.choice(people.customers),
            conditions="open_case" if role == "customer_care" else "",
            policy_version=3,
        )
    customer = rng.choice(people.customers)
    if draw < 0.75:
        return AuditRecord(
            at=at,
            request_id=request,
            actor_kind="customer",
            actor_id=customer,
            event="access",
            category=rng.choice(_CATEGORIES),
            action="read",
            purpose="service",
            decision="allow",
            rule="p, self, *, read, service, self, allow",
            subject_id=customer,
            conditions="self",
            policy_version=3,
        )
    signed_in = rng.random() < 0.9
    return AuditRecord(
        at=at,
        request_id=request,
        actor_kind="customer" if signed_in else "anonymous",
        actor_id=customer if signed_in else "",
        event="auth",
        operation=rng.choice(("login", "logout", "refresh")),
        decision="allow" if signed_in else "deny",
        subject_id=customer if signed_in else "",
        reason="" if signed_in else "bad credentials",
    )


def records(rows: int, people: People, start: datetime, span: timedelta) -> Iterator[AuditRecord]:
    """`rows` records in time order over `span` from `start`."""
    rng = random.Random(19)
    step = span / max(rows, 1)
    for n in range(rows):
        yield _record(rng, people, start + step * n, f"{rng.getrandbits(64):016x}")


async def seed(rows: int, people: People, start: datetime, span: timedelta) -> float:
    """Append the rows in batches; returns seconds."""
    started = time.perf_counter()
    batch: list[AuditRecord] = []
    for record in records(rows, people, start, span):
        batch.append(record)
        if len(batch) == BATCH:
            await append(batch)
            batch = []
    await append(batch)
    return time.perf_counter() - started


def _raw_sqlite(conn: Any) -> Any:
    return conn._connection  # aiosqlite.Connection: its sqlite3 connection runs in its thread


class Statements:
    """Counts the SQL statements the driver runs (SQLite: the trace callback, BEGIN and
    COMMIT included; PostgreSQL: asyncpg's query logger on the pool's connections)."""

    def __init__(self) -> None:
        self.count = 0

    def _seen(self, *_: object) -> None:
        self.count += 1

    async def attach(self) -> bool:
        from tortoise import connections

        conn = connections.get("default")
        if conn.capabilities.dialect == "sqlite":
            raw = _raw_sqlite(conn)

            def trace(sql: str) -> None:
                if not sql.startswith("--"):  # statements of triggers are shown as comments
                    self.count += 1

            await raw._execute(raw._conn.set_trace_callback, trace)
            return True
        pool = getattr(conn, "_pool", None)
        holders = getattr(pool, "_holders", None)
        if not holders:
            return False
        for holder in holders:
            raw = getattr(holder, "_con", None)
            if raw is not None:
                raw.add_query_logger(self._seen)
        return True


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


async def _timed(
    calls: list[Callable[[], Awaitable[object]]], counter: Statements | None = None
) -> tuple[float, float, float]:
    """p50 ms, p99 ms and statements per call of `calls`, one after the other."""
    await calls[0]()  # warm: caches, prepared statements
    samples, before = [], counter.count if counter else 0
    for call in calls:
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    per_call = ((counter.count - before) / len(calls)) if counter else float("nan")
    return (*_ms(samples), per_call)


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


@contextmanager
def _all_cores() -> Iterator[None]:
    """`python -m bench` pins itself to one core for servers' benches; this one runs none."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, range(os.cpu_count() or 1))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


async def _measure(database_url: str, rows: int) -> None:
    started_all = time.perf_counter()
    await init_db(database_url)
    dialect = "PostgreSQL" if database_url.startswith(("postgres", "asyncpg")) else "SQLite"
    try:
        rng = random.Random(6)
        people = People(random.Random(19))
        now = datetime.now(UTC).replace(microsecond=0)
        start, span = now - timedelta(days=365), timedelta(days=365)
        seconds = await seed(rows, people, start, span)
        print(f"audit-log ({dialect}): seeded {rows:,} rows in {seconds:.1f} s")

        began = time.perf_counter()
        size = await log_tree.integrate(batch=20_000)
        took = time.perf_counter() - began
        print(f"  integrate into the tree:  {took:6.1f} s  ({size / took:,.0f} rows/s)")
        if dialect == "PostgreSQL":  # statistics, as autovacuum keeps them on a live log
            await connections.get("default").execute_script("ANALYZE")
        with tempfile.TemporaryDirectory(prefix="custos-bench-keys-") as keys:
            config = LogConfig(ORIGIN, Path(keys) / "keys", None)
            signed = await checkpoints.sign(config, now, force=True)
            held = open_held("bench checkpoint", signed.note, await published_verifiers())

        began = time.perf_counter()
        chain = await verify()
        walk = time.perf_counter() - began
        began = time.perf_counter()
        full = await verify_log([held])
        whole = time.perf_counter() - began
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        began = time.perf_counter()
        ranged = await verify_log([held], workers=workers, database_url=database_url)
        in_ranges = time.perf_counter() - began
        if not (chain.ok and full.ok and ranged.ok):
            raise RuntimeError(f"the seeded log does not verify: {chain}, {full}, {ranged}")
        walk_rate, full_rate = chain.checked / walk, full.checked / whole
        ranged_rate = ranged.checked / in_ranges
        print(f"  chain walk (audit.verify):    {walk:6.1f} s  {walk_rate:9,.0f} rows/s")
        print(
            f"  full verify (verify_log):     {whole:6.1f} s  {full_rate:9,.0f} rows/s  "
            f"({full_rate / walk_rate:.2f}x the chain walk)"
        )
        print(
            f"  full verify, {workers} workers:      {in_ranges:6.1f} s  "
            f"{ranged_rate:9,.0f} rows/s  "
            f"(target >= {TARGETS['verify']:,.0f}: {_verdict(ranged_rate >= TARGETS['verify'])}; "
            f"{ranged_rate / full_rate:.2f}x one process)"
        )

        counter = Statements()
        counting = counter if await counter.attach() else None

        def query(customer: str, days: int) -> Callable[[], Awaitable[object]]:
            since = start + timedelta(seconds=rng.randrange(int(span.total_seconds())))
            until = since + timedelta(days=days)
            where = DecisionFilter(subject_id=customer, since=since, until=until)
            return lambda: access_decisions(where=where, first=50, after=None)

        queries = [
            query(rng.choice(people.customers), rng.choice((1, 7, 30, 90, 365)))
            for _ in range(SAMPLES)
        ]
        p50, p99, sql = await _timed(queries, counting)
        print(
            f"  auditor query by subject and time range: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
            f"{sql:.1f} SQL  (target < {TARGETS['query']:.0f} ms: "
            f"{_verdict(p99 < TARGETS['query'])})"
        )

        ids = await _leaf_event_ids(rng, size)
        sizes = sorted(rng.randrange(1, size + 1) for _ in range(SAMPLES))
        cases: list[tuple[str, list[Callable[[], Awaitable[object]]]]] = [
            ("inclusion (api)", [_bind(proofs.inclusion, i, None) for i in ids]),
            ("consistency (api)", [_bind(proofs.consistency, s, size) for s in sizes]),
            (
                "inclusion (tree)",
                [_bind(log_tree.inclusion_proof, rng.randrange(size), size) for _ in ids],
            ),
            ("consistency (tree)", [_bind(log_tree.consistency_proof, s, size) for s in sizes]),
        ]
        for label, calls in cases:
            p50, p99, sql = await _timed(calls, counting)
            print(
                f"  {label:19} proof: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  {sql:.1f} SQL  "
                f"(target < {TARGETS['proof']:.0f} ms: {_verdict(p99 < TARGETS['proof'])})"
            )
        print(f"  whole run: {time.perf_counter() - started_all:.0f} s")
    finally:
        await close_db()


def _bind(
    function: Callable[..., Awaitable[object]], *args: object
) -> Callable[[], Awaitable[object]]:
    return lambda: function(*args)


async def _leaf_event_ids(rng: random.Random, size: int) -> list[int]:
    """The row ids of random leaves (row ids have no gaps here, but ask the tree)."""
    from tortoise import connections

    conn = connections.get("default")
    wanted = [rng.randrange(size) for _ in range(SAMPLES)]
    mark = "$1" if conn.capabilities.dialect == "postgres" else "?"
    found = []
    for index in wanted:
        rows = await conn.execute_query_dict(
            f"SELECT event_id FROM audit_leaf WHERE idx = {mark}",  # noqa: S608
            [index],
        )
        found.append(int(rows[0]["event_id"]))
    return found


def report(database_url: str, rows: int) -> None:
    with _all_cores():
        asyncio.run(_measure(database_url, rows))
