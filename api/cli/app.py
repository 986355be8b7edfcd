"""The root of the `custos` command: its groups and commands, `--version`, and the
environment every command reads from (api/settings.py; docs/CLI.md)."""

from __future__ import annotations

import click

from api.cli.audit import audit
from api.cli.base import Group
from api.cli.database import migrate_command, seed_demo_command
from api.cli.disclosures import disclosures
from api.cli.employees import (
    create_employee_command,
    deactivate_employee_command,
    employees,
)
from api.cli.mail import mail
from api.cli.policy import policy
from api.cli.register import processing_record_command
from api.cli.retention import retention
from api.cli.rights import rights
from api.cli.server import export_schema_command, serve_command
from api.cli.witness import witness_command  # noqa: F401 (registers `audit witness`)
from api.version import VERSION


@click.group(
    "custos",
    cls=Group,
    example="custos audit export --since 7d --format csv | head",
    env=("DATABASE_URL", "CUSTOS_ENV"),
)
@click.version_option(VERSION, "--version", prog_name="custos", message="%(prog)s %(version)s")
def custos() -> None:
    """Custos: the GraphQL backend that enforces a shop's privacy policy. Commands to serve
    it, migrate its database and operate it (audit, rights, mail, retention, disclosures).

    Dates and times (--since, --until) are an ISO date (2026-11-01), an ISO time
    (2026-11-01T09:30:00+01:00; UTC when no offset), or a span before now (30m, 12h, 7d,
    2w). Every CUSTOS_* setting of api/settings.py is read from the environment; each
    command's help names those it depends on."""


for command in (
    serve_command,
    migrate_command,
    seed_demo_command,
    create_employee_command,
    deactivate_employee_command,
    employees,
    audit,
    policy,
    rights,
    mail,
    retention,
    disclosures,
    processing_record_command,
    export_schema_command,
):
    custos.add_command(command)
