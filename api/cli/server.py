"""`custos serve` and `custos export-schema`: the API over HTTP, and its schema as SDL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from api.cli.base import Command
from api.cli.runner import load_settings, with_db
from api.db import DatabaseNotMigrated, ensure_migrated
from api.services import Services
from api.settings import Settings
from authz.enforcer import EnforcementDisabled

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def log_config(settings: Settings, log_level: str) -> dict[str, Any]:
    """The one place where `custos serve` chooses uvicorn's logging (issue 17, point 3):
    the configuration of api/observability/logging_setup.py (JSON or text lines,
    CUSTOS_LOG_FORMAT), which uvicorn applies in every worker it starts."""
    from api.observability.logging_setup import uvicorn_log_config

    return uvicorn_log_config(settings, log_level)


@click.command(
    "serve",
    cls=Command,
    example="custos serve --host 127.0.0.1 --port 8000",
    env=(
        "DATABASE_URL",
        "CUSTOS_ENV",
        "CUSTOS_SECRET_KEY",
        "CUSTOS_PUBLIC_URL",
        "CUSTOS_LOG_FORMAT",
    ),
    short_help="serve the API with uvicorn",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True, help="worker processes")
@click.option("--proxy-headers", is_flag=True, help="trust X-Forwarded-For")
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
)
def serve_command(host: str, port: int, workers: int, proxy_headers: bool, log_level: str) -> int:
    """Serve the GraphQL API (/graphql) and its health checks with uvicorn. Refuses to
    start (exit 2) on a database that is not migrated or has no access policy.

    Every other CUSTOS_* setting of api/settings.py applies too (docs/CLI.md)."""
    import uvicorn

    settings = load_settings()

    async def check(services: Services) -> int:
        await ensure_migrated(settings.database_url)
        await services.load_authorizer()
        return 0

    try:
        asyncio.run(with_db(settings, check, create=True))
    except (DatabaseNotMigrated, EnforcementDisabled) as exc:
        click.echo(f"custos: refusing to start: {exc}", err=True)
        return 2
    # on stderr with the server's own log, so stdout never mixes plain text into JSON logs
    click.echo(f"Custos ({settings.env}) on http://{host}:{port}/graphql", err=True)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=proxy_headers,
        log_level=log_level.lower(),
        log_config=log_config(settings, log_level.lower()),  # the logging hook, above
        server_header=False,  # no banner naming the server and its version
    )
    return 0


@click.command(
    "export-schema",
    cls=Command,
    example="custos export-schema --output schema.graphql",
    env=(),
    short_help="write the GraphQL schema (SDL)",
)
@click.option("--output", default="schema.graphql", show_default=True, help="the file to write")
def export_schema_command(output: str) -> int:
    """Write the GraphQL schema as SDL (the committed schema.graphql); no database needed."""
    from api.schema import schema_sdl

    Path(output).write_text(schema_sdl(), encoding="utf-8")
    click.echo(f"wrote {output}")
    return 0
