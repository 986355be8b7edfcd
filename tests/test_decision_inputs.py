"""Each access decision logs its inputs (the conditions Casbin was given, the policy version
in force) so it can be replayed against another policy; rows logged before they existed
still hash, and verify, as they did."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from api.clock import FakeClock
from api.services import Services
from authz.adapter import current_version
from authz.audit import GENESIS, AuditRecord, append, export_rows, verify
from models import AuditEvent, ConsentRecord, SupportCase
from tests.cli_helpers import custos, migrated_file
from tests.conftest import GQL, login, register, signed_in_employee, stored_customer
from tests.test_audit_chain import _tamper

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OPEN, CONSENT = "open_case", "consent:marketing.email"
PAGE = "{ customers(purpose: SUPPORT, first: 20) { edges { node { id email } } } }"
ONE = "query($id: ID!) { customer(id: $id, purpose: SUPPORT) { email phone } }"
DECISIONS = """query($s: ID!) { accessDecisions(filter: { subjectId: $s, event: "access" })
    { edges { node { category conditions policyVersion } } } }"""
# The fields chained since the log began, in sorted order of their names (docs/AUDITING.md).
ORIGINAL = [
    *("action", "actor_id", "actor_kind", "at", "category", "decision", "event"),
    *("operation", "purpose", "reason", "request_id", "roles", "rule", "subject_id"),
]


def documented_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The hash as an auditor computes it from docs/AUDITING.md, from an exported row."""
    values = [row[name] for name in ORIGINAL]
    at = values[ORIGINAL.index("at")]
    if isinstance(at, datetime):
        values[ORIGINAL.index("at")] = at.astimezone(UTC).isoformat(timespec="microseconds")
    if row["conditions"] or int(row["policy_version"]):
        values += [row["conditions"], int(row["policy_version"])]
    body = json.dumps(values, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


async def customer(n: int, *conditions: str) -> str:
    """A stored customer for whom exactly `conditions` hold."""
    stored = await stored_customer(n, at=T0)
    if OPEN in conditions:
        await SupportCase.create(customer=stored, subject="Ring", message="Where?", created_at=T0)
    if CONSENT in conditions:
        await ConsentRecord.create(
            customer=stored, purpose="marketing.email", granted=True, source="registration", at=T0
        )
    return str(stored.id)


async def test_a_page_logs_each_customer_under_the_conditions_it_was_decided_with(
    gql: GQL, services: Services
) -> None:
    # given customers with four different sets of conditions (two with an open case only)
    wanted = {
        await customer(0, OPEN): OPEN,
        await customer(1, OPEN): OPEN,
        await customer(2, OPEN, CONSENT): f"{CONSENT},{OPEN}",
        await customer(3): "",
        await customer(4, CONSENT): CONSENT,
    }
    token, _ = await signed_in_employee(gql, services, "customer_care")
    # when customer care reads the page's emails
    body = await gql(PAGE, token=token)
    assert len(body["data"]["customers"]["edges"]) == 5
    # then each row names only customers decided under exactly the row's conditions
    rows = await AuditEvent.filter(event="access", category="contact.email").order_by("id")
    assert sorted((r.conditions, r.decision) for r in rows) == [
        ("", "deny"),
        (CONSENT, "deny"),
        (f"{CONSENT},{OPEN}", "allow"),
        (OPEN, "allow"),
    ]
    logged = {s: r.conditions for r in rows for s in r.subject_id.split(",")}
    assert logged == wanted
    assert sum(len(r.subject_id.split(",")) for r in rows) == len(wanted)
    assert (await verify()).ok


async def test_access_rows_carry_the_policy_version_in_force(gql: GQL, services: Services) -> None:
    # given customer care reading a customer with an open case
    subject = await customer(0, OPEN)
    token, _ = await signed_in_employee(gql, services, "customer_care")
    await gql(ONE, {"id": subject}, token=token)
    before = services.authorizer.version
    assert before == await current_version() > 0
    # when the policy changes (a role granted) and they read again
    auditor, _ = await signed_in_employee(gql, services, "auditor")
    after = services.authorizer.version
    assert after > before
    await gql(ONE, {"id": subject}, token=token)
    # then each read's rows carry the version it was decided under; other events carry 0
    rows = await AuditEvent.filter(event="access").order_by("id")
    assert [(r.policy_version, r.conditions) for r in rows] == [(before, OPEN), (after, OPEN)]
    others = await AuditEvent.exclude(event="access").values_list("conditions", "policy_version")
    assert others
    assert set(others) == {("", 0)}
    # and an auditor sees both over GraphQL
    body = await gql(DECISIONS, {"s": subject}, token=auditor)
    nodes = [e["node"] for e in body["data"]["accessDecisions"]["edges"]]
    assert nodes == [
        {"category": "contact.email,contact.phone", "conditions": [OPEN], "policyVersion": v}
        for v in (after, before)
    ]


async def test_a_customers_own_read_records_the_self_condition(gql: GQL) -> None:
    await register(gql)
    token = await login(gql)
    await gql("{ me { email phone } }", token=token)
    rows = await AuditEvent.filter(event="access", actor_kind="customer")
    assert rows
    assert {r.conditions for r in rows} == {"self"}


def old_record(n: int, clock: FakeClock) -> AuditRecord:
    return AuditRecord(
        at=clock.now() + timedelta(seconds=n),
        actor_kind="employee",
        actor_id=f"e-{n}",
        event="access",
        decision="allow",
        category="contact.email",
        action="read",
        purpose="support",
        subject_id=f"c-{n}",
    )


def new_record(n: int, clock: FakeClock, conditions: str, version: int) -> AuditRecord:
    record = asdict(old_record(n, clock))
    return AuditRecord(**{**record, "conditions": conditions, "policy_version": version})


async def mixed_chain(clock: FakeClock) -> list[AuditEvent]:
    """Rows logged the old way (no decision inputs) and the new way, on one chain."""
    await append([old_record(0, clock), old_record(1, clock)])
    await append(
        [
            new_record(2, clock, f"{CONSENT},{OPEN}", 3),
            new_record(3, clock, OPEN, 0),
            new_record(4, clock, "", 4),
            old_record(5, clock),
        ]
    )
    return await AuditEvent.all().order_by("id")


async def test_old_and_new_rows_verify_on_one_chain(clock: FakeClock) -> None:
    rows = await mixed_chain(clock)
    result = await verify(batch=4)
    assert (result.ok, result.checked) == (True, 6)
    # and an auditor recomputes every hash from the export with the documented rule
    prev = GENESIS
    async for row in export_rows():
        assert row["hash"] == documented_hash(prev, row)
        prev = str(row["hash"])
    assert prev == rows[-1].hash


@pytest.mark.parametrize(
    ("victim", "change"),
    [
        (2, "conditions = 'open_case'"),
        (2, "conditions = ''"),
        (2, "policy_version = 4"),
        (3, "conditions = 'consent:marketing.email,open_case'"),
        (4, "policy_version = 0"),
        (0, "conditions = 'open_case'"),
        (1, "policy_version = 2"),
    ],
)
async def test_tampering_with_a_decision_input_is_named_by_verify(
    clock: FakeClock, victim: int, change: str
) -> None:
    rows = await mixed_chain(clock)
    target = rows[victim]
    await _tamper(f"UPDATE audit_event SET {change} WHERE id = {target.id}")
    result = await verify()
    assert (result.ok, result.first_broken_id, result.checked) == (False, target.id, victim)
    assert "hash" in result.problem


async def test_a_row_without_decision_inputs_hashes_as_before() -> None:
    # given a row with neither input set (the time given in another zone than UTC)
    at = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    fields = {
        "actor_kind": "employee",
        "actor_id": "e-1",
        "roles": "customer_care",
        "event": "access",
        "decision": "allow",
        "category": "contact.email,contact.phone",
        "action": "read",
        "subject_id": "c-1,c-2",
        "purpose": "support",
        "rule": "p, role:customer_care, contact.*, read, support, open_case, allow",
        "reason": "allowed",
        "request_id": "r1",
    }
    await append([AuditRecord(at=at, **fields)])
    row = await AuditEvent.get()
    # then its hash is the pre-upgrade one: the original fields only, sorted by name
    values = [{**fields, "at": "2026-03-01T10:30:00.000000+00:00"}.get(n, "") for n in ORIGINAL]
    body = json.dumps(values, separators=(",", ":")).encode()
    assert row.hash == hashlib.sha256(GENESIS.encode() + body).hexdigest()
    # (as the code before the decision inputs computed it for this very row)
    assert row.hash == "929fe2908d20ff7cadca48c7efef44b6548190a63c8c742cc8158e945efa16d1"
    # and a row with either input set appends both, conditions first
    await append([AuditRecord(at=at, **fields, policy_version=5)])
    second = await AuditEvent.get(policy_version=5)
    body = json.dumps([*values, "", 5], separators=(",", ":")).encode()
    assert second.hash == hashlib.sha256(row.hash.encode() + body).hexdigest()


APPEND = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from api.db import init_db, close_db
from authz.audit import append, AuditRecord

async def main():
    await init_db(sys.argv[1])
    start = datetime(2026, 3, 1, tzinfo=UTC)
    await append([
        AuditRecord(at=start + timedelta(hours=i), actor_kind="employee", actor_id="e",
                    event="access", decision="allow", category="contact.email",
                    action="read", purpose="support", subject_id=f"c{i}",
                    conditions=["", "open_case"][i % 2], policy_version=i // 2)
        for i in range(4)
    ])
    await close_db()

asyncio.run(main())
"""


def test_the_cli_export_lets_an_auditor_recompute_every_hash(tmp_path: Path) -> None:
    _, env = migrated_file(tmp_path, "inputs.sqlite3", APPEND)
    done = custos(env, "audit", "export")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["conditions"], r["policy_version"]) for r in rows] == [
        ("", 0),
        (OPEN, 0),
        ("", 1),
        (OPEN, 1),
    ]
    prev = GENESIS
    for row in rows:
        assert row["prev_hash"] == prev
        assert row["hash"] == documented_hash(prev, row)
        prev = row["hash"]
