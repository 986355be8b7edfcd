"""Retention (issue 7, point 4): rules per category and anchor, managed by legal; a purge in
batches that removes exactly what expired, keeps what a legal hold keeps, writes one
summary per target to the decision log; a dry run that changes nothing; the CLI and the
background schedule."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from pydantic import ValidationError
from tortoise import connections
from tortoise.transactions import in_transaction

from api.clock import FakeClock
from api.errors import InputInvalid
from api.retention.purge import PLANS, RUN_LOCK, TargetSummary, run_retention, run_retention_loop
from api.retention.rules import BY_KEY, TARGETS, parse_period, seed_default_rules, set_rule
from api.rights.erasure import NO_PASSWORD, erase_customer
from api.rights.rules import add_months
from api.services import Services
from api.settings import Settings
from authz.audit import verify
from models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    DataExport,
    LegalHold,
    PolicyAcceptance,
    RetentionRule,
    RightsRequest,
    RightsTransition,
    VisitEvent,
)
from tests.conftest import GQL, POLICY_SEEDED_AT, signed_in_employee, stored_customer
from tests.test_cli import REPO, Cli, _free_port

NOW = FakeClock().now()
DEFAULTS = [  # in the order a run takes them
    ("device.ip", "event_time", "P30D", 0, 30),
    ("behavior.browsing", "event_time", "P13M", 13, 0),
    ("consent.history", "account_closed", "P2Y", 24, 0),
    ("rights.requests", "link_expired", "P0D", 0, 0),
    ("rights.requests", "request_completed", "P3Y", 36, 0),
]
BROWSING = ("behavior.browsing", "event_time")
IP = ("device.ip", "event_time")
CONSENT = ("consent.history", "account_closed")
REQUESTS = ("rights.requests", "request_completed")
EXPORTS = ("rights.requests", "link_expired")
DORMANT = ("contact.email", "last_sign_in")


def months_ago(months: int, *, days: int = 0) -> datetime:
    return add_months(NOW, -months) - timedelta(days=days)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


async def visit(
    *,
    at: datetime,
    customer: Customer | None = None,
    purpose: str = "analytics",
    ip_full: str | None = None,
) -> int:
    event = await VisitEvent.create(
        customer_id=customer.id if customer else None,
        purpose=purpose,
        at=at,
        page="/rings",
        action="login" if purpose == "security" else "view",
        browser="Firefox",
        ip_full=ip_full,
        ip_truncated="203.0.113.0",
    )
    return int(event.id)


async def visit_ids() -> list[int]:
    return list(await VisitEvent.all().order_by("id").values_list("id", flat=True))


async def hold(
    customer: Customer,
    *categories: str,
    released: bool = False,
    expires_at: datetime | None = None,
) -> None:
    await LegalHold.create(
        customer_id=customer.id,
        categories=list(categories),
        reason="Pending litigation",
        reference=f"Case {uuid4().hex[:6]}",
        expires_at=expires_at,
        placed_by=uuid4(),
        placed_at=days_ago(800),
        released_by=uuid4() if released else None,
        released_at=days_ago(1) if released else None,
    )


async def run(
    services: Services, *, dry_run: bool = False, batch: int | None = None
) -> dict[tuple[str, str], TargetSummary]:
    summaries = await run_retention(services=services, dry_run=dry_run, batch=batch)
    return {(s.category, s.anchor): s for s in summaries}


def counts(
    summaries: dict[tuple[str, str], TargetSummary],
) -> dict[tuple[str, str], tuple[int, int]]:
    return {key: (s.purged, s.held) for key, s in summaries.items()}


async def rule_rows() -> list[tuple[Any, ...]]:
    return list(
        await RetentionRule.all()
        .order_by("id")
        .values_list("category", "anchor", "period", "months", "days", "updated_by")
    )


async def retention_events() -> list[dict[str, Any]]:
    return list(
        await AuditEvent.filter(event="retention")
        .order_by("id")
        .values(
            "actor_kind", "actor_id", "operation", "category", "subject_id", "decision", "reason"
        )
    )


# ------------------------------------------------------------------------- the rules


async def test_the_seeded_defaults_are_in_place_after_migrate() -> None:
    # given the database as `migrate` left it
    # then the catalogue's defaults are there, none set by anyone
    assert await rule_rows() == [(*d, None) for d in DEFAULTS]
    assert set(await RetentionRule.all().values_list("updated_at", flat=True)) == {POLICY_SEEDED_AT}


async def test_reseeding_keeps_legals_change_and_restores_a_missing_default() -> None:
    # given legal shortened visits to 6 months and the full-IP rule is missing
    legal = uuid4()
    await set_rule(
        category="behavior.browsing", anchor="event_time", period="P6M", actor_id=legal, now=NOW
    )
    await RetentionRule.filter(category="device.ip").delete()
    # when the defaults are seeded again (as every `custos migrate` does)
    added = await seed_default_rules(now=NOW)
    # then legal's rule is untouched and only the missing default came back
    assert added == 1
    rows = {(r[0], r[1]): r for r in await rule_rows()}
    assert rows[BROWSING] == ("behavior.browsing", "event_time", "P6M", 6, 0, legal)
    assert rows[IP] == ("device.ip", "event_time", "P30D", 0, 30, None)
    assert len(rows) == 5


def test_every_target_of_the_catalogue_has_a_plan() -> None:
    assert set(PLANS) == set(BY_KEY)
    assert [t.key for t in TARGETS if t.default] == [(c, a) for c, a, *_ in DEFAULTS]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("P13M", (13, 0)),
        ("P2Y", (24, 0)),
        ("P30D", (0, 30)),
        ("P1Y6M15D", (18, 15)),
        ("P2W", (0, 14)),
        (" p30d ", (0, 30)),
        ("P0D", (0, 0)),
        ("+P1M", (1, 0)),
    ],
)
def test_periods_are_iso_8601_durations_of_months_and_days(
    text: str, parsed: tuple[int, int]
) -> None:
    assert parse_period(text) == parsed


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("-P1D", "NEGATIVE_DURATION"),
        ("P-1D", "NEGATIVE_DURATION"),
        ("-P13M", "NEGATIVE_DURATION"),
        ("P", "VALIDATION"),
        ("", "VALIDATION"),
        ("13 months", "VALIDATION"),
        ("PT12H", "VALIDATION"),
        ("P1.5M", "VALIDATION"),
        ("P1Y2W", "VALIDATION"),
        ("P101Y", "VALIDATION"),
        ("P\u0661M", "VALIDATION"),  # an Arabic-Indic digit
    ],
)
def test_a_bad_period_is_a_typed_problem(text: str, code: str) -> None:
    with pytest.raises(InputInvalid) as raised:
        parse_period(text)
    assert [(p.field, p.code) for p in raised.value.problems] == [("period", code)]


# --------------------------------------------------------------- each target purges


async def test_visits_older_than_13_months_are_deleted_and_younger_ones_kept(
    services: Services,
) -> None:
    # given visits on both sides of the cutoff (13 months ago), a customer's and anonymous
    jane = await stored_customer(1, at=months_ago(30))
    await visit(at=months_ago(13, days=1), customer=jane)  # expired by a day
    await visit(at=months_ago(20))  # expired, anonymous
    at_cutoff = await visit(at=months_ago(13), customer=jane)
    young = await visit(at=months_ago(12), customer=jane)
    young_anonymous = await visit(at=days_ago(1))
    # when the purge runs
    summary = (await run(services))[BROWSING]
    # then exactly the older ones are gone
    assert await visit_ids() == [at_cutoff, young, young_anonymous]
    assert (summary.purged, summary.held, summary.period) == (2, 0, "P13M")
    assert summary.cutoff == months_ago(13)


async def test_full_ips_are_removed_after_30_days_and_the_truncated_network_stays(
    services: Services,
) -> None:
    # given security events with a full IP either side of 30 days, and an analytics event
    jane = await stored_customer(1, at=months_ago(30))
    old = await visit(at=days_ago(31), customer=jane, purpose="security", ip_full="203.0.113.9")
    old_anonymous = await visit(at=days_ago(40), purpose="security", ip_full="203.0.113.8")
    young = await visit(at=days_ago(29), customer=jane, purpose="security", ip_full="203.0.113.7")
    analytics = await visit(at=days_ago(31), customer=jane)
    # when the purge runs
    summary = (await run(services))[IP]
    # then the old full IPs are gone, rows and truncated networks stay
    rows = await VisitEvent.all().order_by("id").values_list("id", "ip_full", "ip_truncated")
    assert rows == [
        (old, None, "203.0.113.0"),
        (old_anonymous, None, "203.0.113.0"),
        (young, "203.0.113.7", "203.0.113.0"),
        (analytics, None, "203.0.113.0"),
    ]
    assert (summary.purged, summary.held) == (2, 0)


async def _erased(services: Services, n: int, *, at: datetime) -> Customer:
    """Customer `n` with consents and an acceptance, erased at `at` by a completed erasure
    request (as a fulfilment leaves it)."""
    customer = await stored_customer(n, at=at - timedelta(days=400))
    await _consent_proof(customer, at=at - timedelta(days=300))
    request = await RightsRequest.create(
        customer_id=customer.id,
        kind="erasure",
        status="completed",
        channel="account",
        submitted_at=at - timedelta(days=3),
        completed_at=at,
    )
    async with in_transaction() as conn:
        await erase_customer(
            services=services, customer_id=customer.id, request_id=request.id, now=at, using_db=conn
        )
    return await Customer.get(id=customer.id)


async def _consent_proof(customer: Customer, *, at: datetime) -> None:
    for purpose in ("analytics", "marketing.email"):
        await ConsentRecord.create(
            customer_id=customer.id, purpose=purpose, granted=True, source="registration", at=at
        )
    await PolicyAcceptance.create(customer_id=customer.id, version="1", at=at)


async def _proof_owners() -> tuple[list[str], list[str]]:
    consents = await ConsentRecord.all().values_list("customer_id", flat=True)
    acceptances = await PolicyAcceptance.all().values_list("customer_id", flat=True)
    return sorted({str(c) for c in consents}), sorted(str(c) for c in acceptances)


async def test_consent_proof_of_accounts_closed_over_2_years_ago_is_deleted(
    services: Services,
) -> None:
    # given accounts erased 2 years and a day ago, a year ago, one whose erasure request
    # is itself gone (closed 3 years ago), and an open account with old consents
    closed_long_ago = await _erased(services, 1, at=months_ago(24, days=1))
    closed_recently = await _erased(services, 2, at=months_ago(12))
    request_gone = await _erased(services, 3, at=months_ago(36))
    await RightsRequest.filter(customer_id=request_gone.id).delete()
    still_open = await stored_customer(4, at=months_ago(60))
    await _consent_proof(still_open, at=months_ago(50))
    # when the purge runs
    summary = (await run(services))[CONSENT]
    # then the proof of the two accounts closed over 2 years ago is gone, the rest stays
    kept = sorted([str(closed_recently.id), str(still_open.id)])
    assert await _proof_owners() == (kept, kept)
    assert (summary.purged, summary.held) == (6, 0)  # 2 x (2 consents + 1 acceptance)
    assert closed_long_ago.password_hash == NO_PASSWORD  # the accounts themselves stay
    assert await Customer.all().count() == 4


async def _request(
    customer: Customer,
    status: str,
    *,
    completed_at: datetime | None = None,
    closed_at: datetime | None = None,
) -> UUID:
    """A request in `status`; `closed_at` records the transition into it."""
    request = await RightsRequest.create(
        customer_id=customer.id,
        kind="access",
        status=status,
        channel="account",
        submitted_at=months_ago(50),
        completed_at=completed_at,
    )
    if closed_at is not None:
        await RightsTransition.create(
            request_id=request.id,
            from_status="pending",
            to_status=status,
            actor_kind="customer",
            at=closed_at,
        )
    return UUID(str(request.id))


async def _export(request_id: UUID, customer: Customer, *, expires_at: datetime, **kw: Any) -> int:
    export = await DataExport.create(
        request_id=request_id,
        customer_id=customer.id,
        token_hash=uuid4().hex,
        document=kw.pop("document", '{"customer": "jane"}'),
        created_at=expires_at - timedelta(days=7),
        expires_at=expires_at,
        **kw,
    )
    return int(export.id)


async def test_rights_requests_closed_over_3_years_ago_go_with_their_history_and_exports(
    services: Services,
) -> None:
    # given requests completed, refused and cancelled either side of 3 years, and open ones
    jane = await stored_customer(1, at=months_ago(60))
    old = months_ago(36, days=1)
    completed = await _request(jane, "completed", completed_at=old, closed_at=old)
    await _export(completed, jane, expires_at=old + timedelta(days=7), document="")
    refused = await _request(jane, "refused", completed_at=old, closed_at=old)
    cancelled = await _request(jane, "cancelled", closed_at=old)
    young = months_ago(35)
    completed_young = await _request(jane, "completed", completed_at=young, closed_at=young)
    cancelled_young = await _request(jane, "cancelled", closed_at=young)
    pending = await _request(jane, "pending")
    # when the purge runs
    summary = (await run(services))[REQUESTS]
    # then the three closed over 3 years ago are gone, with their transitions and export
    left = await RightsRequest.all().values_list("id", flat=True)
    assert {UUID(str(i)) for i in left} == {completed_young, cancelled_young, pending}
    transitions = await RightsTransition.all().values_list("request_id", flat=True)
    assert {UUID(str(i)) for i in transitions} == {completed_young, cancelled_young}
    assert await DataExport.all().count() == 0
    assert {completed, refused, cancelled}.isdisjoint({UUID(str(i)) for i in left})
    assert (summary.purged, summary.held) == (3, 0)


async def test_an_export_never_downloaded_is_emptied_once_its_link_expired(
    services: Services,
) -> None:
    # given exports of a recent request: expired unused, downloaded, and still valid
    jane = await stored_customer(1, at=months_ago(60))
    request = await _request(jane, "completed", completed_at=days_ago(8), closed_at=days_ago(8))
    expired = await _export(request, jane, expires_at=days_ago(1))
    downloaded = await _export(
        request, jane, expires_at=days_ago(1), used_at=days_ago(2), document=""
    )
    valid = await _export(request, jane, expires_at=NOW + timedelta(days=6))
    # when the purge runs
    summary = (await run(services))[EXPORTS]
    # then only the expired, unused export lost its document; every row stays
    rows = await DataExport.all().order_by("id").values_list("id", "document")
    assert rows == [(expired, ""), (downloaded, ""), (valid, '{"customer": "jane"}')]
    assert (summary.purged, summary.held) == (1, 0)


async def test_dormant_accounts_are_counted_and_listed_but_not_closed(services: Services) -> None:
    # given legal's rule: accounts not signed in to for 2 years are dormant
    await set_rule(
        category="contact.email", anchor="last_sign_in", period="P2Y", actor_id=uuid4(), now=NOW
    )
    signed_in_long_ago = await stored_customer(1, at=months_ago(60))
    await Customer.filter(id=signed_in_long_ago.id).update(last_login_at=months_ago(25))
    never_signed_in = await stored_customer(2, at=months_ago(30))
    recent = await stored_customer(3, at=months_ago(60))
    await Customer.filter(id=recent.id).update(last_login_at=months_ago(1))
    young = await stored_customer(4, at=months_ago(6))
    held = await stored_customer(5, at=months_ago(60))
    await hold(held, "contact.email")
    erased = await _erased(services, 6, at=months_ago(30))
    before = await Customer.all().order_by("id").values()
    # when the dry run, then the real run, run
    dry = (await run(services, dry_run=True))[DORMANT]
    real = (await run(services))[DORMANT]
    # then both count the two dormant accounts (and the held one), the dry run names them,
    # and no account changed
    dormant = sorted([str(signed_in_long_ago.id), str(never_signed_in.id)])
    assert (dry.purged, dry.held, sorted(dry.listed)) == (2, 1, dormant)
    assert (
        dry.line == "contact.email after last_sign_in (P2Y): would close 2 dormant accounts, held 1"
    )
    assert (real.purged, real.held, real.listed) == (2, 1, ())
    assert real.line == dry.line
    assert await Customer.all().order_by("id").values() == before
    assert {str(young.id), str(erased.id)}.isdisjoint(dry.listed)


# ------------------------------------------------------------------------------ batches


@pytest.mark.parametrize(("rows", "transactions"), [(5, 3), (4, 3), (1, 1), (0, 1)])
async def test_the_purge_runs_in_batches_of_its_own_transaction(
    services: Services, rows: int, transactions: int
) -> None:
    # given expired visits, several of them at the very same moment
    for i in range(rows):
        await visit(at=months_ago(14, days=i // 2))
    fresh = await visit(at=days_ago(1))
    # when the purge runs two rows a transaction
    summary = (await run(services, batch=2))[BROWSING]
    # then every expired row is gone, in ceil((rows + 1) / 2) selections
    assert await visit_ids() == [fresh]
    assert (summary.purged, summary.batches) == (rows, transactions)


async def test_the_batch_size_comes_from_the_settings(services: Services) -> None:
    # given 3 expired visits and the setting's batch of 1000
    for _ in range(3):
        await visit(at=months_ago(14))
    # when the purge runs without a batch size
    summary = (await run(services))[BROWSING]
    # then one transaction took them all
    assert services.settings.retention_batch == 1000
    assert (summary.purged, summary.batches) == (3, 1)


def test_the_retention_settings_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOS_RETENTION_BATCH", "250")
    monkeypatch.setenv("CUSTOS_RETENTION_INTERVAL_SECONDS", "0")
    settings = Settings()
    assert (settings.retention_batch, settings.retention_interval_seconds) == (250, 0)
    for bad in ({"retention_batch": 0}, {"retention_interval_seconds": -1}):
        with pytest.raises(ValidationError):
            Settings(**bad)


# -------------------------------------------------------------------------------- holds


async def test_a_hold_on_any_visit_category_keeps_the_rows_and_counts_them_held(
    services: Services,
) -> None:
    # given expired visits of customers with an active hold on a visit category, with a
    # released hold, with an expired hold, with a hold on another category, and anonymous
    held = {}
    for n, category in enumerate(("behavior.browsing", "device.browser", "device.ip"), 1):
        customer = await stored_customer(n, at=months_ago(30))
        await hold(customer, "support.cases", category)
        held[category] = await visit(at=months_ago(14), customer=customer)
    released = await stored_customer(4, at=months_ago(30))
    await hold(released, "behavior.browsing", released=True)
    expired_hold = await stored_customer(5, at=months_ago(30))
    await hold(expired_hold, "behavior.browsing", expires_at=NOW)
    other = await stored_customer(6, at=months_ago(30))
    await hold(other, "contact.email")
    for customer in (released, expired_hold, other, None):
        await visit(at=months_ago(14), customer=customer)
    # when the purge runs
    summary = (await run(services))[BROWSING]
    # then the three held customers' rows stay and count as held; the rest are gone
    assert await visit_ids() == sorted(held.values())
    assert (summary.purged, summary.held) == (4, 3)


async def test_only_a_hold_on_device_ip_keeps_a_full_ip(services: Services) -> None:
    ip_held = await stored_customer(1, at=months_ago(30))
    await hold(ip_held, "device.ip")
    browsing_held = await stored_customer(2, at=months_ago(30))
    await hold(browsing_held, "behavior.browsing")
    kept = await visit(at=days_ago(40), customer=ip_held, purpose="security", ip_full="192.0.2.1")
    blanked = await visit(
        at=days_ago(40), customer=browsing_held, purpose="security", ip_full="192.0.2.2"
    )
    summary = (await run(services))[IP]
    rows = await VisitEvent.all().order_by("id").values_list("id", "ip_full")
    assert rows == [(kept, "192.0.2.1"), (blanked, None)]
    assert (summary.purged, summary.held) == (1, 1)


async def test_holds_keep_consent_proof_requests_and_exports(services: Services) -> None:
    # given two accounts erased 3 years ago, one with holds on consent history and
    # rights requests (placed after the erasure), each with an old request and an export
    held = await _erased(services, 1, at=months_ago(40))
    await hold(held, "consent.history", "rights.requests")
    free = await _erased(services, 2, at=months_ago(40))
    for customer in (held, free):
        request = await _request(customer, "completed", completed_at=months_ago(37))
        await _export(request, customer, expires_at=months_ago(37))
    # when the purge runs
    summaries = await run(services)
    # then the held account keeps all of it, the other loses all of it
    assert await _proof_owners() == ([str(held.id)], [str(held.id)])
    owners = await RightsRequest.all().values_list("customer_id", flat=True)
    assert {str(o) for o in owners} == {str(held.id)}
    assert await DataExport.all().values_list("customer_id", "document") == [
        (held.id, '{"customer": "jane"}')
    ]
    assert counts(summaries)[CONSENT] == (3, 3)
    assert counts(summaries)[REQUESTS] == (2, 2)  # the erasure request and the access one
    assert counts(summaries)[EXPORTS] == (1, 1)  # emptied, then gone with its request


# ------------------------------------------------------------- dry run and the audit log


async def _mixed_data(services: Services) -> None:
    jane = await stored_customer(1, at=months_ago(60))
    zoe = await stored_customer(2, at=months_ago(60))
    await hold(zoe, "device.ip")
    for customer in (jane, zoe, None):
        await visit(at=months_ago(14), customer=customer)
        await visit(at=days_ago(40), customer=customer, purpose="security", ip_full="192.0.2.1")
        await visit(at=days_ago(2), customer=customer, purpose="security", ip_full="192.0.2.1")
    await _erased(services, 3, at=months_ago(25))
    old = months_ago(40)
    request = await _request(jane, "refused", completed_at=old, closed_at=old)
    await _export(request, jane, expires_at=old)
    recent = await _request(jane, "completed", completed_at=days_ago(9), closed_at=days_ago(9))
    await _export(recent, jane, expires_at=days_ago(2))


async def _snapshot() -> list[Any]:
    return [
        await model.all().order_by("id").values()
        for model in (
            VisitEvent,
            ConsentRecord,
            PolicyAcceptance,
            RightsRequest,
            RightsTransition,
            DataExport,
            Customer,
            AuditEvent,
        )
    ]


async def test_the_dry_run_changes_nothing_and_counts_what_the_real_run_then_purges(
    services: Services,
) -> None:
    # given data to purge under every default rule, some of it held
    await _mixed_data(services)
    before = await _snapshot()
    # when the dry run runs
    dry = await run(services, dry_run=True)
    # then nothing changed, not even the decision log
    assert await _snapshot() == before
    assert await AuditEvent.all().count() == 0
    expected = {
        IP: (2, 1),  # the 40-day-old security events: jane's and the anonymous one; zoe's held
        BROWSING: (2, 1),  # zoe's expired visit is held (device.ip is on the row)
        CONSENT: (3, 0),  # 2 consents and 1 acceptance of the account erased 25 months ago
        EXPORTS: (2, 0),  # both unused exports whose link expired
        REQUESTS: (1, 0),  # jane's request refused 40 months ago (its export with it)
    }
    assert counts(dry) == expected
    assert all(s.dry_run and s.batches == 0 for s in dry.values())
    # and the real run purges exactly those counts
    real = await run(services)
    assert counts(real) == expected
    # and a second run finds nothing left but what is held
    again = await run(services, dry_run=True)
    assert counts(again) == {key: (0, held) for key, (_, held) in expected.items()}


async def test_each_run_writes_one_summary_per_target_to_the_decision_log(
    services: Services,
) -> None:
    # given data to purge, some of it held
    await _mixed_data(services)
    # when the purge runs
    await run(services)
    # then there is one system row per target, counts and rule only, and the chain holds
    events = await retention_events()
    system = {"actor_kind": "system", "actor_id": "", "operation": "purge"}
    assert events == [
        {
            **system,
            "category": category,
            "subject_id": "",
            "decision": "allow",
            "reason": reason,
        }
        for category, reason in [
            ("device.ip", "purged 2, held 1 (after event_time, P30D)"),
            ("behavior.browsing", "purged 2, held 1 (after event_time, P13M)"),
            ("consent.history", "purged 3, held 0 (after account_closed, P2Y)"),
            ("rights.requests", "purged 2, held 0 (after link_expired, P0D)"),
            ("rights.requests", "purged 1, held 0 (after request_completed, P3Y)"),
        ]
    ]
    assert len({e.request_id for e in await AuditEvent.filter(event="retention")}) == 1
    assert (await verify()).ok


async def test_a_run_while_another_process_purges_does_nothing(services: Services) -> None:
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        pytest.skip("the run lock is a PostgreSQL advisory lock (SQLite serialises writers)")
    # given an expired visit and another session holding the purge lock
    kept = await visit(at=months_ago(14))
    async with conn.acquire_connection() as other:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", RUN_LOCK)
        try:
            # when a run starts
            summaries = await run_retention(services=services, dry_run=False)
        finally:
            await other.execute("SELECT pg_advisory_unlock($1)", RUN_LOCK)
    # then it did nothing and logged nothing; once the lock is free, the next run purges
    assert summaries == []
    assert await visit_ids() == [kept]
    assert await retention_events() == []
    assert counts(await run(services))[BROWSING] == (1, 0)


# -------------------------------------------------------------------------------- GraphQL

SET = """
mutation Set($category: String!, $anchor: String!, $period: String!) {
  setRetentionRule(category: $category, anchor: $anchor, period: $period) {
    __typename
    ... on RetentionRuleSet { rule { category anchor period updatedBy seeded } }
    ... on InputError { code field message fields { field code message } }
  }
}
"""
RULES = "{ retentionRules { category anchor period description updatedAt updatedBy seeded } }"


def set_args(
    period: str, category: str = "behavior.browsing", anchor: str = "event_time"
) -> dict[str, str]:
    return {"category": category, "anchor": anchor, "period": period}


async def test_legal_sets_a_rule_and_it_is_audited(gql: GQL, services: Services) -> None:
    # given an employee of legal
    token, legal_id = await signed_in_employee(gql, services, "legal")
    # when they shorten visits to 6 months and add the dormant-account rule
    body = await gql(SET, set_args("p6m"), token=token)
    added = await gql(SET, set_args("P3Y", "contact.email", "last_sign_in"), token=token)
    # then the rules are stored and answered, and both changes are logged
    assert body["data"]["setRetentionRule"] == {
        "__typename": "RetentionRuleSet",
        "rule": {
            "category": "behavior.browsing",
            "anchor": "event_time",
            "period": "P6M",
            "updatedBy": legal_id,
            "seeded": False,
        },
    }
    assert added["data"]["setRetentionRule"]["rule"]["period"] == "P3Y"
    rows = {(r[0], r[1]): r for r in await rule_rows()}
    assert rows[BROWSING] == ("behavior.browsing", "event_time", "P6M", 6, 0, UUID(legal_id))
    assert rows[DORMANT] == ("contact.email", "last_sign_in", "P3Y", 36, 0, UUID(legal_id))
    logged = (
        await AuditEvent.filter(event="retention")
        .order_by("id")
        .values_list("actor_id", "operation", "decision", "reason")
    )
    assert logged == [
        (legal_id, "set_rule", "allow", "behavior.browsing after event_time: P6M"),
        (legal_id, "set_rule", "allow", "contact.email after last_sign_in: P3Y"),
    ]


@pytest.mark.parametrize("role", ["legal", "privacy_officer", "auditor"])
async def test_legal_officers_and_auditors_read_the_rules(
    gql: GQL, services: Services, role: str
) -> None:
    token, _ = await signed_in_employee(gql, services, role)
    body = await gql(RULES, token=token)
    rules = body["data"]["retentionRules"]
    assert [(r["category"], r["anchor"], r["period"], r["seeded"]) for r in rules] == [
        (c, a, p, True) for c, a, p, _, _ in DEFAULTS
    ]
    assert rules[1]["updatedBy"] is None
    assert rules[1]["description"].startswith("Visit events")


@pytest.mark.parametrize("role", ["marketing", "customer_care", "admin"])
async def test_other_roles_do_not_read_the_rules(gql: GQL, services: Services, role: str) -> None:
    token, _ = await signed_in_employee(gql, services, role)
    body = await gql(RULES, token=token)
    assert body["data"]["retentionRules"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("period", ["-P1D", "P-1D", "-P13M"])
async def test_a_negative_period_is_refused_and_changes_nothing(
    gql: GQL, services: Services, period: str
) -> None:
    token, _ = await signed_in_employee(gql, services, "legal")
    before = await rule_rows()
    body = await gql(SET, set_args(period), token=token)
    answer = body["data"]["setRetentionRule"]
    assert (answer["__typename"], answer["code"], answer["field"]) == (
        "InputError",
        "NEGATIVE_DURATION",
        "period",
    )
    assert answer["message"] == "A retention period cannot be negative."
    assert await rule_rows() == before
    assert await retention_events() == []


@pytest.mark.parametrize("period", ["13 months", "P", "PT12H", "P1.5M", ""])
async def test_a_malformed_period_is_a_validation_error(
    gql: GQL, services: Services, period: str
) -> None:
    token, _ = await signed_in_employee(gql, services, "legal")
    before = await rule_rows()
    body = await gql(SET, set_args(period), token=token)
    answer = body["data"]["setRetentionRule"]
    assert (answer["code"], answer["field"]) == ("VALIDATION", "period")
    assert await rule_rows() == before


@pytest.mark.parametrize(
    ("category", "anchor", "field"),
    [
        ("behavior.browsing", "last_sign_in", "anchor"),
        ("contact.phone", "event_time", "category"),
        ("nonsense", "nonsense", "category"),
    ],
)
async def test_an_unknown_target_is_refused_naming_the_known_ones(
    gql: GQL, services: Services, category: str, anchor: str, field: str
) -> None:
    token, _ = await signed_in_employee(gql, services, "legal")
    before = await rule_rows()
    body = await gql(SET, set_args("P1Y", category, anchor), token=token)
    answer = body["data"]["setRetentionRule"]
    assert (answer["code"], answer["field"]) == ("UNKNOWN_TARGET", field)
    assert answer["message"] == (
        "No such retention target; known: device.ip after event_time, behavior.browsing "
        "after event_time, consent.history after account_closed, rights.requests after "
        "link_expired, rights.requests after request_completed, contact.email after "
        "last_sign_in."
    )
    assert await rule_rows() == before


async def test_both_problems_of_one_input_come_back_together(gql: GQL, services: Services) -> None:
    token, _ = await signed_in_employee(gql, services, "legal")
    body = await gql(SET, set_args("-P1D", "contact.phone"), token=token)
    fields = body["data"]["setRetentionRule"]["fields"]
    assert [(f["field"], f["code"]) for f in fields] == [
        ("category", "UNKNOWN_TARGET"),
        ("period", "NEGATIVE_DURATION"),
    ]


@pytest.mark.parametrize("role", ["marketing", "privacy_officer", "auditor", "admin"])
async def test_only_legal_sets_rules_and_a_refusal_is_logged(
    gql: GQL, services: Services, role: str
) -> None:
    # given an employee of another role
    token, employee_id = await signed_in_employee(gql, services, role)
    before = await rule_rows()
    # when they try to keep visits for 10 years
    body = await gql(SET, set_args("P10Y"), token=token)
    # then FORBIDDEN, no rule changed, and the refusal is in the decision log
    assert body["data"]["setRetentionRule"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await rule_rows() == before
    denials = await AuditEvent.filter(decision="deny", actor_id=employee_id).values_list(
        "operation", "reason"
    )
    assert denials == [("setRetentionRule", "requires role legal")]


# --------------------------------------------------------------- schedule and the CLI


async def test_the_background_schedule_purges(services: Services) -> None:
    # given expired visits and the schedule started with a tiny interval
    for _ in range(3):
        await visit(at=months_ago(14))
    fresh = await visit(at=days_ago(1))
    task = asyncio.create_task(run_retention_loop(services=services, interval_seconds=0.05))
    try:
        # when it has had time to run (its purge commits before its summary row is written)
        for _ in range(200):
            logged = await AuditEvent.filter(
                event="retention", category="behavior.browsing"
            ).exists()
            if logged and await visit_ids() == [fresh]:
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # then the expired rows are gone and the runs are logged
    assert await visit_ids() == [fresh]
    reasons = await AuditEvent.filter(event="retention", category="behavior.browsing").values_list(
        "reason", flat=True
    )
    assert reasons[0] == "purged 3, held 0 (after event_time, P13M)"


async def test_the_schedule_survives_a_failed_run(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given a first run that fails with a message quoting data
    from api.retention import purge

    calls = 0
    real = purge.run_retention

    async def flaky(**kwargs: Any) -> list[TargetSummary]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("row jane@example.com")
        return await real(**kwargs)

    monkeypatch.setattr(purge, "run_retention", flaky)
    await visit(at=months_ago(14))
    task = asyncio.create_task(run_retention_loop(services=services, interval_seconds=0.01))
    try:
        for _ in range(200):
            if not await visit_ids():
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # then the next run purged, and the log names the error type, never its message
    assert await visit_ids() == []
    assert "retention run failed: RuntimeError" in caplog.text
    assert "jane@example.com" not in caplog.text


SEED_VISITS = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from api.db import close_db, init_db
from models import VisitEvent

async def main():
    await init_db(sys.argv[1])
    try:
        now = datetime.now(UTC)
        for days in (500, 450, 420, 10):
            await VisitEvent.create(purpose="analytics", at=now - timedelta(days=days),
                                    page="/rings", action="view")
    finally:
        await close_db()

asyncio.run(main())
"""

