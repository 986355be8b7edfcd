"""Migration 0020 rebuilds `audit_subject` keyed by (event_id, subject_id): the links a
database already holds survive it, a link listed twice is kept once, and the new table
refuses a second copy of a link (and, on PostgreSQL, any change). Migration 0023 turns the
links of rows in the tree into posting lists (`audit_posting`), one per subject and block
of 1,024 ids, read back through the `audit_subject` view; the links of rows not yet in the
tree are left to the follower. Run on a database of its own (a file, or a new PostgreSQL
database beside the suite's), migrated to 0019 first."""

from __future__ import annotations

from tests.migration_helpers import run_script

MIGRATE_ACROSS = """
import asyncio, json, sys
from tortoise.connection import get_connection
from tortoise.migrations.executor import MigrationTarget
from api.db import APP_LABEL, _executor, close_db, init_db, migrate

url = sys.argv[1]
AT = ("2026-01-02 03:04:05.000006+00:00", "2026-01-02 03:04:06+00:00")

async def refused(conn, sql):
    try:
        await conn.execute_script(sql)
    except Exception as exc:
        return type(exc).__name__
    return None

async def main():
    await init_db(url)
    try:
        await _executor(url).migrate([MigrationTarget(APP_LABEL, "0019_recipient_notices")])
        conn = get_connection("default")
        postgres = conn.capabilities.dialect == "postgres"
        stamp = "::timestamptz" if postgres else ""
        await conn.execute_script(
            "INSERT INTO audit_subject (event_id, subject_id, at) VALUES "
            f"(7, 'c-2', '{AT[0]}'{stamp}), (7, 'c-1', '{AT[0]}'{stamp}), "
            f"(7, 'c-2', '{AT[0]}'{stamp}), (9, 'c-1', '{AT[1]}'{stamp})"
        )
        await _executor(url).migrate([MigrationTarget(APP_LABEL, "0022_customer_fact")])
        rows = await conn.execute_query_dict(
            "SELECT event_id, subject_id FROM audit_subject ORDER BY event_id, subject_id"
        )
        by_subject = await conn.execute_query_dict(
            "SELECT event_id FROM audit_subject WHERE subject_id = 'c-1' ORDER BY at"
        )
        again = f"(9, 'c-1', '{AT[1]}'{stamp})"
        twice = await refused(
            conn, f"INSERT INTO audit_subject (event_id, subject_id, at) VALUES {again}"
        )
        changed = "n/a"
        if postgres:
            changed = await refused(conn, "UPDATE audit_subject SET subject_id = 'c-9'")
        # rows 7 and 1030 in the tree, 9 not yet
        await conn.execute_script(
            f"INSERT INTO audit_subject (event_id, subject_id, at) VALUES "
            f"(1030, 'c-1', '{AT[1]}'{stamp});"
            "INSERT INTO audit_leaf (idx, event_id, salt, hash) VALUES "
            "(0, 7, 'aa', 'bb'), (1, 1030, 'aa', 'cc')"
        )
        applied = await migrate(url)
        lists = await conn.execute_query_dict(
            "SELECT subject_id, first_id, block, event_ids FROM audit_posting "
            "ORDER BY subject_id, first_id"
        )
        viewed = await conn.execute_query_dict(
            "SELECT event_id, subject_id FROM audit_subject ORDER BY event_id, subject_id"
        )
        copy = await refused(
            conn, "INSERT INTO audit_posting SELECT * FROM audit_posting WHERE first_id = 7"
        )
        changed_list = "n/a"
        if postgres:
            changed_list = await refused(conn, "UPDATE audit_posting SET event_ids = '1'")
        print(json.dumps({
            "applied": applied,
            "lists": [[r["subject_id"], int(r["first_id"]), int(r["block"]), r["event_ids"]]
                      for r in lists],
            "viewed": [[int(r["event_id"]), r["subject_id"]] for r in viewed],
            "copy": copy,
            "changed_list": changed_list,
            "rows": [[int(r["event_id"]), r["subject_id"]] for r in rows],
            "by_subject": [int(r["event_id"]) for r in by_subject],
            "twice": twice,
            "changed": changed,
        }))
    finally:
        await close_db()

asyncio.run(main())
"""


def test_links_survive_the_rebuild_once_each_and_the_key_holds(fresh_database: str) -> None:
    # given a database at 0019 whose old audit_subject holds links, one of them twice
    found = run_script(MIGRATE_ACROSS, fresh_database)
    # when it is migrated to 0022: 0020 ran, and each (row, subject) is there once
    assert found["rows"] == [[7, "c-1"], [7, "c-2"], [9, "c-1"]]
    # the (subject, time) index still finds a subject's rows in time order
    assert found["by_subject"] == [7, 9]
    # a second copy of a link is refused by the key; on PostgreSQL no link changes
    assert found["twice"] == "IntegrityError"
    assert found["changed"] in ("n/a", "OperationalError")


def test_links_of_rows_in_the_tree_become_lists_and_the_view_reads_them(
    fresh_database: str,
) -> None:
    # given the links above, rows 7 and 1030 in the tree and row 9 not yet
    found = run_script(MIGRATE_ACROSS, fresh_database)
    # when 0023 ran: one list per subject and block, for rows in the tree only
    assert "0023_audit_posting" in found["applied"]
    assert found["lists"] == [["c-1", 7, 0, "7"], ["c-1", 1030, 1, "1030"], ["c-2", 7, 0, "7"]]
    # the view reads them back as links; row 9 is linked when it joins the tree
    assert found["viewed"] == [[7, "c-1"], [7, "c-2"], [1030, "c-1"]]
    # a copy of a list is refused by the key; on PostgreSQL no list changes
    assert found["copy"] == "IntegrityError"
    assert found["changed_list"] in ("n/a", "OperationalError")
