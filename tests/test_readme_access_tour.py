"""The README's tour of a proposal, its what-if and its approval runs as written: each
`# as ROLE` GraphQL block is sent by an employee of that role, in order, and answers
exactly the JSON block after it (`…` stands for an id); the `custos policy what-if`
example prints exactly what the README shows. The decision log the what-if replays is
built here with known decisions."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from api.clock import FakeClock
from api.services import Services
from authz.audit import AuditRecord, append
from tests.conftest import GQL, signed_in_employee

REPO = Path(__file__).parents[1]
README = (REPO / "README.md").read_text("utf-8")
BLOCK = re.compile(r"```(graphql|json|sh|text)\n(.*?)```", re.S)
pytestmark = pytest.mark.usefixtures("restore_policy")


@pytest.fixture
def clock() -> FakeClock:
    """Now, so that the command (on the system clock) replays the same log."""
    return FakeClock(datetime.now(UTC))


def _section(start: str, end: str) -> list[tuple[str, str]]:
    text = README[README.index(start) : README.index(end)]
    return [(kind, body) for kind, body in BLOCK.findall(text)]


def _tour() -> list[tuple[str, str, Any]]:
    """(role, operation, expected answer) of each `# as ROLE` block."""
    blocks = _section("A proposal, its what-if and its approval", "**Separation of duties")
    steps = []
    for (kind, body), (next_kind, answer) in itertools.pairwise(blocks):
        role = re.match(r"# as (\w+)", body)
        if kind == "graphql" and role:
            assert next_kind == "json", body
            steps.append((role.group(1), body, json.loads(answer)))
    return steps


def _matches(expected: Any, actual: Any) -> bool:
    if expected == "…":
        return isinstance(actual, str) and bool(actual)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(_matches(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_matches(e, a) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual)


async def _legal_log(now: datetime) -> None:
    """Five decisions: three legal reads of support cases for legal purposes, denied, about
    two customers; one for support, and one customer-care read, which the change keeps."""
    a, b, c, d = (str(uuid4()) for _ in range(4))

    def row(roles: str, category: str, purpose: str, decision: str, *subjects: str) -> AuditRecord:
        return AuditRecord(
            at=now - timedelta(days=2),
            actor_kind="employee",
            actor_id=str(uuid4()),
            roles=roles,
            event="access",
            category=category,
            action="read",
            purpose=purpose,
            decision=decision,
            subject_id=",".join(subjects),
            conditions="open_case" if roles == "customer_care" else "",
            policy_version=1,
        )

    await append(
        [
            row("legal", "support.cases", "legal", "deny", a, b),
            row("legal", "support.cases", "legal", "deny", a),
            row("legal", "support.cases", "support", "deny", c),
            row("customer_care", "contact.email", "support", "allow", d),
        ]
    )


def _what_if_example(database_url: str, tmp_path: Path) -> None:
    blocks = _section("The same what-if runs from the shell", "### For auditors")
    (sh_kind, command), (text_kind, shown) = blocks[0], blocks[1]
    assert (sh_kind, text_kind) == ("sh", "text")
    args = command.split("#")[0].split()
    assert args[:3] == ["custos", "policy", "what-if"]
    candidate = tmp_path / args[3]
    policy = (REPO / "authz" / "policy.csv").read_text("utf-8")
    candidate.write_text(policy + "p, legal, support.cases, read, legal, *, allow\n", "utf-8")
    env = dict(os.environ, DATABASE_URL=database_url, CUSTOS_MAIL_POLL_SECONDS="0")
    done = subprocess.run(
        [sys.executable, "-m", "api", *args[1:]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown


async def test_the_operator_tour_runs_as_written(
    gql: GQL, services: Services, clock: FakeClock, database_url: str, tmp_path: Path
) -> None:
    await _legal_log(clock.now())
    _what_if_example(database_url, tmp_path)
    tokens = {
        role: (await signed_in_employee(gql, services, role, name=role))[0]
        for role in ("admin", "privacy_officer", "auditor")
    }
    steps = _tour()
    assert [role for role, _, _ in steps] == [
        "admin",
        "privacy_officer",
        "privacy_officer",
        "auditor",
    ]
    proposal_id = ""
    for role, operation, expected in steps:
        body = await gql(operation.replace("…", proposal_id), token=tokens[role])
        assert _matches(expected, body), (operation, body)
        proposals = (body.get("data") or {}).get("policyProposals")
        proposal_id = proposals[0]["id"] if proposals else proposal_id
