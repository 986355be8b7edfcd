"""What-if benchmark (issue 14, point 3): replaying the decision log against proposals.

Seeds `--log-rows` access decisions over the last 30 days (employees of every job role and
customers, every category, action and purpose, mixed conditions, 1 to 5 customers a
row), then times, side by side: a bare scan of the same rows (the floor: reading them),
the what-if of one proposal, and of five proposals in one scan (as `policyProposals {
impact }` does). Prints rows/s, decisions/s, and each against the bare scan."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from api.access.changes import Change
from api.access.rules import Rule
from api.db import close_db, init_db
from authz import separation, what_if
from authz.audit import AuditRecord, append
from authz.registry import CONDITIONS, PURPOSES, Action, Category, Role
from models import AuditEvent

_ROLES = [r.value for r in Role if r.value not in ("admin", "auditor")]
_PROPOSALS = [
    Change("add_rule", rule=Rule("legal", "support.cases", "read", "legal", "*", "allow")),
    Change("add_rule", rule=Rule("marketing", "contact.phone", "read", "*", "*", "allow")),
    Change("remove_rule", rule=Rule("customer_care", "device.*", "*", "*", "*", "deny")),
    Change("add_rule", rule=Rule("fraud_analyst", "contact.*", "read", "security", "*", "allow")),
    Change("remove_rule", rule=Rule("legal", "behavior.*", "*", "*", "*", "deny")),
]


def _record(rng: random.Random, now: datetime) -> AuditRecord:
    employee = rng.random() < 0.8
    return AuditRecord(
        at=now - timedelta(seconds=rng.randrange(29 * 86400)),
        actor_kind="employee" if employee else "customer",
        actor_id=str(uuid4()),
        roles=rng.choice(_ROLES) if employee else "",
        event="access",
        category=rng.choice([c.value for c in Category]),
        action=rng.choice([Action.READ.value, Action.READ_MASKED.value, Action.EXPORT.value]),
        purpose=rng.choice(list(PURPOSES)),
        decision=rng.choice(["allow", "deny"]),
        subject_id=",".join(str(uuid4()) for _ in range(rng.randint(1, 5))),
        conditions=",".join(sorted(rng.sample(CONDITIONS, rng.randint(0, 2)))),
        policy_version=1,
    )


async def _seed(rows: int, now: datetime) -> None:
    rng = random.Random(14)
    for start in range(0, rows, 5_000):
        await append([_record(rng, now) for _ in range(min(5_000, rows - start))])


async def _bare_scan(since: datetime) -> int:
    """Read the same rows in the same batches, and do nothing with them."""
    seen, last_id = 0, 0
    while True:
        query = AuditEvent.filter(event="access", at__gte=since, id__gt=last_id)
        batch = await query.order_by("id").limit(5_000).values(*what_if._FIELDS)
        if not batch:
            return seen
        seen += len(batch)
        last_id = int(str(batch[-1]["id"]))


async def _measure(database_url: str, rows: int) -> None:
    await init_db(database_url)
    try:
        now = datetime.now(UTC)
        since = now - timedelta(days=30)
        started = time.perf_counter()
        await _seed(rows, now)
        print(f"what-if: seeded {rows} access rows in {time.perf_counter() - started:.1f} s")
        before = await separation.stored_policy()
        started = time.perf_counter()
        scanned = await _bare_scan(since)
        bare = time.perf_counter() - started
        started = time.perf_counter()
        [one] = await what_if.replay_many(
            before=before, afters=[_PROPOSALS[0].apply(before)], since=since
        )
        single = time.perf_counter() - started
        started = time.perf_counter()
        await what_if.replay_many(
            before=before, afters=[c.apply(before) for c in _PROPOSALS], since=since
        )
        five = time.perf_counter() - started
        print(f"  bare scan of {scanned} rows:  {bare:6.2f} s  ({scanned / bare:,.0f} rows/s)")
        print(
            f"  one proposal:            {single:6.2f} s  ({scanned / single:,.0f} rows/s, "
            f"{one.replayed / single:,.0f} decisions/s)  {single / bare:.2f}x the scan"
        )
        print(f"  five in one scan:        {five:6.2f} s  {five / bare:.2f}x the scan")
        print(f"  (one proposal: {one.to_allow} to allow, {one.customers} customers)")
    finally:
        await close_db()


def report(database_url: str, rows: int) -> None:
    asyncio.run(_measure(database_url, rows))
