"""Erasure and legal holds (issue 5): erasing a customer leaves none of their values in any
column of any table (the other customer's are all still there), except the categories an
active legal hold keeps; a failure half-way changes nothing; only legal places and releases
holds, and bad input stores nothing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from tortoise import Tortoise, connections
from tortoise.fields import CharField, JSONField, TextField
from tortoise.transactions import in_transaction

from api.clock import FakeClock
from api.rights import erasure
from api.rights.erasure import NO_PASSWORD, erase_customer
from api.rights.holds import HoldDraft, held_categories, place_hold
from api.security.tokens import keyed_digest, token_hash
from api.services import Services
from api.sharing import ledger
from authz.audit import verify
from authz.registry import Category
from models import (
    VIEWS,
    AuditEvent,
    ConsentRecord,
    Customer,
    DataExport,
    Disclosure,
    EmailToken,
    LegalHold,
    OutboxMessage,
    PasswordResetToken,
    PolicyAcceptance,
    RightsRequest,
    RightsTransition,
    SupportCase,
    VisitEvent,
)
from tests.conftest import GQL, LOGIN, PASSWORD, login, signed_in_employee

# ---------------------------------------------------------------------------- seeding


@dataclass
class Person:
    """A seeded customer and every distinctive value stored about them, by label."""

    customer: Customer
    erasure_id: UUID
    session_token: str
    values: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> UUID:
        return UUID(str(self.customer.id))

    @property
    def email(self) -> str:
        return self.values["email"]


def distinctive(name: str, n: int) -> dict[str, str]:
    """Values no other person shares, none inside another's (n is 1 or 2)."""
    return {
        "email": f"{name}.quillfeather@{name}-mail.test",
        "pending_email": f"{name}.newbox@{name}-mail.test",
        "name": f"{name.title()} Quillfeather",
        "phone": f"+4420794601{n}{n}",
        "rectified_phone": f"+4420794601{n}9",
        "line1": f"{n}7 {name.title()}wick Lane",
        "line2": f"Flat {name.title()}tower",
        "city": f"{name.title()}bury",
        "postal_code": f"Z{n}Q 7Q{n}",
        "ip_full": f"198.51.10{n}.77",
        "ip_truncated": f"198.51.10{n}.0",
        "user_agent": f"{name.title()}Agent/7.{n} (Zorgon)",
        "browser": f"{name.title()}Fox",
        "os": f"{name.title()}OS {n}",
        "language": f"x-{name}",
        "page": f"/{name}-velvet-hat",
        "anonymous_page": f"/{name}-before-sign-in",
        "referrer": f"https://{name}-referrer.test/hats",
        "campaign": f"{name}-spring-campaign",
        "support_subject": f"{name.title()}'s velvet hat refund",
        "support_message": f"Please refund the hat of {name.title()} Quillfeather, order {n}{n}7",
        "request_details": f"Remove everything {name} ever told you",
        "mail_subject": f"Welcome aboard, {name.title()}",
        "disclosure_note": f"Tip-off: {name.title()} seen at Vellum Bank, locker {n}{n}3",
    }


async def seed(services: Services, name: str, n: int) -> Person:
    """A customer with a row in every table that can hold their data."""
    values = distinctive(name, n)
    now = services.clock.now()
    customer = await Customer.create(
        email=values["email"],
        pending_email=values["pending_email"],
        email_verified_at=now,
        password_hash=await services.passwords.hash(PASSWORD),
        phone=values["phone"],
        address_line1=values["line1"],
        address_line2=values["line2"],
        address_city=values["city"],
        address_postal_code=values["postal_code"],
        address_country="GB",
        created_at=now,
        updated_at=now,
        last_login_at=now,
    )
    person = Person(customer, uuid4(), "", values)
    await _seed_visits(services, person, now)
    await _seed_consents(person, now)
    await _seed_mail_and_support(person, now)
    await _seed_requests(person, now)
    await _seed_sign_in(services, person, now)
    await _seed_disclosure(person, now)
    return person


