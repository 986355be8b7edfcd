"""The guarded page's own statement, timed alone on the seeded database: the customers'
columns of bench/guards.py's PAGE with the facts its guards decide on (an open case, a
running request, the granted purposes from `consent_current`), and without them, as the
unguarded page reads it. Best of 3 rounds of `RUNS` executions each, from one connection,
in this process: what the facts cost the database (on SQLite, the server process)."""

from __future__ import annotations

import asyncio
import time

RUNS = 300
SELECTED = frozenset({"id", "email", "phone", "address"})  # PAGE's fields of a customer


async def _timed(database_url: str) -> dict[str, float]:
    from tortoise import connections

    from api.customers.customer_sql import Where, customer_sql
    from api.customers.types import columns_for
    from api.db import close_db, init_db

    await init_db(database_url)
    try:
        conn = connections.get("default")
        postgres = conn.capabilities.dialect == "postgres"
        timings = {}
        for name, facts in (("with facts", True), ("without", False)):
            sql = customer_sql(columns_for(SELECTED), facts, (), Where.ALL, False, postgres)
            for _ in range(20):  # warm: statement caches, pages in memory
                await conn.execute_query(sql, [101])
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(RUNS):
                    await conn.execute_query(sql, [101])
                best = min(best, (time.perf_counter() - started) / RUNS)
            timings[name] = best * 1000
        return timings
    finally:
        await close_db()


def report(database_url: str) -> None:
    timings = asyncio.run(_timed(database_url))
    print(
        "  the page's statement alone (ms, best of 3 x "
        f"{RUNS}): with facts {timings['with facts']:.2f}, without {timings['without']:.2f}"
    )
