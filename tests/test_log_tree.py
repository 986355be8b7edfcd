"""The decision log's Merkle tree as stored (authz/log_tree.py): leaves in chain order,
roots and proofs from stored nodes equal to those of the whole list of leaves, every
proof verifying, integration idempotent and safe when run concurrently."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
from tortoise import connections

from api.clock import FakeClock
from authz import log_tree
from authz.audit import AuditRecord, append
from models import AuditEvent, AuditLeaf, AuditNode
from verifier import merkle
from verifier.leaf import row_leaf_hash


def record(clock: FakeClock, n: int) -> AuditRecord:
    return AuditRecord(
        at=clock.now(),
        actor_kind="employee",
        actor_id=f"e-{n % 3}",
        event="access",
        decision="allow",
        category="contact.email",
        action="read",
        purpose="support",
        subject_id=",".join(f"c-{n}-{i}" for i in range(n % 4)),
    )


async def _append(clock: FakeClock, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        await append([record(clock, n)])
        clock.advance(seconds=1)


async def _expected_leaves() -> list[bytes]:
    """Leaf hashes recomputed from the rows and their salts, in chain order."""
    leaves = {leaf.event_id: leaf for leaf in await AuditLeaf.all()}
    rows = await AuditEvent.all().order_by("id").values(*log_tree.LEAF_COLUMNS)
    return [row_leaf_hash(row, bytes.fromhex(leaves[row["id"]].salt)) for row in rows]


async def test_the_stored_tree_is_the_tree_of_the_rows_in_chain_order(clock: FakeClock) -> None:
    # given 21 rows appended, integrated in uneven batches
    await _append(clock, 13)
    assert await log_tree.integrate(batch=5) == 13
    await _append(clock, 8, start=13)
    assert await log_tree.integrate(batch=3) == 21
    # then leaf i is row i's leaf, and every prefix's root is the RFC 9162 root
    leaves = await _expected_leaves()
    stored = [bytes.fromhex(leaf.hash) for leaf in await AuditLeaf.all().order_by("idx")]
    assert stored == leaves
    for size in range(22):
        assert await log_tree.root(size) == merkle.root(leaves[:size])
    # and only complete subtrees are stored: n leaves make n - popcount(n) interior nodes
    assert await AuditNode.all().count() == 21 - bin(21).count("1")


async def test_proofs_from_stored_nodes_are_those_of_the_leaves_and_verify(
    clock: FakeClock,
) -> None:
    await _append(clock, 19)
    await log_tree.integrate()
    leaves = await _expected_leaves()
    for size in range(1, 20):
        root = merkle.root(leaves[:size])
        for index in range(size):
            proof = await log_tree.inclusion_proof(index, size)
            assert proof == merkle.inclusion_proof(leaves[:size], index)
            assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
        for old in range(1, size + 1):
            proof = await log_tree.consistency_proof(old, size)
            assert proof == merkle.consistency_proof(leaves[:size], old)
            old_root = merkle.root(leaves[:old])
            assert merkle.verify_consistency(old, size, old_root, root, proof)


async def test_integration_is_idempotent_and_concurrent_runs_integrate_each_row_once(
    clock: FakeClock,
) -> None:
    await _append(clock, 30)
    sizes = await asyncio.gather(*(log_tree.integrate(batch=4) for _ in range(5)))
    assert max(sizes) == 30
    assert await log_tree.integrate() == 30
    indexes = [leaf.idx for leaf in await AuditLeaf.all().order_by("idx")]
    assert indexes == list(range(30))
    assert await log_tree.root(30) == merkle.root(await _expected_leaves())


async def test_salts_are_random_per_row(clock: FakeClock) -> None:
    await _append(clock, 10)
    await log_tree.integrate()
    salts = [leaf.salt for leaf in await AuditLeaf.all()]
    assert len(set(salts)) == 10
    assert all(len(bytes.fromhex(s)) == 16 for s in salts)


async def _delete_every_node() -> None:
    """What a database administrator could do: the tree's interior nodes gone (on
    PostgreSQL past the append-only trigger)."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        await conn.execute_script(
            "ALTER TABLE audit_node DISABLE TRIGGER audit_node_append_only;"
            "DELETE FROM audit_node;"
            "ALTER TABLE audit_node ENABLE TRIGGER audit_node_append_only;"
        )
    else:
        await conn.execute_script("DELETE FROM audit_node")


