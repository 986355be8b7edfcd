"""`custos audit follow`: the log's tree and checkpoints kept by a process of their own,
beside servers that do none of it (CUSTOS_AUDIT_INTEGRATE_SECONDS=0). Real processes on the
suite's database (one SQLite file, or PostgreSQL): a server writes rows and leaves them out
of the tree; the follower brings them in and signs; SIGTERM stops it cleanly; a follower
killed with SIGKILL mid-pass loses nothing, and the next one finishes the tree."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx

from api.clock import FakeClock
from api.settings import Settings
from authz import log_tree
from authz.audit import append
from authz.log_verify import verify_log
from models import AuditCheckpoint, AuditEvent
from tests.cli_helpers import REPO
from tests.real_servers import server_env, servers
from tests.test_log_tree_faults import record, settled

LOG_ENV = {"CUSTOS_AUDIT_CHECKPOINT_SECONDS": "0"}


@contextlib.contextmanager
def follower(database_url: str, home: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`custos audit follow ARGS`, its keys and published checkpoints under `home`."""
    env = server_env(
        database_url,
        **LOG_ENV,
        CUSTOS_AUDIT_KEY_DIR=str(home / "keys"),
        CUSTOS_AUDIT_CHECKPOINT_DIR=str(home / "published"),
    )
    with (home / "follower.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "audit", "follow", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def published_size(path: Path, seconds: float = 10) -> str:
    """The size line of the checkpoint published at `path` (origin, size, root), once the
    follower (another process: nothing here to wait on) has written it."""
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return path.read_text().splitlines()[1]


async def test_servers_leave_the_tree_to_the_follower_which_integrates_and_signs(
    settings: Settings, tmp_path: Path
) -> None:
    quiet = {**LOG_ENV, "CUSTOS_AUDIT_INTEGRATE_SECONDS": "0"}
    with servers(settings.database_url, 1, tmp_path, **quiet) as [server]:
        async with httpx.AsyncClient(base_url=server.url) as client:
            for _ in range(3):  # each a refused sign-in: one logged row
                await client.post(
                    "/graphql",
                    json={
                        "query": 'mutation { staffLogin(email: "nobody@staff.example.com", '
                        'password: "not this one at all") { __typename } }'
                    },
                )
        rows = await AuditEvent.all().count()
        assert rows >= 3
        await asyncio.sleep(1.0)  # a server integrating every second would have begun
        assert await log_tree.size() == 0
        assert await AuditCheckpoint.all().count() == 0

        with follower(settings.database_url, tmp_path, "--every", "0.1") as proc:
            await settled(rows)
            # written to the directory after the checkpoint's row commits: wait for it
            assert published_size(tmp_path / "published" / "checkpoint") == str(rows)
            began = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            assert time.monotonic() - began < 5
    result = await verify_log()
    assert result.ok, result.problem
    assert result.tree_size == rows


async def test_a_follower_killed_mid_pass_loses_nothing_and_the_next_finishes(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    for batch in range(40):  # several integration batches' worth (5,000 rows each)
        await append([record(clock, batch * 400 + i) for i in range(400)])
    with follower(settings.database_url, tmp_path, "--every", "0.1") as first:
        for _ in range(3000):  # another process's work: no event to wait on
            if await log_tree.size() > 0:
                break
            await asyncio.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    cut_short = await log_tree.size()
    assert 0 < cut_short < 16_000  # killed after its first batch, before its last
    with follower(settings.database_url, tmp_path, "--every", "0.1") as second:
        await settled(16_000, seconds=120)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
    result = await verify_log()
    assert result.ok, result.problem
    assert result.tree_size == 16_000


async def test_sigterm_in_a_backlog_of_staff_pages_stops_the_follower_within_seconds(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    # given a backlog of 10,000 rows naming 100 customers each (staff pages): a million
    # subject links to write (a stop used to wait for the statement its cancel cut short
    # to finish in PostgreSQL: 10 s, Tortoise's limit on a graceful close)
    customers = ",".join(f"c{n:03d}" for n in range(100))
    total = 10_000
    for chunk in range(total // 500):
        await append(
            [replace(record(clock, chunk * 500 + i), subject_id=customers) for i in range(500)]
        )
    with follower(settings.database_url, tmp_path, "--every", "0.1") as proc:
        for _ in range(6000):  # another process's work: no event to wait on
            if await log_tree.size() > 0:
                break
            await asyncio.sleep(0.01)
        # when it is stopped a second into its next batches, the backlog still coming in
        await asyncio.sleep(1)
        assert 0 < await log_tree.size() < total
        proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        # then it exits cleanly within 3 s, the batch it was writing rolled back
        assert proc.wait(timeout=30) == 0
        assert time.monotonic() - began < 3
    # and a second follower finishes the tree, which verifies
    with follower(settings.database_url, tmp_path, "--every", "0.1") as second:
        await settled(total, seconds=180)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
    result = await verify_log()
    assert result.ok, result.problem
    assert result.tree_size == total
