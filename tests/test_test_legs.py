"""`make test`'s runner (scripts/test-legs.sh), run on stand-in legs in a copy of the
script: the outcome comes from each leg's own status, a leg that hangs is stopped at the
deadline, and nothing a leg left running outlives the run (a leftover holding the run's
output open kept an earlier CI run from ending)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _runner(tmp_path: Path, sqlite: str, postgres: str) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "test-legs.sh", tmp_path / "scripts" / "test-legs.sh")
    (tmp_path / "Makefile").write_text(f"test-sqlite:\n\t{sqlite}\ntest-postgres:\n\t{postgres}\n")
    return tmp_path / "scripts" / "test-legs.sh"


def _run(script: Path, deadline: int = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CUSTOS_TEST_DEADLINE": str(deadline)}
    return subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=120, env=env
    )


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except ProcessLookupError:
        return False
    return True


def test_both_legs_pass_and_their_output_is_shown(tmp_path: Path) -> None:
    done = _run(_runner(tmp_path, "@echo sqlite-leg-ran", "@sleep 1; echo postgres-leg-ran"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sqlite-leg-ran" in done.stdout
    assert "postgres-leg-ran" in done.stdout
    assert "the sqlite leg ended with status 0" in done.stdout
    assert "the postgres leg ended with status 0" in done.stdout


def test_a_failing_leg_fails_the_run_and_its_leftovers_are_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "leftover.pid"
    # the leg starts a process that would outlive it, holding the run's output open
    postgres = f"@sleep 300 & echo $$! > {pid_file}; echo postgres-leg-failed; exit 3"
    done = _run(_runner(tmp_path, "@echo sqlite-leg-ran", postgres))
    assert done.returncode == 1, done.stdout
    assert "postgres-leg-failed" in done.stdout
    assert "the postgres leg ended with status 2" in done.stdout  # make's status for a failure
    deadline = time.monotonic() + 5
    while _alive(pid_file) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid_file)


def test_a_hanging_leg_is_stopped_at_the_deadline(tmp_path: Path) -> None:
    started = time.monotonic()
    done = _run(_runner(tmp_path, "@echo sqlite-leg-ran", "@echo hanging; sleep 300"), deadline=3)
    assert time.monotonic() - started < 60
    assert done.returncode == 1
    assert "sqlite-leg-ran" in done.stdout
    assert "the postgres leg did not end within 3 s: stopped" in done.stdout
    assert "hanging" in done.stdout  # the hung leg's output so far is shown


def test_a_throwaway_cluster_stopped_with_sigterm_is_shut_down_and_removed(
    tmp_path: Path,
) -> None:
    """`tests/pgcluster.py` sent SIGTERM (as the runner stops a leg at its deadline) stops
    its command and its cluster, whose server `pg_ctl` started in a session of its own."""
    from tests.pgcluster import find_bindir

    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries not found")
    marker = tmp_path / "url"
    command = f'echo "$TEST_DATABASE_URL" > {marker}; exec sleep 300'
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "pgcluster.py"), "--", "sh", "-c", command],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() or not marker.read_text().strip():
        assert proc.poll() is None, "the cluster did not start"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    port = int(marker.read_text().strip().rsplit(":", 1)[1].split("/")[0])
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    with socket.socket() as probe:  # nothing listens on the cluster's port any more
        assert probe.connect_ex(("127.0.0.1", port)) != 0