async def test_a_missing_node_is_refused_not_guessed(clock: FakeClock) -> None:
    await _append(clock, 8)
    await log_tree.integrate()
    await _delete_every_node()
    with pytest.raises(log_tree.NotInTree):
        await log_tree.inclusion_proof(0, 8)


async def test_the_tree_tables_are_append_only_on_postgres(clock: FakeClock) -> None:
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        pytest.skip("the append-only triggers are PostgreSQL's")
    await _append(clock, 4)
    await log_tree.integrate()
    for sql in (
        "UPDATE audit_leaf SET hash = 'x'",
        "DELETE FROM audit_leaf",
        "UPDATE audit_node SET hash = 'x'",
        "UPDATE audit_posting SET event_ids = '1'",
        "DELETE FROM audit_posting",
    ):
        with pytest.raises(Exception, match="append-only"):
            await conn.execute_query(sql)


async def test_subject_links_are_each_listed_subject_once_whatever_the_characters(
    clock: FakeClock,
) -> None:
    # SQLite splits plain lists in SQL (json_each) and the others in Python; PostgreSQL
    # splits them all in SQL: every way gives one link per subject listed, however often
    # it is listed (the table's key is (event_id, subject_id))
    lists = [
        "c-1,c-2,c-3,c-2",
        "",
        'quote"d,back\\slash',
        "tab\there,bell\x07byte,del\x7f",  # (no NUL: PostgreSQL text holds none)
        "ünï,☃,c-1",
        ",,c-9,,",
        "c-4",
    ]
    for plain_only in (True, False):
        shown = lists[:1] + lists[-1:] if plain_only else lists
        records = [
            AuditRecord(
                at=clock.now(),
                actor_kind="employee",
                event="access",
                decision="allow",
                subject_id=subjects,
            )
            for subjects in shown
        ]
        await append(records)
        await log_tree.integrate()
    conn = connections.get("default")
    rows = await conn.execute_query_dict(
        "SELECT e.id, e.subject_id FROM audit_event e ORDER BY e.id"
    )
    expected = {(int(r["id"]), s) for r in rows for s in str(r["subject_id"]).split(",") if s}
    links = await conn.execute_query_dict("SELECT event_id, subject_id FROM audit_subject")
    assert sorted((int(r["event_id"]), r["subject_id"]) for r in links) == sorted(expected)
    assert len(expected) == 4 + 13


async def test_a_batch_lists_each_subject_once_per_block(clock: FakeClock) -> None:
    # given 30 rows each naming the same 10 subjects (a staff page shown 30 times)
    subjects = ",".join(f"c-{i}" for i in range(10))
    await append([replace(record(clock, n), subject_id=subjects) for n in range(30)])
    # when they join the tree in one batch
    assert await log_tree.integrate() == 30
    # then the index holds one list per subject naming the 30 rows, not 300 rows
    conn = connections.get("default")
    lists = await conn.execute_query_dict(
        "SELECT subject_id, first_id, block, event_ids FROM audit_posting ORDER BY subject_id"
    )
    ids = [e.id for e in await AuditEvent.all().order_by("id")]
    assert [r["subject_id"] for r in lists] == sorted(f"c-{i}" for i in range(10))
    assert {r["event_ids"] for r in lists} == {",".join(map(str, ids))}
    assert {int(r["first_id"]) for r in lists} == {ids[0]}
    assert {int(r["block"]) for r in lists} == {ids[0] >> 10}
    # and the view reads them back as one link per (row, subject)
    links = await conn.execute_query_dict("SELECT count(*) AS n FROM audit_subject")
    assert int(links[0]["n"]) == 300


