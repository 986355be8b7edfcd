"""Database wiring: one Tortoise config for the app, the CLI and the tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget

APP_LABEL = "models"


class DatabaseNotMigrated(RuntimeError):
    """The database lacks migrations the code needs; `custos migrate` applies them."""


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
        "apps": {
            APP_LABEL: {
                "models": ["models"],
                "migrations": "models.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(database_url: str) -> None:
    """Connect Tortoise globally (visible from every task of this process)."""
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()


def _executor(database_url: str) -> MigrationExecutor:
    apps = tortoise_config(database_url)["apps"]
    return MigrationExecutor(get_connection("default"), apps)


async def pending_migrations(database_url: str) -> list[str]:
    """Names of migrations not yet applied (the connection must be initialised)."""
    plan = await _executor(database_url).plan([MigrationTarget(APP_LABEL, "__latest__")])
    return [step.migration.name for step in plan if not step.backward]


async def migrate(database_url: str, *, now: datetime | None = None) -> list[str]:
    """Apply every pending migration, seed the default access policy into an empty policy
    table, the first privacy policy version (in effect from `now`, default the current
    time) into an empty version table and the missing default retention rules; returns the
    names of the migrations applied."""
    from api.policy.service import seed_first_version
    from api.retention.rules import seed_default_rules
    from authz.seed import seed_policy

    pending = await pending_migrations(database_url)
    if pending:
        await _executor(database_url).migrate([MigrationTarget(APP_LABEL, "__latest__")])
    await seed_policy()
    await seed_first_version(now=now or datetime.now(UTC))
    await seed_default_rules(now=now or datetime.now(UTC))
    return pending


async def ensure_migrated(database_url: str) -> None:
    pending = await pending_migrations(database_url)
    if pending:
        raise DatabaseNotMigrated(
            f"the database is not migrated ({len(pending)} pending: {', '.join(pending)}); "
            "run `custos migrate` first"
        )


# For `tortoise -c api.db.MIGRATIONS_CONFIG makemigrations` (see `make migrations`).
MIGRATIONS_CONFIG = tortoise_config("sqlite://:memory:")
