"""`custos rights overdue | intake`: data-subject rights requests from the shell."""

from __future__ import annotations

import click

from api.cli.base import Group
from api.cli.runner import run
from api.services import Services


@click.group(
    "rights",
    cls=Group,
    short_help="data-subject rights requests",
    example="custos rights overdue --fail",
)
def rights() -> None:
    """Data-subject rights requests."""


@rights.command(
    "overdue",
    example="custos rights overdue --fail",
    short_help="list requests past their due date",
)
@click.option("--fail", is_flag=True, help="exit 1 when any is overdue (for monitoring)")
def overdue_command(fail: bool) -> int:
    """List received, unanswered requests past their due date: id, kind, status, due
    date and days late, tab-separated (ids and dates only); the count to stderr."""
    from api.rights.lifecycle import overdue

    async def work(services: Services) -> int:
        now = services.clock.now()
        late = await overdue(now=now)
        for r in late:
            days = (now - r.due_at).days if r.due_at else 0
            click.echo(f"{r.id}\t{r.kind}\t{r.status}\tdue {r.due_at:%Y-%m-%d}\t{days} day(s) late")
        click.echo(f"{len(late)} overdue request(s)", err=True)
        return 1 if late and fail else 0

    return run(work)


@rights.command(
    "intake",
    example="custos rights intake",
    env=("DATABASE_URL", "CUSTOS_PUBLIC_URL"),
    short_help="handle the requests by email address waiting in the queue now",
)
def intake_command() -> int:
    """Handle the requests made by email address waiting in the intake queue, until none
    is due (what every server's intake loop does; for deployments running no server)."""
    from api.rights.intake import handle_deferred

    async def work(services: Services) -> int:
        total = 0
        while handled := await handle_deferred(services=services):
            total += handled
        click.echo(f"handled {total} request(s) by email address")
        return 0

    return run(work)
