"""`custos migrate` and `custos seed-demo`: a database made ready, and demo data in it."""

from __future__ import annotations

import asyncio

import click

from api.cli.base import Command
from api.cli.runner import load_settings, with_db
from api.db import ensure_migrated, migrate, sqlite_file
from api.services import Services


@click.command(
    "migrate",
    cls=Command,
    example="custos migrate",
    short_help="apply database migrations",
)
def migrate_command() -> int:
    """Apply the database migrations not yet applied, and seed what an empty database
    needs (the access policy, the first privacy policy version, the retention rules).

    A SQLite file that does not exist is created, with its directory."""
    settings = load_settings()
    if (file := sqlite_file(settings.database_url)) is not None:
        file.parent.mkdir(parents=True, exist_ok=True)

    async def work(_: Services) -> int:
        applied = await migrate(settings.database_url)
        names = f": {', '.join(applied)}" if applied else ""
        click.echo(f"applied {len(applied)} migration(s){names}")
        return 0

    return asyncio.run(with_db(settings, work, create=True))


@click.command(
    "seed-demo",
    cls=Command,
    example="custos seed-demo",
    env=("DATABASE_URL", "CUSTOS_ENV", "CUSTOS_ARGON2_TIME_COST"),
    short_help="add demo customers and employees (development)",
)
def seed_demo_command() -> int:
    """Add demo customers, one employee per role, and demo processors; print the demo
    password and the accounts. Running it again adds nothing. Refused in production."""
    from api.demo import seed_demo

    settings = load_settings()
    if settings.production:
        click.echo("custos: seed-demo is for development only", err=True)
        return 2

    async def work(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        for line in await seed_demo(services=services):
            click.echo(line)
        return 0

    return asyncio.run(with_db(settings, work))
