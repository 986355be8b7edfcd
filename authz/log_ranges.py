"""The decision log verified in id ranges by worker processes, one core each: the per-row
checks (chain link, hash, subject index, leaf) are CPU-bound Python, so one process
checks about 20,000 rows a second; ranges checked side by side scale with the cores.

A worker opens the database with its driver (sqlite3 or asyncpg, no ORM), walks its range
(authz/log_walk.py) and returns the range's leaf hashes and its ends. The caller joins
the ranges in id order (authz/log_verify.py): each range's first row must link to the
last hash of the range before and its first leaf must continue the tree, so a chain or a
tree broken exactly at a range's edge is caught as anywhere else."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass

from tortoise.backends.base.config_generator import expand_db_url

from authz.log_walk import Walk, blocks, lists_sql, rows_sql

DIGEST = 32  # bytes of a leaf hash


@dataclass(frozen=True)
class RangeWalk:
    """What a worker found in ids (after, upto]: picklable, leaf hashes concatenated."""

    first_id: int | None
    first_prev: str | None
    last_hash: str | None
    first_leaf: int | None
    first_leaf_id: int | None
    checked_before_first_leaf: int
    checked: int
    digests: bytes
    broken: tuple[int, str] | None


def plan(low: int, high: int, *, workers: int, range_rows: int) -> list[tuple[int, int]]:
    """Ranges (after, upto] covering ids low..high: at least one per worker, each of about
    `range_rows` ids, so that memory stays bounded and a slow range does not hold the
    rest back."""
    span = high - low + 1
    count = max(workers, -(-span // max(range_rows, 1)))
    step = -(-span // count)
    return [(after, min(after + step, high)) for after in range(low - 1, high, step)]


def walk_range(database_url: str, after: int, upto: int, batch: int) -> RangeWalk:
    """A worker's entry: check the rows with ids in (after, upto]."""
    digests: list[bytes] = []
    walk = Walk(digests.append, prev=None, next_leaf=None)
    if database_url.startswith("sqlite"):
        _walk_sqlite(database_url, after, upto, batch, walk)
    else:
        asyncio.run(_walk_postgres(database_url, after, upto, batch, walk))
    return RangeWalk(
        first_id=walk.first_id,
        first_prev=walk.first_prev,
        last_hash=walk.prev,
        first_leaf=walk.first_leaf,
        first_leaf_id=walk.first_leaf_id,
        checked_before_first_leaf=walk.checked_before_first_leaf,
        checked=walk.checked,
        digests=b"".join(digests),
        broken=walk.broken,
    )


def _walk_sqlite(database_url: str, after: int, upto: int, batch: int, walk: Walk) -> None:
    path = expand_db_url(database_url)["credentials"]["file_path"]
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA query_only = 1")
        sql = rows_sql(False, bounded=True) + str(int(batch))
        while rows := conn.execute(sql, (after, upto)).fetchall():
            if not walk.feed(rows, conn.execute(lists_sql(False), blocks(rows)).fetchall()):
                return
            after = int(rows[-1][0])
    finally:
        conn.close()


async def _walk_postgres(database_url: str, after: int, upto: int, batch: int, walk: Walk) -> None:
    import asyncpg  # type: ignore[import-untyped]

    credentials = expand_db_url(database_url)["credentials"]
    conn = await asyncpg.connect(
        host=credentials["host"],
        port=credentials["port"],
        user=credentials["user"],
        password=credentials["password"],
        database=credentials["database"],
    )
    try:
        sql = rows_sql(True, bounded=True) + str(int(batch))
        async with conn.transaction(readonly=True, isolation="repeatable_read"):
            while rows := await conn.fetch(sql, after, upto):
                lists = await conn.fetch(lists_sql(True), *blocks(rows))
                if not walk.feed(rows, lists):
                    return
                after = int(rows[-1][0])
    finally:
        await conn.close()
