"""`custos audit verify | export`: the decision log's hash chain checked, and the log
written out for auditors' own tools."""

from __future__ import annotations

from datetime import datetime

import click

from api.cli.base import F, Group
from api.cli.chains import report_chain
from api.cli.dates import FORMS
from api.cli.output import FORMATS, Progress, write_rows
from api.cli.params import When
from api.cli.runner import run
from api.services import Services


@click.group("audit", cls=Group, short_help="the decision log", example="custos audit verify")
def audit() -> None:
    """The decision log (every access decision, hash-chained)."""


@audit.command(
    "verify",
    example="custos audit verify",
    short_help="walk the hash chain; exit 1 naming the first broken row",
)
def verify_command() -> int:
    """Walk the decision log's hash chain from the first row: exit 0 when every row is
    intact, 1 naming the first row whose content, link or subject index was altered."""
    from api.observability.metrics import note_audit_verified
    from authz.audit import verify

    async def work(_: Services) -> int:
        async with Progress("audit verify"):
            result = await verify()
        note_audit_verified(result.ok)
        return report_chain("audit log", result)

    return run(work)


def since_until(command: F) -> F:
    """The `--since` and `--until` options of an export (human dates: api/cli/dates.py)."""
    command = click.option("--until", type=When(), help=f"exclusive: {FORMS} (UTC when no offset)")(
        command
    )
    return click.option("--since", type=When(), help=f"inclusive: {FORMS}")(command)


def format_option(command: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default="jsonl",
        show_default=True,
        help="JSON Lines, or CSV with a header (lists joined with ';')",
    )(command)


@audit.command(
    "export",
    example="custos audit export --since 7d --format csv",
    short_help="write the log as JSON Lines or CSV to stdout",
)
@format_option
@since_until
def export_command(fmt: str, since: datetime | None, until: datetime | None) -> int:
    """Write the decision log in chain order, with each row's hashes and every field they
    cover, to stdout (the number of rows to stderr)."""
    from authz.audit import export_rows

    async def work(_: Services) -> int:
        return await write_rows(export_rows(since=since, until=until), fmt=fmt, label="export")

    return run(work)
