"""`custos processing-record`: the Article 30 record of processing activities."""

from __future__ import annotations

import json
import sys

import click

from api.cli.base import Command
from api.cli.runner import run
from api.services import Services


@click.command(
    "processing-record",
    cls=Command,
    example="custos processing-record > record.json",
    short_help="write the Article 30 record of processing as JSON",
)
def processing_record_command() -> int:
    """Write the record of processing activities (GDPR Article 30) as JSON to stdout:
    purposes, categories, recipients, transfers and retention, from the database."""
    from api.register.record import processing_record

    async def work(services: Services) -> int:
        await services.load_authorizer()
        record = await processing_record(services=services)
        sys.stdout.write(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        return 0

    return run(work)
