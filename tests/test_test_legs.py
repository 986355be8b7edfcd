"""`make test`'s runner (scripts/test-legs.sh), run on stand-in legs in a copy of the
script: the outcome comes from each leg's own status, a leg that hangs is stopped at the
deadline, and nothing a leg left running outlives the run (a leftover holding the run's
output open kept an earlier CI run from ending)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

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
