"""SQLite's writes (api/db.py `begin_when_free`): a read's decision log appended in one call on
the connection's thread, and, while another process holds the write lock, a transaction (a
log append, a mutation's) that waits with the process's one connection free for its reads."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
from tortoise.transactions import in_transaction

from api.clock import FakeClock
from api.services import Services
from authz.audit import append, verify
from models import AuditEvent, Customer, SupportCase
from tests.conftest import GQL
from tests.test_guarded_reads import T0, make_customer, staff_token
from tests.test_log_tree import record


@pytest.fixture(autouse=True)
def sqlite_only(database_url: str) -> None:
    if not database_url.startswith("sqlite://"):
        pytest.skip("SQLite's connection thread and write lock")


@contextmanager
def write_lock_of_another_process(database_url: str) -> Iterator[sqlite3.Connection]:
    """SQLite's write lock, held by a connection of its own (as another process's would
    be) until the block ends; what it wrote is committed then."""
    other = sqlite3.connect(database_url.removeprefix("sqlite://"), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield other
        other.execute("COMMIT")
    finally:
        other.close()


async def test_a_reads_log_rows_are_written_in_one_hand_over(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement is handed to the connection's thread and its result back (about
    0.1 ms of CPU each): a read's rows are written in one hand-over (BEGIN IMMEDIATE, the
    chain's last hash, the INSERT and COMMIT together), not four."""
    import aiosqlite.core

    customer = await make_customer(0, open_case=True)
    token, _ = await staff_token(gql, services, "customer_care")
    query = "query($id: ID!) { customer(id: $id, purpose: SUPPORT) { email phone } }"
    await gql(query, {"id": str(customer.id)}, token=token)  # warm: the session's lookup
    before = await AuditEvent.filter(event="access").count()
    handed: list[str] = []
    real = aiosqlite.core.Connection._execute

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        handed.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    # when the agent reads one customer
    body = await gql(query, {"id": str(customer.id)}, token=token)
    monkeypatch.undo()
    # then the read is answered and logged, on a whole chain
    assert body["data"]["customer"]["email"]
    rows = await AuditEvent.filter(event="access").offset(before)
    assert [row.subject_id for row in rows] == [str(customer.id)]
    assert (await verify()).ok
    # and SQLite's thread was handed the log's write once: no BEGIN, INSERT or COMMIT
    # of its own (the reads are single statements)
    writes = [name for name in handed if name != "_execute_fetchall"]
    assert writes == ["_begin_now"], handed


async def test_reads_go_on_while_a_log_write_waits_for_another_process(
    database_url: str, clock: FakeClock
) -> None:
    # given a customer, and another process holding SQLite's write lock
    await make_customer(0)
    with write_lock_of_another_process(database_url):
        # when a read's log rows are appended meanwhile
        writing = asyncio.create_task(append([record(clock, 1)]))
        await asyncio.sleep(0.1)
        # then the append waits for the lock, and other reads are answered meanwhile
        assert not writing.done()
        assert await asyncio.wait_for(Customer.all().count(), timeout=2) == 1
        assert not writing.done()
        assert await AuditEvent.all().count() == 0
    # and once the lock is free, the rows are appended once, on a whole chain
    await asyncio.wait_for(writing, timeout=5)
    assert [e.subject_id for e in await AuditEvent.all()] == [record(clock, 1).subject_id]
    assert (await verify()).ok


async def test_a_log_write_waiting_too_long_fails_as_busy_and_changes_nothing(
    database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tortoise import connections

    from api import db

    # given a busy timeout of 50 ms (and one attempt), and the write lock held elsewhere
    client = connections.get("default")
    monkeypatch.setitem(client.pragmas, "busy_timeout", 50)
    monkeypatch.setattr(db, "BUSY_ATTEMPTS", 1)
    # when a read's log rows are appended
    with write_lock_of_another_process(database_url), pytest.raises(db.OperationalError) as failed:
        await append([record(clock, 1)])
    # then it failed as busy (the request gets DATABASE_UNAVAILABLE), and wrote nothing
    assert db.unavailable_reason(failed.value) is not None
    assert await AuditEvent.all().count() == 0
    # and the next append goes through
    await append([record(clock, 2)])
    assert await AuditEvent.all().count() == 1


async def test_reads_go_on_while_a_transaction_waits_for_another_process(
    database_url: str,
) -> None:
    # given a customer, and another process holding SQLite's write lock
    customer = await make_customer(0)

    async def open_a_case() -> None:  # a mutation's writes, in their own transaction
        async with in_transaction():
            await SupportCase.create(
                customer=customer, subject="Ring", message="Where?", created_at=datetime.now(UTC)
            )

    with write_lock_of_another_process(database_url):
        # when a transaction begins meanwhile
        writing = asyncio.create_task(open_a_case())
        await asyncio.sleep(0.1)
        # then it waits for the lock, and reads are answered meanwhile
        assert not writing.done()
        assert await asyncio.wait_for(Customer.all().count(), timeout=2) == 1
        assert await SupportCase.all().count() == 0
        assert not writing.done()
    # and once the lock is free, the transaction commits once
    await asyncio.wait_for(writing, timeout=5)
    assert await SupportCase.filter(customer=customer).count() == 1


async def test_a_task_cancelled_while_its_begin_runs_leaves_no_transaction_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A BEGIN IMMEDIATE handed to the connection's thread runs to its end even when the
    task that asked for it is cancelled meanwhile (a client gone, a shutdown). The
    transaction it opened would never be committed: it is rolled back before the process's
    one connection serves anyone else, who would otherwise find it open (their BEGIN
    refused, or their statements inside a stranger's transaction)."""
    import time

    from api import db

    customer = await make_customer(0)
    real_begin = db._begin_now
    began = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow_begin(conn, wait_ms, work):  # type: ignore[no-untyped-def]
        result = real_begin(conn, wait_ms, work)
        loop.call_soon_threadsafe(began.set)
        time.sleep(0.3)  # the task is cancelled while the call is still on the thread
        return result

    monkeypatch.setattr(db, "_begin_now", slow_begin)

    async def mutation() -> None:
        async with in_transaction():
            await SupportCase.create(customer=customer, subject="s", message="m", created_at=T0)

    task = asyncio.create_task(mutation())
    await began.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    monkeypatch.setattr(db, "_begin_now", real_begin)
    # the next transaction begins, writes and commits as if nothing had happened
    async with in_transaction():
        await SupportCase.create(customer=customer, subject="next", message="m", created_at=T0)
    assert [c.subject for c in await SupportCase.all()] == ["next"]
