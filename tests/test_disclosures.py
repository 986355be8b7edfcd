"""The disclosure ledger (issue 7, point 2): legal records disclosures to authorities and
others with their legal basis and reference; customers see those about them unless a
non-disclosure order runs; auditors query, export and verify the ledger, which is
append-only (on PostgreSQL) and hash-chained like the audit log."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import os
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from tortoise import connections
from tortoise.exceptions import OperationalError

from api.clock import FakeClock
from api.rights.export import build_export
from api.services import Services
from api.sharing import ledger
from authz.audit import GENESIS
from models import AuditEvent, Customer, Disclosure
from tests.cli_helpers import custos, migrated_file
from tests.conftest import GQL, login, register, signed_in_employee, stored_customer

NODE = """id at customerId recipient processorId categories purpose legalBasis reference
          nonDisclosureUntil recordedBy hash"""
RECORD = f"""
mutation ($customer: ID!, $recipient: String!, $categories: [String!]!,
          $basis: DisclosureBasis!, $reference: String!, $note: String!, $purpose: String,
          $until: DateTime) {{
  recordDisclosure(customerId: $customer, recipient: $recipient, categories: $categories,
                   legalBasis: $basis, reference: $reference, note: $note, purpose: $purpose,
                   nonDisclosureUntil: $until) {{
    __typename
    ... on DisclosureRecorded {{ disclosure {{ {NODE} note }} }}
    ... on InputError {{ code field fields {{ field code }} }} }} }}
"""
MINE = "{ me { disclosures { at recipient categories purpose legalBasis reference } } }"
LEDGER = f"""
query ($filter: DisclosureFilter, $first: Int!, $after: String) {{
  disclosureLedger(filter: $filter, first: $first, after: $after) {{
    edges {{ cursor node {{ {NODE} }} }} pageInfo {{ hasNextPage endCursor }} }} }}
"""
NOTES = "{ disclosureLedger(first: 10) { edges { node { id note } } } }"
VERIFY = "{ verifyDisclosureLedger { ok checked firstBrokenId problem } }"
SET_CONSENT = """
mutation ($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) { __typename } }
"""
SHARE = """
mutation ($processor: ID!, $ids: [ID!]) {
  shareWithProcessor(processorId: $processor, categories: ["contact.address"],
                     purpose: "service", customerIds: $ids) {
    __typename ... on DataShared { shared } } }
"""
CREATE_PROCESSOR = """
mutation ($input: ProcessorInput!) {
  createProcessor(input: $input) { ... on ProcessorSaved { processor { id } } } }
