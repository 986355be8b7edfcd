"""`custos policy what-if FILE`: the what-if of a whole candidate policy file against the
decision log, for reviewing a change before proposing it. The file has the form of
authz/policy.csv (`p` rules and role-to-role `g` links); employees' role grants stay as
stored. Prints the counts (or JSON); exit 0, or 1 when the candidate would let an admin
or auditor see a value (the engine would refuse it), or 2 when the file does not parse.
Every run is logged (operator, `policyWhatIf`), a refused file as a denial."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

from api.access import impact
from api.access.rules import RULE_SUBJECTS, Rule, rule_problems
from api.services import Services
from authz import policy_cases, separation
from authz.audit import AuditRecord, append
from authz.what_if import Impact


def load_candidate(path: Path) -> list[list[str]]:
    """The rows of a candidate policy, each checked against the registry like a change
    made through the API. Raises policy_cases.MalformedFile naming the first bad row."""
    rows = policy_cases.numbered_rules(path)
    for line, row in rows:
        if row[0] == "p" and (problems := rule_problems(Rule(*row[1:]))):
            problem = f"{problems[0].field}: {problems[0].message}"
            raise policy_cases.MalformedFile(str(path), line, problem)
        if row[0] == "g" and not set(row[1:]) <= set(RULE_SUBJECTS):
            raise policy_cases.MalformedFile(str(path), line, "a g link names two roles")
    return [row for _, row in rows]


def _lines(found: Impact, days: int) -> list[str]:
    lines = [
        f"replayed {found.replayed} decision(s) of the last {days} day(s)",
        f"deny -> allow: {found.to_allow}; allow -> deny: {found.to_deny}; "
        f"customers concerned: {found.customers}",
    ]
    for g in found.groups:
        roles = "+".join(g.roles) or "customer"
        lines.append(
            f"  {roles} {g.action} {g.category} for {g.purpose}: "
            f"+{g.to_allow} -{g.to_deny} ({g.customers} customer(s))"
        )
    return lines


def as_json(found: Impact, days: int) -> str:
    return json.dumps(
        {
            "days": days,
            "since": found.since.isoformat(),
            "decisionsReplayed": found.replayed,
            "toAllow": found.to_allow,
            "toDeny": found.to_deny,
            "customers": found.customers,
            "groups": [
                {
                    "roles": list(g.roles),
                    "category": g.category,
                    "action": g.action,
                    "purpose": g.purpose,
                    "toAllow": g.to_allow,
                    "toDeny": g.to_deny,
                    "customers": g.customers,
                }
                for g in found.groups
            ],
        },
        indent=2,
    )


async def _log(now: datetime, decision: str, reason: str) -> None:
    record = AuditRecord(
        at=now,
        actor_kind="operator",
        event="admin",
        operation="policyWhatIf",
        decision=decision,
        reason=reason[:200],
    )
    await append([record])


async def run(services: Services, *, path: Path, days: int, json_out: bool) -> int:
    now = services.clock.now()
    try:
        rows = load_candidate(path)
    except policy_cases.MalformedFile as exc:
        await _log(now, "deny", f"MALFORMED: line {exc.line}: {exc.problem}")
        sys.stderr.write(f"custos: {exc}\n")
        return 2
    candidate = impact.candidate(rows, await separation.stored_policy())
    found = await impact.of_policy(candidate, since=now - timedelta(days=days))
    breach = separation.first_breach(candidate)
    await _log(now, "allow", f"replayed {found.replayed}: +{found.to_allow} -{found.to_deny}")
    sys.stdout.write((as_json(found, days) if json_out else "\n".join(_lines(found, days))) + "\n")
    if breach is not None:
        refusal = f"refused: {breach.text}; admins and auditors see no personal-data value"
        sys.stderr.write(refusal + "\n")
        return 1
    return 0
