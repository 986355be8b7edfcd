"""`custos retention run | rules`: purging what has been kept long enough."""

from __future__ import annotations

import click

from api.cli.base import Group
from api.cli.output import Progress
from api.cli.params import Positive
from api.cli.runner import run
from api.services import Services


@click.group(
    "retention",
    cls=Group,
    short_help="retention rules and purges",
    example="custos retention run --dry-run",
)
def retention() -> None:
    """Retention rules and purges."""


@retention.command(
    "run",
    example="custos retention run --dry-run",
    env=("DATABASE_URL", "CUSTOS_RETENTION_BATCH"),
    short_help="purge what the retention rules say has expired",
)
@click.option("--dry-run", is_flag=True, help="print what would go; change nothing")
@click.option(
    "--batch",
    type=Positive(),
    help="rows per transaction (default CUSTOS_RETENTION_BATCH)",
)
def run_command(dry_run: bool, batch: int | None) -> int:
    """Purge what the retention rules say has been kept long enough (or, with --dry-run,
    say what would go): one line per target, counts only."""
    from api.retention.purge import run_retention

    async def work(services: Services) -> int:
        async with Progress("retention run"):
            summaries = await run_retention(services=services, dry_run=dry_run, batch=batch)
        if not summaries and not dry_run:
            click.echo("another retention run is in progress; nothing done", err=True)
        for summary in summaries:
            click.echo(summary.line)
            for customer_id in summary.listed:
                click.echo(f"  {customer_id}")
        return 0

    return run(work)


@retention.command("rules", example="custos retention rules", short_help="list the retention rules")
def rules_command() -> int:
    """List the retention rules in force: category, anchor, period, who set it and when."""
    from api.retention.rules import list_rules

    async def work(_: Services) -> int:
        for rule in await list_rules():
            who = f"set by {rule.updated_by}" if rule.updated_by else "default"
            when = f"{rule.updated_at:%Y-%m-%d}"
            click.echo(f"{rule.category} after {rule.anchor}: {rule.period} ({who}, {when})")
        return 0

    return run(work)
