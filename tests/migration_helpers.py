"""A database of a test's own, for tests that migrate across a version (the suite's own
database is migrated to the latest once per run)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def fresh_database(tmp_path: Path) -> Iterator[str]:
    """A database of this test's own, on the suite's kind of database."""
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://", "asyncpg://")):
        yield f"sqlite://{tmp_path / 'migrate.sqlite3'}"
        return
    base, _ = url.rsplit("/", 1)
    name = f"custos_migrate_{secrets.token_hex(4)}"
    admin = "postgresql://" + url.split("://", 1)[1]
    _psql_like(admin, f"CREATE DATABASE {name}")
    try:
        yield f"{base}/{name}"
    finally:
        _psql_like(admin, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _psql_like(url: str, statement: str) -> None:
    code = (
        "import asyncio, asyncpg, sys\n"
        "async def main():\n"
        "    conn = await asyncpg.connect(sys.argv[1])\n"
        "    await conn.execute(sys.argv[2])\n"
        "    await conn.close()\n"
        "asyncio.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", code, url, statement], check=True, timeout=60)


REPO = Path(__file__).parents[1]


def run_script(script: str, url: str) -> Any:
    """Run `script` in a process of its own (a Tortoise context of its own) against `url`,
    with no CUSTOS_ setting of the suite's, and return the JSON of its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTOS_")}
    done = subprocess.run(
        [sys.executable, "-c", script, url],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
