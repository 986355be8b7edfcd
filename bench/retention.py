"""Retention benchmark (issue 7, docs/ARCHITECTURE.md: numbers: "retention purge of 1,000,000
expired events in batches without blocking readers").

Seeds `--rows` visit events older than 13 months (1 in 20 a security event with a full IP,
1 in 10 anonymous) over 1,000 customers, and a tenth as many fresh ones. A reader in a
separate process (as an app server would be) asks for a random customer's newest 20
visits in a loop: first alone for `--seconds`, then while `run_retention` purges with the
default rules in batches of `CUSTOS_RETENTION_BATCH` (1,000). Prints rows/s of the purge
and the reader's latency before and during it, side by side."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event
from typing import Any
from uuid import UUID, uuid4

from pydantic import SecretStr
from tortoise import connections

from api.clock import SystemClock
from api.db import close_db, init_db, migrate
from api.retention.purge import TargetSummary, run_retention
from api.services import build_services
from api.settings import Settings
from models import Customer, VisitEvent

CUSTOMERS = 1_000
_COLUMNS = (
    "customer_id, purpose, at, page, action, referrer, campaign, browser, os, device_type, "
    "language, ip_full, ip_truncated"
)
# Row g (1..n): anonymous when g % 10 = 0, a security event with a full IP when g % 20 = 1,
# at start + g * step (ids follow time, as inserts do).
_PG_INSERT = f"""
INSERT INTO visit_event ({_COLUMNS})
SELECT CASE WHEN g % 10 = 0 THEN NULL ELSE ($1::uuid[])[1 + g % $2] END,
       CASE WHEN g % 20 = 1 THEN 'security' ELSE 'analytics' END,
       $3::timestamptz + g * $4::interval,
       '/products/' || (g % 500), 'view', '', '', 'Firefox', 'Linux', 'desktop', 'en-GB',
       CASE WHEN g % 20 = 1 THEN '203.0.113.' || (g % 250) ELSE NULL END,
       '203.0.113.0'
