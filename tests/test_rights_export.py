"""The access export (issue 5): one JSON document with everything held about one customer
and nothing about anyone else, valid against the published schema, with the categories the
officer may not export left out and named; downloaded once through an expiring link, the
stored copy blanked after delivery, every download and refusal audited (the download itself:
tests/test_export_download.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from tortoise.transactions import in_transaction

from api.clock import FakeClock
from api.errors import NotFound
from api.rights.export import EXPORT_FORMAT, EXPORTED, build_export, issue_download, serialize
from api.security.tokens import token_hash
from api.services import Services
from api.sharing import ledger
from models import (
    ConsentRecord,
    Customer,
    DataExport,
    OutboxMessage,
    PolicyAcceptance,
    RightsRequest,
    RightsTransition,
    Session,
    SupportCase,
    VisitEvent,
)
from tests.conftest import GQL, mails, signed_in_employee

SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "export.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
T0 = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
READ_EMAIL = "query($id: ID!) { customer(id: $id, purpose: SUPPORT) { email } }"
EVERYTHING = tuple(c.value for c in EXPORTED)


@dataclass(frozen=True)
class Person:
    """The values distinctive of one test customer: none may appear in another's export."""

    key: str
    email: str
    phone: str
    line1: str
    ip: str
    page: str
    message: str
    digest: str


ADA = Person(
    key="lovelace",  # not only hex letters: a random id never contains it
    email="ada.lovelace@example.com",
    phone="+442079460111",
    line1="12 Analytical Lane",
    ip="198.51.100.11",
    page="/ada/rings?size=6",
    message="My engine-turned ring never arrived.",
    digest="a" * 64,
)
BEN = Person(
    key="franklin",
    email="ben.franklin@example.com",
    phone="+442079460222",
    line1="34 Kite Road",
    ip="203.0.113.222",
    page="/ben/watches?strap=leather",
    message="The kite-string watch strap broke.",
    digest="b" * 64,
)


@dataclass
class Seeded:
    customer: Customer
    request: RightsRequest
    access_reference: str
    pages: list[str]


