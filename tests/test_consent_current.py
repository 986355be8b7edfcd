"""`consent_current`, kept by triggers on the consent history (migration 0021), always holds
each (customer, purpose)'s latest record, whatever writes the history: single and bulk
inserts out of time order and with ties, deletes, changes of a record's key columns,
changes that leave them alone, a customer's deletion, and two writers at once on
PostgreSQL. The invariant is also checked after every test (tests/conftest.py), which
covers the product's own writers (consents, registration, GPC, erasure, retention)."""

from __future__ import annotations

import asyncio
import importlib
import random
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from authz.registry import CONSENT_PURPOSES
from models import ConsentRecord, CurrentConsent, Customer
from tests.conftest import stored_customer
from tests.consent_invariant import assert_current_is_latest, current_rows

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PURPOSES = sorted(CONSENT_PURPOSES)


def _record(rng: random.Random, customer: Customer) -> ConsentRecord:
    return ConsentRecord(
        customer=customer,
        purpose=rng.choice(PURPOSES[:2]),  # two purposes: keys meet often
        granted=rng.random() < 0.5,
        source="registration",
        at=T0 + timedelta(hours=rng.randint(0, 3)),  # few times: ties in time are common
    )


async def _step(rng: random.Random, customers: list[Customer]) -> None:
    """One random write to the history."""
    ids = [r["id"] for r in await ConsentRecord.all().values("id")]
    kind = rng.choice(["insert", "bulk", "delete", "grant", "time", "purpose", "other"])
    if kind == "insert" or not ids:
        await _record(rng, rng.choice(customers)).save()
    elif kind == "bulk":
        batch = [_record(rng, rng.choice(customers)) for _ in range(rng.randint(2, 5))]
        await ConsentRecord.bulk_create(batch)
    elif kind == "delete":
        await ConsentRecord.filter(id=rng.choice(ids)).delete()
    elif kind == "grant":
        await ConsentRecord.filter(id=rng.choice(ids)).update(granted=rng.random() < 0.5)
    elif kind == "time":
        at = T0 + timedelta(hours=rng.randint(0, 3))
        await ConsentRecord.filter(id=rng.choice(ids)).update(at=at)
    elif kind == "purpose":
        await ConsentRecord.filter(id=rng.choice(ids)).update(purpose=rng.choice(PURPOSES))
    else:  # a column the state does not hold, as erasure's anonymising does
        await ConsentRecord.filter(id=rng.choice(ids)).update(ip_truncated=None, user_agent=None)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_histories_keep_each_purposes_latest_record(seed: int) -> None:
    rng = random.Random(seed)
    customers = [await stored_customer(n, at=T0) for n in range(3)]
    for _ in range(120):
        await _step(rng, customers)
        await assert_current_is_latest()
    # a customer's deletion takes their records, and so their rows
    await customers[0].delete()
    await assert_current_is_latest()
    assert not [row for row in await current_rows() if row[0] == str(customers[0].id)]


async def test_an_earlier_record_inserted_later_does_not_replace_the_latest() -> None:
    customer = await stored_customer(0, at=T0)
    later = await ConsentRecord.create(
        customer=customer, purpose=PURPOSES[0], granted=True, source="x", at=T0 + timedelta(1)
    )
    await ConsentRecord.create(
        customer=customer, purpose=PURPOSES[0], granted=False, source="x", at=T0
    )
    [row] = await current_rows()
    assert (row[2], row[4]) == (True, later.id)
    # and the latest's deletion brings the earlier one back
    await later.delete()
    [row] = await current_rows()
    assert row[2] is False


async def test_the_migration_starts_the_table_from_the_history() -> None:
    rng = random.Random(7)
    customers = [await stored_customer(n, at=T0) for n in range(4)]
    await ConsentRecord.bulk_create([_record(rng, rng.choice(customers)) for _ in range(40)])
    expected = await current_rows()
    await CurrentConsent.all().delete()  # as before the migration: no rows
    migration = importlib.import_module("models.migrations.0021_consent_current")
    await connections.get("default").execute_script(migration._BACKFILL)
    assert await current_rows() == expected
    await assert_current_is_latest()


async def test_two_writers_at_once_keep_the_later_record() -> None:
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        pytest.skip("SQLite runs one writer at a time")
    customer = await stored_customer(0, at=T0)
    purpose = PURPOSES[0]
    inserted = asyncio.Event()
    release = asyncio.Event()

    async def later_writer() -> None:
        async with in_transaction() as tx:
            await ConsentRecord.create(
                customer=customer, purpose=purpose, granted=True, source="x",
                at=T0 + timedelta(hours=1), using_db=tx,
            )  # fmt: skip
            inserted.set()
            await release.wait()

    async def earlier_writer() -> None:
        async with in_transaction() as tx:
            await ConsentRecord.create(
                customer=customer, purpose=purpose, granted=False, source="x", at=T0,
                using_db=tx,
            )  # fmt: skip

    # given a transaction that wrote the later record and has not committed
    first = asyncio.create_task(later_writer())
    await inserted.wait()
    # when another writes an earlier record for the same purpose meanwhile
    second = asyncio.create_task(earlier_writer())
    await asyncio.sleep(0.3)
    assert not second.done()  # it waits for the first's row
    release.set()
    await asyncio.gather(first, second)
    # then the row is the later record, though it was committed first
    [row] = await current_rows()
    assert row[2] is True
    await assert_current_is_latest()