async def _seed_visits(services: Services, p: Person, now: datetime) -> None:
    v = p.values
    v["visitor_digest"] = keyed_digest(services.secret, "visitor", f"{v['name']} cookie")
    common = {
        "browser": v["browser"],
        "os": v["os"],
        "device_type": "tablet",
        "language": v["language"],
        "ip_truncated": v["ip_truncated"],
        "at": now,
    }
    events = [
        VisitEvent(customer_id=p.id, purpose="security", page="/login", action="login", **common)
        for _ in range(2)
    ]
    events[0].ip_full = v["ip_full"]
    events.append(
        VisitEvent(
            customer_id=p.id,
            visitor_digest=v["visitor_digest"],
            purpose="analytics",
            page=v["page"],
            action="view",
            referrer=v["referrer"],
            campaign=v["campaign"],
            **common,
        )
    )
    events.append(  # before signing in: linked only by the visitor digest
        VisitEvent(
            visitor_digest=v["visitor_digest"],
            purpose="analytics",
            page=v["anonymous_page"],
            action="view",
            **common,
        )
    )
    await VisitEvent.bulk_create(events)


async def _seed_consents(p: Person, now: datetime) -> None:
    v = p.values
    for purpose, granted in (("analytics", True), ("marketing.email", False)):
        await ConsentRecord.create(
            customer_id=p.id,
            purpose=purpose,
            granted=granted,
            source="registration",
            policy_version="1",
            ip_truncated=v["ip_truncated"],
            user_agent=v["user_agent"],
            at=now,
        )
    await PolicyAcceptance.create(
        customer_id=p.id,
        version="1",
        at=now,
        ip_truncated=v["ip_truncated"],
        user_agent=v["user_agent"],
    )


async def _seed_mail_and_support(p: Person, now: datetime) -> None:
    v = p.values
    await SupportCase.create(
        customer_id=p.id,
        subject=v["support_subject"],
        message=v["support_message"],
        created_at=now,
    )
    mails = [
        (p.id, v["email"], "pending"),
        (p.id, v["email"], "sent"),
        (None, v["pending_email"], "pending"),  # a confirmation sent to the new address
    ]
    for customer_id, recipient, status in mails:
        await OutboxMessage.create(
            kind="notice",
            customer_id=customer_id,
            recipient=recipient,
            subject=v["mail_subject"],
            body_text=f"Dear {v['name']}, we will call {v['phone']}.",
            headers={"X-Recipient": recipient},
            status=status,
            next_attempt_at=now,
            created_at=now,
        )


async def _seed_requests(p: Person, now: datetime) -> None:
    v = p.values
    common = {"customer_id": p.id, "channel": "account", "submitted_at": now}
    access = await RightsRequest.create(
        kind="access",
        status="completed",
        details=f"Send me what you hold on {v['name']}",
        outcome={"omitted": []},
        **common,
    )
    await RightsRequest.create(
        kind="rectification",
        status="completed",
        changes={"phone": v["rectified_phone"]},
        before={"phone": v["phone"]},
        after={"phone": v["rectified_phone"]},
        **common,
    )
    await RightsRequest.create(
        id=p.erasure_id,
        kind="erasure",
        status="in_progress",
        details=v["request_details"],
        received_at=now,
        due_at=now + timedelta(days=30),
        **common,
    )
    await RightsTransition.create(
        request_id=p.erasure_id,
        from_status="",
        to_status="unverified",
        actor_kind="customer",
        actor_id=str(p.id),
        reason="submitted",
        at=now,
    )
    v["export_token_hash"] = token_hash(f"export {v['name']}")
    await DataExport.create(
        request_id=access.id,
        customer_id=p.id,
        token_hash=v["export_token_hash"],
        document=json.dumps({"email": v["email"], "address": {"line1": v["line1"]}}),
        created_at=now,
        expires_at=now + timedelta(days=7),
    )


