"""The click classes every `custos` command is made of. Each command names an example and
the environment variables it reads; its `--help` ends with both (tests/test_cli_help.py
walks every command). A reader of stdout that goes away ends a command quietly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from api.cli.output import PipeClosed

F = TypeVar("F", bound=Callable[..., Any])
"""A command's function, as option decorators shared by several commands take it."""

# What each environment variable a command reads is for (the settings are in
# api/settings.py: CUSTOS_ and the field's name in capitals; docs/CLI.md lists them).
ENVIRONMENT = {
    "DATABASE_URL": "the database (default sqlite://data/custos.sqlite3, from here)",
    "CUSTOS_ENV": "development (default) or production",
    "CUSTOS_SECRET_KEY": "signs tokens and links (required in production)",
    "CUSTOS_PUBLIC_URL": "the address in links that mail carries",
    "CUSTOS_LOG_FORMAT": "json or text log lines",
    "CUSTOS_MAIL_BACKEND": "console (development default) or smtp",
    "CUSTOS_MAIL_FROM": "the sender of every message",
    "CUSTOS_SMTP_HOST": "the SMTP server (with CUSTOS_SMTP_PORT, _USERNAME, ...)",
    "CUSTOS_MAIL_CLAIM_BATCH": "messages claimed per delivery batch",
    "CUSTOS_CAMPAIGN_BATCH": "customers considered per campaign batch",
    "CUSTOS_CAMPAIGN_PER_SECOND": "campaign messages scheduled per second",
    "CUSTOS_POLICY_NOTICE_BATCH": "notices queued per transaction",
    "CUSTOS_POLICY_WHAT_IF_DAYS": "days of the log replayed without --days",
    "CUSTOS_RETENTION_BATCH": "rows purged per transaction without --batch",
    "CUSTOS_ARGON2_TIME_COST": "password hashing cost (with _MEMORY_KIB, _PARALLELISM)",
}


def epilog(example: str, env: Sequence[str]) -> str:
    """The end of a command's help: what it reads from the environment, and an example.
    `\\b` keeps click from rewrapping these paragraphs."""
    if env:
        width = max(len(name) for name in env)
        reads = "\n".join(f"  {name:<{width}}  {ENVIRONMENT[name]}" for name in env)
        environment = f"\b\nEnvironment:\n{reads}"
    else:
        environment = "\b\nEnvironment: none read."
    return f"{environment}\n\n\b\nExample:\n  $ {example}"


class Command(click.Command):
    """A command with `example` and `env` (names in ENVIRONMENT) shown in its help."""

    def __init__(
        self, *args: Any, example: str, env: Sequence[str] = ("DATABASE_URL",), **kwargs: Any
    ) -> None:
        kwargs.setdefault("epilog", epilog(example, env))
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(*args, **kwargs)
        self.example, self.env = example, tuple(env)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise PipeClosed from None


class Group(click.Group):
    """A group of commands (its subgroups and commands are of these classes too)."""

    command_class = Command
    group_class = type

    def __init__(
        self, *args: Any, example: str, env: Sequence[str] = ("DATABASE_URL",), **kwargs: Any
    ) -> None:
        kwargs.setdefault("epilog", epilog(example, env))
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(*args, **kwargs)
        self.example, self.env = example, tuple(env)