def test_a_list_never_spans_two_blocks_and_names_a_subject_once_per_row() -> None:
    at = [f"2026-12-04 12:00:{n:02d}" for n in range(4)]
    rows = [
        {"id": 1022, "subject_id": "c-1,c-2", "at": at[1]},
        {"id": 1023, "subject_id": "c-1,c-1", "at": at[0]},
        {"id": 1024, "subject_id": "c-1", "at": at[3]},
        {"id": 1025, "subject_id": ",c-1,", "at": at[2]},
    ]
    assert sorted(log_tree.postings(rows)) == [
        ("c-1", 1022, 0, at[0], at[1], "1022,1023"),
        ("c-1", 1024, 1, at[2], at[3], "1024,1025"),
        ("c-2", 1022, 0, at[1], at[1], "1022"),
    ]


async def test_a_tree_moved_on_while_hashing_drops_the_batch_and_goes_on(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _append(clock, 12)
    real = log_tree._node_hashes
    raced: list[tuple[int, int] | None] = []

    async def another_process_first(conn, keys):  # type: ignore[no-untyped-def]
        found = await real(conn, keys)
        if not raced:  # after this one read the tree, another extends it
            raced.append(None)
            raced[0] = await real_batch(5)
        return found

    real_batch = log_tree._integrate_batch
    monkeypatch.setattr(log_tree, "_node_hashes", another_process_first)
    assert await log_tree.integrate(batch=8) == 12
    assert raced == [(5, 5, True)]
    leaves = await AuditLeaf.all().order_by("idx")
    assert [leaf.idx for leaf in leaves] == list(range(12))
    events = [e.id for e in await AuditEvent.all().order_by("id")]
    assert [leaf.event_id for leaf in leaves] == events
    assert await log_tree.root(12) == merkle.root(await _expected_leaves())
    links = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM audit_subject"
    )
    assert int(links[0]["n"]) == sum(n % 4 for n in range(12))  # each linked once


async def test_integration_refuses_to_extend_a_tree_missing_nodes(clock: FakeClock) -> None:
    await _append(clock, 8)
    await log_tree.integrate()
    await _append(clock, 2, start=8)
    await _delete_every_node()
    with pytest.raises(log_tree.NotInTree):
        await log_tree.integrate()
    assert await log_tree.size() == 8


async def test_a_batch_holds_a_bounded_number_of_subject_links(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given rows naming many subjects each (a staff page names every customer shown)
    for n in range(12):
        await append(
            [replace(record(clock, n), subject_id=",".join(f"c{n}-{i}" for i in range(40)))]
        )
    # and a bound of 100 links a batch (SQLite has a bound of its own)
    monkeypatch.setattr(log_tree, "_LINKS_PER_BATCH", 100)
    monkeypatch.setattr(log_tree, "_SQLITE_LINKS_PER_BATCH", 100)
    linked: list[int] = []
    real_lists = log_tree.postings

    def counted(rows):  # type: ignore[no-untyped-def]
        linked.append(sum(len(str(r["subject_id"]).split(",")) for r in rows))
        return real_lists(rows)

    monkeypatch.setattr(log_tree, "postings", counted)
    # when the tree is brought up to date in batches of up to 50 rows
    assert await log_tree.integrate(batch=50) == 12
    # then each batch linked at most 100 subjects (2 rows of 40), and every row is in
    assert linked == [80] * 6
    assert await log_tree.root(12) == merkle.root(await _expected_leaves())
    links = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM audit_subject"
    )
    assert int(links[0]["n"]) == 12 * 40


