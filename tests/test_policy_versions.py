"""Privacy policy versions (policy section 7): legal or admin publish; a material change is
announced ahead by email (batches that resume after a crash and never send twice), shows as
pending to customers once in effect until they accept it, and asks again only for the
consents of the purposes whose scope it changed. Bad input stores nothing."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from api.clock import FakeClock
from api.consent.service import may_process
from api.mail.outbox import enqueue_many
from api.policy import notices
from api.policy.notices import queue_policy_notices
from api.policy.service import PolicyDraft, publish_policy
from api.services import Services, build_services
from api.settings import Settings
from models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    OutboxMessage,
    PolicyAcceptance,
    PrivacyPolicy,
)
from tests.conftest import (
    GQL,
    PASSWORD,
    POLICY_SEEDED_AT,
    STAFF_LOGIN,
    login,
    mails,
    register,
    signed_in_employee,
)
from tests.test_cli import Cli

VERSION_FIELDS = "version effectiveAt publishedAt material summary text changedPurposes inEffect"
PUBLISH = f"""
mutation($version: String!, $effectiveAt: DateTime!, $material: Boolean!, $summary: String!,
         $text: String!, $changedPurposes: [String!]) {{
  publishPolicy(version: $version, effectiveAt: $effectiveAt, material: $material,
                summary: $summary, text: $text, changedPurposes: $changedPurposes) {{
    __typename
    ... on PolicyPublished {{ policy {{ {VERSION_FIELDS} }} }}
    ... on InputError {{ code field fields {{ field code }} }}
  }}
}}
"""
ACCEPT = """
mutation($version: String!) {
  acceptPolicy(version: $version) {
    __typename
    ... on PolicyAccepted { changed acceptedAt policy { version } }
    ... on InputError { code field }
  }
}
"""
CURRENT = f"{{ currentPolicy {{ {VERSION_FIELDS} }} }}"
HISTORY = "{ policyHistory { version effectiveAt material inEffect } }"
PENDING = "{ me { pendingPolicy { version material summary } } }"
CONSENTS = "{ me { consents { purpose granted state } consentHistory { purpose policyVersion } } }"
SET_CONSENT = """mutation($purpose: String!, $granted: Boolean!) {
  setConsent(purpose: $purpose, granted: $granted) {
    __typename ... on ConsentSet { changed consent { purpose granted state } } } }"""
MARKETING_READ = "query($id: ID!) { customer(id: $id, purpose: MARKETING_EMAIL) { email } }"
DAY = timedelta(days=1)


def iso(value: datetime) -> str:
    return value.isoformat()


def draft(clock: FakeClock, **overrides: Any) -> dict[str, Any]:
    """A valid material version 2 taking effect after the 30 days' notice."""
    data: dict[str, Any] = {
        "version": "2",
        "effectiveAt": iso(clock.now() + 30 * DAY),
        "material": True,
        "summary": "Marketing email now includes partner offers.",
        "text": "The whole new policy text.",
        "changedPurposes": ["marketing.email"],
    }
    data.update(overrides)
    return data


async def publisher(gql: GQL, services: Services, role: str = "legal") -> str:
    token, _ = await signed_in_employee(gql, services, role, name=f"{role}-publisher")
    return token


