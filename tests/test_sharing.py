"""The processor registry and sharing with processors (issue 7, point 1): legal registers
each third party with its contract, purposes and categories; a data set is produced only
within them, only for customers whose data may be used for the purpose at that moment and
only as far as the employee's role may disclose it; everyone left out is counted, every
customer shared is a ledger row, and every refusal is typed, logged and discloses nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from unittest.mock import AsyncMock
from uuid import uuid4

import pytest

from api.clock import FakeClock
from api.rights.erasure import NO_PASSWORD
from api.services import Services
from api.sharing import processors
from api.sharing.processors import ProcessorDraft, create_processor
from authz.log_tree import integrate
from models import (
    AuditEvent,
    AuditSubject,
    ConsentRecord,
    Customer,
    Disclosure,
    Processor,
    VisitEvent,
)
from tests.conftest import GQL, login, register, signed_in_employee, stored_customer

PROCESSOR_FIELDS = """id name contact country contractReference purposes categories
                      activeFrom activeTo active updatedAt"""
ERROR = "... on InputError { code field message fields { field code } }"
CREATE = f"""
mutation ($input: ProcessorInput!) {{
  createProcessor(input: $input) {{
    __typename
    ... on ProcessorSaved {{ processor {{ {PROCESSOR_FIELDS} }} }}
    {ERROR} }} }}
"""
UPDATE = f"""
mutation ($id: ID!, $input: ProcessorInput!) {{
  updateProcessor(id: $id, input: $input) {{
    __typename
    ... on ProcessorSaved {{ processor {{ {PROCESSOR_FIELDS} }} }}
    {ERROR} }} }}
"""
LIST = "query ($active: Boolean!) { processors(activeOnly: $active) { name active } }"
SHARE = f"""
mutation ($processor: ID!, $categories: [String!]!, $purpose: String!, $ids: [ID!],
          $filter: ShareFilter, $first: Int!, $after: ID) {{
  shareWithProcessor(processorId: $processor, categories: $categories, purpose: $purpose,
                     customerIds: $ids, filter: $filter, first: $first, after: $after) {{
    __typename
    ... on DataShared {{ processor {{ id name active }} purpose categories dataset shared
                        leftOut {{ noConsent forbidden erased }} nextAfter }}
    {ERROR} }} }}
