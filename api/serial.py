"""One customer's state-dependent writes, one at a time (issue 15, point 3).

An operation whose effect depends on what is stored (a consent record appended only when
the state changes, a rights request refused while one of its kind is open, a support case
not opened twice) reads, then writes. Under PostgreSQL's READ COMMITTED two such
transactions read the same state and both write. `lock_customer` makes the second wait
for the first's commit and then read what it wrote.

PostgreSQL: the customer's row, `FOR NO KEY UPDATE`, until the transaction ends. The same
row lock a legal hold and an erasure take (`FOR UPDATE`, which conflicts with it), so every
per-customer serialisation waits on one lock, always taken first, and cannot deadlock
against another. `NO KEY` lets other transactions keep inserting rows that reference the
customer (their foreign-key check takes `FOR KEY SHARE`, which this does not block).

SQLite: nothing to take. In one process tortoise-orm runs one transaction at a time on its
single connection (every mutation is one transaction, api/pipeline.py); across
processes SQLite's transactions are serialisable: each begins `BEGIN IMMEDIATE` (api/db.py),
so a second writer waits for the first's commit before it reads; and were a transaction to
read under a deferred `BEGIN`, its write after another's commit would fail ("database is
locked"), never write a duplicate."""

from __future__ import annotations

from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from models import Customer, Session


async def lock_customer(conn: BaseDBAsyncClient, customer_id: UUID | str) -> bool:
    """Serialise on `customer_id` until `conn`'s transaction ends (call it inside one,
    before the read the write depends on). False when there is no such customer."""
    if conn.capabilities.dialect == "postgres":
        _, rows = await conn.execute_query(
            "SELECT 1 FROM customer WHERE id = $1 FOR NO KEY UPDATE", [UUID(str(customer_id))]
        )
        return bool(rows)
    return await Customer.filter(id=customer_id).using_db(conn).exists()


async def session_open(conn: BaseDBAsyncClient, customer_id: UUID | str, session_id: int) -> bool:
    """Whether the customer's session `session_id` still exists and is not revoked: read
    after `lock_customer` (or the row's `FOR UPDATE`), it tells a request that passed its
    sign-in check whether an erasure, a sign-out or a password change elsewhere ended
    its session while it waited."""
    current = Session.filter(id=session_id, customer_id=customer_id, revoked_at=None)
    return await current.using_db(conn).exists()