"""
COURT = "Westminster Magistrates' Court, order 2026/117"


async def staff(
    gql: GQL, services: Services, role: str, name: str | None = None
) -> tuple[str, str]:
    token, employee_id = await signed_in_employee(gql, services, role, name=name)
    gql.client.cookies.clear()
    return token, employee_id


async def customer(gql: GQL, email: str = "jane.doe@example.com") -> tuple[str, Customer]:
    await register(gql, email=email)
    token = await login(gql, email)
    gql.client.cookies.clear()
    return token, await Customer.get(email=email)


async def record(gql: GQL, token: str, customer_id: object, **overrides: Any) -> dict[str, Any]:
    variables: dict[str, Any] = {
        "customer": str(customer_id),
        "recipient": "Metropolitan Police Service",
        "categories": ["contact.email", "contact.address"],
        "basis": "COURT_ORDER",
        "reference": COURT,
        "note": "Asked for by DS Quillby; served by hand.",
        "purpose": None,
        "until": None,
    }
    variables.update(overrides)
    body = await gql(RECORD, variables, token)
    assert body.get("data"), body
    result: dict[str, Any] = body["data"]["recordDisclosure"]
    return result


async def mine(gql: GQL, token: str) -> list[dict[str, Any]]:
    body = await gql(MINE, token=token)
    assert "errors" not in body, body
    found: list[dict[str, Any]] = body["data"]["me"]["disclosures"]
    return found


async def verified(gql: GQL, services: Services) -> dict[str, Any]:
    token, _ = await staff(gql, services, "auditor")
    body = await gql(VERIFY, token=token)
    result: dict[str, Any] = body["data"]["verifyDisclosureLedger"]
    return result


def entry(n: int, at: datetime, **overrides: Any) -> ledger.Entry:
    values: dict[str, Any] = {
        "at": at,
        "customer_id": UUID(int=n + 1),
        "recipient": "HM Revenue & Customs",
        "categories": ["contact.email"],
        "legal_basis": ledger.LegalBasis.LEGAL_OBLIGATION,
        "recorded_by": UUID(int=999),
        "reference": f"REF-{n}",
        "note": f"note {n}",
    }
    values.update(overrides)
    return ledger.Entry(**values)


async def refusals(operation: str = "recordDisclosure") -> list[AuditEvent]:
    return await AuditEvent.filter(event="disclosure", operation=operation, decision="deny")


# ---------------------------------------------------------------------------- recording


async def test_legal_records_a_court_order_and_the_customer_sees_it(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a customer and legal
    jane_token, jane = await customer(gql)
    legal, legal_id = await staff(gql, services, "legal")
    # when legal records a disclosure under a court order
    result = await record(gql, legal, jane.id)
    # then it is in the ledger as given, with legal's note and who recorded it
    assert result["__typename"] == "DisclosureRecorded", result
    shown = result["disclosure"]
    assert {k: v for k, v in shown.items() if k not in ("id", "at", "hash")} == {
        "customerId": str(jane.id),
        "recipient": "Metropolitan Police Service",
        "processorId": None,
        "categories": ["contact.email", "contact.address"],
        "purpose": None,
        "legalBasis": "COURT_ORDER",
        "reference": COURT,
        "nonDisclosureUntil": None,
        "recordedBy": legal_id,
        "note": "Asked for by DS Quillby; served by hand.",
    }
    assert datetime.fromisoformat(shown["at"]) == clock.now()
    [row] = await Disclosure.all()
    assert (str(row.id), row.hash, row.prev_hash) == (shown["id"], shown["hash"], GENESIS)
    assert (row.legal_basis, row.reference, row.note) == (
        "court_order",
        COURT,
        "Asked for by DS Quillby; served by hand.",
    )
    # and the chain verifies for an auditor
    assert await verified(gql, services) == {
        "ok": True,
        "checked": 1,
        "firstBrokenId": None,
        "problem": None,
    }
    # and the customer sees it, without legal's note (which is no field of theirs)
    assert await mine(gql, jane_token) == [
        {
            "at": shown["at"],
            "recipient": "Metropolitan Police Service",
            "categories": ["contact.email", "contact.address"],
            "purpose": None,
            "legalBasis": "COURT_ORDER",
            "reference": COURT,
        }
    ]
    body = await gql("{ me { disclosures { note } } }", token=jane_token)
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # and the recording is logged with the basis and reference, never the note
    [event] = await AuditEvent.filter(event="disclosure", operation="record")
    assert (event.actor_id, event.subject_id, event.decision) == (legal_id, str(jane.id), "allow")
    assert event.reason == f"court_order {COURT}"
    assert not await AuditEvent.filter(reason__contains="Quillby").exists()


async def test_a_customer_sees_only_disclosures_about_them(gql: GQL, services: Services) -> None:
    jane_token, jane = await customer(gql)
    _, other = await customer(gql, "other@example.com")
    legal, _ = await staff(gql, services, "legal")
    await record(gql, legal, other.id, reference="Order about someone else")
    assert await mine(gql, jane_token) == []
    await record(gql, legal, jane.id, basis="REGULATOR", reference="ICO case 41")
    assert [d["reference"] for d in await mine(gql, jane_token)] == ["ICO case 41"]


async def test_a_non_disclosure_order_hides_it_from_the_customer_until_its_date(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a disclosure the regulator forbids telling her about for 30 days, and another
    jane_token, jane = await customer(gql)
    legal, _ = await staff(gql, services, "legal")
    until = clock.now() + timedelta(days=30)
    gagged = await record(
        gql,
        legal,
        jane.id,
        basis="REGULATOR",
        reference="FCA notice 2026-3",
        until=until.isoformat(),
    )
    assert gagged["__typename"] == "DisclosureRecorded", gagged
    assert datetime.fromisoformat(gagged["disclosure"]["nonDisclosureUntil"]) == until
    await record(gql, legal, jane.id, basis="LEGAL_OBLIGATION", reference="HMRC 123")

    async def seen() -> tuple[list[str], list[str]]:
        shown = [d["reference"] for d in await mine(gql, jane_token)]
        document = await build_export(customer_id=jane.id, include=lambda _: True, now=clock.now())
        return shown, [d["reference"] for d in document["disclosures"]]

    # then neither her account nor her access export shows it yet, only the other one
    assert await seen() == (["HMRC 123"], ["HMRC 123"])
    clock.advance(days=30, seconds=-1)
    jane_token = await login(gql)
    gql.client.cookies.clear()
    assert await seen() == (["HMRC 123"], ["HMRC 123"])
    # when the date comes, both show it (newest first)
    clock.advance(seconds=1)
    assert await seen() == (["HMRC 123", "FCA notice 2026-3"], ["HMRC 123", "FCA notice 2026-3"])
    # and the ledger showed it to auditors all along (it is about the customer, not them)
    assert await Disclosure.filter(nondisclosure_until=until).count() == 1


@pytest.mark.parametrize(
    ("basis", "purpose", "delta"),
    [
        ("CONSENT", "analytics", timedelta(days=30)),
        ("VITAL_INTEREST", None, timedelta(days=30)),
        ("COURT_ORDER", None, timedelta(seconds=-1)),
        ("COURT_ORDER", None, timedelta(0)),
    ],
)
async def test_only_an_authority_can_order_non_disclosure_and_only_ahead(
    gql: GQL,
    services: Services,
    clock: FakeClock,
    basis: str,
    purpose: str | None,
    delta: timedelta,
) -> None:
    _, jane = await customer(gql)
    legal, _ = await staff(gql, services, "legal")
    until = (clock.now() + delta).isoformat()
    result = await record(gql, legal, jane.id, basis=basis, purpose=purpose, until=until)
    assert (result["__typename"], result["code"], result["field"]) == (
        "InputError",
        "VALIDATION",
        "nonDisclosureUntil",
    )
    assert result["fields"] == [{"field": "nonDisclosureUntil", "code": "VALIDATION"}]
    assert await Disclosure.all().count() == 0
    assert [d.reason for d in await refusals()] == ["VALIDATION"]


async def test_a_disclosure_on_consent_needs_the_customers_consent_now(
    gql: GQL, services: Services
) -> None:
    jane_token, jane = await customer(gql)
    legal, _ = await staff(gql, services, "legal")
    insurer = {"basis": "CONSENT", "recipient": "Acme Insurance", "reference": ""}
    # without a purpose, or with one that needs no consent, it is invalid
    for purpose in (None, "service"):
        result = await record(gql, legal, jane.id, purpose=purpose, **insurer)
        assert (result["code"], result["field"]) == ("VALIDATION", "purpose"), result
    # with a purpose she has not consented to, it is refused
    result = await record(gql, legal, jane.id, purpose="marketing.ads", **insurer)
    assert (result["__typename"], result["code"], result["field"]) == (
        "InputError",
        "CONSENT_REQUIRED",
        "purpose",
    )
    assert await Disclosure.all().count() == 0
    assert [d.reason for d in await refusals()] == ["VALIDATION", "VALIDATION", "CONSENT_REQUIRED"]
    # once she consents, it is recorded with the purpose
    await gql(SET_CONSENT, {"purpose": "marketing.ads", "granted": True}, jane_token)
    result = await record(gql, legal, jane.id, purpose="marketing.ads", **insurer)
    assert result["__typename"] == "DisclosureRecorded", result
    assert (result["disclosure"]["legalBasis"], result["disclosure"]["purpose"]) == (
        "CONSENT",
        "marketing.ads",
    )
    # and after she withdraws, it is refused again
    await gql(SET_CONSENT, {"purpose": "marketing.ads", "granted": False}, jane_token)
    result = await record(gql, legal, jane.id, purpose="marketing.ads", **insurer)
    assert result["code"] == "CONSENT_REQUIRED"
    assert await Disclosure.all().count() == 1
    # and every refusal names whose data it was about
    assert {d.subject_id for d in await refusals()} == {str(jane.id)}


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"basis": "PROCESSOR_CONTRACT"}, "legalBasis", "VALIDATION"),
        ({"recipient": "   "}, "recipient", "VALIDATION"),
        ({"recipient": "x" * 201}, "recipient", "VALIDATION"),
        ({"reference": ""}, "reference", "VALIDATION"),
        ({"note": "x" * 2001}, "note", "VALIDATION"),
        ({"categories": []}, "categories", "VALIDATION"),
        ({"categories": ["contact.email", "account.credentials"]}, "categories[1]", "VALIDATION"),
        ({"categories": ["contact.fax"]}, "categories[0]", "VALIDATION"),
        ({"categories": ["contact.email", "contact.email"]}, "categories[1]", "VALIDATION"),
        ({"purpose": "telepathy"}, "purpose", "VALIDATION"),
        ({"purpose": "x" * 40}, "purpose", "VALIDATION"),
        ({"customer": "00000000-0000-4000-8000-000000000000"}, "customerId", "NOT_FOUND"),
        ({"customer": "jane"}, "customerId", "NOT_FOUND"),
    ],
)
async def test_bad_input_records_nothing(
    gql: GQL, services: Services, overrides: dict[str, Any], field: str, code: str
) -> None:
    _, jane = await customer(gql)
    legal, _ = await staff(gql, services, "legal")
    result = await record(gql, legal, jane.id, **overrides)
    assert (result["__typename"], result["code"], result["field"]) == ("InputError", code, field)
    assert await Disclosure.all().count() == 0
    assert [d.reason for d in await refusals()] == [code]


@pytest.mark.parametrize("role", ["marketing", "privacy_officer", "auditor", "customer_care"])
async def test_only_legal_records_disclosures(gql: GQL, services: Services, role: str) -> None:
    _, jane = await customer(gql)
    token, employee_id = await staff(gql, services, role)
    variables = {
        "customer": str(jane.id),
        "recipient": "Metropolitan Police Service",
        "categories": ["contact.email"],
        "basis": "COURT_ORDER",
        "reference": COURT,
        "note": "",
    }
    body = await gql(RECORD, variables, token)
    assert body["data"] == {"recordDisclosure": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await Disclosure.all().count() == 0
    [denial] = await AuditEvent.filter(decision="deny")
    assert (denial.event, denial.operation, denial.actor_id, denial.reason) == (
        "access",
        "recordDisclosure",
        employee_id,
        "requires role legal",
    )


async def test_a_customer_cannot_record_a_disclosure(gql: GQL) -> None:
    token, jane = await customer(gql)
    variables = {
        "customer": str(jane.id),
        "recipient": "Me",
        "categories": ["contact.email"],
        "basis": "CONSENT",
        "reference": "",
        "note": "",
        "purpose": "analytics",
    }
    body = await gql(RECORD, variables, token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await Disclosure.all().count() == 0


# ---------------------------------------------------------------------------- the ledger


@pytest.fixture
async def ledgered(clock: FakeClock) -> list[Disclosure]:
    """Seven rows an hour apart: three customers, two bases, three recipients."""
    start = clock.now() - timedelta(hours=7)
    court = ledger.LegalBasis.COURT_ORDER
    entries = [
        entry(0, start),
        entry(1, start + timedelta(hours=1), legal_basis=court, recipient="Met Police"),
        entry(0, start + timedelta(hours=2), legal_basis=court, recipient="Met Police"),
        entry(2, start + timedelta(hours=3)),
        entry(1, start + timedelta(hours=4), recipient="Ofcom"),
        entry(0, start + timedelta(hours=5)),
        entry(2, start + timedelta(hours=6), legal_basis=court, recipient="Met Police"),
    ]
    rows = []
    for one in entries:  # one append each, as they would happen
        rows.extend(await ledger.append([one]))
    return rows


async def ledger_page(gql: GQL, token: str, **variables: Any) -> dict[str, Any]:
    body = await gql(LEDGER, {"first": 50, **variables}, token)
    assert "errors" not in body, body
    page: dict[str, Any] = body["data"]["disclosureLedger"]
    return page


def ids_of(page: dict[str, Any]) -> list[int]:
    return [int(e["node"]["id"]) for e in page["edges"]]


async def test_auditors_filter_the_ledger(
    gql: GQL, services: Services, ledgered: list[Disclosure]
) -> None:
    token, auditor_id = await staff(gql, services, "auditor")
    rows = ledgered
    newest_first = [r.id for r in reversed(rows)]
    # everything, newest first
    assert ids_of(await ledger_page(gql, token)) == newest_first
    # by customer
    page = await ledger_page(gql, token, filter={"customerId": str(UUID(int=1))})
    assert ids_of(page) == [rows[5].id, rows[2].id, rows[0].id]
    # by basis
    page = await ledger_page(gql, token, filter={"legalBasis": "COURT_ORDER"})
    assert ids_of(page) == [rows[6].id, rows[2].id, rows[1].id]
    assert {e["node"]["legalBasis"] for e in page["edges"]} == {"COURT_ORDER"}
    # by recipient
    page = await ledger_page(gql, token, filter={"recipient": "Ofcom"})
    assert ids_of(page) == [rows[4].id]
    # by time: since inclusive, until exclusive
    window = {"since": rows[2].at.isoformat(), "until": rows[5].at.isoformat()}
    assert ids_of(await ledger_page(gql, token, filter=window)) == [
        rows[4].id,
        rows[3].id,
        rows[2].id,
    ]
    # combined
    both = {"customerId": str(UUID(int=1)), "legalBasis": "COURT_ORDER"}
    assert ids_of(await ledger_page(gql, token, filter=both)) == [rows[2].id]
    # a node shows everything but the note
    node = (await ledger_page(gql, token, filter={"recipient": "Ofcom"}))["edges"][0]["node"]
    assert node == {
        "id": str(rows[4].id),
        "at": rows[4].at.isoformat(),
        "customerId": str(UUID(int=2)),
        "recipient": "Ofcom",
        "processorId": None,
        "categories": ["contact.email"],
        "purpose": None,
        "legalBasis": "LEGAL_OBLIGATION",
        "reference": "REF-1",
        "nonDisclosureUntil": None,
        "recordedBy": str(UUID(int=999)),
        "hash": rows[4].hash,
    }
    # and each query is logged, with the customer asked about
    reads = await AuditEvent.filter(event="disclosure", operation="disclosureLedger")
    assert len(reads) == 7
    assert {r.actor_id for r in reads} == {auditor_id}
    assert sorted(r.subject_id for r in reads if r.subject_id) == [str(UUID(int=1))] * 2


async def test_auditors_page_through_the_ledger_newest_first(
    gql: GQL, services: Services, ledgered: list[Disclosure]
) -> None:
    token, _ = await staff(gql, services, "auditor")
    seen: list[int] = []
    pages = 0
    after = None
    while True:
        page = await ledger_page(gql, token, first=3, after=after)
        seen.extend(ids_of(page))
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]
    assert pages == 3
    assert seen == [r.id for r in reversed(ledgered)]
    # a filter pages the same way
    first = await ledger_page(gql, token, first=2, filter={"legalBasis": "COURT_ORDER"})
    rest = await ledger_page(
        gql,
        token,
        first=2,
        after=first["pageInfo"]["endCursor"],
        filter={"legalBasis": "COURT_ORDER"},
    )
    assert ids_of(first) + ids_of(rest) == [ledgered[6].id, ledgered[2].id, ledgered[1].id]
    assert (first["pageInfo"]["hasNextPage"], rest["pageInfo"]["hasNextPage"]) == (True, False)


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"first": 0}, "VALIDATION"),
        ({"first": 201}, "VALIDATION"),
        ({"after": "not-a-cursor"}, "VALIDATION"),
        ({"filter": {"customerId": "jane"}}, "NOT_FOUND"),
    ],
)
async def test_bad_ledger_arguments_are_refused(
    gql: GQL, services: Services, ledgered: list[Disclosure], variables: dict[str, Any], code: str
) -> None:
    token, _ = await staff(gql, services, "auditor")
    body = await gql(LEDGER, {"first": 50, **variables}, token)
    assert body["data"] == {"disclosureLedger": None}
    assert body["errors"][0]["extensions"]["code"] == code


async def test_only_legal_reads_legals_notes(
    gql: GQL, services: Services, ledgered: list[Disclosure]
) -> None:
    # when an auditor asks for the notes
    auditor, auditor_id = await staff(gql, services, "auditor")
    body = await gql(NOTES, token=auditor)
    # then each is null with a FORBIDDEN error at its path, and the refusals are logged
    edges = body["data"]["disclosureLedger"]["edges"]
    assert [e["node"]["note"] for e in edges] == [None] * 7
    assert [(e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        (["disclosureLedger", "edges", i, "node", "note"], "FORBIDDEN") for i in range(7)
    ]
    denials = await AuditEvent.filter(event="access", operation="note", decision="deny")
    assert len(denials) == 7
    assert {d.actor_id for d in denials} == {auditor_id}
    # when legal asks, they read them
    legal, _ = await staff(gql, services, "legal")
    body = await gql(NOTES, token=legal)
    assert "errors" not in body, body
    notes = [e["node"]["note"] for e in body["data"]["disclosureLedger"]["edges"]]
    assert notes == [r.note for r in reversed(ledgered)]


@pytest.mark.parametrize("role", ["marketing", "customer_care", "privacy_officer", "admin"])
async def test_other_roles_cannot_read_or_verify_the_ledger(
    gql: GQL, services: Services, ledgered: list[Disclosure], role: str
) -> None:
    token, employee_id = await staff(gql, services, role)
    listed = await gql(LEDGER, {"first": 50}, token)
    checked = await gql(VERIFY, token=token)
    for body, operation in ((listed, "disclosureLedger"), (checked, "verifyDisclosureLedger")):
        assert body["data"] == {operation: None}
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    denials = await AuditEvent.filter(decision="deny").order_by("id")
    assert [(d.event, d.operation, d.actor_id) for d in denials] == [
        ("access", "disclosureLedger", employee_id),
        ("access", "verifyDisclosureLedger", employee_id),
    ]


async def test_customers_cannot_read_the_ledger(gql: GQL, ledgered: list[Disclosure]) -> None:
    token, _ = await customer(gql)
    body = await gql(LEDGER, {"first": 50}, token)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["data"] == {"disclosureLedger": None}


# ---------------------------------------------------------------------------- the chain


def _dialect() -> str:
    return str(connections.get("default").capabilities.dialect)


async def _tamper(sql: str) -> None:
    """What an intruder with database access would do (the app's trigger set aside)."""
    conn = connections.get("default")
    if _dialect() == "postgres":
        await conn.execute_script(
            "ALTER TABLE disclosure DISABLE TRIGGER disclosure_append_only;"
            f"{sql};"
            "ALTER TABLE disclosure ENABLE TRIGGER disclosure_append_only;"
        )
    else:
        await conn.execute_script(sql)


async def test_a_share_and_a_recorded_disclosure_make_one_chain(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given legal registers a carrier and shares three customers' addresses with it
    people = [await stored_customer(n, at=clock.now()) for n in range(3)]
    legal, _ = await staff(gql, services, "legal")
    carrier = {
        "name": "Parcelforce Couriers",
        "contact": "privacy@parcelforce.example",
        "country": "GB",
        "contractReference": "CARRIER-7",
        "purposes": ["service"],
        "categories": ["contact.address"],
        "activeFrom": (clock.now() - timedelta(days=1)).isoformat(),
    }
    body = await gql(CREATE_PROCESSOR, {"input": carrier}, legal)
    processor_id = body["data"]["createProcessor"]["processor"]["id"]
    shared = await gql(
        SHARE, {"processor": processor_id, "ids": [str(c.id) for c in people]}, legal
    )
    assert shared["data"]["shareWithProcessor"]["shared"] == 3, shared
    # and then records a disclosure about one of them
    clock.advance(seconds=5)
    recorded = await record(gql, legal, people[1].id)
    assert recorded["__typename"] == "DisclosureRecorded", recorded
    # then the four rows are chained from genesis, and verify walks them all
    rows = await Disclosure.all().order_by("id")
    assert [r.legal_basis for r in rows] == ["processor_contract"] * 3 + ["court_order"]
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert await verified(gql, services) == {
        "ok": True,
        "checked": 4,
        "firstBrokenId": None,
        "problem": None,
    }
    assert (await ledger.verify(batch=3)).ok
    # and an auditor finds the share's rows by processor
    auditor, _ = await staff(gql, services, "auditor", name="second-auditor")
    page = await ledger_page(gql, auditor, filter={"processorId": processor_id})
    assert ids_of(page) == [r.id for r in reversed(rows[:3])]
    assert {e["node"]["processorId"] for e in page["edges"]} == {processor_id}


async def test_concurrent_appends_keep_one_chain(clock: FakeClock) -> None:
    await asyncio.gather(
        *(ledger.append([entry(i, clock.now()), entry(i + 100, clock.now())]) for i in range(8))
    )
    result = await ledger.verify(batch=5)
    assert (result.ok, result.checked) == (True, 16)


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE disclosure SET recipient = 'Nobody' WHERE id = {id}",
        "UPDATE disclosure SET legal_basis = 'consent' WHERE id = {id}",
        "UPDATE disclosure SET customer_id = '00000000-0000-4000-8000-000000000009' "
        "WHERE id = {id}",
        "UPDATE disclosure SET categories = '[\"contact.phone\"]' WHERE id = {id}",
        "UPDATE disclosure SET nondisclosure_until = at WHERE id = {id}",
    ],
)
async def test_altering_a_row_is_named_by_verify(
    gql: GQL, services: Services, ledgered: list[Disclosure], sql: str
) -> None:
    # given a chain of seven rows, when someone edits the fifth directly in the database
    victim = ledgered[4]
    await _tamper(sql.format(id=victim.id))
    # then verify names exactly that row, the four before it intact
    result = await ledger.verify(batch=2)
    assert (result.ok, result.first_broken_id, result.checked) == (False, victim.id, 4)
    assert await verified(gql, services) == {
        "ok": False,
        "checked": 4,
        "firstBrokenId": str(victim.id),
        "problem": "its content was altered",
    }


