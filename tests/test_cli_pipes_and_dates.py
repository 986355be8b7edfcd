"""The `custos` command as a shell user meets it (issue 17, point 4): human dates
(`--since 7d`), a closed pipe that ends quietly (`custos audit export | head -1`), plain
CSV cells, progress on stderr only on a terminal, and one line (no empty file left
behind) when the database file does not exist. Processes run against the suite's
database (SQLite or PostgreSQL), or a file of the test's own where the file matters."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from uuid import UUID

import click
import pytest

from api.cli.dates import parse_when
from api.cli.output import Progress, csv_value
from api.cli.params import When
from api.sharing import ledger
from authz.audit import AuditRecord, append
from tests.cli_helpers import REPO, custos, pipeline

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    """A `custos` process's environment: the suite's database."""
    return dict(os.environ, DATABASE_URL=database_url, CUSTOS_MAIL_POLL_SECONDS="0")


async def _audit_rows(*moments: datetime) -> None:
    await append(
        [
            AuditRecord(
                at=at,
                actor_kind="employee",
                actor_id=f"e{n}",
                event="access",
                decision="allow",
                category="contact.email",
                action="read",
                purpose="support",
                subject_id=f"c{n}",
            )
            for n, at in enumerate(moments)
        ]
    )


# --- human dates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("12h", NOW - timedelta(hours=12)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T09:30:00", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:00Z", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        (
            "2026-11-01T09:30:00+01:00",
            datetime(2026, 11, 1, 9, 30, tzinfo=timezone(timedelta(hours=1))),
        ),
    ],
)
def test_a_date_is_an_iso_date_an_iso_time_or_a_span_before_now(
    text: str, expected: datetime
) -> None:
    parsed = parse_when(text, now=NOW)
    assert parsed == expected
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("text", ["yesterday", "7", "7y", "-7d", "7 days", "", "2026-13-01"])
def test_anything_else_is_refused_naming_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"use 2026-11-01, .* 7d"):
        parse_when(text, now=NOW)
    with pytest.raises(ValueError, match="too long ago"):
        parse_when("999999w", now=NOW)


def test_the_option_type_uses_its_clock_and_fails_as_a_usage_error() -> None:
    when = When(now=lambda: NOW)
    assert when.convert("7d", None, None) == NOW - timedelta(days=7)
    with pytest.raises(click.BadParameter, match="not a date or time"):
        when.convert("soon", None, None)


@pytest.mark.parametrize("command", [["audit", "export"], ["disclosures", "export"]])
def test_a_bad_date_is_a_one_line_usage_error(
    command: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(env, DATABASE_URL=f"sqlite://{tmp_path / 'never.sqlite3'}")
    done = custos(env, *command, "--since", "last tuesday")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"custos {' '.join(command)}: Invalid value for '--since': ")
    assert "'last tuesday' is not a date or time" in line
    assert not (tmp_path / "never.sqlite3").exists()


async def test_since_7d_exports_the_last_seven_days(env: dict[str, str]) -> None:
    now = datetime.now(UTC)
    await _audit_rows(now - timedelta(days=10), now - timedelta(days=3), now - timedelta(hours=1))
    done = custos(env, "audit", "export", "--since", "7d")
    assert done.returncode == 0, done.stderr
    assert [line.count('"subject_id":"c') for line in done.stdout.splitlines()] == [1, 1]
    assert '"subject_id":"c1"' in done.stdout
    assert '"subject_id":"c2"' in done.stdout
    assert done.stderr == "exported 2 row(s)\n"
    # and --until with a span: only what is older than two days
    done = custos(env, "audit", "export", "--since", "2w", "--until", "2d")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 2
    assert '"subject_id":"c2"' not in done.stdout


# --- pipes ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_a_closed_pipe_ends_the_export_quietly(env: dict[str, str], fmt: str) -> None:
    # given far more rows than a pipe holds (a few MB)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    await _audit_rows(*(start + timedelta(seconds=n) for n in range(6000)))
    # when the reader stops after the first line
    done = pipeline(env, f"custos audit export --format {fmt} | head -1")
    # then custos exits 0 too (pipefail), with nothing on stderr (no traceback, no count)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    [first] = done.stdout.splitlines()
    assert first.startswith("id,action," if fmt == "csv" else '{"id":')


# --- CSV cells ------------------------------------------------------------------------


def test_csv_cells_hold_plain_values() -> None:
    assert csv_value(["contact.email", "contact.phone"]) == "contact.email;contact.phone"
    assert csv_value(()) == ""
    assert csv_value(None) == ""
    assert csv_value(datetime(2026, 3, 1, 9, 30, tzinfo=UTC)) == "2026-03-01T09:30:00+00:00"
    assert csv_value(True) == "true"
    assert csv_value(7) == "7"
    assert csv_value("a,b") == "a,b"  # the csv module quotes it


async def test_disclosures_csv_joins_categories_and_leaves_none_empty(
    env: dict[str, str],
) -> None:
    await ledger.append(
        [
            ledger.Entry(
                at=datetime(2026, 3, 1, tzinfo=UTC),
                customer_id=UUID(int=1),
                recipient="HMRC",
                categories=["contact.email", "contact.phone"],
                legal_basis="legal_obligation",
                recorded_by=UUID(int=99),
                reference="REF-1",
            )
        ]
    )
    done = custos(env, "disclosures", "export", "--format", "csv")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert cells["categories"] == "contact.email;contact.phone"
    assert cells["processor_id"] == ""
    assert cells["nondisclosure_until"] == ""
    assert cells["at"] == "2026-03-01T00:00:00.000000+00:00"
    # JSON Lines keep the list
    jsonl = custos(env, "disclosures", "export")
    assert '"categories":["contact.email","contact.phone"]' in jsonl.stdout


# --- progress -------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_progress_draws_on_a_terminal_and_erases_itself() -> None:
    stream = _Terminal()
    async with Progress("export", unit="row(s)", stream=stream, interval=0) as progress:
        progress.advance(3)
    text = stream.getvalue()
    assert "\rexport: 3 row(s) (0 s)" in text.replace("\x1b[K", "")
    assert text.endswith("\r\x1b[K")


async def test_progress_writes_nothing_elsewhere() -> None:
    stream = io.StringIO()
    async with Progress("export", unit="row(s)", stream=stream, interval=0) as progress:
        progress.advance(3)
    assert stream.getvalue() == ""


def _with_terminal_stderr(
    env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[bytes], str]:
    """`custos ARGS` with stdout a pipe and stderr a terminal: the process, and what the
    terminal showed."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "api", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            timeout=60,
            check=False,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other end is closed: all was read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    return process, shown.decode()


