"""Statements the decision log writes directly, in the driver's parameter style: on the
path of every read, the ORM's per-object work would cost more than the statement."""

from __future__ import annotations

import functools


def marks(dialect: str, count: int, first: int = 1) -> str:
    """`count` placeholders from number `first`: `$1,$2` (asyncpg) or `?,?` (SQLite)."""
    if dialect == "postgres":
        return ",".join(f"${n}" for n in range(first, first + count))
    return ",".join("?" * count)


@functools.lru_cache(maxsize=64)
def insert(dialect: str, table: str, columns: tuple[str, ...], rows: int) -> str:
    """One multi-row INSERT of `rows` rows. Only our own table and column names and
    placeholders enter it: no value is ever interpolated."""
    width = len(columns)
    groups = ",".join(f"({marks(dialect, width, r * width + 1)})" for r in range(rows))
    return f"INSERT INTO {table} ({','.join(columns)}) VALUES {groups}"  # noqa: S608
