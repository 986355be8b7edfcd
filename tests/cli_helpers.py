"""Running `custos` as a real process against a SQLite file of the test's own."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[1]


def custos(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m api ARGS` with `env`, bounded so that no call hangs the suite."""
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def migrated_file(tmp_path: Path, name: str, script: str) -> tuple[Path, dict[str, str]]:
    """A migrated SQLite file, then `script` run with its URL as argument: the file and
    the environment that points `custos` at it."""
    path = tmp_path / name
    env = dict(os.environ, DATABASE_URL=f"sqlite://{path}", CUSTOS_MAIL_POLL_SECONDS="0")
    for cmd in (
        [sys.executable, "-m", "api", "migrate"],
        [sys.executable, "-c", script, env["DATABASE_URL"]],
    ):
        done = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
    return path, env


def pipeline(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    """`command`, a shell line where `custos` is this checkout's `python -m api`, run by
    bash with pipefail: the status is the first failing part's (so that `custos ... |
    head -1` fails when custos does, not only when head does)."""
    custos_fn = f'custos() {{ {shlex.quote(sys.executable)} -m api "$@"; }}'
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {custos_fn}; {command}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
