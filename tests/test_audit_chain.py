"""The decision log is hash-chained, verifiable, and append-only on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from tortoise import connections
from tortoise.exceptions import OperationalError

from api.clock import FakeClock
from authz.audit import GENESIS, AuditRecord, append, verify
from authz.log_tree import integrate
from models import AuditEvent, AuditPosting, AuditSubject


def record(clock: FakeClock, n: int, **overrides: str) -> AuditRecord:
    values = {
        "actor_kind": "employee",
        "actor_id": f"e-{n}",
        "event": "access",
        "decision": "allow" if n % 2 else "deny",
        "category": "contact.email",
        "action": "read",
        "purpose": "support",
        "subject_id": f"c-{n}",
    }
    values.update(overrides)
    return AuditRecord(at=clock.now(), **values)


def _dialect() -> str:
    return str(connections.get("default").capabilities.dialect)


_LIST = "subject_id, first_id, block, first_at, last_at, event_ids"
_ONE_ROW = "id, id >> 10, at, at, CAST(id AS TEXT)"  # a list of one row: (first_id ... ids)


async def _tamper(sql: str, table: str = "audit_event") -> None:
    """What an intruder with database access would do (the app's trigger set aside)."""
    conn = connections.get("default")
    if _dialect() == "postgres":
        await conn.execute_script(
            f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only;"
            f"{sql};"
            f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only;"
        )
    else:
        await conn.execute_script(sql)


async def test_rows_are_chained_from_genesis_and_verify(clock: FakeClock) -> None:
    # given three batches appended over time
    for batch in range(3):
        await append([record(clock, batch * 10 + i) for i in range(4)])
        clock.advance(seconds=1)
    # then each row links to the one before, from the genesis hash
    rows = await AuditEvent.all().order_by("id")
    assert len(rows) == 12
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    result = await verify()
    assert (result.ok, result.checked, result.first_broken_id) == (True, 12, None)


async def test_editing_one_row_is_named_by_verify(clock: FakeClock) -> None:
    # given a chain of ten rows
    await append([record(clock, i) for i in range(10)])
    victim = (await AuditEvent.all().order_by("id"))[6]
    # when someone flips a denial into an allowance directly in the database
    await _tamper(f"UPDATE audit_event SET decision = 'allow' WHERE id = {victim.id}")
    # then verify names exactly that row
    result = await verify(batch=3)
    assert result.ok is False
    assert result.first_broken_id == victim.id
    assert result.checked == 6
    assert "hash" in result.problem


async def test_deleting_one_row_is_named_by_verify(clock: FakeClock) -> None:
    await append([record(clock, i) for i in range(5)])
    rows = await AuditEvent.all().order_by("id")
    await _tamper(f"DELETE FROM audit_event WHERE id = {rows[2].id}")
    result = await verify()
    assert (result.ok, result.first_broken_id) == (False, rows[3].id)
    assert "prev_hash" in result.problem


async def test_concurrent_appends_keep_one_chain(clock: FakeClock) -> None:
    await asyncio.gather(*(append([record(clock, i), record(clock, i + 100)]) for i in range(8)))
    result = await verify()
    assert (result.ok, result.checked) == (True, 16)


async def test_the_application_cannot_update_or_delete_audit_rows(clock: FakeClock) -> None:
    if _dialect() != "postgres":
        pytest.skip("the append-only trigger is PostgreSQL's (SQLite is the embedded default)")
    await append([record(clock, 1)])
    row = await AuditEvent.get()
    with pytest.raises(OperationalError, match="append-only"):
        await AuditEvent.filter(id=row.id).update(decision="allow")
    with pytest.raises(OperationalError, match="append-only"):
        await AuditEvent.filter(id=row.id).delete()
    assert (await AuditEvent.get()).decision == row.decision
    assert (await verify()).ok


async def test_one_decision_about_many_subjects_is_one_row_indexed_per_subject(
    clock: FakeClock,
) -> None:
    # given one decision about a page of three customers
    await append([record(clock, 1, subject_id="c-1,c-2,c-3")])
    row = await AuditEvent.get()
    # then it is one chained row, indexed when it joins the tree (not on the request's path)
    assert await AuditSubject.filter(event_id=row.id).count() == 0
    assert (await verify()).ok
    assert await integrate() == 1
    # and then each subject finds it through the index
    links = await AuditSubject.filter(event_id=row.id).order_by("subject_id")
    assert [link.subject_id for link in links] == ["c-1", "c-2", "c-3"]
    assert all(link.first_at == row.at == link.last_at for link in links)
    assert (await verify()).ok


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM audit_posting WHERE subject_id = 'c-2'",
        "UPDATE audit_posting SET subject_id = 'c-9' WHERE subject_id = 'c-2'",
        f"INSERT INTO audit_posting ({_LIST}) "
        "SELECT 'c-9', first_id, block, first_at, last_at, event_ids FROM audit_posting "
        "WHERE subject_id = 'c-2'",
        # a list moved out of its block of ids links nothing
        "UPDATE audit_posting SET block = block + 1 WHERE subject_id = 'c-2'",
        # an id added to another list, or the list emptied
        "UPDATE audit_posting SET event_ids = event_ids || ',' || (SELECT CAST(id AS TEXT) "
        "FROM audit_event WHERE subject_id = 'c-1,c-2,c-3') WHERE subject_id = 'c-0'",
        "UPDATE audit_posting SET event_ids = '0' WHERE subject_id = 'c-2'",
    ],
)
async def test_altering_the_subject_index_is_named_by_verify(clock: FakeClock, sql: str) -> None:
    # given two rows, the second about three customers
    await append([record(clock, 0)])
    await append([record(clock, 1, subject_id="c-1,c-2,c-3")])
    await integrate()
    victim = await AuditEvent.filter(subject_id="c-1,c-2,c-3").get()
    # when someone hides, redirects or adds an access in the index
    await _tamper(sql, table="audit_posting")
    # then verify names the row whose subjects no longer match
    result = await verify()
    assert (result.ok, result.first_broken_id, result.checked) == (False, victim.id, 1)
    assert "subject index" in result.problem


