"""The intake worker (api/rights/intake.py): requests by email address are queued by the
request path and handled later, each row once even with several workers, retried after a
dead worker's lease, dropped after repeated failures, and never kept once handled."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from api.clock import FakeClock
from api.rights import intake, lifecycle
from api.services import Services
from models import AuditEvent, DeferredIntake, RightsRequest
from tests.cli_helpers import custos, migrated_file
from tests.conftest import GQL, mails, register
from tests.intake_helpers import run_intake

BY_EMAIL = """
mutation ($email: String!, $kind: RightsRequestKind!, $changes: RectificationInput) {
  submitRightsRequestByEmail(email: $email, kind: $kind, details: "please", changes: $changes) {
    __typename ... on RightsError { code } } }
"""
JANE = "jane.doe@example.com"


async def by_email(gql: GQL, email: str = JANE, kind: str = "ACCESS", **extra: object) -> str:
    body = await gql(BY_EMAIL, {"email": email, "kind": kind, **extra})
    result = body["data"]["submitRightsRequestByEmail"]
    return str(result.get("code") or result["__typename"])


async def test_a_rectification_by_email_keeps_what_was_asked(gql: GQL, services: Services) -> None:
    # given an account, and a rectification asked for by email address
    await register(gql)
    changes = {"phone": "+44 20 7946 0111"}
    assert await by_email(gql, kind="RECTIFICATION", changes=changes) == (
        "RightsRequestByEmailAccepted"
    )
    # when the worker handles it
    assert await run_intake(services) == 1
    # then the request holds the changes as the request path received them, normalised
    request = await RightsRequest.get()
    assert (request.kind, request.channel, request.details) == ("rectification", "email", "please")
    assert request.changes == {"phone": "+442079460111"}
    assert len(await mails("rights_code", JANE)) == 1


async def test_bad_input_is_refused_before_anything_is_queued(gql: GQL) -> None:
    # when a rectification by email proposes nothing
    code = await by_email(gql, kind="RECTIFICATION")
    # then it is a typed refusal, logged, and nothing waits in the queue
    assert code == "VALIDATION"
    assert await DeferredIntake.all().count() == 0
    refused = await AuditEvent.filter(event="rights", operation="submit_by_email")
    assert [(e.decision, e.reason) for e in refused] == [("deny", "VALIDATION")]


async def test_two_workers_never_handle_one_row(gql: GQL, services: Services) -> None:
    # given three accounts, each asking by email
    addresses = [f"person{n}@example.com" for n in range(3)]
    for address in addresses:
        await register(gql, email=address)
        await by_email(gql, address)
    # when two workers run at once
    counts = await asyncio.gather(run_intake(services), run_intake(services))
    # then each row was handled by exactly one of them: one request and one code each
    assert sum(counts) == 3
    assert await RightsRequest.all().count() == 3
    assert sorted(m.recipient for m in await mails("rights_code")) == addresses
    assert await DeferredIntake.all().count() == 0


async def test_a_dead_workers_row_comes_back_after_its_lease(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    # given a request claimed by a worker that died before handling it
    await register(gql)
    await by_email(gql)
    [claimed] = await intake._claim(clock=clock, limit=10)
    # then no other worker takes it while the lease runs
    assert await run_intake(services) == 0
    # and once the lease has run out, one does, once
    clock.advance(seconds=intake.LEASE.total_seconds())
    assert await run_intake(services) == 1
    assert len(await mails("rights_code", JANE)) == 1
    # and the dead worker, back to life, finds its row gone and does nothing
    with pytest.raises(intake._LostLease):
        await intake._handle(services, claimed)
    assert len(await mails("rights_code", JANE)) == 1


async def test_a_failing_row_is_dropped_and_the_log_names_no_address(
    gql: GQL,
    services: Services,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a request whose handling always fails
    async def broken(**_: object) -> bool:
        raise RuntimeError(f"cannot handle {JANE}")

    monkeypatch.setattr(lifecycle, "submit_by_email", broken)
    await by_email(gql)
    # when the worker tries it MAX_ATTEMPTS times, a lease apart
    with caplog.at_level(logging.WARNING, logger="custos.rights"):
        for _ in range(intake.MAX_ATTEMPTS):
            assert await run_intake(services) == 0
            clock.advance(seconds=intake.LEASE.total_seconds())
    # then the row is gone (the address is not kept for ever), nothing else was written
    assert await DeferredIntake.all().count() == 0
    assert await RightsRequest.all().count() == 0
    # and the log says which row failed and why by type, never the address
    lines = [r.getMessage() for r in caplog.records if r.name == "custos.rights"]
    assert len(lines) == intake.MAX_ATTEMPTS
    assert lines[-1].endswith("RuntimeError (dropped)")
    assert not any("example.com" in line for line in lines)


async def test_the_loop_outlives_a_failed_round(
    gql: GQL, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a queued request, and a first round that fails outright
    await register(gql)
    await by_email(gql)
    real, rounds, handled = intake.handle_deferred, [], asyncio.Event()

    async def flaky(*, services: Services, limit: int = 100) -> int:
        rounds.append(limit)
        if len(rounds) == 1:
            raise ConnectionError("database away")
        count = await real(services=services, limit=limit)
        if count:
            handled.set()
        return count

    monkeypatch.setattr(intake, "handle_deferred", flaky)
    # when the loop runs a few rounds
    loop = asyncio.create_task(intake.run_intake_loop(services=services, poll_seconds=0.01))
    try:
        await asyncio.wait_for(handled.wait(), timeout=10)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
    # then the next round handled the request
    assert len(rounds) >= 2
    assert len(await mails("rights_code", JANE)) == 1


SEED = """
import asyncio, sys
from datetime import UTC, datetime
from api.db import close_db, init_db
from models import Customer, DeferredIntake

async def main():
    await init_db(sys.argv[1])
    now = datetime.now(UTC)
    await Customer.create(email="jane@example.com", password_hash="x", phone="+442079460000",
        address_line1="1 Road", address_city="London", address_postal_code="NW1 6XE",
        address_country="GB", created_at=now, updated_at=now)
    for address in ("jane@example.com", "nobody@example.com"):
        await DeferredIntake.create(operation="rights_by_email", address=address, due_at=now,
            created_at=now, data={"kind": "access", "details": "", "changes": None})
    await close_db()

asyncio.run(main())
"""


def test_custos_rights_intake_handles_the_queue(tmp_path: Path) -> None:
    # given two requests by email waiting, one for an account
    _, env = migrated_file(tmp_path, "intake.sqlite3", SEED)
    # when the operator runs the intake by hand
    done = custos(env, "rights", "intake")
    # then both were handled (the console mail is not sent here: it waits in the outbox)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "handled 2 request(s) by email address"
    assert custos(env, "rights", "intake").stdout.strip() == (
        "handled 0 request(s) by email address"
    )