async def publish(gql: GQL, token: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await gql(PUBLISH, variables, token=token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["publishPolicy"]
    return result


async def customer(gql: GQL, n: int = 0, **registration: Any) -> tuple[str, Customer]:
    email = f"cust{n}@example.com"
    await register(gql, email=email, phone=f"+44 20 7946 01{n:02d}", **registration)
    return await login(gql, email), await Customer.get(email=email)


async def make_customers(verified: int, unverified: int, at: datetime) -> list[Customer]:
    made = []
    for n in range(verified + unverified):
        made.append(
            await Customer.create(
                email=f"bulk{n}@example.com",
                password_hash="x",
                phone=f"+4420794602{n:02d}",
                address_line1="1 Baker Street",
                address_city="London",
                address_postal_code="NW1 6XE",
                address_country="GB",
                email_verified_at=at if n < verified else None,
                created_at=at,
                updated_at=at,
            )
        )
    return made


# --- reading versions ---------------------------------------------------------------------


async def test_the_seeded_first_version_is_current_for_everyone(gql: GQL) -> None:
    # given a migrated database, and nobody signed in
    # when the current policy and the history are asked for
    current = (await gql(CURRENT))["data"]["currentPolicy"]
    history = (await gql(HISTORY))["data"]["policyHistory"]
    # then version 1 is in force: the shop's policy text, non-material
    text = resources.files("api.policy").joinpath("privacy-policy.txt").read_text("utf-8")
    assert text.startswith("This Privacy Policy")
    assert current == {
        "version": "1",
        "effectiveAt": iso(POLICY_SEEDED_AT),
        "publishedAt": iso(POLICY_SEEDED_AT),
        "material": False,
        "summary": "Initial policy",
        "text": text,
        "changedPurposes": [],
        "inEffect": True,
    }
    assert history == [
        {"version": "1", "effectiveAt": iso(POLICY_SEEDED_AT), "material": False, "inEffect": True}
    ]


@pytest.mark.parametrize("role", ["legal", "admin"])
async def test_legal_or_admin_publish_a_non_material_version_in_effect_at_once(
    gql: GQL, services: Services, clock: FakeClock, role: str
) -> None:
    # given an employee with the role
    token = await publisher(gql, services, role)
    # when they publish a non-material version effective now
    variables = draft(
        clock, version="1.1", effectiveAt=iso(clock.now()), material=False, changedPurposes=[]
    )
    result = await publish(gql, token, variables)
    # then it is stored and answered, in force at once
    assert result["__typename"] == "PolicyPublished"
    assert result["policy"] == {
        "version": "1.1",
        "effectiveAt": iso(clock.now()),
        "publishedAt": iso(clock.now()),
        "material": False,
        "summary": "Marketing email now includes partner offers.",
        "text": "The whole new policy text.",
        "changedPurposes": [],
        "inEffect": True,
    }
    assert (await gql(CURRENT))["data"]["currentPolicy"]["version"] == "1.1"
    history = (await gql(HISTORY))["data"]["policyHistory"]
    assert [v["version"] for v in history] == ["1.1", "1"]
    row = await PrivacyPolicy.get(version="1.1")
    assert row.notice_done  # nothing to announce
    # and the publication is audited with its author
    [event] = await AuditEvent.filter(event="policy", operation="publishPolicy")
    assert (event.decision, event.actor_kind, event.roles) == ("allow", "employee", role)
    assert event.reason == "version=1.1, non-material"
    assert str(row.published_by) == event.actor_id


async def test_a_material_version_takes_effect_exactly_on_time(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a material version published with 30 days' notice
    token = await publisher(gql, services)
    effective = clock.now() + 30 * DAY
    result = await publish(gql, token, draft(clock, effectiveAt=iso(effective)))
    assert result["policy"]["inEffect"] is False
    # then until it takes effect, version 1 stays current and the history shows both
    clock.advance(days=30, seconds=-1)
    assert (await gql(CURRENT))["data"]["currentPolicy"]["version"] == "1"
    assert (await gql(HISTORY))["data"]["policyHistory"] == [
        {"version": "2", "effectiveAt": iso(effective), "material": True, "inEffect": False},
        {"version": "1", "effectiveAt": iso(POLICY_SEEDED_AT), "material": False, "inEffect": True},
    ]
    defined = {p["key"]: p["definedIn"] for p in (await gql(PURPOSES))["data"]["purposes"]}
    assert defined["marketing.email"] == "1"
    # when the clock reaches its effective time
    clock.advance(seconds=1)
    # then it is current, and defines the purposes whose scope it changed
    current = (await gql(CURRENT))["data"]["currentPolicy"]
    assert (current["version"], current["inEffect"]) == ("2", True)
    defined = {p["key"]: p["definedIn"] for p in (await gql(PURPOSES))["data"]["purposes"]}
    assert defined["marketing.email"] == "2"
    assert defined["analytics"] == "1"


PURPOSES = "{ purposes { key definedIn } }"


@pytest.mark.parametrize("who", ["marketing", "auditor", "customer", "anonymous"])
async def test_others_cannot_publish_and_nothing_is_stored(
    gql: GQL, services: Services, clock: FakeClock, who: str
) -> None:
    # given someone without the legal or admin role
    if who == "customer":
        token: str | None = (await customer(gql))[0]
    elif who == "anonymous":
        token = None
    else:
        token = await publisher(gql, services, who)
    gql.client.cookies.clear()
    # when they try to publish
    body = await gql(PUBLISH, draft(clock), token=token)
    # then they are refused, nothing is stored
    expected = "UNAUTHENTICATED" if who == "anonymous" else "FORBIDDEN"
    assert body["data"]["publishPolicy"] is None
    assert body["errors"][0]["extensions"]["code"] == expected
    assert [p.version for p in await PrivacyPolicy.all()] == ["1"]
    assert not await AuditEvent.filter(event="policy").exists()
    # and a signed-in refusal is logged
    denials = await AuditEvent.filter(operation="publishPolicy", decision="deny")
    if who == "anonymous":
        assert denials == []
    else:
        assert [d.reason for d in denials] == ["requires role admin or legal"]


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        pytest.param(
            {"changedPurposes": ["marketing.email", "gossip"]},
            "VALIDATION",
            "changedPurposes.1",
            id="unknown purpose",
        ),
        pytest.param(
            {"material": False, "changedPurposes": [], "effectiveAt": "PAST"},
            "VALIDATION",
            "effectiveAt",
            id="effective in the past",
        ),
        pytest.param(
            {"effectiveAt": "29 DAYS"}, "EFFECTIVE_TOO_SOON", "effectiveAt", id="material too soon"
        ),
        pytest.param(
            {"version": "1", "material": False, "changedPurposes": [], "effectiveAt": "NOW"},
            "DUPLICATE_VERSION",
            "version",
            id="duplicate version",
        ),
        pytest.param(
            {"material": False, "changedPurposes": ["analytics"], "effectiveAt": "NOW"},
            "VALIDATION",
            "changedPurposes",
            id="non-material with changed purposes",
        ),
        pytest.param({"version": "two words"}, "VALIDATION", "version", id="version not a token"),
        pytest.param({"summary": "  "}, "VALIDATION", "summary", id="empty summary"),
        pytest.param({"text": ""}, "VALIDATION", "text", id="empty text"),
    ],
)
async def test_bad_input_is_a_typed_error_and_stores_nothing(
    gql: GQL,
    services: Services,
    clock: FakeClock,
    overrides: dict[str, Any],
    code: str,
    field: str,
) -> None:
    # given a legal employee
    token = await publisher(gql, services)
    times = {
        "PAST": clock.now() - timedelta(seconds=1),
        "NOW": clock.now(),
        "29 DAYS": clock.now() + 29 * DAY,
    }
    if overrides.get("effectiveAt") in times:
        overrides = {**overrides, "effectiveAt": iso(times[overrides["effectiveAt"]])}
    # when they publish a version with one thing wrong
    result = await publish(gql, token, draft(clock, **overrides))
    # then the answer names it with its code, and nothing is stored or audited as published
    assert (result["__typename"], result["code"], result["field"]) == ("InputError", code, field)
    assert [p.version for p in await PrivacyPolicy.all()] == ["1"]
    assert not await AuditEvent.filter(event="policy").exists()


async def test_a_version_must_take_effect_after_the_latest_one(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given version 2 taking effect in 40 days
    token = await publisher(gql, services)
    await publish(gql, token, draft(clock, effectiveAt=iso(clock.now() + 40 * DAY)))
    # when version 3 is to take effect before it, or at the same time
    for days in (35, 40):
        variables = draft(clock, version="3", effectiveAt=iso(clock.now() + days * DAY))
        result = await publish(gql, token, variables)
        # then it is refused and not stored
        assert (result["code"], result["field"]) == ("VALIDATION", "effectiveAt")
    assert sorted(p.version for p in await PrivacyPolicy.all()) == ["1", "2"]


async def test_the_notice_period_is_a_setting(
    services: Services, settings: Settings, clock: FakeClock
) -> None:
    # given a notice period of 7 days
    short = build_services(settings.model_copy(update={"policy_notice_days": 7}), clock=clock)
    try:
        # then a material change 7 days ahead is accepted
        entry = await publish_policy(
            services=short,
            draft=PolicyDraft(
                version="2",
                effective_at=clock.now() + 7 * DAY,
                material=True,
                summary="Shorter notice.",
                text="Text.",
                changed_purposes=["analytics", "analytics"],
            ),
            published_by=None,
        )
    finally:
        short.close()
    assert entry.changed_purposes == ("analytics",)


# --- accepting ----------------------------------------------------------------------------


async def test_a_customer_accepts_a_version_in_effect_once(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a signed-in customer
    token, me = await customer(gql)
    # when they accept the version in force, twice
    first = (await gql(ACCEPT, {"version": "1"}, token=token))["data"]["acceptPolicy"]
    clock.advance(minutes=5)
    again = (await gql(ACCEPT, {"version": "1"}, token=token))["data"]["acceptPolicy"]
    # then one acceptance is recorded, at the first time, with the network and the browser
    assert first == {
        "__typename": "PolicyAccepted",
        "changed": True,
        "acceptedAt": iso(clock.now() - timedelta(minutes=5)),
        "policy": {"version": "1"},
    }
    assert again == {**first, "changed": False}
    [row] = await PolicyAcceptance.filter(customer_id=me.id)
    assert (row.version, row.ip_truncated) == ("1", "203.0.113.0/24")
    assert row.user_agent
    # and both calls are audited
    events = await AuditEvent.filter(operation="acceptPolicy").order_by("id")
    assert [(e.event, e.subject_id, e.reason) for e in events] == [
        ("consent", str(me.id), "version=1"),
        ("consent", str(me.id), "version=1, unchanged"),
    ]


async def test_accepting_an_unknown_or_future_version_is_refused(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given version 2, published but not in effect yet
    await publish(gql, await publisher(gql, services), draft(clock))
    token, _ = await customer(gql)
    # when a customer accepts a version that does not exist, or version 2
    unknown = (await gql(ACCEPT, {"version": "9"}, token=token))["data"]["acceptPolicy"]
    future = (await gql(ACCEPT, {"version": "2"}, token=token))["data"]["acceptPolicy"]
    # then each is a typed error and nothing is recorded
    assert (unknown["code"], unknown["field"]) == ("UNKNOWN_VERSION", "version")
    assert (future["code"], future["field"]) == ("NOT_IN_EFFECT", "version")
    assert await PolicyAcceptance.all().count() == 0


async def test_only_a_signed_in_customer_accepts(gql: GQL, services: Services) -> None:
    staff = await publisher(gql, services, "admin")
    gql.client.cookies.clear()
    as_staff = await gql(ACCEPT, {"version": "1"}, token=staff)
    gql.client.cookies.clear()
    anonymous = await gql(ACCEPT, {"version": "1"})
    assert as_staff["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await PolicyAcceptance.all().count() == 0


# --- pending policy -----------------------------------------------------------------------


async def test_a_material_change_is_pending_once_in_effect_until_accepted(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a customer, and a material version 2 published for 30 days later
    await customer(gql, 1)
    clock.advance(hours=1)
    await publish(gql, await publisher(gql, services), draft(clock))
    token = await login(gql, "cust1@example.com")
    # then nothing is pending before it takes effect
    assert (await gql(PENDING, token=token))["data"]["me"]["pendingPolicy"] is None
    # when it takes effect
    clock.advance(days=30)
    token = await login(gql, "cust1@example.com")
    # then the customer sees it as pending
    pending = (await gql(PENDING, token=token))["data"]["me"]["pendingPolicy"]
    assert pending == {
        "version": "2",
        "material": True,
        "summary": "Marketing email now includes partner offers.",
    }
    # and a customer who registered after it took effect does not
    late_token, _ = await customer(gql, 2)
    assert (await gql(PENDING, token=late_token))["data"]["me"]["pendingPolicy"] is None
    # when the first customer accepts it, it is no longer pending
    accepted = await gql(ACCEPT, {"version": "2"}, token=token)
    assert accepted["data"]["acceptPolicy"]["changed"] is True
    assert (await gql(PENDING, token=token))["data"]["me"]["pendingPolicy"] is None


async def test_a_non_material_change_is_never_pending(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    token, _ = await customer(gql)
    clock.advance(hours=1)
    variables = draft(
        clock, version="1.1", material=False, changedPurposes=[], effectiveAt=iso(clock.now())
    )
    await publish(gql, await publisher(gql, services), variables)
    clock.advance(days=1)
    token = await login(gql, "cust0@example.com")
    assert (await gql(PENDING, token=token))["data"]["me"]["pendingPolicy"] is None


async def test_staff_do_not_see_a_customers_pending_policy(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    _, me = await customer(gql)
    token, _ = await signed_in_employee(gql, services, "legal", name="reader")
    query = "query($id: ID!) { customer(id: $id, purpose: LEGAL) { pendingPolicy { version } } }"
    body = await gql(query, {"id": str(me.id)}, token=token)
    assert body["data"]["customer"]["pendingPolicy"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# --- ask again ----------------------------------------------------------------------------


async def test_only_consents_whose_scope_changed_are_asked_again(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a customer who consented to marketing email and analytics at registration
    consents = [
        {"purpose": "marketing.email", "granted": True},
        {"purpose": "analytics", "granted": True},
    ]
    _, me = await customer(gql, consents=consents)
    marketing, _ = await signed_in_employee(gql, services, "marketing", name="marketer")
    read = await gql(MARKETING_READ, {"id": str(me.id)}, token=marketing)
    assert read["data"]["customer"]["email"] == "cust0@example.com"
    # and a material version changing the scope of marketing email, published later
    clock.advance(minutes=1)
    await publish(gql, await publisher(gql, services), draft(clock))
    # then until it takes effect the consent still counts
    assert await may_process(services=services, customer_id=me.id, purpose="marketing.email")
    # when it takes effect
    clock.advance(days=30)
    token = await login(gql, "cust0@example.com")
    marketing = await staff_login(gql, "marketer")
    # then marketing email is to be asked again, analytics keeps its consent
    assert not await may_process(services=services, customer_id=me.id, purpose="marketing.email")
    assert await may_process(services=services, customer_id=me.id, purpose="analytics")
    states = await consent_states(gql, token)
    assert states["marketing.email"] == {"granted": False, "state": "ASK_AGAIN"}
    assert states["analytics"] == {"granted": True, "state": "GRANTED"}
    assert states["personalization"] == {"granted": False, "state": "NOT_ASKED"}
    # and marketing can no longer read the customer's email
    read = await gql(MARKETING_READ, {"id": str(me.id)}, token=marketing)
    assert read["data"]["customer"]["email"] is None
    assert read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # when the customer gives the consent again
    given = await gql(SET_CONSENT, {"purpose": "marketing.email", "granted": True}, token=token)
    assert given["data"]["setConsent"] == {
        "__typename": "ConsentSet",
        "changed": True,
        "consent": {"purpose": "marketing.email", "granted": True, "state": "GRANTED"},
    }
    # then it counts again, recorded under version 2
    assert await may_process(services=services, customer_id=me.id, purpose="marketing.email")
    assert (await consent_states(gql, token))["marketing.email"]["state"] == "GRANTED"
    read = await gql(MARKETING_READ, {"id": str(me.id)}, token=marketing)
    assert read["data"]["customer"]["email"] == "cust0@example.com"
    history = (await gql(CONSENTS, token=token))["data"]["me"]["consentHistory"]
    assert history[0] == {"purpose": "marketing.email", "policyVersion": "2"}
    assert {h["policyVersion"] for h in history[1:]} == {"1"}


async def test_a_withdrawn_consent_stays_withdrawn_after_a_change(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    token, me = await customer(gql)
    await gql(SET_CONSENT, {"purpose": "marketing.email", "granted": False}, token=token)
    clock.advance(minutes=1)
    await publish(gql, await publisher(gql, services), draft(clock))
    clock.advance(days=30)
    token = await login(gql, "cust0@example.com")
    assert (await consent_states(gql, token))["marketing.email"] == {
        "granted": False,
        "state": "WITHDRAWN",
    }
    # withdrawing again records nothing
    again = await gql(SET_CONSENT, {"purpose": "marketing.email", "granted": False}, token=token)
    assert again["data"]["setConsent"]["changed"] is False
    assert await ConsentRecord.filter(customer_id=me.id).count() == 1


async def staff_login(gql: GQL, name: str) -> str:
    body = await gql(STAFF_LOGIN, {"email": f"{name}@staff.example.com", "password": PASSWORD})
    token: str = body["data"]["staffLogin"]["token"]
    return token


async def consent_states(gql: GQL, token: str) -> dict[str, dict[str, Any]]:
    body = await gql(CONSENTS, token=token)
    return {
        c["purpose"]: {"granted": c["granted"], "state": c["state"]}
        for c in body["data"]["me"]["consents"]
    }


# --- notices ------------------------------------------------------------------------------


@pytest.fixture
async def batched(settings: Settings, clock: FakeClock) -> Any:
    """Services with notice batches of 3 (another process, as far as caches go)."""
    built = build_services(settings.model_copy(update={"policy_notice_batch": 3}), clock=clock)
    yield built
    built.close()


async def publish_material(services: Services, clock: FakeClock) -> None:
    await publish_policy(
        services=services,
        draft=PolicyDraft(
            version="2",
            effective_at=clock.now() + 30 * DAY,
            material=True,
            summary="Marketing email now includes partner offers.",
            text="The whole new policy text.",
            changed_purposes=["marketing.email"],
        ),
        published_by=None,
    )


async def notice_recipients() -> list[str]:
    return [m.recipient for m in await mails("policy_notice")]


async def test_a_material_change_mails_each_active_customer_once(
    batched: Services, clock: FakeClock
) -> None:
    # given 7 customers with a verified address and 3 without
    customers = await make_customers(7, 3, clock.now())
    verified = sorted(c.email for c in customers[:7])
    # when a material change is published and its notices are queued
    await publish_material(batched, clock)
    queued = await queue_policy_notices(services=batched)
    # then each verified customer gets exactly one notice, the others none
    assert queued == 7
    assert sorted(await notice_recipients()) == verified
    message = (await mails("policy_notice"))[0]
    assert message.subject == "Our privacy policy is changing"
    assert "Version 2 takes effect on 31 January 2026 (12:00 UTC)" in message.body_text
    assert "Marketing email now includes partner offers." in message.body_text
    assert "https://shop.example.test/privacy/privacy-policy" in message.body_text
    assert "List-Unsubscribe" not in (message.headers or {})
    row = await PrivacyPolicy.get(version="2")
    assert (row.notice_done, row.notices_queued) == (True, 7)
    # and another run queues nothing more
    assert await queue_policy_notices(services=batched) == 0
    assert len(await notice_recipients()) == 7


async def test_notices_resume_after_a_crash_without_sending_twice(
    batched: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given 7 verified customers and a material change
    customers = await make_customers(7, 0, clock.now())
    await publish_material(batched, clock)
    # when the process dies while queueing the second batch
    calls = 0

    async def failing_second(**kwargs: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            await enqueue_many(**kwargs)  # written, then the crash rolls it back
            raise RuntimeError("crash")
        return await enqueue_many(**kwargs)

    monkeypatch.setattr(notices, "enqueue_many", failing_second)
    with pytest.raises(RuntimeError, match="crash"):
        await queue_policy_notices(services=batched)
    # then the first batch is committed, and the cursor names its last customer
    first = sorted(str(c.id) for c in customers)[:3]
    assert sorted(str(m.customer_id) for m in await mails("policy_notice")) == first
    row = await PrivacyPolicy.get(version="2")
    assert (str(row.notice_cursor), row.notices_queued, row.notice_done) == (first[-1], 3, False)
    # when the work is run again
    monkeypatch.setattr(notices, "enqueue_many", enqueue_many)
    assert await queue_policy_notices(services=batched) == 4
    # then every customer has exactly one notice
    assert sorted(await notice_recipients()) == sorted(c.email for c in customers)


async def test_batches_can_be_limited(batched: Services, clock: FakeClock) -> None:
    await make_customers(7, 0, clock.now())
    await publish_material(batched, clock)
    assert await queue_policy_notices(services=batched, limit_batches=2) == 6
    assert await queue_policy_notices(services=batched, limit_batches=2) == 1
    assert (await PrivacyPolicy.get(version="2")).notice_done


async def test_two_processes_queueing_at_once_send_each_notice_once(
    batched: Services, settings: Settings, clock: FakeClock
) -> None:
    # given 20 verified customers, a material change, and two processes
    customers = await make_customers(20, 0, clock.now())
    await publish_material(batched, clock)
    other = build_services(settings.model_copy(update={"policy_notice_batch": 3}), clock=clock)
    try:
        # when both queue the notices at the same time
        counts = await asyncio.gather(
            queue_policy_notices(services=batched), queue_policy_notices(services=other)
        )
    finally:
        other.close()
    # then each customer is queued exactly once
    assert sum(counts) == 20
    assert sorted(await notice_recipients()) == sorted(c.email for c in customers)
    assert (await PrivacyPolicy.get(version="2")).notices_queued == 20


async def test_a_non_material_change_mails_nobody(batched: Services, clock: FakeClock) -> None:
    await make_customers(3, 0, clock.now())
    await publish_policy(
        services=batched,
        draft=PolicyDraft(
            version="1.1",
            effective_at=clock.now(),
            material=False,
            summary="Typo fixed.",
            text="Text.",
            changed_purposes=[],
        ),
        published_by=None,
    )
    assert await queue_policy_notices(services=batched) == 0
    assert await OutboxMessage.all().count() == 0


def test_the_cli_queues_notices_until_done(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli.migrate()
    done = cli("policy", "send-notices")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "queued 0 policy notice(s)"
