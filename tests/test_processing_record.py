"""The Article 30 record of processing activities is generated from what Custos enforces:
the purposes, the access policy in force, the processor registry, the disclosure ledger and
the retention rules. GraphQL for legal, privacy officers and auditors; `custos
processing-record` for operators."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

from api.retention.rules import seed_default_rules
from api.services import Services
from api.sharing import ledger
from models import AuditEvent, Processor
from tests.conftest import GQL, signed_in_employee, stored_customer
from tests.test_cli import Cli

RECORD = "{ processingRecord }"
NOW = datetime(2020, 1, 1, tzinfo=UTC)  # before the test clock starts


async def processor(name: str, country: str, **extra: Any) -> Processor:
    return await Processor.create(
        name=name,
        contact="privacy@example.net",
        country=country,
        contract_reference=f"DPA-{name}",
        purposes=extra.get("purposes", ["marketing.email"]),
        categories=extra.get("categories", ["contact.email"]),
        active_from=extra.get("active_from", NOW),
        active_to=extra.get("active_to"),
        created_by=uuid4(),
        created_at=NOW,
        updated_by=uuid4(),
        updated_at=NOW,
    )


async def record_of(gql: GQL, services: Services, role: str) -> dict[str, Any]:
    token, _ = await signed_in_employee(gql, services, role)
    body = await gql(RECORD, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["processingRecord"]
    return result


async def test_the_record_names_purposes_categories_recipients_and_retention(
    gql: GQL, services: Services
) -> None:
    # given two processors (one outside the EEA, one whose contract ended), seeded
    # retention rules and two recorded disclosures to the police
    await processor("Mailer EU", "IE")
    await processor("Ads US", "US", purposes=["marketing.ads"], categories=["device.browser"])
    await processor("Old Carrier", "DE", active_to=services.clock.now() - timedelta(days=1))
    await seed_default_rules(now=services.clock.now())
    customer = await stored_customer(1, at=services.clock.now())
    for _ in range(2):
        await ledger.append(
            [
                ledger.Entry(
                    at=services.clock.now(),
                    customer_id=customer.id,
                    recipient="City Police",
                    categories=["contact.address"],
                    legal_basis=ledger.LegalBasis.COURT_ORDER,
                    recorded_by=uuid4(),
                    reference="CO-1",
                    note="names a person",
                )
            ]
        )
    # when legal asks for the record
    record = await record_of(gql, services, "legal")
    # then every purpose is there with its legal basis and the categories the access
    # policy lets it use
    purposes = {p["key"]: p for p in record["purposes"]}
    assert purposes["marketing.email"]["legalBasis"] == "consent"
    assert purposes["marketing.email"]["consentRequired"] is True
    assert "contact.email" in purposes["marketing.email"]["categories"]
    assert "contact.phone" not in purposes["marketing.email"]["categories"]
    assert {"device.ip", "behavior.browsing"} <= set(purposes["security"]["categories"])
    # and each category lists its processors and its retention
    categories = {c["category"]: c for c in record["categories"]}
    assert "account.credentials" not in categories
    assert categories["contact.email"]["processors"] == ["Mailer EU"]
    assert categories["behavior.browsing"]["retention"] == [
        {"anchor": "event_time", "period": "P13M"}
    ]
    assert categories["device.ip"]["retention"] == [{"anchor": "event_time", "period": "P30D"}]
    # and the recipients: processors with their contracts, disclosures counted by kind
    names = [p["name"] for p in record["recipients"]["processors"]]
    assert names == ["Ads US", "Mailer EU", "Old Carrier"]
    old = record["recipients"]["processors"][2]
    assert (old["active"], old["outsideEea"]) == (False, False)
    assert record["recipients"]["disclosures"] == [
        {
            "recipient": "City Police",
            "legalBasis": "court_order",
            "disclosures": 2,
            "last": services.clock.now().isoformat(timespec="microseconds"),
        }
    ]
    # and the active transfer outside the EEA is named
    assert record["transfersOutsideEea"] == ["Ads US"]
    assert record["format"] == "custos.processing-record/2"
    assert record["securityMeasures"]
    # and nothing personal is in it
    text = json.dumps(record)
    assert "names a person" not in text
    assert customer.email not in text
    assert str(customer.id) not in text
    # and the read is logged
    assert await AuditEvent.filter(event="register", operation="processingRecord").count() == 1


async def test_privacy_officers_and_auditors_read_it(gql: GQL, services: Services) -> None:
    for role in ("privacy_officer", "auditor"):
        gql.client.cookies.clear()
        record = await record_of(gql, services, role)
        assert record["purposes"][0]["key"] == "service"


async def test_other_roles_are_refused_and_logged(gql: GQL, services: Services) -> None:
    # given a marketing employee
    token, _ = await signed_in_employee(gql, services, "marketing")
    # when they ask for the record
    body = await gql(RECORD, token=token)
    # then it is refused and the refusal logged
    assert body["data"]["processingRecord"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    [denied] = await AuditEvent.filter(decision="deny", operation="processingRecord")
    assert denied.reason == "requires role auditor or legal or privacy_officer"


# --- the CLI ------------------------------------------------------------------------

SEED_LEDGER = """
import asyncio, sys, uuid
from datetime import UTC, datetime
from api.db import close_db, init_db
from api.sharing import ledger
from models import Customer

