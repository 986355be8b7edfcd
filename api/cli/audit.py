"""`custos audit verify | checkpoint | rotate-key | export`: the decision log checked
against checkpoints held outside the database, checkpoints signed, keys rotated, and the
log written out for auditors' own tools (and `witness`, api/cli/witness.py)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import click

from api.cli.base import F, Group
from api.cli.chains import report_chain
from api.cli.dates import FORMS
from api.cli.output import FORMATS, Progress, write_rows
from api.cli.params import When
from api.cli.runner import run
from api.services import Services
from authz.log_verify import RANGE_ROWS


@click.group("audit", cls=Group, short_help="the decision log", example="custos audit verify")
def audit() -> None:
    """The decision log (every access decision, hash-chained)."""


@audit.command(
    "verify",
    example='custos audit verify --checkpoint saved-checkpoint --log-key "$(cat log.vkey)"',
    short_help="check every row, the tree and the checkpoints; exit 1 naming what broke",
)
@click.option(
    "--checkpoint",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a checkpoint kept outside the database (repeatable)",
)
@click.option(
    "--log-key",
    "vkeys",
    multiple=True,
    help="the log's public key (vkey) to check checkpoints with; default: the keys the "
    "database publishes (repeatable)",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="processes checking id ranges side by side; default: one per core",
)
@click.option(
    "--range-rows",
    type=click.IntRange(1),
    default=RANGE_ROWS,
    show_default=True,
    help="rows per range a worker checks (a smaller log is walked in one process)",
)
def verify_command(
    files: tuple[Path, ...], vkeys: tuple[str, ...], workers: int | None, range_rows: int
) -> int:
    """Walk the decision log once: every row against its chain link, its hash, its subject
    index and its leaf; the tree's root against every checkpoint the log signed and every
    --checkpoint file. Exit 0 when all hold; 1 naming the broken row, or the attack:
    truncated, rewritten, inconsistent, or a checkpoint the log's keys did not sign. A log
    larger than --range-rows is checked in id ranges by --workers processes at once."""
    from api.observability.metrics import note_audit_verified
    from authz.log_verify import NoteError, open_held, published_verifiers, verify_log
    from verifier.note import parse_vkey

    async def work(services: Services) -> int:
        try:
            keys = [parse_vkey(v) for v in vkeys] or await published_verifiers()
            held = [open_held(str(f), f.read_bytes(), keys) for f in files]
        except NoteError as exc:
            click.echo(f"audit log NOT VERIFIED (signature): {exc}", err=True)
            return 1
        async with Progress("audit verify"):
            result = await verify_log(
                held,
                workers=workers or len(os.sched_getaffinity(0)),
                database_url=services.settings.database_url,
                range_rows=range_rows,
            )
        note_audit_verified(result.ok)
        if result.ok or result.kind == "edited":
            return report_chain("audit log", result)
        click.echo(f"audit log NOT VERIFIED ({result.kind}): {result.problem}", err=True)
        return 1

    return run(work)


@audit.command(
    "checkpoint",
    example="custos audit checkpoint > checkpoint-$(date +%F)",
    short_help="bring every row into the tree and sign a checkpoint now",
)
def checkpoint_command() -> int:
    """Sign a checkpoint of the whole log now and print it (a C2SP signed note), as servers
    do on their own every CUSTOS_AUDIT_CHECKPOINT_SECONDS. Keep the output somewhere the
    database's administrators cannot write: `audit verify --checkpoint` checks the log
    against it later."""
    from api.audit.log_config import log_config
    from authz.checkpoints import CheckpointRefused, sign

    async def work(services: Services) -> int:
        try:
            row = await sign(log_config(services.settings), services.clock.now(), force=True)
        except CheckpointRefused as exc:
            click.echo(f"custos: checkpoint refused: {exc}", err=True)
            return 1
        click.echo(row.note, nl=False)
        return 0

    return run(work)


@audit.command(
    "follow",
    example="CUSTOS_AUDIT_INTEGRATE_SECONDS=0 custos serve & custos audit follow",
    short_help="bring new rows into the tree and sign checkpoints, until stopped",
)
@click.option(
    "--every",
    type=click.FloatRange(0.05, 3600),
    default=1.0,
    show_default=True,
    help="seconds between two passes over the new rows",
)
def follow_command(every: float) -> int:
    """The log's background work in a process of its own: every --every seconds, bring the
    rows written since into the Merkle tree, and sign a checkpoint when the last one is
    CUSTOS_AUDIT_CHECKPOINT_SECONDS old, as each server does by itself unless
    CUSTOS_AUDIT_INTEGRATE_SECONDS=0. Run one (or more: they take turns) beside servers
    started with CUSTOS_AUDIT_INTEGRATE_SECONDS=0, and the servers spend no CPU on the
    tree. Stops at SIGTERM or SIGINT (exit 0); a pass cut short by a kill is rolled back
    and done again by the next."""
    from api.audit.follow import follow

    async def work(services: Services) -> int:
        await follow(services, every)
        return 0

    return run(work)


@audit.command(
    "rotate-key",
    example="custos audit rotate-key",
    short_help="make a new checkpoint signing key and retire the one in use",
)
def rotate_key_command() -> int:
    """Make a new signing key (its private part a file in CUSTOS_AUDIT_KEY_DIR), retire the
    one in use, and print the new key's vkey. Old checkpoints stay verifiable with the
    retired key, which /.well-known/custos/log-keys keeps publishing with its period."""
    from api.audit.log_config import log_config
    from authz.log_keys import rotate

    async def work(services: Services) -> int:
        config = log_config(services.settings)
        key = await rotate(config.origin, config.key_dir, services.clock.now())
        click.echo(key.vkey)
        return 0

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
    cover, and its place in the tree (leaf_index, salt), to stdout (the number of rows to
    stderr). `python -m verifier check-export` checks it against a checkpoint."""
    from authz.audit import export_rows
    from authz.log_tree import integrate

    async def work(_: Services) -> int:
        await integrate()  # every row written so far gets its leaf index and salt
        return await write_rows(export_rows(since=since, until=until), fmt=fmt, label="export")

    return run(work)
