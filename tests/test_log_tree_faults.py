"""The tree and its checkpoints under real faults: two servers integrating and signing on
one database (one SQLite file, or PostgreSQL) while rows arrive, and a server killed with
SIGKILL in the middle of its work. Every row ends up exactly once in the tree, in chain
order, and the whole log verifies against every checkpoint signed."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from api.clock import FakeClock
from api.settings import Settings
from authz import log_tree
from authz.audit import AuditRecord, append
from authz.log_verify import verify_log
from models import AuditCheckpoint, AuditEvent, AuditLeaf
from tests.real_servers import servers

FAST = {"CUSTOS_AUDIT_CHECKPOINT_SECONDS": "0", "CUSTOS_AUDIT_INTEGRATE_SECONDS": "0.05"}


def record(clock: FakeClock, n: int) -> AuditRecord:
    return AuditRecord(
        at=clock.now(),
        actor_kind="employee",
        actor_id=f"e-{n % 5}",
        event="access",
        decision="allow",
        category="contact.email",
        subject_id=f"c-{n}",
    )


async def settled(size: int, seconds: float = 30) -> None:
    """Until the tree holds `size` rows and a checkpoint covers them all."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        latest = await AuditCheckpoint.all().order_by("-id").first()
        if await log_tree.size() == size and latest is not None and latest.size == size:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the tree did not reach {size} rows with a checkpoint")


async def test_two_servers_integrate_and_sign_one_log_while_rows_arrive(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    with servers(settings.database_url, 2, tmp_path, **FAST):
        for batch in range(40):
            await append([record(clock, batch * 5 + i) for i in range(5)])
            await asyncio.sleep(0.02)
        await settled(200)
    events = [e.id for e in await AuditEvent.all().order_by("id")]
    leaves = await AuditLeaf.all().order_by("idx")
    assert [leaf.idx for leaf in leaves] == list(range(200))
    assert [leaf.event_id for leaf in leaves] == events
    result = await verify_log()
    assert result.ok, result.problem
    assert result.tree_size == 200
    assert len(result.checkpoints) == await AuditCheckpoint.all().count() > 1


async def test_a_server_killed_mid_work_leaves_a_tree_the_other_completes(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    # rows waiting, several integration batches' worth (5,000 rows each)
    for batch in range(60):
        await append([record(clock, batch * 400 + i) for i in range(400)])
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with servers(settings.database_url, 1, tmp_path / "first", **FAST) as [first]:
        for _ in range(3000):  # polling another process's work: no event to wait on
            if await log_tree.size() > 0:
                break
            await asyncio.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)  # as soon as its first batch is in
    done_before = await log_tree.size()
    assert 0 < done_before < 24_000  # killed with work left
    with servers(settings.database_url, 1, tmp_path / "second", **FAST):
        await settled(24_000, seconds=120)
    result = await verify_log()
    assert result.ok, result.problem
    assert [leaf.idx for leaf in await AuditLeaf.all().order_by("idx").limit(3)] == [0, 1, 2]
