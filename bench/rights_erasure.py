"""Erasure benchmark (issue 5, docs/ARCHITECTURE.md: numbers: "erasure likewise", under 1 s for a
customer with 10,000 visit events).

Each of 5 fresh customers gets 10,000 visits (and 200 anonymous visits linked by their
visitor id), consents, policy acceptances, support cases, sessions, mail, requests and an
access export; a bystander with as many visits shares the tables. `erase_customer` runs in
its own transaction and the time includes the commit; the median of the 5 is reported."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from pydantic import SecretStr
from tortoise.transactions import in_transaction

from api.clock import FakeClock
from api.db import close_db, init_db, migrate
from api.rights.erasure import erase_customer
from api.security.tokens import keyed_digest, token_hash
from api.services import Services, build_services
from api.settings import Settings
from models import (
    ConsentRecord,
    Customer,
    DataExport,
    OutboxMessage,
    PolicyAcceptance,
    RightsRequest,
    Session,
    SupportCase,
    VisitEvent,
)

VISITS = 10_000
ANONYMOUS_VISITS = 200
RUNS = 5
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def _customer(n: int) -> Customer:
    return await Customer.create(
        email=f"bench-erasure-{n}-{uuid4().hex[:8]}@example.com",
        password_hash="x",  # noqa: S106 (no one signs in)
        phone="+442079460000",
        address_line1=f"{n} Bench Street",
        address_city="London",
        address_postal_code="NW1 6XE",
        address_country="GB",
        created_at=NOW,
        updated_at=NOW,
    )


async def _visits(customer_id: UUID | None, digest: str, count: int) -> None:
    rows = [
        VisitEvent(
            customer_id=customer_id,
            visitor_digest=digest if i % 2 else None,
            purpose="analytics",
            at=NOW - timedelta(minutes=i),
            page=f"/products/{i % 500}",
            action="view",
            referrer="https://search.example/",
            browser="Firefox",
            os="Linux",
            device_type="desktop",
            language="en-GB",
            ip_truncated="198.51.100.0",
        )
        for i in range(count)
    ]
    await VisitEvent.bulk_create(rows, batch_size=1000)


async def _records(customer_id: UUID, email: str) -> UUID:
    """Everything but visits; returns the erasure request's id."""
    common = {"ip_truncated": "198.51.100.0", "user_agent": "Mozilla/5.0", "at": NOW}
    for purpose in ("analytics", "marketing.email", "marketing.ads", "personalization"):
        await ConsentRecord.create(
            customer_id=customer_id, purpose=purpose, granted=True, source="registration", **common
        )
    await PolicyAcceptance.create(customer_id=customer_id, version="1", **common)
    for i in range(3):
        await SupportCase.create(
            customer_id=customer_id, subject=f"Case {i}", message="Where is it?", created_at=NOW
        )
        await Session.create(
            token_hash=token_hash(uuid4().hex),
            customer_id=customer_id,
            created_at=NOW,
            expires_at=NOW + timedelta(days=30),
            idle_expires_at=NOW + timedelta(days=7),
            last_seen_at=NOW,
        )
        await OutboxMessage.create(
            kind="notice",
            customer_id=customer_id,
            recipient=email,
            subject="Hello",
            body_text="Hello",
            next_attempt_at=NOW,
            created_at=NOW,
        )
    return await _requests(customer_id)


async def _requests(customer_id: UUID) -> UUID:
    common = {"customer_id": customer_id, "channel": "account", "submitted_at": NOW}
    access = await RightsRequest.create(kind="access", status="completed", **common)
    await DataExport.create(
        request_id=access.id,
        customer_id=customer_id,
        token_hash=token_hash(uuid4().hex),
        document="{}",
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )
    erasure = await RightsRequest.create(kind="erasure", status="in_progress", **common)
    return UUID(str(erasure.id))


async def _seed(services: Services, n: int) -> tuple[UUID, UUID]:
    """A customer with every kind of row; returns (customer id, erasure request id)."""
    customer = await _customer(n)
    customer_id = UUID(str(customer.id))
    digest = keyed_digest(services.secret, "visitor", f"bench-{customer_id}")
    await _visits(customer_id, digest, VISITS)
    await _visits(None, digest, ANONYMOUS_VISITS)
    return customer_id, await _records(customer_id, customer.email)


async def _timed_erasure(services: Services, customer_id: UUID, request_id: UUID) -> float:
    started = time.perf_counter()
    async with in_transaction() as conn:
        await erase_customer(
            services=services,
            customer_id=customer_id,
            request_id=request_id,
            now=NOW,
            using_db=conn,
        )
    return time.perf_counter() - started


async def measure_erasure(database_url: str) -> float:
    """Median milliseconds of erasing a customer with 10,000 visits (5 fresh customers)."""
    await init_db(database_url)
    try:
        await migrate(database_url)
        settings = Settings(database_url=database_url, secret_key=SecretStr("bench-" * 8))
        services = build_services(settings, clock=FakeClock(NOW))
        bystander = await _customer(-1)
        await _visits(UUID(str(bystander.id)), "bystander", VISITS)
        times = []
        for n in range(RUNS):
            customer_id, request_id = await _seed(services, n)
            times.append(await _timed_erasure(services, customer_id, request_id))
            assert not await VisitEvent.filter(customer_id=customer_id).exists()
        assert await VisitEvent.filter(customer_id=bystander.id).count() == VISITS
        services.close()
    finally:
        await close_db()
    median = statistics.median(times) * 1000
    print(f"erasure, 10,000 visits: {median:.0f} ms (target < 1000 ms)")
    return median