def valid(document: dict[str, Any]) -> None:
    errors = sorted(VALIDATOR.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, [(list(e.absolute_path), e.message) for e in errors[:5]]


def include_all(category: str) -> bool:
    return True


async def seed_person(p: Person, *, employee_id: str) -> tuple[Customer, RightsRequest, list[str]]:
    """A customer with a bit of everything we hold: consents, an accepted policy, visits,
    a support case (open, so care may read their contact data), a rights request with its
    transitions, a session and an email."""
    customer = await Customer.create(
        email=p.email,
        password_hash=f"argon2-{p.key}",
        phone=p.phone,
        address_line1=p.line1,
        address_city="London",
        address_postal_code="NW1 6XE",
        address_country="GB",
        email_verified_at=T0,
        created_at=T0,
        updated_at=T0,
        last_login_at=T0 + timedelta(days=1),
    )
    for minutes, purpose, granted in (
        (1, "analytics", True),
        (2, "marketing.email", True),
        (3, "marketing.email", False),
    ):
        await ConsentRecord.create(
            customer=customer,
            purpose=purpose,
            granted=granted,
            source="registration" if granted else "preference_centre",
            policy_version="1",
            ip_truncated=f"{p.ip}/24",
            user_agent=f"{p.key}-browser/1.0",
            at=T0 + timedelta(minutes=minutes),
        )
    await PolicyAcceptance.create(customer=customer, version="1", at=T0, ip_truncated=None)
    pages = [f"{p.page}&n={i}" for i in range(3)]
    await VisitEvent.bulk_create(
        [
            VisitEvent(
                customer=customer,
                purpose="security" if i == 0 else "analytics",
                at=T0 + timedelta(hours=i),
                page=page,
                action="login" if i == 0 else "view",
                referrer=f"https://{p.key}.example.net/",
                browser="Firefox 120",
                os="Linux",
                device_type="desktop",
                language="en-GB",
                ip_full=p.ip if i == 0 else None,
                ip_truncated=None if i == 0 else f"{p.ip}/24",
            )
            for i, page in enumerate(pages)
        ]
    )
    await SupportCase.create(customer=customer, subject="Order", message=p.message, created_at=T0)
    request = await RightsRequest.create(
        customer=customer,
        kind="access",
        status="approved",
        channel="account",
        details=f"Everything about {p.key}, please.",
        code_digest=p.digest,
        submitted_at=T0,
        received_at=T0 + timedelta(minutes=5),
        due_at=T0 + timedelta(days=31),
        decided_at=T0 + timedelta(days=1),
        decided_by=UUID(employee_id),
    )
    for minutes, (before, after, kind, actor) in enumerate(
        (
            ("unverified", "pending", "customer", str(customer.id)),
            ("pending", "approved", "employee", employee_id),
        )
    ):
        await RightsTransition.create(
            request=request,
            from_status=before,
            to_status=after,
            actor_kind=kind,
            actor_id=actor,
            reason="checked" if kind == "employee" else "",
            at=T0 + timedelta(minutes=5 + minutes),
        )
    await Session.create(
        token_hash=f"{p.key}-session".ljust(64, "0"),
        customer=customer,
        created_at=T0,
        expires_at=T0 + timedelta(days=30),
        idle_expires_at=T0 + timedelta(days=7),
        last_seen_at=T0,
    )
    await OutboxMessage.create(
        kind="verify_email",
        customer_id=customer.id,
        recipient=p.email,
        subject="Confirm your email address",
        body_text=f"token for {p.key}",
        next_attempt_at=T0,
        created_at=T0,
    )
    return customer, request, pages


@pytest.fixture
async def care(gql: GQL, services: Services) -> tuple[str, str]:
    return await signed_in_employee(gql, services, "customer_care", name="care-agent")


async def seed(gql: GQL, p: Person, care: tuple[str, str]) -> Seeded:
    """The person, then one staff read of their email (an entry of their access log)."""
    token, employee_id = care
    customer, request, pages = await seed_person(p, employee_id=employee_id)
    response = await gql.raw(READ_EMAIL, {"id": str(customer.id)}, token=token)
    assert response.json()["data"]["customer"]["email"] == p.email
    return Seeded(customer, request, response.headers["x-request-id"], pages)


async def test_each_export_holds_exactly_its_customer(
    gql: GQL, services: Services, clock: FakeClock, care: tuple[str, str]
) -> None:
    # given two customers with consents, visits, cases, requests and staff accesses
    ada = await seed(gql, ADA, care)
    ben = await seed(gql, BEN, care)
    await VisitEvent.create(purpose="analytics", at=T0, page="/anonymous", action="view")
    # when both exports are built
    documents = {
        p.key: await build_export(customer_id=s.customer.id, include=include_all, now=clock.now())
        for p, s in ((ADA, ada), (BEN, ben))
    }
    for person, seeded, other, other_seeded in ((ADA, ada, BEN, ben), (BEN, ben, ADA, ada)):
        document = documents[person.key]
        # then each is valid against the published schema and JSON-ready as it is
        valid(document)
        text = serialize(document)
        assert json.loads(text) == document
        # and holds nothing distinctive of the other customer
        for value in (
            other.email,
            other.phone,
            other.line1,
            other.ip,
            other.page,
            other.message,
            other.key,
            str(other_seeded.customer.id),
            str(other_seeded.request.id),
            other_seeded.access_reference,
        ):
            assert value not in text, (person.key, value)
        # nor any secret, nor who on our staff read or decided
        assert person.digest not in text
        assert f"argon2-{person.key}" not in text
        assert f"token for {person.key}" not in text
        assert care[1] not in text
        assert "care-agent" not in text
        # and each section holds exactly this customer's rows
        assert_sections(document, person, seeded, now=clock.now())


def assert_sections(document: dict[str, Any], p: Person, s: Seeded, *, now: datetime) -> None:
    assert document["format"] == EXPORT_FORMAT
    assert document["generatedAt"] == now.isoformat(timespec="microseconds")
    assert document["customer"] == {
        "id": str(s.customer.id),
        "email": p.email,
        "emailVerified": True,
        "emailVerifiedAt": "2025-12-01T09:00:00.000000+00:00",
        "pendingEmail": None,
        "phone": p.phone,
        "address": {
            "line1": p.line1,
            "line2": None,
            "city": "London",
            "postalCode": "NW1 6XE",
            "country": "GB",
        },
        "createdAt": "2025-12-01T09:00:00.000000+00:00",
        "updatedAt": "2025-12-01T09:00:00.000000+00:00",
        "lastLoginAt": "2025-12-02T09:00:00.000000+00:00",
    }
    assert [
        (c["purpose"], c["state"], c["granted"], c["source"]) for c in document["consents"]
    ] == [
        ("analytics", "GRANTED", True, "registration"),
        ("marketing.ads", "NOT_ASKED", False, None),
        ("marketing.email", "WITHDRAWN", False, "preference_centre"),
        ("personalization", "NOT_ASKED", False, None),
    ]
    assert [(c["purpose"], c["granted"]) for c in document["consentHistory"]] == [
        ("analytics", True),
        ("marketing.email", True),
        ("marketing.email", False),
    ]
    assert document["consentHistory"][0] == {
        "purpose": "analytics",
        "granted": True,
        "source": "registration",
        "policyVersion": "1",
        "at": "2025-12-01T09:01:00.000000+00:00",
        "ipTruncated": f"{p.ip}/24",
        "userAgent": f"{p.key}-browser/1.0",
    }
    assert [a["version"] for a in document["policyAcceptances"]] == ["1"]
    assert [v["page"] for v in document["visits"]] == s.pages
    assert [v["ip"] for v in document["visits"]] == [p.ip, f"{p.ip}/24", f"{p.ip}/24"]
    assert document["visits"][0] == {
        "at": "2025-12-01T09:00:00.000000+00:00",
        "purpose": "security",
        "page": s.pages[0],
        "action": "login",
        "referrer": f"https://{p.key}.example.net/",
        "campaign": "",
        "browser": "Firefox 120",
        "os": "Linux",
        "deviceType": "desktop",
        "language": "en-GB",
        "ip": p.ip,
    }
    [case] = document["supportCases"]
    assert (case["message"], case["status"], case["closedAt"]) == (p.message, "open", None)
    [request] = document["rightsRequests"]
    assert (request["id"], request["kind"], request["status"], request["channel"]) == (
        str(s.request.id),
        "access",
        "approved",
        "account",
    )
    assert request["details"] == f"Everything about {p.key}, please."
    assert request["transitions"] == [
        {
            "from": "unverified",
            "to": "pending",
            "at": "2025-12-01T09:05:00.000000+00:00",
            "reason": "",
            "actorKind": "customer",
        },
        {
            "from": "pending",
            "to": "approved",
            "at": "2025-12-01T09:06:00.000000+00:00",
            "reason": "checked",
            "actorKind": "employee",
        },
    ]
    assert len(document["sessions"]) == 1
    assert [(m["kind"], m["recipient"]) for m in document["messages"]] == [
        ("verify_email", p.email)
    ]
    assert document["disclosures"] == []
    [access] = document["accessLog"]
    assert access == {
        "reference": s.access_reference,
        "at": access["at"],
        "roles": ["customer_care"],
        "purpose": "support",
        "categories": ["contact.email"],
        "actions": ["read"],
        "decision": "allow",
    }
    assert document["omitted"] == []


async def test_categories_not_included_are_left_out_and_named(
    gql: GQL, services: Services, clock: FakeClock, care: tuple[str, str]
) -> None:
    # given a customer, and an officer not allowed to export some categories
    ada = await seed(gql, ADA, care)
    refused = {"contact.phone", "behavior.browsing", "support.cases", "rights.requests"}
    asked: list[str] = []

    def include(category: str) -> bool:
        asked.append(category)
        return category not in refused

    # when the export is built
    document = await build_export(customer_id=ada.customer.id, include=include, now=clock.now())
    # then every category was asked once, and the refused ones are null and named
    assert asked == list(EVERYTHING)
    valid(document)
    assert document["omitted"] == [
        "contact.phone",
        "behavior.browsing",
        "support.cases",
        "rights.requests",
    ]
    assert document["customer"]["phone"] is None
    assert document["customer"]["email"] == ADA.email
    assert document["visits"] is None
    assert document["supportCases"] is None
    assert document["rightsRequests"] is None
    assert document["consentHistory"] is not None
    text = serialize(document)
    for value in (ADA.phone, ADA.page, ADA.message, str(ada.request.id)):
        assert value not in text


async def test_device_categories_blank_their_fields_of_each_visit(
    gql: GQL, services: Services, clock: FakeClock, care: tuple[str, str]
) -> None:
    ada = await seed(gql, ADA, care)
    document = await build_export(
        customer_id=ada.customer.id,
        include=lambda c: c not in {"device.ip", "device.browser"},
        now=clock.now(),
    )
    valid(document)
    assert document["omitted"] == ["device.ip", "device.browser"]
    assert [v["page"] for v in document["visits"]] == ada.pages
    for visit in document["visits"]:
        assert (visit["ip"], visit["browser"], visit["os"]) == (None, None, None)
        assert (visit["deviceType"], visit["language"]) == (None, None)
    assert ADA.ip not in json.dumps(document["visits"])


async def test_nothing_included_still_answers_with_the_processing(
    gql: GQL, services: Services, clock: FakeClock, care: tuple[str, str]
) -> None:
    ada = await seed(gql, ADA, care)
    document = await build_export(
        customer_id=ada.customer.id, include=lambda c: False, now=clock.now()
    )
    valid(document)
    assert document["omitted"] == list(EVERYTHING)
    customer = document["customer"]
    assert (customer["email"], customer["pendingEmail"], customer["phone"]) == (None, None, None)
    assert customer["address"] is None
    for section in ("consents", "consentHistory", "policyAcceptances", "visits"):
        assert document[section] is None, section
    assert [m["recipient"] for m in document["messages"]] == [None]
    assert [a["reference"] for a in document["accessLog"]] == [ada.access_reference]
    text = serialize(document)
    for value in (ADA.email, ADA.phone, ADA.line1, ADA.ip, ADA.page, ADA.message):
        assert value not in text


RECORD = """
mutation ($customer: ID!) {
  recordDisclosure(customerId: $customer, recipient: "Metropolitan Police Service",
                   categories: ["contact.email", "contact.address"], legalBasis: COURT_ORDER,
                   reference: "Order 2026/117", note: "Served by hand to the ada desk") {
    __typename } }
"""


async def test_disclosures_about_the_customer_are_in_the_export(
    gql: GQL, services: Services, clock: FakeClock, care: tuple[str, str]
) -> None:
    # given a share of Ada's email with a processor, a court order legal records, a
    # regulator's demand she may not be told about yet, and a disclosure about Ben
    ada = await seed(gql, ADA, care)
    ben = await seed(gql, BEN, care)
    basis = ledger.LegalBasis
    common: dict[str, Any] = {"categories": ["contact.email"], "recorded_by": UUID(care[1])}
    await ledger.append(
        [
            ledger.Entry(
                at=T0 + timedelta(days=1),
                customer_id=ada.customer.id,
                recipient="Postmark Mailers Ltd",
                processor_id=UUID(int=7),
                purpose="marketing.email",
                legal_basis=basis.PROCESSOR_CONTRACT,
                reference="DPA-2025-014",
                **common,
            ),
            ledger.Entry(
                at=T0 + timedelta(days=2),
                customer_id=ada.customer.id,
                recipient="Financial Conduct Authority",
                legal_basis=basis.REGULATOR,
                reference="FCA notice 2026-3",
                nondisclosure_until=clock.now() + timedelta(days=30),
                **common,
            ),
            ledger.Entry(
                at=T0 + timedelta(days=2),
                customer_id=ben.customer.id,
                recipient="HM Revenue & Customs",
                legal_basis=basis.LEGAL_OBLIGATION,
                reference="HMRC ben-17",
                **common,
            ),
        ]
    )
    legal, _ = await signed_in_employee(gql, services, "legal", name="legal-counsel")
    body = await gql(RECORD, {"customer": str(ada.customer.id)}, token=legal)
    assert body["data"]["recordDisclosure"]["__typename"] == "DisclosureRecorded", body
    # when her export is built
    document = await build_export(customer_id=ada.customer.id, include=include_all, now=clock.now())
    # then it is valid and lists what she may be told, newest first, without legal's note
    valid(document)
    assert document["disclosures"] == [
        {
            "at": clock.now().isoformat(timespec="microseconds"),
            "recipient": "Metropolitan Police Service",
            "categories": ["contact.email", "contact.address"],
            "purpose": None,
            "legalBasis": "court_order",
            "reference": "Order 2026/117",
        },
        {
            "at": "2025-12-02T09:00:00.000000+00:00",
            "recipient": "Postmark Mailers Ltd",
            "categories": ["contact.email"],
            "purpose": "marketing.email",
            "legalBasis": "processor_contract",
            "reference": "DPA-2025-014",
        },
    ]
    text = serialize(document)
    for absent in ("Served by hand", "FCA notice", "HMRC ben-17", care[1], "legal-counsel"):
        assert absent not in text
    # and once the regulator's date has passed, that one is listed too
    later = clock.now() + timedelta(days=30)
    document = await build_export(customer_id=ada.customer.id, include=include_all, now=later)
    valid(document)
    assert [d["reference"] for d in document["disclosures"]] == [
        "Order 2026/117",
        "FCA notice 2026-3",
        "DPA-2025-014",
    ]


async def test_an_unknown_customer_is_not_found(clock: FakeClock) -> None:
    with pytest.raises(NotFound):
        await build_export(
            customer_id=UUID("00000000-0000-4000-8000-000000000000"),
            include=include_all,
            now=clock.now(),
        )


# Issuing the download link (the download itself: tests/test_export_download.py)


async def issued(services: Services, seeded: Seeded) -> tuple[str, dict[str, Any]]:
    document = await build_export(
        customer_id=seeded.customer.id, include=include_all, now=services.clock.now()
    )
    async with in_transaction() as conn:
        token = await issue_download(
            services=services,
            request_id=seeded.request.id,
            customer_id=seeded.customer.id,
            document=document,
            using_db=conn,
        )
    return token, document


async def test_the_link_is_mailed_and_only_its_hash_stored(
    gql: GQL, services: Services, clock: FakeClock, care: tuple[str, str]
) -> None:
    ada = await seed(gql, ADA, care)
    token, document = await issued(services, ada)
    [stored] = await DataExport.all()
    assert stored.token_hash == token_hash(token)
    assert token not in (stored.token_hash, stored.document)
    assert stored.document == serialize(document)
    assert (stored.request_id, str(stored.customer_id)) == (ada.request.id, str(ada.customer.id))
    assert stored.expires_at == clock.now() + timedelta(days=7)
    assert stored.used_at is None
    [mail] = await mails("export_ready", ADA.email)
    assert mail.customer_id == ada.customer.id
    # and it says to open the link and press the button, which works once and until when
    assert (
        'Open this link, then press the button "Download your data": '
        f"https://shop.example.test/exports/{token}\n"
    ) in mail.body_text
    assert "works once and until 8 January 2026 at 12:00 UTC" in mail.body_text
    assert "unsubscribe" not in mail.body_text.lower()


async def test_issuing_rolls_back_with_the_caller(
    gql: GQL, services: Services, clock: FakeClock, care: tuple[str, str]
) -> None:
    ada = await seed(gql, ADA, care)
    document = await build_export(customer_id=ada.customer.id, include=include_all, now=clock.now())

    async def fulfil_then_fail() -> None:
        async with in_transaction() as conn:
            await issue_download(
                services=services,
                request_id=ada.request.id,
                customer_id=ada.customer.id,
                document=document,
                using_db=conn,
            )
            raise RuntimeError("the fulfilment failed later")

    with pytest.raises(RuntimeError):
        await fulfil_then_fail()
    assert await DataExport.all().count() == 0
    assert await mails("export_ready") == []