async def test_on_sqlite_batches_are_smaller_and_leave_the_write_lock_free_between_them(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's one write lock stops every server's log writes, so every read it would
    answer, while a batch runs: a pass takes it in small batches and gives way after
    each as long as it held it. PostgreSQL's batches take an advisory lock that no log
    write waits for: no pause there."""
    sqlite = connections.get("default").capabilities.dialect == "sqlite"
    # given rows naming 40 subjects each, bounds of 200 links on SQLite and 1,000 elsewhere
    for n in range(12):
        await append(
            [replace(record(clock, n), subject_id=",".join(f"c{n}-{i}" for i in range(40)))]
        )
    monkeypatch.setattr(log_tree, "_LINKS_PER_BATCH", 1_000)
    monkeypatch.setattr(log_tree, "_SQLITE_LINKS_PER_BATCH", 200)
    events: list[tuple[str, float]] = []
    real_lists, real_give_way = log_tree.postings, log_tree._give_way

    def linked(rows):  # type: ignore[no-untyped-def]
        events.append(("batch", float(sum(len(str(r["subject_id"]).split(",")) for r in rows))))
        return real_lists(rows)

    async def gave_way(held: float) -> None:
        events.append(("pause", held))
        await real_give_way(held)

    monkeypatch.setattr(log_tree, "postings", linked)
    monkeypatch.setattr(log_tree, "_give_way", gave_way)
    # when one pass brings them into the tree
    assert await log_tree.integrate() == 12
    # then on SQLite: batches of 5 rows (200 links), a pause after each but the last
    if sqlite:
        assert [kind for kind, _ in events] == ["batch", "pause"] * 2 + ["batch"]
        assert [n for kind, n in events if kind == "batch"] == [200, 200, 80]
        assert all(held > 0 for kind, held in events if kind == "pause")
    else:  # one batch within the bound, no pause
        assert events == [("batch", 480.0)]
    assert await log_tree.root(12) == merkle.root(await _expected_leaves())


async def test_rows_beyond_the_tree_are_found_through_the_key_on_postgres() -> None:
    # A subject's rows not yet in the tree are the last second or so of the log: PostgreSQL
    # planned `id > (the last leaf's row)` alone as a third of the log and read all of it
    # on every read by subject (23 ms for 200,000 rows).
    conn = connections.get("default")
    if conn.capabilities.dialect != "postgres":
        pytest.skip("PostgreSQL's planner (SQLite ranges over the key as it is)")
    # given a log of 20,000 rows, all but the last 10 in the tree, with statistics
    await conn.execute_script(
        "INSERT INTO audit_event (at, request_id, actor_kind, actor_id, roles, event, "
        "operation, category, action, subject_id, purpose, decision, rule, reason, "
        "conditions, policy_version, prev_hash, hash) "
        "SELECT now(), '', 'employee', 'e-1', '', 'access', '', 'contact.email', 'read', "
        "'c-' || (n % 7), 'support', 'allow', '', '', '', 0, '', md5(n::text) "
        "FROM generate_series(1, 20000) AS n;"
        "INSERT INTO audit_leaf (idx, event_id, salt, hash) "
        "SELECT row_number() OVER (ORDER BY id) - 1, id, '', hash FROM audit_event "
        "WHERE id <= (SELECT max(id) - 10 FROM audit_event);"
        "ANALYZE audit_event; ANALYZE audit_leaf"
    )
    # when the statement reading the rows about c-3 beyond the tree is planned
    statement = log_tree._NOT_YET_INDEXED.format(position="strpos", mark="$1")
    [row] = await conn.execute_query_dict(f"EXPLAIN (FORMAT JSON) {statement}", [",c-3,"])
    plan = next(iter(row.values()))
    plan = json.loads(plan) if isinstance(plan, str) else plan
    # then it expects a few rows beyond the tree (not a third of the log), so reads them
    # through the key whatever its statistics say of the table's order
    assert _rows_read(plan[0]["Plan"], "audit_event") <= 200, plan
    # and they are found
    last = await AuditEvent.all().order_by("-id").limit(10).values_list("id", "subject_id")
    expected = sorted(int(i) for i, subject in last if subject == "c-3")
    assert await log_tree.rows_not_yet_indexed("c-3") == expected
    assert expected


def _rows_read(node: dict[str, Any], table: str) -> float:
    """The planner's estimate of the rows the statement's own scan of `table` yields (not
    a subquery's computing a bound)."""
    if node.get("Relation Name") == table:
        return float(node["Plan Rows"])
    for child in node.get("Plans", []):
        if child.get("Parent Relationship") not in ("InitPlan", "SubPlan"):
            return _rows_read(child, table)
    raise AssertionError(f"no scan of {table}")
