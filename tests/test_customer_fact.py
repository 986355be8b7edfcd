"""`customer_fact`, kept by triggers on `support_case`, `rights_request` and `consent_current`
(migration 0022), always holds each customer's facts as the code defines them (an open
case, a running request, the purposes granted), whatever writes those tables: cases and
requests created, moved through their statuses, moved to another customer and deleted,
consents recorded, changed and deleted, a customer's deletion, and writers of one customer
at once on PostgreSQL. The invariant is also checked after every test (tests/conftest.py),
which covers the product's own writers."""

from __future__ import annotations

import asyncio
import importlib
import random
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from api.rights.rules import RUNNING
from authz.registry import CONSENT_PURPOSES
from models import ConsentRecord, Customer, CustomerFact, RightsRequest, SupportCase
from tests.conftest import stored_customer
from tests.fact_invariant import assert_facts_hold, kept_facts

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PURPOSES = sorted(CONSENT_PURPOSES)
REQUEST_STATUSES = sorted({*(s.value for s in RUNNING), "completed", "rejected"})
CASE_STATUSES = ["open", "closed"]


async def _step(rng: random.Random, customers: list[Customer]) -> None:
    """One random write to a table the facts are about."""
    kind = rng.choice(
        ["case", "case status", "case moved", "case gone", "request", "request status",
         "request gone", "consent", "consent gone"]
    )  # fmt: skip
    cases = [r["id"] for r in await SupportCase.all().values("id")]
    requests = [r["id"] for r in await RightsRequest.all().values("id")]
    consents = [r["id"] for r in await ConsentRecord.all().values("id")]
    who = rng.choice(customers)
    if kind == "case" or (kind.startswith("case") and not cases):
        await SupportCase.create(
            customer=who, subject="s", message="m", status=rng.choice(CASE_STATUSES),
            created_at=T0,
        )  # fmt: skip
    elif kind == "case status":
        await SupportCase.filter(id=rng.choice(cases)).update(status=rng.choice(CASE_STATUSES))
    elif kind == "case moved":
        await SupportCase.filter(id=rng.choice(cases)).update(customer_id=who.id)
    elif kind == "case gone":
        await SupportCase.filter(id=rng.choice(cases)).delete()
    elif kind == "request" or (kind.startswith("request") and not requests):
        await RightsRequest.create(
            customer=who, kind="access", status=rng.choice(REQUEST_STATUSES), channel="api",
            submitted_at=T0,
        )  # fmt: skip
    elif kind == "request status":
        status = rng.choice(REQUEST_STATUSES)
        await RightsRequest.filter(id=rng.choice(requests)).update(status=status)
    elif kind == "request gone":
        await RightsRequest.filter(id=rng.choice(requests)).delete()
    elif kind == "consent" or not consents:
        await ConsentRecord.create(
            customer=who, purpose=rng.choice(PURPOSES), granted=rng.random() < 0.6,
            source="registration", at=T0 + timedelta(hours=rng.randint(0, 3)),
        )  # fmt: skip
    else:
        await ConsentRecord.filter(id=rng.choice(consents)).delete()


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_writes_keep_each_customers_facts(seed: int) -> None:
    rng = random.Random(seed)
    customers = [await stored_customer(n, at=T0) for n in range(4)]
    for _ in range(60):
        await _step(rng, customers)
        await assert_facts_hold()
    # and a customer's deletion takes their facts with them
    await customers[0].delete()
    await assert_facts_hold()
    assert str(customers[0].id) not in await kept_facts()


async def test_the_migration_starts_the_table_from_the_tables() -> None:
    rng = random.Random(5)
    customers = [await stored_customer(n, at=T0) for n in range(6)]
    for _ in range(40):
        await _step(rng, customers)
    expected = await kept_facts()
    assert expected  # some fact holds of some customer
    await CustomerFact.all().delete()  # as before the migration: no rows
    conn = connections.get("default")
    migration = importlib.import_module("models.migrations.0022_customer_fact")
    await conn.execute_script(migration.backfill(conn.capabilities.dialect == "postgres"))
    assert await kept_facts() == expected
    await assert_facts_hold()


async def test_writers_at_once_for_one_customer_each_leave_their_fact() -> None:
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        pytest.skip("SQLite runs one writer at a time")
    customer = await stored_customer(0, at=T0)
    inserted = asyncio.Event()
    release = asyncio.Event()

    async def consent(purpose: str, first: bool = False) -> None:
        async with in_transaction() as tx:
            await ConsentRecord.create(
                customer=customer, purpose=purpose, granted=True, source="x", at=T0,
                using_db=tx,
            )  # fmt: skip
            if first:
                inserted.set()
                await release.wait()

    async def case() -> None:
        async with in_transaction() as tx:
            await SupportCase.create(
                customer=customer, subject="s", message="m", created_at=T0, using_db=tx
            )

    async def request() -> None:
        async with in_transaction() as tx:
            await RightsRequest.create(
                customer=customer, kind="access", status="pending", channel="api",
                submitted_at=T0, using_db=tx,
            )  # fmt: skip

    # given a transaction that granted one purpose and has not committed
    first = asyncio.create_task(consent(PURPOSES[0], first=True))
    await inserted.wait()
    # when the same customer's other purposes, a case and a request are written meanwhile
    others = [asyncio.create_task(consent(p)) for p in PURPOSES[1:]]
    others += [asyncio.create_task(case()), asyncio.create_task(request())]
    await asyncio.sleep(0.3)
    release.set()
    await asyncio.gather(first, *others)  # none fails
    # then the customer's row holds every fact
    assert await kept_facts() == {str(customer.id): (True, True, frozenset(PURPOSES))}
    await assert_facts_hold()