async def _seed_sign_in(services: Services, p: Person, now: datetime) -> None:
    v = p.values
    issued = await services.sessions.issue(customer_id=p.id)
    p.session_token = issued.token
    v["session_hash"] = token_hash(issued.token)
    v["email_token_digest"] = keyed_digest(services.secret, "email", v["pending_email"])
    await EmailToken.create(
        customer_id=p.id,
        token_hash=token_hash(f"verify {v['name']}"),
        email_digest=v["email_token_digest"],
        created_at=now,
        expires_at=now + timedelta(days=1),
    )
    v["reset_token_hash"] = token_hash(f"reset {v['name']}")
    await PasswordResetToken.create(
        customer_id=p.id,
        token_hash=v["reset_token_hash"],
        password_digest=keyed_digest(services.secret, "reset", v["name"]),
        created_at=now,
        expires_at=now + timedelta(minutes=30),
    )
    await services.throttle.record_failure(account=v["email"], ip=v["ip_full"])
    v["login_failure_key"] = keyed_digest(services.secret, "throttle-account", v["email"])


async def _seed_disclosure(p: Person, now: datetime) -> None:
    """A disclosure to the police, with legal's free-text note about it."""
    await ledger.append(
        [
            ledger.Entry(
                at=now,
                customer_id=p.id,
                recipient="Metropolitan Police Service",
                categories=["contact.email", "contact.address"],
                legal_basis=ledger.LegalBasis.COURT_ORDER,
                recorded_by=uuid4(),
                reference="Production order 2026/17",
                note=p.values["disclosure_note"],
            )
        ]
    )


# ---------------------------------------------------------------------------- scanning

TEXT_FIELDS = (CharField, TextField, JSONField)


def text_columns() -> dict[str, list[str]]:
    """Every table of the models, with its text, varchar and JSON columns."""
    tables: dict[str, list[str]] = {}
    for model in Tortoise.apps["models"].values():
        if model._meta.db_table in VIEWS:
            continue
        fields = model._meta.fields_map.values()
        columns = [
            f.source_field or f.model_field_name for f in fields if isinstance(f, TEXT_FIELDS)
        ]
        tables[model._meta.db_table] = columns
    return tables


async def stored_text() -> list[tuple[str, str, str]]:
    """(table, column, lower-cased value) of every non-null text value in the database."""
    conn = connections.get("default")
    found: list[tuple[str, str, str]] = []
    for table, columns in text_columns().items():
        for row in await conn.execute_query_dict(f"SELECT * FROM {table}"):
            for column in columns:
                value = row[column]
                if value is not None:
                    text = value if isinstance(value, str) else json.dumps(value)
                    found.append((table, column, text.lower()))
    return found


async def where_stored(values: dict[str, str]) -> dict[str, set[tuple[str, str]]]:
    """Label -> the (table, column) pairs holding that value anywhere in their text."""
    rows = await stored_text()
    return {
        label: {(t, c) for t, c, text in rows if value.lower() in text}
        for label, value in values.items()
    }


async def erase(services: Services, person: Person) -> dict[str, dict[str, Any]]:
    async with in_transaction() as conn:
        return await erase_customer(
            services=services,
            customer_id=person.id,
            request_id=person.erasure_id,
            now=services.clock.now(),
            using_db=conn,
        )


@pytest.fixture
async def people(services: Services) -> tuple[Person, Person]:
    return await seed(services, "zelda", 1), await seed(services, "bartok", 2)


async def database_tables() -> set[str]:
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        sql = "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    names = {str(row["name"]) for row in await conn.execute_query_dict(sql)}
    return names - {"tortoise_migrations", "sqlite_sequence"}


async def test_the_scan_covers_every_table_of_the_database() -> None:
    tables = text_columns()
    assert set(tables) == await database_tables()
    assert "document" in tables["data_export"]
    assert {"changes", "before", "after", "details"} <= set(tables["rights_request"])


# ---------------------------------------------------------------------------- erasure