"""
SET_CONSENT = """
mutation ($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) { __typename } }
"""


def processor_input(clock: FakeClock, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Postmark Mailers Ltd",
        "contact": "privacy@postmark.example",
        "country": "IE",
        "contractReference": "DPA-2025-014",
        "purposes": ["marketing.email"],
        "categories": ["contact.email"],
        "activeFrom": (clock.now() - timedelta(days=30)).isoformat(),
        "activeTo": None,
    }
    values.update(overrides)
    return values


async def processor(
    clock: FakeClock,
    *,
    name: str = "Postmark Mailers Ltd",
    purposes: tuple[str, ...] = ("marketing.email",),
    categories: tuple[str, ...] = ("contact.email",),
    reference: str = "DPA-2025-014",
    active_from: datetime | None = None,
    active_to: datetime | None = None,
) -> Processor:
    """A processor registered straight through the domain code (as legal would)."""
    draft = ProcessorDraft(
        name=name,
        contact="privacy@processor.example",
        country="IE",
        contract_reference=reference,
        purposes=list(purposes),
        categories=list(categories),
        active_from=active_from or clock.now() - timedelta(days=30),
        active_to=active_to,
    )
    return await create_processor(draft=draft, actor_id=uuid4(), now=clock.now())


async def employee(gql: GQL, services: Services, role: str, name: str | None = None) -> str:
    token, _ = await signed_in_employee(gql, services, role, name=name)
    gql.client.cookies.clear()
    return token


async def customers(clock: FakeClock, numbers: range, *, country: str = "GB") -> list[Customer]:
    people = [await stored_customer(n, at=clock.now()) for n in numbers]
    if country != "GB":
        await Customer.filter(id__in=[c.id for c in people]).update(address_country=country)
    return people


async def consent(people: list[Customer], purpose: str, clock: FakeClock) -> None:
    for customer in people:
        await ConsentRecord.create(
            customer=customer,
            purpose=purpose,
            granted=True,
            source="registration",
            at=clock.now() - timedelta(days=1),
        )


async def share(
    gql: GQL,
    token: str,
    processor_id: object,
    categories: list[str],
    purpose: str,
    *,
    ids: Sequence[object] | None = None,
    filter: dict[str, Any] | None = None,
    first: int = 200,
    after: str | None = None,
) -> dict[str, Any]:
    variables = {
        "processor": str(processor_id),
        "categories": categories,
        "purpose": purpose,
        "ids": [str(i) for i in ids] if ids is not None else None,
        "filter": filter,
        "first": first,
        "after": after,
    }
    body = await gql(SHARE, variables, token)
    assert body.get("data"), body
    result: dict[str, Any] = body["data"]["shareWithProcessor"]
    return result


async def disclose_decisions() -> list[AuditEvent]:
    return await AuditEvent.filter(event="access", action="disclose").order_by("id")


async def subjects_of(event: AuditEvent) -> list[str]:
    await integrate()  # the subject index is written as rows join the tree
    links = await AuditSubject.filter(event_id=event.id).order_by("subject_id")
    return [link.subject_id for link in links]


# ---------------------------------------------------------------------------- registry


async def test_legal_registers_and_updates_a_processor(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given legal
    legal, legal_id = await signed_in_employee(gql, services, "legal")
    gql.client.cookies.clear()
    ends = (clock.now() + timedelta(days=365)).isoformat()
    given = processor_input(
        clock,
        purposes=["marketing.email", "support"],
        categories=["contact.email", "contact.phone"],
        activeTo=ends,
    )
    # when they register a processor
    body = await gql(CREATE, {"input": given}, legal)
    saved = body["data"]["createProcessor"]
    assert saved["__typename"] == "ProcessorSaved", body
    # then every field comes back as given, and the contract is in force
    created = saved["processor"]
    assert {k: created[k] for k in given if k not in ("activeFrom", "activeTo")} == {
        k: v for k, v in given.items() if k not in ("activeFrom", "activeTo")
    }
    assert datetime.fromisoformat(created["activeFrom"]) == datetime.fromisoformat(
        given["activeFrom"]
    )
    assert datetime.fromisoformat(created["activeTo"]) == datetime.fromisoformat(ends)
    assert created["active"] is True
    assert datetime.fromisoformat(created["updatedAt"]) == clock.now()
    stored = await Processor.get(id=created["id"])
    assert (stored.name, stored.contract_reference, stored.purposes, stored.categories) == (
        "Postmark Mailers Ltd",
        "DPA-2025-014",
        ["marketing.email", "support"],
        ["contact.email", "contact.phone"],
    )
    assert (str(stored.created_by), str(stored.updated_by)) == (legal_id, legal_id)
    # when legal replaces the record later: a new contract, narrower, ending sooner
    clock.advance(minutes=5)
    changed = processor_input(
        clock,
        name="Postmark Mailers Ireland Ltd",
        contact="DPO@Postmark.example",
        country="fr",
        contractReference="DPA-2026-002",
        categories=["contact.email"],
        activeTo=(clock.now() + timedelta(days=30)).isoformat(),
    )
    body = await gql(UPDATE, {"id": created["id"], "input": changed}, legal)
    updated = body["data"]["updateProcessor"]
    assert updated, body
    assert updated["__typename"] == "ProcessorSaved", body
    # then the record is replaced (normalised), and the update is dated
    after = updated["processor"]
    assert after["id"] == created["id"]
    assert (after["name"], after["contact"], after["country"], after["contractReference"]) == (
        "Postmark Mailers Ireland Ltd",
        "dpo@postmark.example",
        "FR",
        "DPA-2026-002",
    )
    assert (after["purposes"], after["categories"]) == (["marketing.email"], ["contact.email"])
    assert datetime.fromisoformat(after["updatedAt"]) == clock.now()
    assert await Processor.all().count() == 1
    # and both are in the log
    events = await AuditEvent.filter(event="processor").order_by("id")
    assert [(e.operation, e.actor_id, e.reason) for e in events] == [
        ("create", legal_id, created["id"]),
        ("update", legal_id, created["id"]),
    ]


async def test_updating_an_unknown_processor_is_not_found(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    legal = await employee(gql, services, "legal")
    for unknown in (str(uuid4()), "not-an-id"):
        body = await gql(UPDATE, {"id": unknown, "input": processor_input(clock)}, legal)
        error = body["data"]["updateProcessor"]
        assert (error["__typename"], error["code"], error["field"]) == (
            "InputError",
            "NOT_FOUND",
            "id",
        )
    assert await Processor.all().count() == 0
    denials = await AuditEvent.filter(operation="updateProcessor", decision="deny")
    assert [d.reason for d in denials] == ["NOT_FOUND", "NOT_FOUND"]


async def test_every_employee_lists_processors_active_or_all(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a processor in force, one whose contract ended and one not yet started
    now = clock.now()
    await processor(clock, name="B Current")
    await processor(clock, name="A Ended", active_to=now - timedelta(seconds=1))
    await processor(clock, name="C Future", active_from=now + timedelta(days=1))
    for role in ("customer_care", "marketing", "auditor", "fraud_analyst"):
        token = await employee(gql, services, role)
        # when any employee lists them
        every = await gql(LIST, {"active": False}, token)
        active = await gql(LIST, {"active": True}, token)
        # then they see all of them by name, or only the one in force
        assert every["data"]["processors"] == [
            {"name": "A Ended", "active": False},
            {"name": "B Current", "active": True},
            {"name": "C Future", "active": False},
        ]
        assert active["data"]["processors"] == [{"name": "B Current", "active": True}]


async def test_customers_and_anonymous_callers_do_not_list_processors(
    gql: GQL, clock: FakeClock
) -> None:
    await processor(clock)
    anonymous = await gql(LIST, {"active": False})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await register(gql)
    token = await login(gql)
    gql.client.cookies.clear()
    body = await gql(LIST, {"active": False}, token)
    assert body["data"]["processors"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("role", ["marketing", "customer_care", "auditor", "privacy_officer"])
async def test_only_legal_manages_processors(
    gql: GQL, services: Services, clock: FakeClock, role: str
) -> None:
    # given a registered processor and an employee who is not legal
    existing = await processor(clock)
    token, employee_id = await signed_in_employee(gql, services, role)
    gql.client.cookies.clear()
    # when they register a processor or change one
    created = await gql(CREATE, {"input": processor_input(clock, name="Rogue Ltd")}, token)
    updated = await gql(
        UPDATE,
        {"id": str(existing.id), "input": processor_input(clock, categories=["contact.phone"])},
        token,
    )
    # then both are FORBIDDEN, nothing changed, and both refusals are logged
    for body, operation in ((created, "createProcessor"), (updated, "updateProcessor")):
        assert body["data"] == {operation: None}
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    [stored] = await Processor.all()
    assert (stored.name, stored.categories, stored.updated_at) == (
        existing.name,
        ["contact.email"],
        existing.updated_at,
    )
    denials = await AuditEvent.filter(event="access", decision="deny").order_by("id")
    assert [(d.operation, d.actor_id, d.reason) for d in denials] == [
        ("createProcessor", employee_id, "requires role legal"),
        ("updateProcessor", employee_id, "requires role legal"),
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"purposes": ["telepathy"]}, "purposes[0]", "VALIDATION"),
        ({"purposes": []}, "purposes", "VALIDATION"),
        ({"categories": ["contact.email", "contact.fax"]}, "categories[1]", "VALIDATION"),
        ({"categories": ["account.credentials"]}, "categories[0]", "VALIDATION"),
        ({"categories": ["consent.history"]}, "categories[0]", "VALIDATION"),
        ({"categories": ["contact.email", "contact.email"]}, "categories[1]", "VALIDATION"),
        ({"country": "XX"}, "country", "VALIDATION"),
        ({"contact": "not an address"}, "contact", "VALIDATION"),
        ({"name": "  "}, "name", "VALIDATION"),
        ({"contractReference": ""}, "contractReference", "VALIDATION"),
        ({"activeTo": "2025-12-01T11:59:59+00:00"}, "activeTo", "VALIDATION"),
        ({"activeTo": "2025-12-02T12:00:00+00:00"}, "activeTo", "VALIDATION"),
        ({"name": "Existing Ltd"}, "name", "DUPLICATE_NAME"),
    ],
)
async def test_bad_processor_input_stores_nothing(
    gql: GQL,
    services: Services,
    clock: FakeClock,
    overrides: dict[str, Any],
    field: str,
    code: str,
) -> None:
    # given a registered processor, and legal
    await processor(clock, name="Existing Ltd")
    legal = await employee(gql, services, "legal")
    # when legal registers one with a bad value (the contract starts 2025-12-02 12:00)
    given = processor_input(clock, **overrides)
    body = await gql(CREATE, {"input": given}, legal)
    # then the answer names the field and the code, nothing is stored, the refusal is logged
    error = body["data"]["createProcessor"]
    assert (error["__typename"], error["code"], error["field"]) == ("InputError", code, field)
    assert error["fields"] == [{"field": field, "code": code}]
    assert await Processor.all().count() == 1
    [denial] = await AuditEvent.filter(event="disclosure", decision="deny")
    assert (denial.operation, denial.reason) == ("createProcessor", code)


async def test_renaming_a_processor_to_another_ones_name_is_refused(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await processor(clock, name="Existing Ltd")
    mine = await processor(clock, name="Mine Ltd")
    legal = await employee(gql, services, "legal")
    taken = processor_input(clock, name="Existing Ltd")
    body = await gql(UPDATE, {"id": str(mine.id), "input": taken}, legal)
    error = body["data"]["updateProcessor"]
    assert (error["code"], error["field"]) == ("DUPLICATE_NAME", "name")
    assert (await Processor.get(id=mine.id)).name == "Mine Ltd"
    # keeping its own name is no conflict
    same = processor_input(clock, name="Mine Ltd", contractReference="DPA-2")
    body = await gql(UPDATE, {"id": str(mine.id), "input": same}, legal)
    assert body["data"]["updateProcessor"]["processor"]["contractReference"] == "DPA-2"


async def test_losing_a_race_for_a_name_is_a_duplicate_and_the_log_still_commits(
    gql: GQL, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given another legal employee's processor registered between our check and our write
    # (the check is made to miss it, as it would in a race)
    await processor(clock, name="Existing Ltd")
    mine = await processor(clock, name="Mine Ltd")
    monkeypatch.setattr(processors, "_name_taken", AsyncMock(return_value=False))
    legal = await employee(gql, services, "legal")
    # when legal creates one, and renames another, with that name
    taken = processor_input(clock, name="Existing Ltd")
    created = await gql(CREATE, {"input": taken}, legal)
    renamed = await gql(UPDATE, {"id": str(mine.id), "input": taken}, legal)
    # then the unique index decides: DUPLICATE_NAME, nothing stored or changed
    for body, field in ((created, "createProcessor"), (renamed, "updateProcessor")):
        assert "errors" not in body, body
        assert body["data"][field]["code"] == "DUPLICATE_NAME"
    assert sorted(await Processor.all().values_list("name", flat=True)) == [
        "Existing Ltd",
        "Mine Ltd",
    ]
    # and each refusal is in the decision log (the mutation's transaction went on)
    refused = await AuditEvent.filter(event="disclosure", decision="deny").order_by("id")
    assert [(e.operation, e.reason) for e in refused] == [
        ("createProcessor", "DUPLICATE_NAME"),
        ("updateProcessor", "DUPLICATE_NAME"),
    ]


# ---------------------------------------------------------------------------- sharing


async def test_marketing_shares_the_emails_of_consenting_customers_only(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given an email processor, three customers of whom two consent to marketing email
    mailer = await processor(clock)
    people = await customers(clock, range(3))
    consenting, refusing = people[:2], people[2]
    await consent(consenting, "marketing.email", clock)
    token, marketer_id = await signed_in_employee(gql, services, "marketing")
    gql.client.cookies.clear()
    # when marketing shares their email addresses with it for marketing email
    result = await share(
        gql, token, mailer.id, ["contact.email"], "marketing.email", ids=[c.id for c in people]
    )
    # then the data set holds exactly the two consenting customers' ids and emails
    assert result["__typename"] == "DataShared", result
    assert result["dataset"] == {
        "format": "custos.share/1",
        "processor": "Postmark Mailers Ltd",
        "contractReference": "DPA-2025-014",
        "purpose": "marketing.email",
        "categories": ["contact.email"],
        "generatedAt": clock.now().isoformat(),
        "customers": [{"customerId": str(c.id), "email": c.email} for c in consenting],
    }
    assert "phone" not in str(result["dataset"])
    assert "address" not in str(result["dataset"])
    assert refusing.email not in str(result)
    assert (result["shared"], result["leftOut"], result["nextAfter"]) == (
        2,
        {"noConsent": 1, "forbidden": 0, "erased": 0},
        None,
    )
    assert (result["purpose"], result["categories"]) == ("marketing.email", ["contact.email"])
    assert result["processor"] == {"id": str(mailer.id), "name": mailer.name, "active": True}
    # and each shared customer is one ledger row under the processor's contract
    rows = await Disclosure.all().order_by("id")
    assert [str(r.customer_id) for r in rows] == [str(c.id) for c in consenting]
    for row in rows:
        assert (row.recipient, str(row.processor_id), row.categories, row.purpose) == (
            mailer.name,
            str(mailer.id),
            ["contact.email"],
            "marketing.email",
        )
        assert (row.legal_basis, row.reference, str(row.recorded_by)) == (
            "processor_contract",
            "DPA-2025-014",
            marketer_id,
        )
        assert (row.at, row.nondisclosure_until, row.note) == (clock.now(), None, "")
    # and Casbin's disclose decision for each is logged, as is the share itself
    [decision] = await disclose_decisions()
    assert (decision.actor_id, decision.category, decision.purpose, decision.decision) == (
        marketer_id,
        "contact.email",
        "marketing.email",
        "allow",
    )
    assert await subjects_of(decision) == sorted(str(c.id) for c in consenting)
    [event] = await AuditEvent.filter(event="disclosure", operation="share")
    assert (event.decision, event.actor_id) == ("allow", marketer_id)
    assert sorted(event.subject_id.split(",")) == sorted(str(c.id) for c in consenting)
    assert event.reason == f"processor {mailer.id} for marketing.email"


async def test_a_withdrawal_just_before_the_share_leaves_the_customer_out(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a signed-in customer who consents to marketing email, and another who does too
    await register(gql, email="jane.doe@example.com")
    jane_token = await login(gql)
    gql.client.cookies.clear()
    await gql(SET_CONSENT, {"purpose": "marketing.email", "granted": True}, jane_token)
    jane = await Customer.get(email="jane.doe@example.com")
    [other] = await customers(clock, range(1))
    await consent([other], "marketing.email", clock)
    mailer = await processor(clock)
    marketing = await employee(gql, services, "marketing")
    first = await share(
        gql, marketing, mailer.id, ["contact.email"], "marketing.email", ids=[jane.id, other.id]
    )
    assert (first["shared"], first["leftOut"]["noConsent"]) == (2, 0)
    # when she withdraws, and a second later marketing shares again
    clock.advance(seconds=1)
    withdrawn = await gql(SET_CONSENT, {"purpose": "marketing.email", "granted": False}, jane_token)
    assert withdrawn["data"]["setConsent"]["__typename"] == "ConsentSet", withdrawn
    clock.advance(seconds=1)
    second = await share(
        gql, marketing, mailer.id, ["contact.email"], "marketing.email", ids=[jane.id, other.id]
    )
    # then she is left out of the second share (may_process at the moment of use)
    assert (second["shared"], second["leftOut"]["noConsent"]) == (1, 1)
    assert [c["customerId"] for c in second["dataset"]["customers"]] == [str(other.id)]
    assert "jane.doe@example.com" not in str(second["dataset"])
    ledgered = await Disclosure.filter(customer_id=jane.id).count()
    assert ledgered == 1  # the first share only
    # and she sees that first share among the disclosures about her
    body = await gql(
        "{ me { disclosures { recipient categories purpose legalBasis reference } } }",
        token=jane_token,
    )
    assert body["data"]["me"]["disclosures"] == [
        {
            "recipient": "Postmark Mailers Ltd",
            "categories": ["contact.email"],
            "purpose": "marketing.email",
            "legalBasis": "PROCESSOR_CONTRACT",
            "reference": "DPA-2025-014",
        }
    ]


async def test_a_purpose_needing_no_consent_shares_everyone_but_the_erased(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a carrier processor for the service, and three customers, one of them erased
    carrier = await processor(
        clock,
        name="Parcelforce Couriers",
        purposes=("service",),
        categories=("contact.address",),
        reference="CARRIER-7",
    )
    people = await customers(clock, range(3))
    await Customer.filter(id=people[2].id).update(password_hash=NO_PASSWORD)
    legal, legal_id = await signed_in_employee(gql, services, "legal")
    gql.client.cookies.clear()
    # when legal shares their addresses for the service (nobody gave any consent)
    result = await share(
        gql, legal, carrier.id, ["contact.address"], "service", ids=[c.id for c in people]
    )
    # then the two others' addresses go, and only their addresses
    assert (result["shared"], result["leftOut"]) == (
        2,
        {"noConsent": 0, "forbidden": 0, "erased": 1},
    )
    assert result["dataset"]["customers"] == [
        {
            "customerId": str(c.id),
            "address": {
                "line1": c.address_line1,
                "line2": c.address_line2,
                "city": "London",
                "postalCode": "NW1 6XE",
                "country": "GB",
            },
        }
        for c in people[:2]
    ]
    rows = await Disclosure.all().order_by("id")
    assert [(str(r.customer_id), r.legal_basis, r.reference) for r in rows] == [
        (str(c.id), "processor_contract", "CARRIER-7") for c in people[:2]
    ]
    # and the decisions were taken without a consent condition, for legal
    [decision] = await disclose_decisions()
    assert (decision.actor_id, decision.category, decision.purpose, decision.decision) == (
        legal_id,
        "contact.address",
        "service",
        "allow",
    )


async def test_fraud_screening_gets_security_visits_with_only_the_shared_fields(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a fraud-screening processor and two customers' visits, kept for security
    # (sign-ins, full IP) and for analytics (truncated IP)
    screener = await processor(
        clock,
        name="FraudShield Screening",
        purposes=("security",),
        categories=("device.ip", "device.browser", "behavior.browsing"),
        reference="FS-2026-1",
    )
    people = await customers(clock, range(2))
    at = clock.now() - timedelta(hours=2)
    for n, customer in enumerate(people):
        common: dict[str, Any] = {"browser": "Firefox 120", "os": "Linux", "language": "en-GB"}
        await VisitEvent.create(
            customer=customer,
            purpose="security",
            page="/login",
            action="login",
            referrer="https://search.example/",
            ip_full=f"198.51.100.{n + 10}",
            ip_truncated=f"198.51.100.0/24#{n}",
            at=at,
            **common,
        )
        await VisitEvent.create(
            customer=customer,
            purpose="analytics",
            page=f"/rings/{n}",
            action="view",
            ip_truncated=f"203.0.113.0/24#{n}",
            at=at,
            **common,
        )
    token, analyst_id = await signed_in_employee(gql, services, "fraud_analyst")
    gql.client.cookies.clear()
    # when the analyst shares IPs and browsing for security
    result = await share(
        gql,
        token,
        screener.id,
        ["device.ip", "behavior.browsing"],
        "security",
        ids=[c.id for c in people],
    )
    # then each customer carries their security visits only, with only those fields
    assert result["shared"] == 2, result
    assert result["dataset"]["customers"] == [
        {
            "customerId": str(c.id),
            "visits": [
                {
                    "at": at.isoformat(),
                    "ip": f"198.51.100.{n + 10}",
                    "page": "/login",
                    "action": "login",
                    "referrer": "https://search.example/",
                }
            ],
        }
        for n, c in enumerate(people)
    ]
    text = str(result["dataset"])
    for absent in ("/rings/", "203.0.113", "Firefox", "Linux", "en-GB", "@example.com"):
        assert absent not in text
    # and both categories' decisions are logged (one row per rule) for each customer
    decisions = await disclose_decisions()
    assert sorted((d.actor_id, d.category, d.purpose, d.decision) for d in decisions) == [
        (analyst_id, "behavior.browsing", "security", "allow"),
        (analyst_id, "device.ip", "security", "allow"),
    ]
    for decision in decisions:
        assert await subjects_of(decision) == sorted(str(c.id) for c in people)
    rows = await Disclosure.all()
    assert {(r.legal_basis, r.purpose, tuple(r.categories)) for r in rows} == {
        ("processor_contract", "security", ("device.ip", "behavior.browsing"))
    }
    # when the browser details are shared too, the keys are the data set's own (camelCase)
    more = await share(gql, token, screener.id, ["device.browser"], "security", ids=[people[0].id])
    [visit] = more["dataset"]["customers"][0]["visits"]
    assert visit == {
        "at": at.isoformat(),
        "browser": "Firefox 120",
        "os": "Linux",
        "deviceType": "",
        "language": "en-GB",
    }


async def test_a_category_the_role_may_not_disclose_leaves_everyone_out(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a processor allowed phone numbers, and customers who all consent
    caller = await processor(
        clock,
        name="CallCentre Outsourcing",
        categories=("contact.email", "contact.phone"),
    )
    people = await customers(clock, range(3))
    await consent(people, "marketing.email", clock)
    token, marketer_id = await signed_in_employee(gql, services, "marketing")
    gql.client.cookies.clear()
    ids = [c.id for c in people]
    # when marketing asks for their phone numbers (with or without their emails)
    phones = await share(gql, token, caller.id, ["contact.phone"], "marketing.email", ids=ids)
    both = await share(
        gql, token, caller.id, ["contact.email", "contact.phone"], "marketing.email", ids=ids
    )
    # then Casbin forbids it for every customer: nobody is shared, nothing is ledgered
    for result in (phones, both):
        assert (result["shared"], result["leftOut"]) == (
            0,
            {"noConsent": 0, "forbidden": 3, "erased": 0},
        )
        assert result["dataset"]["customers"] == []
    assert await Disclosure.all().count() == 0
    text = str(phones) + str(both)
    assert not any(c.phone in text or c.email in text for c in people)
    # and each denial is logged with its rule, for every customer
    denied = [d for d in await disclose_decisions() if d.decision == "deny"]
    assert {(d.actor_id, d.category, d.purpose) for d in denied} == {
        (marketer_id, "contact.phone", "marketing.email")
    }
    assert len(denied) == 2  # one row per request
    assert all("contact.phone" in d.rule and "deny" in d.rule for d in denied)
    for row in denied:
        assert await subjects_of(row) == sorted(str(i) for i in ids)


async def test_roles_disclose_only_their_own_categories(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a processor allowed everything a share can carry, for security
    everything = await processor(
        clock,
        name="Everything Ltd",
        purposes=("security",),
        categories=("contact.email", "device.ip", "behavior.browsing"),
    )
    people = await customers(clock, range(2))
    ids = [c.id for c in people]
    legal = await employee(gql, services, "legal")
    analyst = await employee(gql, services, "fraud_analyst")
    # when legal asks for browsing, and the fraud analyst for email addresses
    browsing = await share(gql, legal, everything.id, ["behavior.browsing"], "security", ids=ids)
    emails = await share(gql, analyst, everything.id, ["contact.email"], "security", ids=ids)
    # then both are forbidden for every customer, and nothing is ledgered
    for result in (browsing, emails):
        assert (result["shared"], result["leftOut"]["forbidden"]) == (0, 2), result
    assert await Disclosure.all().count() == 0
    denied = {(d.category, d.decision) for d in await disclose_decisions()}
    assert denied == {("behavior.browsing", "deny"), ("contact.email", "deny")}


# ---------------------------------------------------------------------------- refusals


@pytest.fixture
async def scene(gql: GQL, services: Services, clock: FakeClock) -> dict[str, Any]:
    """An email processor, an ended and a future one, two consenting customers, marketing."""
    now = clock.now()
    people = await customers(clock, range(2))
    await consent(people, "marketing.email", clock)
    return {
        "mailer": await processor(clock),
        "ended": await processor(clock, name="Ended Ltd", active_to=now - timedelta(seconds=1)),
        "future": await processor(clock, name="Future Ltd", active_from=now + timedelta(days=1)),
        "people": people,
        "token": await employee(gql, services, "marketing"),
    }


@pytest.mark.parametrize(
    ("case", "field", "code"),
    [
        ("category not allowed", "categories[1]", "CATEGORY_NOT_ALLOWED"),
        ("credentials", "categories[0]", "CATEGORY_NOT_ALLOWED"),
        ("purpose not allowed", "purpose", "PURPOSE_NOT_ALLOWED"),
        ("unknown purpose", "purpose", "VALIDATION"),
        ("no categories", "categories", "VALIDATION"),
        ("category twice", "categories[1]", "VALIDATION"),
        ("unknown processor", "processorId", "NOT_FOUND"),
        ("malformed processor", "processorId", "NOT_FOUND"),
        ("ended processor", "processorId", "PROCESSOR_INACTIVE"),
        ("future processor", "processorId", "PROCESSOR_INACTIVE"),
        ("unknown customer", "customerIds[1]", "NOT_FOUND"),
        ("malformed customer", "customerIds[0]", "NOT_FOUND"),
        ("no customers", "customerIds", "VALIDATION"),
        ("ids and filter", "customerIds", "VALIDATION"),
        ("neither ids nor filter", "customerIds", "VALIDATION"),
        ("empty filter", "customerIds", "VALIDATION"),
        ("first too large", "first", "VALIDATION"),
    ],
)
async def test_a_share_outside_the_contract_discloses_nothing(
    gql: GQL, scene: dict[str, Any], case: str, field: str, code: str
) -> None:
    mailer, people = scene["mailer"], scene["people"]
    ids: list[object] | None = [c.id for c in people]
    args: dict[str, Any] = {
        "processor_id": mailer.id,
        "categories": ["contact.email"],
        "purpose": "marketing.email",
    }
    extra: dict[str, Any] = {}
    match case:
        case "category not allowed":
            args["categories"] = ["contact.email", "contact.address"]
        case "credentials":
            args["categories"] = ["account.credentials"]
        case "purpose not allowed":
            args["purpose"] = "analytics"
        case "unknown purpose":
            args["purpose"] = "telepathy"
        case "no categories":
            args["categories"] = []
        case "category twice":
            args["categories"] = ["contact.email", "contact.email"]
        case "unknown processor":
            args["processor_id"] = uuid4()
        case "malformed processor":
            args["processor_id"] = "mailer"
        case "ended processor":
            args["processor_id"] = scene["ended"].id
        case "future processor":
            args["processor_id"] = scene["future"].id
        case "unknown customer":
            ids = [people[0].id, uuid4()]
        case "malformed customer":
            ids = ["jane0", people[0].id]
        case "no customers":
            ids = []
        case "ids and filter":
            extra["filter"] = {"country": "GB"}
        case "neither ids nor filter":
            ids = None
        case "empty filter":
            ids, extra["filter"] = None, {}
        case "first too large":
            ids, extra["filter"], extra["first"] = None, {"country": "GB"}, 201
    # when marketing asks for it
    result = await share(gql, scene["token"], ids=ids, **args, **extra)
    # then a typed error names the field, nothing is disclosed, the refusal is logged
    assert (result["__typename"], result["code"], result["field"]) == ("InputError", code, field)
    assert await Disclosure.all().count() == 0
    assert await disclose_decisions() == []
    [denial] = await AuditEvent.filter(event="disclosure", decision="deny")
    assert (denial.operation, denial.reason) == ("shareWithProcessor", code)
    assert await AuditEvent.filter(event="disclosure", operation="share").count() == 0


async def test_every_contract_problem_is_named_at_once(gql: GQL, scene: dict[str, Any]) -> None:
    result = await share(
        gql,
        scene["token"],
        scene["ended"].id,
        ["contact.phone", "contact.email", "device.ip"],
        "analytics",
        ids=[c.id for c in scene["people"]],
    )
    assert [(f["field"], f["code"]) for f in result["fields"]] == [
        ("processorId", "PROCESSOR_INACTIVE"),
        ("purpose", "PURPOSE_NOT_ALLOWED"),
        ("categories[0]", "CATEGORY_NOT_ALLOWED"),
        ("categories[2]", "CATEGORY_NOT_ALLOWED"),
    ]
    assert await Disclosure.all().count() == 0


@pytest.mark.parametrize("role", ["customer_care", "auditor", "privacy_officer", "admin"])
async def test_roles_that_never_disclose_cannot_share(
    gql: GQL, services: Services, clock: FakeClock, role: str
) -> None:
    mailer = await processor(clock)
    people = await customers(clock, range(2))
    await consent(people, "marketing.email", clock)
    token, employee_id = await signed_in_employee(gql, services, role)
    gql.client.cookies.clear()
    variables = {
        "processor": str(mailer.id),
        "categories": ["contact.email"],
        "purpose": "marketing.email",
        "ids": [str(c.id) for c in people],
        "filter": None,
        "first": 200,
        "after": None,
    }
    body = await gql(SHARE, variables, token)
    assert body["data"] == {"shareWithProcessor": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await Disclosure.all().count() == 0
    [denial] = await AuditEvent.filter(decision="deny")
    assert (denial.event, denial.operation, denial.actor_id) == (
        "access",
        "shareWithProcessor",
        employee_id,
    )


# ---------------------------------------------------------------------------- paging


@pytest.mark.parametrize(("in_gb", "sizes"), [(5, [2, 2, 1]), (4, [2, 2]), (1, [1])])
async def test_a_filter_pages_through_every_match_exactly_once(
    gql: GQL, services: Services, clock: FakeClock, in_gb: int, sizes: list[int]
) -> None:
    # given customers in GB (five, say) and two in France, all consenting
    britons = await customers(clock, range(in_gb))
    french = await customers(clock, range(10, 12), country="FR")
    await consent(britons + french, "marketing.email", clock)
    mailer = await processor(clock)
    token = await employee(gql, services, "marketing")
    # when marketing shares GB customers two at a time, following nextAfter
    pages: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        result = await share(
            gql,
            token,
            mailer.id,
            ["contact.email"],
            "marketing.email",
            filter={"country": "GB"},
            first=2,
            after=after,
        )
        assert result["__typename"] == "DataShared", result
        pages.append(result)
        after = result["nextAfter"]
        if after is None:
            break
        assert len(pages) < 5, "paging does not end"
    # then the pages hold 2, 2 and 1 customers: every Briton once, nobody from France,
    # and the last page (even a full one) says there is no next
    assert [p["shared"] for p in pages] == sizes
    shared = [c["customerId"] for p in pages for c in p["dataset"]["customers"]]
    assert sorted(shared) == sorted(str(c.id) for c in britons)
    assert len(set(shared)) == in_gb
    for page in pages[:-1]:
        assert page["nextAfter"] == page["dataset"]["customers"][-1]["customerId"]
    # and the ledger holds one row per Briton
    rows = await Disclosure.all()
    assert sorted(str(r.customer_id) for r in rows) == sorted(str(c.id) for c in britons)


async def test_a_filter_on_registration_date(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    old = await customers(clock, range(2))
    clock.advance(days=10)
    new = await customers(clock, range(2, 4))
    await consent(old + new, "marketing.email", clock)
    mailer = await processor(clock)
    token = await employee(gql, services, "marketing")
    since = (clock.now() - timedelta(days=1)).isoformat()
    result = await share(
        gql,
        token,
        mailer.id,
        ["contact.email"],
        "marketing.email",
        filter={"registeredSince": since},
    )
    assert sorted(c["customerId"] for c in result["dataset"]["customers"]) == sorted(
        str(c.id) for c in new
    )
    assert result["nextAfter"] is None
