"""`custos mail send-pending | status | requeue | purge-dead`: the outbox from the shell
(counts only: no command prints an address or a message's content, except the console
backend's printout of what it "sends" in development)."""

from __future__ import annotations

import click

from api.cli.base import F, Group
from api.cli.output import Progress
from api.cli.runner import run
from api.clock import SystemClock
from api.services import Services

SMTP = (
    "DATABASE_URL",
    "CUSTOS_MAIL_BACKEND",
    "CUSTOS_MAIL_FROM",
    "CUSTOS_SMTP_HOST",
    "CUSTOS_MAIL_CLAIM_BATCH",
    "CUSTOS_CAMPAIGN_BATCH",
    "CUSTOS_CAMPAIGN_PER_SECOND",
    "CUSTOS_PUBLIC_URL",
)


@click.group(
    "mail",
    cls=Group,
    short_help="the outbox: delivery, status, dead messages",
    example="custos mail status",
)
def mail() -> None:
    """The outbox."""


@mail.command(
    "send-pending",
    example="custos mail send-pending",
    env=SMTP,
    short_help="queue owed campaign batches and deliver every message now due",
)
def send_pending_command() -> int:
    """Queue what campaigns still owe, then deliver every message due, until none is."""
    from api.mail.sender import deliver_pending
    from api.marketing.campaigns import queue_campaigns

    async def work(services: Services) -> int:
        await services.load_authorizer()
        total = 0
        async with Progress("mail send-pending", unit="delivered") as progress:
            await queue_campaigns(services=services)
            while delivered := await deliver_pending(
                backend=services.mail, settings=services.settings, clock=services.clock
            ):
                total += delivered
                progress.advance(delivered)
        close_mail = getattr(services.mail, "close", None)
        if close_mail is not None:
            await close_mail()
        click.echo(f"delivered {total} message(s)")
        return 0

    return run(work)


@mail.command(
    "status",
    example="custos mail status",
    short_help="count the outbox's messages by state and kind (no addresses)",
)
def status_command() -> int:
    """Count the outbox's messages by state and kind (no address, no content)."""
    from api.mail.outbox import counts_by_state

    async def work(_: Services) -> int:
        counts = await counts_by_state()
        if not counts:
            click.echo("the outbox is empty")
            return 0
        width = max(len(kind) for _, kind in counts)
        click.echo(f"{'state':<10} {'kind':<{width}} {'count':>8}")
        for (state, kind), n in sorted(counts.items(), key=_in_state_order):
            click.echo(f"{state:<10} {kind:<{width}} {n:>8}")
        totals = {s: sum(n for (state, _), n in counts.items() if state == s) for s in _STATES}
        click.echo("total: " + ", ".join(f"{s} {totals[s]}" for s in _STATES))
        if totals["dead"]:
            click.echo("dead messages keep their content: custos mail requeue sends them again")
        return 0

    return run(work)


_STATES = ("queued", "failed", "dead", "delivered", "expired", "purged")


def _in_state_order(item: tuple[tuple[str, str], int]) -> tuple[int, tuple[str, str]]:
    (state, kind), _ = item
    return (_STATES.index(state) if state in _STATES else len(_STATES), (state, kind))


def _which(command: F) -> F:
    command = click.option("--id", "row_id", type=int, help="only the message with this id")(
        command
    )
    return click.option("--kind", help="only messages of this kind (e.g. campaign)")(command)


@mail.command(
    "requeue",
    example="custos mail requeue --kind campaign",
    short_help="send dead messages again, with a fresh retry budget",
)
@_which
def requeue_command(kind: str | None, row_id: int | None) -> int:
    """Send dead messages again (all, of one --kind, or one --id) with a fresh retry budget."""
    from api.mail.outbox import requeue_dead

    async def work(_: Services) -> int:
        n = await requeue_dead(clock=SystemClock(), kind=kind, row_id=row_id)
        click.echo(f"requeued {n} dead message(s)")
        return 0

    return run(work)


@mail.command(
    "purge-dead",
    example="custos mail purge-dead --kind campaign",
    short_help="erase dead messages' content and address",
)
@_which
def purge_dead_command(kind: str | None, row_id: int | None) -> int:
    """Erase dead messages' content and address (all, of one --kind, or one --id)."""
    from api.mail.outbox import purge_dead

    async def work(_: Services) -> int:
        n = await purge_dead(kind=kind, row_id=row_id)
        click.echo(f"purged {n} dead message(s)")
        return 0

    return run(work)