async def test_deleting_a_row_is_named_by_verify(ledgered: list[Disclosure]) -> None:
    await _tamper(f"DELETE FROM disclosure WHERE id = {ledgered[2].id}")
    result = await ledger.verify()
    assert (result.ok, result.first_broken_id, result.checked) == (False, ledgered[3].id, 2)
    assert result.problem == "its link to the previous row"


async def test_the_note_is_outside_the_chain(ledgered: list[Disclosure]) -> None:
    # blanking (erasure) or even rewriting a note leaves the chain whole: it is not evidence
    await _tamper(f"UPDATE disclosure SET note = 'rewritten' WHERE id = {ledgered[1].id}")
    await Disclosure.filter(id=ledgered[2].id).update(note="")
    assert (await ledger.verify()).ok


async def test_the_application_cannot_alter_or_delete_disclosures(
    ledgered: list[Disclosure],
) -> None:
    if _dialect() != "postgres":
        pytest.skip("the append-only trigger is PostgreSQL's (SQLite is the embedded default)")
    row = ledgered[3]
    changes: list[dict[str, Any]] = [
        {"recipient": "Nobody"},
        {"reference": "REF-X"},
        {"legal_basis": "consent"},
        {"at": row.at - timedelta(days=1)},
        {"nondisclosure_until": row.at + timedelta(days=1)},
        {"note": "a new note"},
        {"note": "", "recipient": "Nobody"},
        {"hash": "0" * 64},
    ]
    for change in changes:
        with pytest.raises(OperationalError, match="append-only"):
            await Disclosure.filter(id=row.id).update(**change)
    with pytest.raises(OperationalError, match="append-only"):
        await Disclosure.filter(id=row.id).delete()
    with pytest.raises(OperationalError, match="append-only"):
        await connections.get("default").execute_script("DELETE FROM disclosure")
    # only blanking the note is allowed
    await connections.get("default").execute_script(
        f"UPDATE disclosure SET note = '' WHERE id = {row.id}"
    )
    after = await Disclosure.get(id=row.id)
    assert (after.note, after.recipient, after.reference, after.hash) == (
        "",
        row.recipient,
        row.reference,
        row.hash,
    )
    assert await Disclosure.all().count() == 7
    assert (await ledger.verify()).ok


