"""Mail delivered once, and not lost to an outage (issue 15, points 1 and 2), under real
faults: a sender process killed with SIGKILL between the relay's acceptance and its mark, a
relay slower than the lease with two sender processes, an SMTP relay down for longer than
the old retry budget, content that expires while the relay is down, and dead mail requeued
by an operator. Each runs on SQLite and on PostgreSQL (tests/pgcluster.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from api.clock import FakeClock, SystemClock
from api.mail import templates
from api.mail.outbox import Mail, enqueue, enqueue_many
from api.mail.sender import PAUSE_AFTER_SEND_ENV, SmtpBackend, deliver_pending
from api.marketing.campaigns import delivery_counts, queue_campaigns
from api.services import Services
from api.settings import Settings
from models import OutboxMessage
from tests.cli_helpers import REPO, custos
from tests.conftest import GQL
from tests.smtp_helpers import Sink, sender_env, smtp_to
from tests.test_campaigns import SEND, audience, draft, marketer
from tests.test_email import free_port

STATS = "{ campaigns { queued delivered failed dead } }"
NOTICE = Mail(kind="policy_notice", subject="Our privacy policy is changing", body="Read it.\n")


async def queued(n: int, *, clock: SystemClock | FakeClock) -> list[OutboxMessage]:
    recipients = [(f"reader{i}@example.com", None) for i in range(n)]
    await enqueue_many(mail=NOTICE, recipients=recipients, clock=clock)
    return await OutboxMessage.all().order_by("id")


def sender_process(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "api", "mail", "send-pending"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_for(condition: Callable[[], object], *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_sender_killed_after_the_relay_accepted_leaves_one_duplicate_with_its_id(
    settings: Settings,
) -> None:
    # given 6 queued messages, a relay, and a sender process that claims 3 at a time under
    # a 2 s lease and pauses after the relay accepted its first message (the test hook)
    lease = 2.0
    rows = await queued(6, clock=SystemClock())
    sink = Sink().start()
    try:
        env = sender_env(
            settings,
            sink.port,
            CUSTOS_MAIL_LEASE_SECONDS=str(lease),
            CUSTOS_MAIL_CLAIM_BATCH="3",
            **{PAUSE_AFTER_SEND_ENV: "60"},
        )
        first = sender_process(env)
        try:
            await wait_for(lambda: sink.ids(), seconds=30)
            await asyncio.sleep(0.5)  # the relay's 250 is back; the sender sits in the hook
            # when it is killed there, before it marks the message sent
            killed_at = datetime.now(UTC)
            os.kill(first.pid, signal.SIGKILL)
        finally:
            first.wait(timeout=10)
            first.stdout.close()  # type: ignore[union-attr]
            first.stderr.close()  # type: ignore[union-attr]
        assert first.returncode == -signal.SIGKILL
        [in_flight] = sink.ids()
        # then it left its batch claimed for at most one lease after its death
        held = await OutboxMessage.filter(status="sending").order_by("id")
        assert [r.id for r in held] == [r.id for r in rows[:3]]
        holds = [(r.next_attempt_at - killed_at).total_seconds() for r in held]
        assert max(holds) <= lease + 0.05, holds
        # when another sender delivers until everything is sent
        second = smtp_to(settings, sink.port, mail_lease_seconds=lease)
        backend = SmtpBackend(second)
        resent_after = None
        deadline = time.monotonic() + 30
        while await OutboxMessage.exclude(status="sent").exists():
            assert time.monotonic() < deadline, "not delivered"
            await deliver_pending(backend=backend, settings=second, clock=SystemClock())
            if resent_after is None and sink.copies()[in_flight] == 2:
                resent_after = (datetime.now(UTC) - killed_at).total_seconds()
            await asyncio.sleep(0.05)
        await backend.close()
    finally:
        sink.stop()
    # then every message arrived, and only the one in flight at the kill twice, with the
    # same Message-ID (the one stored with its row at enqueue)
    copies = sink.copies()
    assert len(sink.ids()) == len(rows) + 1
    assert set(copies) == {r.message_id for r in rows}
    assert [mid for mid, n in copies.items() if n > 1] == [in_flight] == [rows[0].message_id]
    # and the crashed claims went out again within a lease (plus one polling round)
    assert resent_after is not None
    assert resent_after <= lease + 1.0, resent_after
    print(f"\nkill -9 after acceptance: {len(copies)} messages, 1 duplicate ({in_flight}),")
    print(f"claims held {max(holds):.2f} s after the kill, resent {resent_after:.2f} s after it")


async def test_a_relay_slower_than_the_lease_gets_no_duplicate_from_two_senders(
    settings: Settings,
) -> None:
    # given 4 messages and a relay that takes 3.5 s per message, over twice the lease
    rows = await queued(4, clock=SystemClock())
    sink = Sink(delay=3.5).start()
    try:
        env = sender_env(
            settings, sink.port, CUSTOS_MAIL_LEASE_SECONDS="1.5", CUSTOS_MAIL_CLAIM_BATCH="1"
        )
        # when two sender processes deliver at once
        started = time.monotonic()
        senders = [sender_process(env) for _ in range(2)]
        outputs = [p.communicate(timeout=90) for p in senders]
        took = time.monotonic() - started
    finally:
        sink.stop()
    for process, (_, err) in zip(senders, outputs, strict=True):
        assert process.returncode == 0, err
        assert "lapsed" not in err, err
        assert "claim lost" not in err, err
    # then each message reached the relay once, and no row was ever claimed twice
    assert sorted(sink.ids()) == sorted(r.message_id for r in rows)
    after = await OutboxMessage.all()
    assert [(r.status, r.attempts) for r in after] == [("sent", 1)] * len(rows)
    # and both senders worked (the leases renewed while the relay was slow)
    delivered = [int(out.split()[1]) for out, _ in outputs]
    assert sum(delivered) == len(rows)
    print(f"\nslow relay: {len(rows)} messages, 0 duplicates, {delivered} per sender, {took:.1f} s")


async def test_an_outage_longer_than_the_old_budget_loses_no_campaign_message(
    gql: GQL, services: Services, settings: Settings, clock: FakeClock
) -> None:
    # given a campaign of 12 messages queued and a relay that takes the first round
    consenting = await audience(clock, consenting=12)
    token = await marketer(gql, services)
    await gql(SEND, {"id": (await draft(gql, token))["id"]}, token)
    await queue_campaigns(services=services)
    rows = await OutboxMessage.filter(kind="marketing").order_by("id")
    assert len(rows) == len(consenting)
    # (marketing sees them as queued)
    stats = (await gql(STATS, token=token))["data"]["campaigns"][0]
    assert stats == {"queued": len(rows), "delivered": 0, "failed": 0, "dead": 0}
    sink = Sink()
    smtp = smtp_to(settings, sink.port)
    backend = SmtpBackend(smtp)
    sink.start()
    first = await deliver_pending(backend=backend, settings=smtp, clock=clock)
    assert 1 <= first < len(rows)  # the rest are due later (the campaign's rate)
    # when the relay is down for a day (the old budget was 5 attempts in about 7.5 minutes)
    sink.stop()
    down_until = clock.now() + timedelta(hours=24)
    attempts = 0
    while (
        due := await OutboxMessage.filter(status__in=("pending", "sending"))
        .order_by("next_attempt_at")
        .first()
    ) is not None and due.next_attempt_at < down_until:
        clock.advance(seconds=max(0.0, (due.next_attempt_at - clock.now()).total_seconds()))
        assert await deliver_pending(backend=backend, settings=smtp, clock=clock) == 0
        attempts += 1
    # then nothing is dead, and each message keeps its content and its retries
    waiting = await OutboxMessage.filter(status="pending")
    assert len(waiting) == len(rows) - first
    assert all(r.body_text and r.attempts > 5 for r in waiting)
    gaps = {r.id: r.next_attempt_at - r.first_attempt_at for r in waiting}
    assert all(gap < timedelta(hours=25) for gap in gaps.values())
    # and the campaign's statistics say so
    assert await delivery_counts(rows[0].campaign_id) == {
        "delivered": first,
        "queued": 0,
        "failed": len(rows) - first,
        "dead": 0,
    }
    # when the relay is back
    sink.start()
    try:
        clock.advance(hours=1)  # the longest wait between attempts (the backoff's cap)
        while await deliver_pending(backend=backend, settings=smtp, clock=clock):
            pass
        await backend.close()
    finally:
        sink.stop()
    # then every message was delivered, each once
    assert sorted(sink.ids()) == sorted(r.message_id for r in rows)
    assert {r.status for r in await OutboxMessage.filter(kind="marketing")} == {"sent"}
    assert (await delivery_counts(rows[0].campaign_id))["delivered"] == len(rows)
    most = max(r.attempts for r in waiting)
    print(f"\noutage of 24 h: {len(rows)}/{len(rows)} delivered, up to {most} attempts each")


async def test_expired_content_is_dropped_and_dead_mail_is_kept_until_requeued(
    settings: Settings, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # given a rights-request code (valid 15 minutes), a verification link (48 hours) and a
    # notice without expiry, queued while the relay is down, with a 1-hour retry budget
    code = templates.rights_code(
        settings=settings, kind="erasure", request_id="R-1", code="123456", minutes=15
    )
    link = templates.verify_email(settings=settings, token="t0k3n", hours=48)
    for mail, address in ((code, "ana@example.com"), (link, "ben@example.com")):
        assert await enqueue(mail=mail, recipient=address, customer_id=None, clock=clock)
    await enqueue_many(mail=NOTICE, recipients=[("cy@example.com", None)], clock=clock)
    down = smtp_to(settings, free_port(), mail_retry_hours=1.0)
    backend = SmtpBackend(down)
    caplog.set_level(logging.INFO, logger="custos.mail")
    # when the sender keeps trying for 2 hours
    for _ in range(2 * 60):
        await deliver_pending(backend=backend, settings=down, clock=clock)
        clock.advance(minutes=1)
    by_kind = {r.kind: r for r in await OutboxMessage.all()}
    # then the code past its TTL was dropped unsent, its body erased, with a logged reason
    expired = by_kind["rights_code"]
    assert (expired.status, expired.body_text, expired.sent_at) == ("expired", "", None)
    [dropped] = [r for r in caplog.records if "dropped unsent" in r.getMessage()]
    assert f"mail {expired.id} (rights_code)" in dropped.getMessage()
    assert "content expired" in dropped.getMessage()
    assert not any("@" in r.getMessage() for r in caplog.records if r.name == "custos.mail")
    # and the others are dead with their content kept (the link is still valid for hours)
    for kind in ("verify_email", "policy_notice"):
        assert by_kind[kind].status == "dead"
        assert by_kind[kind].body_text
    # when an operator looks at the outbox
    sink = Sink().start()
    try:
        env = sender_env(settings, sink.port)
        status = custos(env, "mail", "status")
        assert status.returncode == 0, status.stderr
        assert "@" not in status.stdout
        lines = {tuple(line.split()) for line in status.stdout.splitlines()}
        assert {("dead", "policy_notice", "1"), ("expired", "rights_code", "1")} <= lines
        # and requeues the notice, then a sender runs
        requeue = custos(env, "mail", "requeue", "--kind", "policy_notice")
        assert (requeue.returncode, requeue.stdout) == (0, "requeued 1 dead message(s)\n")
        sent = custos(env, "mail", "send-pending")
        assert sent.returncode == 0, sent.stderr
    finally:
        sink.stop()
    # then the dead notice was delivered, with the Message-ID it had from the start
    notice = await OutboxMessage.get(kind="policy_notice")
    assert sink.ids() == [by_kind["policy_notice"].message_id]
    assert (notice.status, notice.attempts, notice.body_text) == ("sent", 1, "")
    # and the expired code was not requeued, the other dead message still waits
    assert (await OutboxMessage.get(kind="rights_code")).status == "expired"
    assert (await OutboxMessage.get(kind="verify_email")).status == "dead"


async def test_purging_dead_mail_erases_its_content_and_address(
    settings: Settings, clock: FakeClock
) -> None:
    # given a dead message
    [row] = await queued(1, clock=clock)
    await OutboxMessage.filter(id=row.id).update(status="dead", last_error="SMTPConnectError")
    env = sender_env(settings, free_port())
    # when an operator purges it
    done = custos(env, "mail", "purge-dead", "--id", str(row.id))
    assert (done.returncode, done.stdout) == (0, "purged 1 dead message(s)\n")
    # then nothing of it is left to send or to read, and requeue finds nothing
    row = await OutboxMessage.get(id=row.id)
    assert (row.status, row.recipient, row.body_text) == ("purged", "", "")
    again = custos(env, "mail", "requeue")
    assert again.stdout == "requeued 0 dead message(s)\n"
