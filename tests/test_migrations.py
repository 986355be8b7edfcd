"""The checked-in migrations are the models: the same files build SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tortoise import connections

REPO = Path(__file__).parents[1]

# Runs the migration autodetector against the models, as `make migrations` would, in a
# separate process (it needs a Tortoise context of its own) and prints what it would write.
DETECT = """
import asyncio
from tortoise.cli.cli import tortoise_cli_context
from tortoise.migrations.autodetector import MigrationAutodetector
from api.db import MIGRATIONS_CONFIG

async def main():
    async with tortoise_cli_context(MIGRATIONS_CONFIG) as ctx:
        writers = await MigrationAutodetector(ctx.apps, MIGRATIONS_CONFIG["apps"]).changes()
    print(len(writers))

asyncio.run(main())
"""


def test_models_have_no_changes_missing_a_migration() -> None:
    done = subprocess.run(
        [sys.executable, "-c", DETECT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0", "models changed: run `make migrations` and commit it"


async def test_migrations_created_every_model_table() -> None:
    # given the session database, built by `migrate` (not by generate_schemas)
    from tortoise import Tortoise

    conn = connections.get("default")
    expected = {m._meta.db_table for m in Tortoise.apps["models"].values()}
    if conn.capabilities.dialect == "postgres":
        _, rows = await conn.execute_query(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' "
            "UNION SELECT viewname FROM pg_views WHERE schemaname = 'public'"
        )
    else:
        _, rows = await conn.execute_query(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"
        )
    # then every model's table (or view: audit_subject) exists
    assert expected <= {row["name"] for row in rows}