@pytest.mark.parametrize(
    ("sql", "named", "named_in_tree"),
    [
        # a wrong or partial index of a row not yet in the tree is named; a wrong link
        # stays wrong once the row joins the tree...
        (
            f"INSERT INTO audit_posting ({_LIST}) SELECT 'c-9', {_ONE_ROW} "
            "FROM audit_event WHERE subject_id = 'c-1,c-2,c-3'",
            True,
            True,
        ),
        # ...and a true link its row's own list would hold is kept, the rest written
        (
            f"INSERT INTO audit_posting ({_LIST}) SELECT 'c-1', {_ONE_ROW} "
            "FROM audit_event WHERE subject_id = 'c-1,c-2,c-3'",
            True,
            False,
        ),
        # none is what such a row has until it joins the tree, or its whole index (as an
        # intruder may write it): kept, not written twice, and integration goes on
        ("SELECT 1", False, False),
        (
            f"INSERT INTO audit_posting ({_LIST}) SELECT s.v, {_ONE_ROW} "
            "FROM audit_event, (SELECT 'c-1' AS v UNION ALL SELECT 'c-2' UNION ALL "
            "SELECT 'c-3') s WHERE subject_id = 'c-1,c-2,c-3'",
            False,
            False,
        ),
    ],
)
async def test_a_row_not_yet_in_the_tree_has_no_index_or_its_whole_index(
    clock: FakeClock, sql: str, named: bool, named_in_tree: bool
) -> None:
    # given a row in the tree and one beyond it
    await append([record(clock, 0)])
    await integrate()
    await append([record(clock, 1, subject_id="c-1,c-2,c-3")])
    victim = await AuditEvent.filter(subject_id="c-1,c-2,c-3").get()
    # when someone adds links for the row beyond the tree
    await _tamper(sql, table="audit_posting")
    # then verify names it, and integrating leaves the added links for verify to name
    result = await verify()
    assert (result.ok, result.first_broken_id) == (not named, victim.id if named else None)
    assert await integrate() == 2
    again = await verify()
    broken = victim.id if named_in_tree else None
    assert (again.ok, again.first_broken_id) == (not named_in_tree, broken)
    linked = await AuditSubject.filter(event_id=victim.id).values_list("subject_id", flat=True)
    assert (sorted(linked) == ["c-1", "c-2", "c-3"]) is not named_in_tree


async def test_the_application_cannot_update_or_delete_subject_links(clock: FakeClock) -> None:
    if _dialect() != "postgres":
        pytest.skip("the append-only trigger is PostgreSQL's (SQLite is the embedded default)")
    await append([record(clock, 1, subject_id="c-1,c-2")])
    await integrate()
    with pytest.raises(OperationalError, match="append-only"):
        await AuditPosting.filter(subject_id="c-1").update(subject_id="c-9")
    with pytest.raises(OperationalError, match="append-only"):
        await AuditPosting.filter(subject_id="c-2").delete()
    assert await AuditSubject.filter(subject_id__in=["c-1", "c-2"]).count() == 2