async def test_erasure_leaves_nothing_of_the_customer_and_everything_of_the_other(
    services: Services, people: tuple[Person, Person]
) -> None:
    # given two customers with data in every table, seen everywhere before
    zelda, bartok = people
    before = await where_stored(zelda.values)
    assert all(before.values()), [k for k, v in before.items() if not v]
    # when Zelda is erased
    outcome = await erase(services, zelda)
    # then none of her values is anywhere, and every one of Bartok's still is
    after = await where_stored(zelda.values)
    assert {label: places for label, places in after.items() if places} == {}
    kept = await where_stored(bartok.values)
    assert [label for label, places in kept.items() if not places] == []
    # and the answer says per category what was done
    assert outcome == {
        c.value: {
            "action": erasure.ERASED_WHY[c][0],
            "why": erasure.ERASED_WHY[c][1],
            "references": [],
        }
        for c in Category
    }
    assert outcome["consent.history"]["action"] == "anonymised"
    assert outcome["support.cases"]["action"] == "erased"


async def test_what_an_erasure_keeps_is_anonymous_proof(
    services: Services, people: tuple[Person, Person]
) -> None:
    zelda, _ = people
    await erase(services, zelda)
    # the customer row stays with a placeholder address and no password
    row = await Customer.get(id=zelda.id)
    assert row.email == f"erased-{zelda.id}@erased.invalid"
    assert (row.pending_email, row.email_verified_at, row.last_login_at) == (None, None, None)
    assert (row.password_hash, row.phone, row.address_line1, row.address_country) == (
        NO_PASSWORD,
        "",
        "",
        "",
    )
    # consents and acceptances stay without IP and browser
    consents = await ConsentRecord.filter(customer_id=zelda.id).order_by("purpose")
    assert [(c.purpose, c.granted, c.source, c.policy_version) for c in consents] == [
        ("analytics", True, "registration", "1"),
        ("marketing.email", False, "registration", "1"),
    ]
    assert {(c.ip_truncated, c.user_agent) for c in consents} == {(None, None)}
    acceptance = await PolicyAcceptance.get(customer_id=zelda.id)
    assert (acceptance.version, acceptance.ip_truncated, acceptance.user_agent) == ("1", None, None)
    # requests keep kind, status, dates and outcome; their text is blank
    requests = await RightsRequest.filter(customer_id=zelda.id).order_by("kind")
    assert [(r.kind, r.status) for r in requests] == [
        ("access", "completed"),
        ("erasure", "in_progress"),
        ("rectification", "completed"),
    ]
    assert {(r.details, json.dumps([r.changes, r.before, r.after])) for r in requests} == {
        ("", "[{}, {}, {}]")
    }
    assert requests[0].outcome == {"omitted": []}
    assert requests[1].due_at is not None
    # rows gone: visits (with the anonymous one), cases, exports, mail, sessions
    assert await VisitEvent.filter(customer_id=zelda.id).count() == 0
    assert await VisitEvent.filter(visitor_digest=zelda.values["visitor_digest"]).count() == 0
    assert await SupportCase.filter(customer_id=zelda.id).count() == 0
    assert await DataExport.filter(customer_id=zelda.id).count() == 0
    assert await OutboxMessage.filter(customer_id=zelda.id).count() == 0


async def test_disclosures_stay_as_the_record_of_a_lawful_disclosure_without_the_note(
    services: Services, people: tuple[Person, Person]
) -> None:
    # given a disclosure about each customer, with legal's note
    zelda, bartok = people
    kept = ("id", "customer_id", "recipient", "reference", "legal_basis", "categories", "hash")
    before = await Disclosure.filter(customer_id=zelda.id).values(*kept)
    assert len(before) == 1
    # when Zelda is erased
    await erase(services, zelda)
    # then her disclosure stays as it was, but for the note
    rows = await Disclosure.filter(customer_id=zelda.id)
    assert await Disclosure.filter(customer_id=zelda.id).values(*kept) == before
    assert [r.note for r in rows] == [""]
    assert not await Disclosure.filter(note__contains="Vellum Bank, locker 1").exists()
    # and Bartok's note is untouched, and the ledger still verifies
    other = await Disclosure.get(customer_id=bartok.id)
    assert other.note == bartok.values["disclosure_note"]
    result = await ledger.verify()
    assert (result.ok, result.checked) == (True, 2)