FROM generate_series(1, $5::int) AS g
"""  # noqa: S608 (our own column list; every value is a parameter)
_SQLITE_INSERT = f"INSERT INTO visit_event ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"  # noqa: S608


async def _customers(now: datetime) -> list[UUID]:
    rows = [
        Customer(
            id=uuid4(),
            email=f"retention{n}-{uuid4().hex[:6]}@bench.example",
            password_hash="-",  # noqa: S106 (never signs in)
            phone="+442079460000",
            address_line1="1 Bench Street",
            address_city="London",
            address_postal_code="NW1 6XE",
            address_country="GB",
            created_at=now - timedelta(days=900),
            updated_at=now,
            last_login_at=now,
        )
        for n in range(CUSTOMERS)
    ]
    await Customer.bulk_create(rows, batch_size=1000)
    return [UUID(str(c.id)) for c in rows]


def _sqlite_row(g: int, customers: list[UUID], start: datetime, step: timedelta) -> tuple[Any, ...]:
    security = g % 20 == 1
    return (
        None if g % 10 == 0 else str(customers[g % len(customers)]),
        "security" if security else "analytics",
        str((start + g * step).astimezone(UTC)),
        f"/products/{g % 500}",
        "view",
        "",
        "",
        "Firefox",
        "Linux",
        "desktop",
        "en-GB",
        f"203.0.113.{g % 250}" if security else None,
        "203.0.113.0",
    )


async def _insert(customers: list[UUID], *, count: int, start: datetime, end: datetime) -> None:
    """`count` visit events evenly spread from `start` to `end`, in id order."""
    conn = connections.get("default")
    step = (end - start) / (count + 1)
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query(_PG_INSERT, [customers, len(customers), start, step, count])
        return
    for first in range(1, count + 1, 50_000):
        last = min(first + 50_000, count + 1)
        rows = [_sqlite_row(g, customers, start, step) for g in range(first, last)]
        await conn.execute_many(_SQLITE_INSERT, rows)


async def _seed(rows: int, now: datetime) -> list[UUID]:
    customers = await _customers(now)
    expired_from, expired_to = now - timedelta(days=800), now - timedelta(days=400)
    await _insert(customers, count=rows, start=expired_from, end=expired_to)
    await _insert(customers, count=rows // 10, start=now - timedelta(days=300), end=now)
    await connections.get("default").execute_script("ANALYZE visit_event")
    return customers


def _reader(
    database_url: str,
    customers: list[str],
    ready: Event,
    stop: Event,
    results: mp.Queue[list[tuple[float, float]]],
) -> None:
    """(monotonic start, seconds) of each query, until `stop`."""

    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})  # as the app servers of the other benchmarks

    async def loop() -> list[tuple[float, float]]:
        await init_db(database_url)
        timings: list[tuple[float, float]] = []
        try:
            ready.set()
            while not stop.is_set():
                customer = random.choice(customers)
                started = time.monotonic()
                newest = VisitEvent.filter(customer_id=customer).order_by("-at").limit(20)
                await newest.values("id", "at", "page", "action")
                timings.append((started, time.monotonic() - started))
        finally:
            await close_db()
        return timings

    results.put(asyncio.run(loop()))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _report(
    *,
    dialect: str,
    rows: int,
    batch: int,
    summaries: list[TargetSummary],
    seconds: float,
    before: list[float],
    during: list[float],
) -> None:
    ms = 1000
    print(
        f"retention purge on {dialect}: {rows:,} expired visit events (+{rows // 10:,} fresh), "
        f"batches of {batch:,}"
    )
    for s in summaries:
        rate = s.purged / s.seconds if s.seconds else 0.0
        print(f"  {s.line}: {s.seconds:6.1f} s, {rate:9,.0f} rows/s, {s.batches:,} transactions")
    total = sum(s.purged for s in summaries)
    print(f"  the whole run: {seconds:.1f} s ({total:,} rows changed)")
    print("reader (a customer's newest 20 visits, another process)  before    during")
    print(f"  queries                                          {len(before):9,} {len(during):9,}")
    for label, q in (("p50", 0.50), ("p99", 0.99)):
        b, d = _percentile(before, q) * ms, _percentile(during, q) * ms
        print(f"  {label} (ms)                                       {b:9.2f} {d:9.2f}")
    b99, d99 = _percentile(before, 0.99), _percentile(during, 0.99)
    print(
        f"  max (ms)                                         {max(before) * ms:9.2f} "
        f"{max(during) * ms:9.2f}"
    )
    print(f"  p99 during / before: {d99 / b99:.2f}x; mean {statistics.fmean(during) * ms:.2f} ms")


async def _purge(database_url: str, batch: int) -> tuple[list[TargetSummary], float]:
    settings = Settings(
        database_url=database_url,
        secret_key=SecretStr("bench-secret-" + "x" * 40),
        retention_batch=batch,
    )
    services = build_services(settings, clock=SystemClock())
    try:
        started = time.perf_counter()
        summaries = await run_retention(services=services, dry_run=False)
        return summaries, time.perf_counter() - started
    finally:
        services.close()


async def _prepare(database_url: str, rows: int) -> tuple[list[str], str]:
    await init_db(database_url)
    try:
        await migrate(database_url)
        started = time.perf_counter()
        customers = await _seed(rows, datetime.now(UTC))
        took = time.perf_counter() - started
        print(f"seeded {rows + rows // 10:,} visit events in {took:.1f} s")
        return [str(c) for c in customers], connections.get("default").capabilities.dialect
    finally:
        await close_db()


def measure(database_url: str, *, rows: int, seconds: float, batch: int) -> None:
    customers, dialect = asyncio.run(_prepare(database_url, rows))
    spawn = mp.get_context("spawn")
    ready, stop = spawn.Event(), spawn.Event()
    results: mp.Queue[list[tuple[float, float]]] = spawn.Queue()
    reader = spawn.Process(target=_reader, args=(database_url, customers, ready, stop, results))
    reader.start()
    try:
        ready.wait(60)
        time.sleep(seconds)
        purge_from = time.monotonic()

        async def purge() -> tuple[list[TargetSummary], float]:
            await init_db(database_url)
            try:
                return await _purge(database_url, batch)
            finally:
                await close_db()

        summaries, took = asyncio.run(purge())
        purge_to = time.monotonic()
    finally:
        stop.set()
        timings = results.get(timeout=120)
        reader.join(30)
    before = [t for at, t in timings if at + t < purge_from]
    during = [t for at, t in timings if at >= purge_from and at + t <= purge_to]
    _report(
        dialect=dialect,
        rows=rows,
        batch=batch,
        summaries=summaries,
        seconds=took,
        before=before,
        during=during,
    )
