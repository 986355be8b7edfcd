"""`custos disclosures verify | export`: the disclosure ledger (what was handed to whom,
on which legal basis), checked and written out without legal's notes."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import click

from api.cli.audit import format_option, since_until
from api.cli.base import Group
from api.cli.chains import report_chain
from api.cli.output import Progress, write_rows
from api.cli.runner import run
from api.services import Services


@click.group(
    "disclosures",
    cls=Group,
    short_help="the disclosure ledger",
    example="custos disclosures verify",
)
def disclosures() -> None:
    """The disclosure ledger."""


@disclosures.command(
    "verify",
    example="custos disclosures verify",
    short_help="walk the ledger's hash chain; exit 1 naming the first broken row",
)
def verify_command() -> int:
    """Walk the ledger's hash chain: exit 0 when intact, 1 naming the first altered row."""
    from api.sharing.ledger import verify

    async def work(_: Services) -> int:
        async with Progress("disclosures verify"):
            result = await verify()
        return report_chain("disclosure ledger", result)

    return run(work)


@disclosures.command(
    "export",
    example="custos disclosures export --since 2w --format csv",
    short_help="write the ledger (without legal's notes) as JSON Lines or CSV",
)
@format_option
@click.option("--customer", type=click.UUID, help="one customer's disclosures (their id)")
@since_until
def export_command(
    fmt: str, customer: UUID | None, since: datetime | None, until: datetime | None
) -> int:
    """Write the ledger in chain order, without legal's notes, to stdout (the number of
    rows to stderr); in CSV the categories column reads `contact.email;contact.phone`."""
    from api.sharing.ledger import LedgerFilter, export_rows

    where = LedgerFilter(customer_id=customer, since=since, until=until)

    async def work(_: Services) -> int:
        return await write_rows(export_rows(where=where), fmt=fmt, label="export")

    return run(work)