async def test_the_erased_customer_cannot_sign_in_and_the_log_still_verifies(
    gql: GQL, services: Services, people: tuple[Person, Person]
) -> None:
    zelda, bartok = people
    await login(gql, bartok.email)  # something in the audit log
    await erase(services, zelda)
    # the old session is gone, and the address and password no longer sign in
    assert (await services.sessions.resolve(zelda.session_token)).kind == "anonymous"
    body = await gql(LOGIN, {"email": zelda.email, "password": PASSWORD})
    assert body["data"]["login"]["code"] == "INVALID_CREDENTIALS"
    placeholder = f"erased-{zelda.id}@erased.invalid"
    body = await gql(LOGIN, {"email": placeholder, "password": PASSWORD})
    assert body["data"]["login"]["code"] == "INVALID_CREDENTIALS"
    # the other customer still can, and the audit log is intact
    assert (await services.sessions.resolve(bartok.session_token)).kind == "customer"
    await login(gql, bartok.email)
    result = await verify()
    assert result.ok, result
    assert result.checked >= 4


async def test_held_categories_are_kept_and_only_those(
    gql: GQL, services: Services, clock: FakeClock, people: tuple[Person, Person]
) -> None:
    # given holds on Zelda's email and support cases, and a released and an expired hold
    zelda, bartok = people
    now = services.clock.now()
    await hold(services, zelda, ["contact.email"], "Court order 2026/17")
    await hold(services, zelda, ["support.cases", "contact.email"], "Tax audit T-9")
    await hold(services, zelda, ["behavior.browsing"], "Expired E-1", expires=now + timedelta(1))
    await hold(services, zelda, ["device.ip"], "Released R-1", released=True)
    clock.advance(days=2)
    # when she is erased
    outcome = await erase(services, zelda)
    # then the held categories are kept, and the answer says which hold keeps them
    assert outcome["contact.email"] == {
        "action": "kept",
        "why": "Kept under a legal hold (Court order 2026/17, Tax audit T-9) until it ends.",
        "references": ["Court order 2026/17", "Tax audit T-9"],
    }
    assert outcome["support.cases"]["references"] == ["Tax audit T-9"]
    assert {c for c, o in outcome.items() if o["action"] == "kept"} == {
        "contact.email",
        "support.cases",
    }
    assert outcome["behavior.browsing"]["action"] == outcome["device.ip"]["action"] == "erased"
    # and her held values remain exactly where they belong, nothing else of hers anywhere
    places = await where_stored(zelda.values)
    assert {label: p for label, p in places.items() if p} == {
        "email": {("customer", "email")},
        "pending_email": {("customer", "pending_email")},
        "name": {("support_case", "message")},
        "support_subject": {("support_case", "subject")},
        "support_message": {("support_case", "message")},
    }
    assert all((await where_stored(bartok.values)).values())
    # and the address no longer signs in
    body = await gql(LOGIN, {"email": zelda.email, "password": PASSWORD})
    assert body["data"]["login"]["code"] == "INVALID_CREDENTIALS"


async def test_a_hold_on_one_visit_category_keeps_only_its_columns(
    services: Services, people: tuple[Person, Person]
) -> None:
    zelda, _ = people
    await hold(services, zelda, ["device.ip"], "Fraud case F-3")
    outcome = await erase(services, zelda)
    assert outcome["device.ip"]["action"] == "kept"
    assert outcome["device.browser"]["action"] == "erased"
    rows = await VisitEvent.filter(visitor_digest=zelda.values["visitor_digest"]).order_by("id")
    assert [(r.customer_id is None, r.page, r.browser, r.ip_truncated) for r in rows] == [
        (False, "", "", zelda.values["ip_truncated"]),
        (True, "", "", zelda.values["ip_truncated"]),
    ]
    assert await VisitEvent.filter(customer_id=zelda.id).exclude(ip_full=None).count() == 1