async def main():
    await init_db(sys.argv[1])
    try:
        now = datetime(2026, 11, 1, tzinfo=UTC)
        ids = []
        for n in range(3):
            c = await Customer.create(
                email=f"c{n}@example.com", password_hash="x", phone="+442079460958",
                address_line1="1 High St", address_city="London", address_country="GB",
                address_postal_code="N1 1AA", created_at=now, updated_at=now)
            ids.append(c.id)
        await ledger.append([
            ledger.Entry(at=now, customer_id=i, recipient="Tax Office",
                         categories=["contact.address"],
                         legal_basis="legal_obligation", recorded_by=uuid.uuid4(),
                         reference="TAX-7", note="secret note")
            for i in ids])
        print(ids[0])
    finally:
        await close_db()

asyncio.run(main())
"""


def test_cli_writes_the_record_and_exports_and_verifies_the_ledger(tmp_path: Path) -> None:
    # given a migrated database with three recorded disclosures
    cli = Cli(tmp_path)
    cli.migrate()
    seeded = cli.script(SEED_LEDGER)
    assert seeded.returncode == 0, seeded.stderr
    first_customer = seeded.stdout.strip()
    # when the record is written
    done = cli("processing-record")
    # then it is the same JSON document, with the seeded retention defaults
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["format"] == "custos.processing-record/2"
    assert {"category": "rights.requests", "anchor": "request_completed", "period": "P3Y"} in [
        {k: r[k] for k in ("category", "anchor", "period")} for r in record["retention"]
    ]
    # when the ledger is verified and exported
    verified = cli("disclosures", "verify")
    exported = cli("disclosures", "export")
    one = cli("disclosures", "export", "--format", "csv", "--customer", first_customer)
    # then the chain holds, every row is exported in chain order without the note
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == "disclosure ledger ok: 3 row(s) verified"
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["reference"] for r in rows] == ["TAX-7"] * 3
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert "secret note" not in exported.stdout
    assert "note" not in rows[0]
    assert exported.stderr.strip() == "exported 3 row(s)"
    # and the CSV of one customer has a header and that customer's row only
    lines = one.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("id,at,customer_id,")
    assert first_customer in lines[1]


TAMPER = """
import asyncio, sys
from api.db import close_db, init_db
from tortoise import connections

async def main():
    await init_db(sys.argv[1])
    try:
        await connections.get("default").execute_query(
            "UPDATE disclosure SET recipient = 'Someone else' WHERE id = 2")
    finally:
        await close_db()

asyncio.run(main())
"""


def test_cli_verify_names_the_first_altered_row(tmp_path: Path) -> None:
    # given three disclosures, the second altered behind the application's back
    cli = Cli(tmp_path)
    cli.migrate()
    assert cli.script(SEED_LEDGER).returncode == 0
    assert cli.script(TAMPER).returncode == 0, "SQLite has no append-only trigger"
    # when the ledger is verified
    done = cli("disclosures", "verify")
    # then it fails naming row 2
    assert done.returncode == 1
    assert "disclosure ledger BROKEN at row 2 (its content was altered)" in done.stderr
