"""Access export benchmark (issue 5): building the export of a customer with 10,000 visit
events and issuing its download link (`build_export` + `issue_download` in one transaction,
as fulfilling an access request does), median of 5 runs. Target: under 1 s
(docs/ARCHITECTURE.md: numbers). Runs in this process against the database given; the
customer it seeds is deleted afterwards."""

from __future__ import annotations

import asyncio
import statistics
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

from tortoise.transactions import in_transaction

from api.db import close_db, init_db, migrate
from api.rights.export import build_export, issue_download
from api.services import Services, build_services
from api.settings import Settings
from authz.audit import AuditRecord, append
from models import (
    ConsentRecord,
    Customer,
    DataExport,
    OutboxMessage,
    RightsRequest,
    RightsTransition,
    SupportCase,
    VisitEvent,
)

VISITS = 10_000
RUNS = 5
T0 = datetime(2026, 1, 1, tzinfo=UTC)
UA_BROWSERS = ("Chrome 120", "Firefox 121", "Safari 17")


async def _seed_customer() -> Customer:
    return await Customer.create(
        email="bench.export@example.com",
        password_hash="x",  # noqa: S106 (no one signs in)
        phone="+442079460999",
        address_line1="1 Benchmark Row",
        address_city="London",
        address_postal_code="NW1 6XE",
        address_country="GB",
        email_verified_at=T0,
        created_at=T0,
        updated_at=T0,
    )


def _visit(customer: Customer, i: int) -> VisitEvent:
    security = i % 20 == 0
    return VisitEvent(
        customer=customer,
        purpose="security" if security else "analytics",
        at=T0 + timedelta(seconds=37 * i),
        page=f"/catalogue/rings/item-{i % 500}?colour=gold&size={i % 12}",
        action="login" if security else "view",
        referrer="" if security else "https://search.example.com/results",
        campaign="" if i % 7 else "winter-sale",
        browser=UA_BROWSERS[i % 3],
        os="Windows",
        device_type="desktop",
        language="en-GB",
        ip_full="198.51.100.23" if security else None,
        ip_truncated=None if security else "198.51.100.0/24",
    )


async def _seed_history(customer: Customer) -> None:
    """Consents, cases, a request with its transitions and staff accesses: a bit of each
    section, so every query of the export runs."""
    for n, purpose in enumerate(("analytics", "marketing.email", "personalization") * 3):
        await ConsentRecord.create(
            customer=customer,
            purpose=purpose,
            granted=n % 2 == 0,
            source="preference_centre",
            policy_version="1",
            at=T0 + timedelta(days=n),
        )
    for n in range(3):
        await SupportCase.create(
            customer=customer, subject=f"Order {n}", message="Where is it?", created_at=T0
        )
    request = await RightsRequest.create(
        customer=customer, kind="access", status="in_progress", channel="account", submitted_at=T0
    )
    for before, after in (("unverified", "pending"), ("pending", "approved")):
        await RightsTransition.create(
            request=request, from_status=before, to_status=after, actor_kind="customer", at=T0
        )
    await append(
        [
            AuditRecord(
                at=T0 + timedelta(hours=n),
                actor_kind="employee",
                event="access",
                decision="allow",
                request_id=f"bench{n:027d}",
                roles="customer_care",
                category="contact.email",
                action="read",
                purpose="support",
                subject_id=str(customer.id),
            )
            for n in range(20)
        ]
    )


async def _export_once(services: Services, customer_id: UUID, request_id: UUID) -> float:
    started = time.perf_counter()
    async with in_transaction() as conn:
        document = await build_export(
            customer_id=customer_id, include=lambda category: True, now=services.clock.now()
        )
        await issue_download(
            services=services,
            request_id=request_id,
            customer_id=customer_id,
            document=document,
            using_db=conn,
        )
    assert len(document["visits"]) == VISITS
    return time.perf_counter() - started


async def _cleanup(customer_id: UUID) -> None:
    await DataExport.filter(customer_id=customer_id).delete()
    await OutboxMessage.filter(customer_id=customer_id).delete()
    await VisitEvent.filter(customer_id=customer_id).delete()
    await Customer.filter(id=customer_id).delete()


async def measure_export(database_url: str) -> float:
    """Milliseconds to build and issue the export of a customer with 10,000 visits (the
    median of 5 runs)."""
    await init_db(database_url)
    services = build_services(Settings(database_url=database_url, mail_poll_seconds=0))
    try:
        await migrate(database_url)
        customer = await _seed_customer()
        try:
            visits = [_visit(customer, i) for i in range(VISITS)]
            await VisitEvent.bulk_create(visits, batch_size=1000)
            await _seed_history(customer)
            request_id = (await RightsRequest.get(customer_id=customer.id)).id
            times = [await _export_once(services, customer.id, request_id) for _ in range(RUNS)]
        finally:
            await _cleanup(customer.id)
    finally:
        services.close()
        await close_db()
    return statistics.median(times) * 1000


def report(database_url: str) -> float:
    """Run the measure and print its line."""
    ms = asyncio.run(measure_export(database_url))
    print(f"access export, {VISITS:,} visits: {ms:.0f} ms (target < 1000 ms)")
    return ms