async def test_a_failure_half_way_leaves_everything_as_it_was(
    services: Services, people: tuple[Person, Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a step after visits, mail and sessions are already gone fails
    zelda, _ = people
    before = await where_stored(zelda.values)

    async def broken(_: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(erasure, "_erase_support_cases", broken)
    # when the erasure runs, it raises
    with pytest.raises(RuntimeError, match="disk full"):
        await erase(services, zelda)
    # then every value of hers is where it was
    assert await where_stored(zelda.values) == before
    assert await VisitEvent.filter(customer_id=zelda.id).count() == 3
    assert (await services.sessions.resolve(zelda.session_token)).kind == "customer"


async def test_erasure_refuses_a_request_of_someone_else(
    services: Services, people: tuple[Person, Person]
) -> None:
    zelda, bartok = people
    with pytest.raises(ValueError, match="not this customer's"):
        async with in_transaction() as conn:
            await erase_customer(
                services=services,
                customer_id=zelda.id,
                request_id=bartok.erasure_id,
                now=services.clock.now(),
                using_db=conn,
            )
    assert (await Customer.get(id=zelda.id)).email == zelda.email


# ---------------------------------------------------------------------------- holds


async def hold(
    services: Services,
    person: Person,
    categories: list[str],
    reference: str,
    *,
    expires: datetime | None = None,
    released: bool = False,
) -> LegalHold:
    now = services.clock.now()
    draft = HoldDraft(categories, "Keep for the proceedings", reference, expires)
    placed = await place_hold(customer_id=person.id, draft=draft, placed_by=uuid4(), now=now)
    if released:
        await LegalHold.filter(id=placed.id).update(released_at=now, released_by=uuid4())
    return placed


async def test_held_categories_counts_only_active_holds(
    services: Services, people: tuple[Person, Person]
) -> None:
    zelda, bartok = people
    now = services.clock.now()
    await hold(services, zelda, ["contact.email", "support.cases"], "B-2")
    await hold(services, zelda, ["contact.email"], "A-1", expires=now + timedelta(hours=1))
    await hold(services, zelda, ["contact.phone"], "C-3", released=True)
    await hold(services, bartok, ["device.ip"], "D-4")
    assert await held_categories(customer_id=zelda.id, now=now) == {
        "contact.email": ["A-1", "B-2"],
        "support.cases": ["B-2"],
    }
    later = now + timedelta(hours=1)  # the expiry itself is no longer held
    assert await held_categories(customer_id=zelda.id, now=later) == {
        "contact.email": ["B-2"],
        "support.cases": ["B-2"],
    }


ERROR = "... on InputError { code field fields { field code } }"
PLACE = f"""
mutation($c: ID!, $cats: [String!]!, $reason: String!, $ref: String!, $exp: DateTime) {{
  placeLegalHold(customerId: $c, categories: $cats, reason: $reason, reference: $ref,
                 expiresAt: $exp) {{
    __typename
    ... on LegalHoldPlaced {{ hold {{ id customerId categories reason reference expiresAt
                                     placedBy active releasedAt }} }}
    {ERROR}
  }}
}}
"""
RELEASE = f"""
mutation($id: ID!, $reason: String!) {{
  releaseLegalHold(id: $id, reason: $reason) {{
    __typename
    ... on LegalHoldReleased {{ hold {{ id active releasedAt releasedBy reason }} }}
    {ERROR}
  }}
}}
"""
LIST = """
query($c: ID!, $active: Boolean) {
  legalHolds(customerId: $c, activeOnly: $active) { id reference active categories }
}
"""


def place_args(person: Person, **overrides: Any) -> dict[str, Any]:
    args = {
        "c": str(person.id),
        "cats": ["contact.email", "support.cases"],
        "reason": "Litigation: keep the correspondence",
        "ref": "Case 2026-CV-0042",
        "exp": None,
    }
    args.update(overrides)
    return args


async def test_legal_places_lists_and_releases_a_hold_and_each_is_audited(
    gql: GQL, services: Services, people: tuple[Person, Person]
) -> None:
    zelda, _ = people
    legal, legal_id = await signed_in_employee(gql, services, "legal")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer")
    expiry = (services.clock.now() + timedelta(days=90)).isoformat()
    # when legal places a hold
    body = await gql(PLACE, place_args(zelda, exp=expiry), token=legal)
    assert body.get("data"), body
    placed = body["data"]["placeLegalHold"]
    assert placed["__typename"] == "LegalHoldPlaced", body
    assert {k: placed["hold"][k] for k in ("customerId", "categories", "placedBy", "active")} == {
        "customerId": str(zelda.id),
        "categories": ["contact.email", "support.cases"],
        "placedBy": legal_id,
        "active": True,
    }
    hold_id = placed["hold"]["id"]
    # then legal and the privacy officer see it
    for token in (legal, officer):
        listed = (await gql(LIST, {"c": str(zelda.id)}, token=token))["data"]["legalHolds"]
        assert [h["id"] for h in listed] == [hold_id]
    # when legal releases it
    body = await gql(RELEASE, {"id": hold_id, "reason": "Case settled"}, token=legal)
    released = body["data"]["releaseLegalHold"]
    assert released["__typename"] == "LegalHoldReleased", body
    assert (released["hold"]["active"], released["hold"]["releasedBy"]) == (False, legal_id)
    assert released["hold"]["reason"].endswith("Released: Case settled")
    # then it no longer counts, but is still listed when asked for every hold
    assert await held_categories(customer_id=zelda.id, now=services.clock.now()) == {}
    active = await gql(LIST, {"c": str(zelda.id)}, token=legal)
    assert active["data"]["legalHolds"] == []
    every = await gql(LIST, {"c": str(zelda.id), "active": False}, token=legal)
    assert [h["active"] for h in every["data"]["legalHolds"]] == [False]
    # and each step is in the log with the customer as subject and the reference as reason
    events = await AuditEvent.filter(event="legal_hold").order_by("id")
    assert [
        (e.operation, e.subject_id, e.reason, e.actor_id) for e in events if e.actor_id == legal_id
    ] == [
        ("place", str(zelda.id), "Case 2026-CV-0042", legal_id),
        ("list", str(zelda.id), "", legal_id),
        ("release", str(zelda.id), "Case 2026-CV-0042", legal_id),
        ("list", str(zelda.id), "", legal_id),
        ("list", str(zelda.id), "", legal_id),
    ]


async def test_releasing_a_released_hold_is_an_error_and_changes_nothing(
    gql: GQL, services: Services, clock: FakeClock, people: tuple[Person, Person]
) -> None:
    zelda, _ = people
    legal, _ = await signed_in_employee(gql, services, "legal")
    placed = await gql(PLACE, place_args(zelda), token=legal)
    hold_id = placed["data"]["placeLegalHold"]["hold"]["id"]
    await gql(RELEASE, {"id": hold_id, "reason": "Case settled"}, token=legal)
    before = await LegalHold.get(id=hold_id)
    clock.advance(minutes=10)
    body = await gql(RELEASE, {"id": hold_id, "reason": "Again"}, token=legal)
    error = body["data"]["releaseLegalHold"]
    assert (error["__typename"], error["code"], error["field"]) == (
        "InputError",
        "INVALID_TRANSITION",
        "id",
    )
    after = await LegalHold.get(id=hold_id)
    assert (after.released_at, after.reason) == (before.released_at, before.reason)
    assert await AuditEvent.filter(event="legal_hold", operation="release").count() == 1


@pytest.mark.parametrize(
    "role", ["customer_care", "marketing", "privacy_officer", "auditor", "admin"]
)
async def test_only_legal_places_or_releases_holds(
    gql: GQL, services: Services, people: tuple[Person, Person], role: str
) -> None:
    # given a hold placed by legal, and an employee of another role
    zelda, _ = people
    legal, _ = await signed_in_employee(gql, services, "legal")
    placed = await gql(PLACE, place_args(zelda), token=legal)
    hold_id = placed["data"]["placeLegalHold"]["hold"]["id"]
    other, other_id = await signed_in_employee(gql, services, role)
    stored = await LegalHold.all().values_list("id", "released_at", "reason")
    # when they place or release one
    attempts = [
        ("placeLegalHold", await gql(PLACE, place_args(zelda, ref="X-1"), token=other)),
        ("releaseLegalHold", await gql(RELEASE, {"id": hold_id, "reason": "no"}, token=other)),
    ]
    # then both are FORBIDDEN, nothing changed, and both refusals are logged
    for operation, body in attempts:
        assert body["data"][operation] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await LegalHold.all().values_list("id", "released_at", "reason") == stored
    denials = await AuditEvent.filter(decision="deny", actor_id=other_id).order_by("id")
    assert [(d.operation, d.reason) for d in denials] == [
        ("placeLegalHold", "requires role legal"),
        ("releaseLegalHold", "requires role legal"),
    ]


async def test_reading_holds_is_for_legal_and_the_privacy_officer(
    gql: GQL, services: Services, people: tuple[Person, Person]
) -> None:
    zelda, _ = people
    for role in ("customer_care", "marketing", "auditor", "admin"):
        token, _ = await signed_in_employee(gql, services, role)
        body = await gql(LIST, {"c": str(zelda.id)}, token=token)
        assert body["data"]["legalHolds"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    customer = await login(gql, zelda.email)
    body = await gql(PLACE, place_args(zelda), token=customer)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await LegalHold.all().count() == 0


def _in(days: float) -> str:
    return (FakeClock().now() + timedelta(days=days)).isoformat()


BAD_INPUTS = [
    ({"cats": []}, "VALIDATION", "categories"),
    ({"cats": ["contact.mail"]}, "VALIDATION", "categories[0]"),
    ({"cats": ["account.credentials"]}, "VALIDATION", "categories[0]"),
    ({"cats": ["contact.email", "contact.email"]}, "VALIDATION", "categories[1]"),
    ({"cats": ["contact.*"]}, "VALIDATION", "categories[0]"),
    ({"reason": "  "}, "VALIDATION", "reason"),
    ({"ref": ""}, "VALIDATION", "reference"),
    ({"ref": "R" * 201}, "VALIDATION", "reference"),
    ({"exp": _in(-1)}, "VALIDATION", "expiresAt"),
    ({"exp": _in(0)}, "VALIDATION", "expiresAt"),
    ({"c": str(uuid4())}, "NOT_FOUND", "customerId"),
    ({"c": "not-an-id"}, "NOT_FOUND", "customerId"),
]


@pytest.mark.parametrize(("overrides", "code", "field_name"), BAD_INPUTS)
async def test_each_bad_hold_is_its_typed_error_and_stores_nothing(
    gql: GQL,
    services: Services,
    people: tuple[Person, Person],
    overrides: dict[str, Any],
    code: str,
    field_name: str,
) -> None:
    zelda, _ = people
    legal, _ = await signed_in_employee(gql, services, "legal")
    body = await gql(PLACE, place_args(zelda, **overrides), token=legal)
    error = body["data"]["placeLegalHold"]
    assert (error["__typename"], error["code"], error["field"]) == ("InputError", code, field_name)
    assert await LegalHold.all().count() == 0
    assert await AuditEvent.filter(event="legal_hold").count() == 0


async def test_bad_releases_are_typed_errors(
    gql: GQL, services: Services, people: tuple[Person, Person]
) -> None:
    zelda, _ = people
    legal, _ = await signed_in_employee(gql, services, "legal")
    placed = await gql(PLACE, place_args(zelda), token=legal)
    hold_id = placed["data"]["placeLegalHold"]["hold"]["id"]
    cases = [
        ({"id": str(uuid4()), "reason": "done"}, "NOT_FOUND", "id"),
        ({"id": "nope", "reason": "done"}, "NOT_FOUND", "id"),
        ({"id": hold_id, "reason": " "}, "VALIDATION", "reason"),
    ]
    for variables, code, field_name in cases:
        error = (await gql(RELEASE, variables, token=legal))["data"]["releaseLegalHold"]
        assert (error["code"], error["field"]) == (code, field_name)
    assert (await LegalHold.get(id=hold_id)).released_at is None
