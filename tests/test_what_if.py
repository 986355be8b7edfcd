"""What-if before approval (issue 14, point 3): a proposal's impact replays the access
decisions of the last N days, logged here by the test with known decisions, under the
policy in force and under the proposal; `custos policy what-if FILE` does the same for a
whole candidate policy file. Counts only; the live enforcer is never touched."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from api.clock import FakeClock
from api.services import Services
from authz import separation, what_if
from authz.audit import AuditRecord, append
from authz.registry import PURPOSES, Category
from models import AuditEvent
from tests.access_helpers import ADD_RULE, GRANT, IMPACT, proposal_of, rule
from tests.conftest import GQL, signed_in_employee

pytestmark = pytest.mark.usefixtures("restore_policy")
REPO = Path(__file__).parents[1]
POLICY_CSV = REPO / "authz" / "policy.csv"
LEGAL_READS_CASES = rule("legal", "support.cases", "read", "support", "*", "allow")
C = [str(uuid4()) for _ in range(7)]


def _row(
    at: datetime,
    roles: str,
    category: str,
    purpose: str,
    decision: str,
    *subjects: str,
    actor: str = "",
    conditions: str = "",
    action: str = "read",
) -> AuditRecord:
    return AuditRecord(
        at=at,
        actor_kind="employee",
        actor_id=actor or str(uuid4()),
        roles=roles,
        event="access",
        category=category,
        action=action,
        purpose=purpose,
        decision=decision,
        subject_id=",".join(subjects),
        conditions=conditions,
        policy_version=1,
    )


async def _known_log(now: datetime, care_id: str) -> None:
    """Decisions whose fate under each proposal of these tests is known."""
    day = now - timedelta(days=1)
    await append(
        [
            # legal asked for support cases for support: denied; the proposal allows both
            _row(day, "legal", "support.cases", "support", "deny", C[0], C[1]),
            # for another purpose: the proposal (support only) changes nothing
            _row(day, "legal", "support.cases", "legal", "deny", C[2]),
            # two categories in one decision: one of them flips
            _row(day, "legal", "contact.phone,support.cases", "support", "deny", C[4]),
            # customer care with an open case: allowed, and stays so
            _row(
                day,
                "customer_care",
                "contact.email",
                "support",
                "allow",
                C[3],
                conditions="open_case",
            ),
            # the admin is value-blind, whatever any rule for legal says
            _row(day, "admin", "support.cases", "support", "deny", C[5]),
            # the employee whose grant is proposed: reads a phone with an open case
            _row(
                day,
                "customer_care",
                "contact.phone",
                "support",
                "allow",
                C[6],
                actor=care_id,
                conditions="open_case",
            ),
            # older than the window: not replayed
            _row(now - timedelta(days=40), "legal", "support.cases", "support", "deny", C[0]),
        ]
    )


async def _impact(gql: GQL, token: str, proposal_id: str, days: int | None = None) -> Any:
    body = await gql(IMPACT, {"id": proposal_id, "days": days}, token=token)
    assert "errors" not in body, body
    return body["data"]["policyProposal"]["impact"]


async def test_an_allow_for_legal_flips_exactly_the_denials_it_would_allow(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    await _known_log(clock.now(), str(uuid4()))
    body = await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=admin)
    proposal = proposal_of(body, "addPolicyRule")
    impact = await _impact(gql, officer, proposal["id"])
    # 2 + 1 + 2 + 1 + 1 + 1 decisions in the window; 2 + 1 flip to allow, for 3 customers
    assert impact == {
        "decisionsReplayed": 8,
        "toAllow": 3,
        "toDeny": 0,
        "customers": 3,
        "groups": [
            {
                "roles": ["legal"],
                "category": "support.cases",
                "action": "read",
                "purpose": "support",
                "toAllow": 3,
                "toDeny": 0,
                "customers": 3,
            }
        ],
    }
    # a window of 50 days takes in the older decision too (a customer already counted)
    wider = await _impact(gql, officer, proposal["id"], days=50)
    assert (wider["decisionsReplayed"], wider["toAllow"], wider["customers"]) == (9, 4, 3)


async def test_a_grant_replays_that_employee_with_the_role_added(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    _, care_id = await signed_in_employee(gql, services, "customer_care", name="cc")
    await _known_log(clock.now(), care_id)
    # marketing denies phones: granted to this employee, their past phone read would flip,
    # and nobody else's decision changes (the other customer-care row stays allowed)
    body = await gql(GRANT, {"e": care_id, "r": "marketing"}, token=admin)
    impact = await _impact(gql, officer, proposal_of(body, "grantRole")["id"])
    assert (impact["toAllow"], impact["toDeny"], impact["customers"]) == (0, 1, 1)
    assert impact["groups"] == [
        {
            "roles": ["customer_care"],
            "category": "contact.phone",
            "action": "read",
            "purpose": "support",
            "toAllow": 0,
            "toDeny": 1,
            "customers": 1,
        }
    ]


async def test_the_live_policy_is_not_touched_and_days_are_bounded(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    rules = services.authorizer.enforcer.get_policy()
    body = await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=admin)
    proposal_id = proposal_of(body, "addPolicyRule")["id"]
    await _impact(gql, officer, proposal_id)
    assert services.authorizer.enforcer.get_policy() == rules
    for days in (0, -1, 367):
        body = await gql(IMPACT, {"id": proposal_id, "days": days}, token=officer)
        assert body["errors"][0]["extensions"]["code"] == "VALIDATION", body
    # a customer-care employee may not see proposals at all (refused, logged)
    care, _ = await signed_in_employee(gql, services, "customer_care", name="cc")
    body = await gql(IMPACT, {"id": proposal_id}, token=care)
    assert body["errors"][0]["extensions"] == {"code": "FORBIDDEN", "reason": "ROLE_REQUIRED"}
    assert await AuditEvent.filter(operation="policyProposal", decision="deny").count() == 1


def _custos(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=database_url, CUSTOS_MAIL_POLL_SECONDS="0")
    return subprocess.run(
        [sys.executable, "-m", "api", "policy", "what-if", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_the_command_replays_a_candidate_file(database_url: str, tmp_path: Path) -> None:
    await _known_log(datetime.now(UTC), str(uuid4()))
    candidate = tmp_path / "candidate.csv"
    candidate.write_text(
        POLICY_CSV.read_text("utf-8") + "p, legal, support.cases, read, support, *, allow\n",
        "utf-8",
    )
    done = _custos(database_url, str(candidate), "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert (found["days"], found["decisionsReplayed"], found["toAllow"], found["toDeny"]) == (
        30,
        8,
        3,
        0,
    )
    assert found["customers"] == 3
    text = _custos(database_url, str(candidate))
    assert "deny -> allow: 3; allow -> deny: 0; customers concerned: 3" in text.stdout
    assert "legal read support.cases for support: +3 -0 (3 customer(s))" in text.stdout
    logged = await AuditEvent.filter(operation="policyWhatIf").values_list("actor_kind", "decision")
    assert logged == [("operator", "allow"), ("operator", "allow")]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("p, legal, support.cases, read, support, *, maybe", "effect: `allow` or `deny`."),
        ("p, nobody, support.cases, read, support, *, allow", "role: One of:"),
        ("p, legal, support.cases, read", "a p rule has 7 cells"),
        ("g, employee:1, admin", "a g link names two roles"),
        ("q, legal", "a rule starts with p or g"),
    ],
)
async def test_a_file_that_does_not_parse_exits_2_and_is_logged(
    database_url: str, tmp_path: Path, line: str, problem: str
) -> None:
    candidate = tmp_path / "candidate.csv"
    candidate.write_text("# candidate\np, legal, contact.*, read, legal, *, allow\n" + line + "\n")
    done = _custos(database_url, str(candidate))
    assert done.returncode == 2
    assert f"{candidate}:3: " in done.stderr, done.stderr
    assert problem in done.stderr, done.stderr
    assert done.stdout == ""
    logged = await AuditEvent.filter(operation="policyWhatIf").values_list("decision", "reason")
    assert [(decision, reason[:19]) for decision, reason in logged] == [
        ("deny", "MALFORMED: line 3: ")
    ]


async def test_a_candidate_that_shows_admins_values_exits_1(
    database_url: str, tmp_path: Path
) -> None:
    text = POLICY_CSV.read_text("utf-8").replace(
        "p, admin, contact.*, *, *, *, deny", "p, admin, contact.email, read, *, *, allow"
    )
    candidate = tmp_path / "candidate.csv"
    candidate.write_text(text, "utf-8")
    done = _custos(database_url, str(candidate))
    assert done.returncode == 1
    assert "refused: admin would be allowed to read contact.email" in done.stderr


async def test_many_proposals_in_one_request_replay_the_log_once(
    gql: GQL, services: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, _ = await signed_in_employee(gql, services, "admin", name="root")
    officer, _ = await signed_in_employee(gql, services, "privacy_officer", name="po")
    _, care_id = await signed_in_employee(gql, services, "customer_care", name="cc")
    await _known_log(clock.now(), care_id)
    proposal_of(await gql(ADD_RULE, {"i": LEGAL_READS_CASES}, token=admin), "addPolicyRule")
    proposal_of(await gql(GRANT, {"e": care_id, "r": "marketing"}, token=admin), "grantRole")
    scans = []
    replay_many = what_if.replay_many

    async def counted(**kwargs: Any) -> list[what_if.Impact]:
        scans.append(len(kwargs["afters"]))
        return await replay_many(**kwargs)

    monkeypatch.setattr(what_if, "replay_many", counted)
    query = "{ policyProposals { kind impact { toAllow toDeny customers } } }"
    body = await gql(query, token=officer)
    found = {p["kind"]: p["impact"] for p in body["data"]["policyProposals"]}
    assert found == {
        "add_rule": {"toAllow": 3, "toDeny": 0, "customers": 3},
        "grant_role": {"toAllow": 0, "toDeny": 1, "customers": 1},
    }
    assert scans == [2]


async def test_asking_only_what_a_change_could_decide_differently_loses_nothing(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay skips requests no changed rule could match; against asking Casbin every
    request, over random decisions and random rule and role changes, it counts the same."""
    rng = random.Random(14)
    roles = ["customer_care", "marketing", "fraud_analyst", "privacy_officer", "legal"]
    employees = [str(uuid4()) for _ in range(6)]
    conditions = ["open_case", "self", "fulfilling_request", "consent:marketing.email"]
    records = [
        _row(
            clock.now() - timedelta(hours=rng.randrange(600)),
            ",".join(sorted(rng.sample(roles, rng.randint(1, 2)))),
            rng.choice([c.value for c in Category]),
            rng.choice(list(PURPOSES)),
            rng.choice(["allow", "deny"]),
            *(str(uuid4()) for _ in range(rng.randint(1, 3))),
            actor=rng.choice(employees),
            conditions=",".join(sorted(rng.sample(conditions, rng.randint(0, 2)))),
            action=rng.choice(["read", "read_masked", "export", "erase"]),
        )
        for _ in range(300)
    ]
    await append(records)
    before = await separation.stored_policy()
    afters = []
    for _ in range(12):
        cells = (
            rng.choice(roles),
            rng.choice(["*", "contact.*", "support.cases", "device.ip", "consent.history"]),
            rng.choice(["*", "read", "read_masked", "export"]),
            rng.choice(["*", *PURPOSES]),
            rng.choice(["*", *conditions]),
            rng.choice(["allow", "deny"]),
        )
        after = before.with_rule(cells)
        afters.append(after.without_rule(rng.choice(sorted(before.rules))))
        links = sorted(before.links)
        afters.append(before.with_link(f"employee:{rng.choice(employees)}", rng.choice(roles)))
        afters.append(before.without_link(*rng.choice(links)))
    since = clock.now() - timedelta(days=30)
    fast = await what_if.replay_many(before=before, afters=afters, since=since)
    monkeypatch.setattr(what_if._Side, "may_differ", lambda *_args: True)
    every = await what_if.replay_many(before=before, afters=afters, since=since)
    assert fast == every
    assert sum(i.to_allow + i.to_deny for i in fast) > 0  # the changes did flip decisions
