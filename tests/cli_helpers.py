"""Running `custos` as a real process against a SQLite file of the test's own."""

from __future__ import annotations

import os
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