COUNT = """
import asyncio, sys
from api.db import close_db, init_db
from models import AuditEvent, VisitEvent

async def main():
    await init_db(sys.argv[1])
    try:
        print(await VisitEvent.all().count(), await AuditEvent.filter(event="retention").count())
    finally:
        await close_db()

asyncio.run(main())
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _script(cli: Cli, code: str) -> str:
    done = cli.script(code)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _lines(verb: str, browsing: int) -> list[str]:
    return [
        f"device.ip after event_time (P30D): {verb} 0, held 0",
        f"behavior.browsing after event_time (P13M): {verb} {browsing}, held 0",
        f"consent.history after account_closed (P2Y): {verb} 0, held 0",
        f"rights.requests after link_expired (P0D): {verb} 0, held 0",
        f"rights.requests after request_completed (P3Y): {verb} 0, held 0",
    ]


def test_the_cli_dry_run_prints_what_would_go_and_the_run_purges(cli: Cli) -> None:
    # given a migrated database with 3 visits over 13 months old and a recent one
    cli.migrate()
    _script(cli, SEED_VISITS)
    # when the dry run runs
    dry = cli("retention", "run", "--dry-run")
    # then it prints what would go, and nothing went
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == _lines("would purge", 3)
    assert _script(cli, COUNT) == "4 0"
    # when the real run runs, two rows a transaction
    done = cli("retention", "run", "--batch", "2")
    # then it prints what went, and it went, with one summary per target logged
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == _lines("purged", 3)
    assert _script(cli, COUNT) == "1 5"


def test_the_cli_lists_the_rules_and_refuses_a_bad_batch(cli: Cli) -> None:
    cli.migrate()
    listed = cli("retention", "rules")
    assert listed.returncode == 0, listed.stderr
    shape = re.compile(r"^(\S+) after (\S+): (P\w+) \(default, \d{4}-\d{2}-\d{2}\)$")
    rows = [shape.match(line) for line in listed.stdout.splitlines()]
    assert [m.groups() if m else None for m in rows] == [(c, a, p) for c, a, p, _, _ in DEFAULTS]
    bad = cli("retention", "run", "--batch", "0")
    assert bad.returncode == 2
    assert "must be at least 1" in bad.stderr


def test_a_served_process_runs_the_schedule(cli: Cli, tmp_path: Path) -> None:
    # given a migrated database with 3 expired visits and a recent one
    cli.migrate()
    _script(cli, SEED_VISITS)
    # when the server runs (its schedule purges at start)
    port = _free_port()
    serve = [sys.executable, "-m", "api", "serve", "--port", str(port), "--log-level", "warning"]
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            serve, cwd=REPO, env=cli.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        deadline, seen = time.monotonic() + 30, ""
        while time.monotonic() < deadline and seen != "1 5":
            time.sleep(0.2)  # bounded wait for the first scheduled run
            seen = _script(cli, COUNT)
    finally:
        process.terminate()
        process.wait(timeout=10)
    # then the expired visits are gone and the run is logged
    assert seen == "1 5", (tmp_path / "server.log").read_text()


def test_a_zero_interval_turns_the_schedule_off(cli: Cli, tmp_path: Path) -> None:
    cli.migrate()
    _script(cli, SEED_VISITS)
    port = _free_port()
    serve = [sys.executable, "-m", "api", "serve", "--port", str(port), "--log-level", "warning"]
    env = {**cli.env, "CUSTOS_RETENTION_INTERVAL_SECONDS": "0"}
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            serve, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)  # bounded wait for the process to start listening
        time.sleep(1)
        seen = _script(cli, COUNT)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert seen == "4 0"
