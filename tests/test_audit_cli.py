"""`custos audit verify` and `custos audit export`, as an operator runs them."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli_helpers import custos, migrated_file

APPEND = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from api.db import init_db, close_db
from authz.audit import append, AuditRecord

async def main():
    await init_db(sys.argv[1])
    start = datetime(2026, 3, 1, tzinfo=UTC)
    await append([
        AuditRecord(at=start + timedelta(days=i), actor_kind="employee", actor_id=f"e{i}",
                    event="access", decision="deny" if i % 2 else "allow",
                    category="contact.email", action="read", purpose="support",
                    subject_id=f"c{i}")
        for i in range(6)
    ])
    await close_db()

asyncio.run(main())
"""


@pytest.fixture
def audited_db(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    return migrated_file(tmp_path, "audit.sqlite3", APPEND)


IN_RANGES = ["--workers", "2", "--range-rows", "2"]  # three ranges, two worker processes


@pytest.mark.parametrize("ranges", [[], IN_RANGES], ids=["one process", "id ranges"])
def test_verify_passes_on_an_intact_log(
    audited_db: tuple[Path, dict[str, str]], ranges: list[str]
) -> None:
    _, env = audited_db
    done = custos(env, "audit", "verify", *ranges)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "audit log ok: 6 row(s) verified"


@pytest.mark.parametrize("ranges", [[], IN_RANGES], ids=["one process", "id ranges"])
def test_verify_names_the_edited_row(
    audited_db: tuple[Path, dict[str, str]], ranges: list[str]
) -> None:
    # given someone edits the fourth row directly in the database file
    path, env = audited_db
    with sqlite3.connect(path) as db:
        db.execute("UPDATE audit_event SET subject_id = 'someone-else' WHERE id = 4")
    # then verify fails, naming row 4
    done = custos(env, "audit", "verify", *ranges)
    assert done.returncode == 1
    assert "BROKEN at row 4" in done.stderr
    assert "3 row(s) before it are intact" in done.stderr


def test_export_jsonl_within_a_time_range(audited_db: tuple[Path, dict[str, str]]) -> None:
    _, env = audited_db
    done = custos(env, "audit", "export", "--since", "2026-03-02", "--until", "2026-03-05")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["subject_id"] for r in rows] == ["c1", "c2", "c3"]
    assert all(len(r["hash"]) == 64 and len(r["prev_hash"]) == 64 for r in rows)
    assert "exported 3 row(s)" in done.stderr


def test_export_csv_has_a_header_and_every_row(audited_db: tuple[Path, dict[str, str]]) -> None:
    _, env = audited_db
    done = custos(env, "audit", "export", "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) == 6
    assert [r["decision"] for r in rows] == ["allow", "deny"] * 3
    assert rows[0]["prev_hash"] == "0" * 64