# ---------------------------------------------------------------------------- the CLI

APPEND = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from uuid import UUID
from api.db import init_db, close_db
from api.sharing import ledger

async def main():
    await init_db(sys.argv[1])
    start = datetime(2026, 3, 1, tzinfo=UTC)
    await ledger.append([
        ledger.Entry(at=start + timedelta(days=i), customer_id=UUID(int=i % 2 + 1),
                     recipient="Met Police" if i % 2 else "HMRC", categories=["contact.email"],
                     legal_basis="court_order" if i % 2 else "legal_obligation",
                     recorded_by=UUID(int=99), reference=f"REF-{i}", note=f"secret note {i}")
        for i in range(5)
    ])
    await close_db()

asyncio.run(main())
"""


@pytest.fixture
def ledger_db(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A migrated SQLite file with five ledger rows, one a day from 1 March 2026."""
    return migrated_file(tmp_path, "ledger.sqlite3", APPEND)


def test_cli_exports_the_ledger_without_notes(ledger_db: tuple[Path, dict[str, str]]) -> None:
    _, env = ledger_db
    # everything, in chain order, as JSON Lines
    done = custos(env, "disclosures", "export")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["reference"] for r in rows] == [f"REF-{i}" for i in range(5)]
    assert "exported 5 row(s)" in done.stderr
    assert rows[1] == {
        "id": 2,
        "at": "2026-03-02T00:00:00.000000+00:00",
        "customer_id": str(UUID(int=2)),
        "recipient": "Met Police",
        "processor_id": None,
        "categories": ["contact.email"],
        "purpose": "",
        "legal_basis": "court_order",
        "reference": "REF-1",
        "nondisclosure_until": None,
        "recorded_by": str(UUID(int=99)),
        "prev_hash": rows[0]["hash"],
        "hash": rows[1]["hash"],
    }
    assert "secret note" not in done.stdout
    # one customer's, within a time range
    done = custos(
        env,
        "disclosures",
        "export",
        "--customer",
        str(UUID(int=1)),
        "--since",
        "2026-03-02",
        "--until",
        "2026-03-05T00:00:01",
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["reference"] for line in done.stdout.splitlines()] == [
        "REF-2",
        "REF-4",
    ]
    # as CSV with a header
    done = custos(env, "disclosures", "export", "--format", "csv")
    assert done.returncode == 0, done.stderr
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["legal_basis"] for r in table] == ["legal_obligation", "court_order"] * 2 + [
        "legal_obligation"
    ]
    assert "note" not in table[0]
    assert table[0]["prev_hash"] == GENESIS


def test_cli_verifies_the_ledger_and_names_an_edited_row(
    ledger_db: tuple[Path, dict[str, str]],
) -> None:
    path, env = ledger_db
    done = custos(env, "disclosures", "verify")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "disclosure ledger ok: 5 row(s) verified"
    # when someone edits the fourth row's reference directly in the database file
    with sqlite3.connect(path) as db:
        db.execute("UPDATE disclosure SET reference = 'REF-X' WHERE id = 4")
    # then verify fails, naming it
    done = custos(env, "disclosures", "verify")
    assert done.returncode == 1
    assert "BROKEN at row 4" in done.stderr
    assert "3 row(s) before it are intact" in done.stderr


def test_cli_export_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    # an empty file (a missing one is refused before: tests/test_cli_pipes_and_dates.py)
    (tmp_path / "empty.sqlite3").touch()
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite://{tmp_path / 'empty.sqlite3'}",
        CUSTOS_MAIL_POLL_SECONDS="0",
    )
    for command in ("export", "verify"):
        done = custos(env, "disclosures", command)
        assert done.returncode == 2
        assert done.stdout == ""
        assert "run `custos migrate` first" in done.stderr
        assert "Traceback" not in done.stderr
