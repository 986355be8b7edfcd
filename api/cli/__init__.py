"""The `custos` command (also `python -m api`), on click: api/cli/app.py holds the root
group, one module per group of commands. `main` runs it and turns what goes wrong into
one line on stderr and an exit status:

- 0 when a reader of stdout went away (`custos audit export | head -1`);
- 1 for invalid settings, or no SQLite file where the database should be;
- 2 for a usage error (a bad option or date) or a database that is not migrated;
- 3 when the database cannot be opened, reached or written."""

from __future__ import annotations

import sys

import click

from api.cli.app import custos
from api.cli.output import PipeClosed, silence_stdout
from api.cli.runner import NoDatabase
from api.db import DatabaseNotMigrated, unavailable_reason

EXIT_UNAVAILABLE = 3
"""The exit status of a command that found the database unavailable (cannot be opened,
reached or written): the sysexits tradition would say 69; 2 is for usage and state."""

__all__ = ["EXIT_UNAVAILABLE", "custos", "main"]


def _usage_error(exc: click.UsageError) -> int:
    """One line naming the command and what is wrong (click's own shows three)."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # `custos audit` alone
        exc.show()
        return exc.exit_code
    where = exc.ctx.command_path if exc.ctx is not None else "custos"
    message = exc.format_message().rstrip(".")
    click.echo(f'{where}: {message} (see "{where} --help")', err=True)
    return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    try:
        result = custos.main(
            args=sys.argv[1:] if argv is None else argv, prog_name="custos", standalone_mode=False
        )
    except PipeClosed:
        silence_stdout()
        return 0
    except click.UsageError as exc:
        return _usage_error(exc)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("custos: aborted", err=True)
        return 1
    except NoDatabase as exc:
        click.echo(f"custos: {exc}", err=True)
        return 1
    except DatabaseNotMigrated as exc:
        click.echo(f"custos: {exc}", err=True)
        return 2
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason is None:
            raise
        click.echo(f"custos: database unavailable: {reason}", err=True)
        return EXIT_UNAVAILABLE
    return result if isinstance(result, int) else 0
