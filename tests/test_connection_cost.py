"""What a statement costs in round trips to PostgreSQL (api/db_postgres.py): a pooled
connection goes back to the pool without a reset query, and the one session lock Custos
takes (retention's run lock) is still released."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tortoise import connections

from api.retention import purge


@pytest.fixture
def postgres() -> Any:
    client = connections.get("default")
    if client.capabilities.dialect != "postgres":
        pytest.skip("asyncpg's pool is PostgreSQL's")
    return client


async def test_a_statement_outside_a_transaction_is_one_round_trip(postgres: Any) -> None:
    # given a pooled connection whose queries are recorded
    sent: list[str] = []
    async with postgres.acquire_connection() as raw:
        connection = raw._con  # the connection itself, which outlives the pool's proxy
        connection.add_query_logger(lambda record: sent.append(record.query))
        # when one statement runs on it and it goes back to the pool
        assert await raw.fetchval("SELECT 41 + 1") == 42
    try:
        # then the statement was the only query sent: no reset query on release
        assert sent == ["SELECT 41 + 1"]
    finally:
        connection._query_loggers.clear()


async def test_retentions_session_lock_is_released_for_the_next_run(postgres: Any) -> None:
    # given a purge run that held the run lock, and ended
    async with purge._exclusive() as mine:
        assert mine
    # then the next run gets it, from whichever pooled connection it takes
    async with purge._exclusive() as mine_again:
        assert mine_again
    # and no session of the pool still holds it
    held = await postgres.execute_query_dict(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted",
        [purge.RUN_LOCK & 0xFFFFFFFF],
    )
    assert held[0]["n"] == 0


async def test_a_run_cancelled_while_holding_the_lock_leaves_it_free(postgres: Any) -> None:
    # given a purge run holding the run lock
    async def holding() -> None:
        async with purge._exclusive() as mine:
            assert mine
            await asyncio.sleep(30)

    run = asyncio.create_task(holding())
    await asyncio.sleep(0.2)
    # when it is cancelled (a shutdown)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    # then no pooled session still holds the lock, and the next run gets it
    held = await postgres.execute_query_dict(
        "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted",
        [purge.RUN_LOCK & 0xFFFFFFFF],
    )
    assert held[0]["n"] == 0
    async with purge._exclusive() as mine_again:
        assert mine_again
