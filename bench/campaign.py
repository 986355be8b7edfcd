"""Campaign benchmark (issue 6): queue and deliver a campaign to 10,000 consenting
customers (with 10,000 more who withdrew) through a local aiosmtpd server, then check that
exactly the consenting 10,000 received one message each. Prints messages/s for queueing
and for delivery."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from aiosmtpd.controller import Controller
from pydantic import SecretStr

from api.clock import SystemClock
from api.db import close_db, init_db, migrate
from api.mail.sender import SmtpBackend, deliver_pending
from api.marketing.campaigns import CampaignDraft, create_campaign, queue_campaigns, start_sending
from api.services import build_services
from api.settings import Settings
from api.staff.service import create_employee
from models import ConsentRecord, Customer, OutboxMessage

CONSENTING = 10_000
WITHDRAWN = 10_000


class Counter:
    def __init__(self) -> None:
        self.recipients: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.recipients.extend(envelope.rcpt_tos)
        return "250 OK"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _seed(now: datetime) -> None:
    customers = [
        Customer(
            id=uuid4(),
            email=f"campaign{n}@bench.example",
            email_verified_at=now,
            password_hash="-",  # noqa: S106 (never signs in)
            phone="+442079460000",
            address_line1="1 Bench Street",
            address_city="London",
            address_postal_code="NW1 6XE",
            address_country="GB",
            created_at=now,
            updated_at=now,
        )
        for n in range(CONSENTING + WITHDRAWN)
    ]
    await Customer.bulk_create(customers, batch_size=1000)
    records = []
    for n, c in enumerate(customers):
        records.append(
            ConsentRecord(
                customer_id=c.id,
                purpose="marketing.email",
                granted=True,
                source="registration",
                at=now,
            )
        )
        if n >= CONSENTING:
            records.append(
                ConsentRecord(
                    customer_id=c.id,
                    purpose="marketing.email",
                    granted=False,
                    source="unsubscribe_link",
                    at=now + timedelta(seconds=1),
                )
            )
    await ConsentRecord.bulk_create(records, batch_size=1000)


async def measure(database_url: str) -> None:
    counter, port = Counter(), _port()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    settings = Settings(
        database_url=database_url,
        secret_key=SecretStr("bench-secret-" + "x" * 40),
        public_url="https://shop.example",
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        campaign_per_second=1_000_000,
        mail_poll_seconds=0,
    )
    await init_db(database_url)
    services = build_services(settings, clock=SystemClock())
    try:
        await migrate(database_url)
        await services.load_authorizer()
        now = datetime.now(UTC) - timedelta(minutes=1)
        await _seed(now)
        marketer = await create_employee(
            services=services,
            email=f"marketer-{uuid4().hex[:8]}@staff.example",
            name="Bench marketer",
            roles=["marketing"],
            password="bench password that is long enough",  # noqa: S106
        )
        await services.authorizer.reload()
        draft = CampaignDraft(
            "Bench", "Hello from the benchmark.", "<p>Hello</p>", "marketing.email"
        )
        campaign = await create_campaign(services=services, draft=draft, created_by=marketer.id)
        await start_sending(services=services, campaign_id=campaign.id, sent_by=marketer.id)
        started = time.perf_counter()
        await queue_campaigns(services=services)
        queued_s = time.perf_counter() - started
        queued = await OutboxMessage.filter(campaign_id=campaign.id).count()
        backend = SmtpBackend(settings)
        started = time.perf_counter()
        while await deliver_pending(
            backend=backend, settings=settings, clock=services.clock, limit=500
        ):
            pass
        sent_s = time.perf_counter() - started
        await backend.close()
    finally:
        services.close()
        await close_db()
        controller.stop()
    ours = [r for r in counter.recipients if r.endswith("@bench.example")]
    once = len(ours) == len(set(ours))
    consenting = {f"campaign{n}@bench.example" for n in range(CONSENTING)}
    print(f"campaign to {CONSENTING:,} consenting customers ({WITHDRAWN:,} withdrew):")
    print(f"  queued   {queued:,} messages in {queued_s:.1f} s ({queued / queued_s:,.0f} msg/s)")
    print(
        f"  delivered {len(counter.recipients):,} over SMTP in {sent_s:.1f} s "
        f"({len(counter.recipients) / sent_s:,.0f} msg/s)"
    )
    print(f"  exactly the consenting, once each: {set(ours) == consenting and once}")


def report(database_url: str) -> None:
    asyncio.run(measure(database_url))