async def test_an_export_shows_progress_on_a_terminal_and_the_same_rows(
    env: dict[str, str],
) -> None:
    await _audit_rows(*(datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=n) for n in range(5)))
    piped = custos(env, "audit", "export", "--format", "csv")
    assert piped.stderr == "exported 5 row(s)\n"  # no progress when stderr is not a terminal
    process, shown = _with_terminal_stderr(env, "audit", "export", "--format", "csv")
    assert process.returncode == 0
    assert process.stdout.decode().splitlines() == piped.stdout.splitlines()
    assert "export: 0 row(s)" in shown
    assert "exported 5 row(s)" in shown


# --- no database file -----------------------------------------------------------------

NEEDS_A_DATABASE = [
    ["audit", "verify"],
    ["audit", "export", "--since", "7d"],
    ["employees", "list"],
    ["deactivate-employee", "--email", "ann@example.com"],
    ["rights", "overdue"],
    ["mail", "status"],
    ["mail", "send-pending"],
    ["retention", "rules"],
    ["retention", "run", "--dry-run"],
    ["disclosures", "export"],
    ["policy", "test"],
    ["policy", "send-notices"],
    ["processing-record"],
    ["seed-demo"],
]


@pytest.mark.parametrize("args", NEEDS_A_DATABASE, ids=" ".join)
def test_a_missing_sqlite_file_is_one_line_and_stays_missing(
    args: list[str], env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(env, DATABASE_URL=f"sqlite://{tmp_path / 'custos.sqlite3'}")
    done = custos(env, *args)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f'custos: no database at {tmp_path / "custos.sqlite3"}; run "custos migrate" '
        '(or "make run") first\n'
    )
    assert list(tmp_path.iterdir()) == []


def test_the_default_database_is_relative_to_the_current_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CUSTOS_DATABASE_URL"}}
    env["PYTHONPATH"] = str(REPO)
    run = [sys.executable, "-m", "api"]
    # a command before any migrate: one line naming the default file, nothing created
    done = subprocess.run(
        [*run, "rights", "overdue"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.startswith("custos: no database at data/custos.sqlite3; ")
    assert list(tmp_path.iterdir()) == []
    # migrate makes the directory and the file; then the command works
    done = subprocess.run([*run, "migrate"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "custos.sqlite3").is_file()
    done = subprocess.run(
        [*run, "rights", "overdue"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "0 overdue request(s)\n")
