"""The whole decision log verified against checkpoints held outside the database: each
attack an auditor worries about is staged as an intruder with database access would
stage it, and named."""

from __future__ import annotations

import functools
import hashlib
import sys
from pathlib import Path

import pytest
from tortoise import connections

from api.clock import FakeClock
from authz import checkpoints, log_keys, log_tree, log_verify
from authz.audit import GENESIS, STORED, AuditRecord, append, canonical_values
from authz.checkpoints import LogConfig
from authz.log_tree import _LEVEL, _insert
from authz.log_verify import HeldCheckpoint, open_held, published_verifiers, verify_log
from models import AuditCheckpoint, AuditEvent, AuditLogKey
from verifier import merkle
from verifier.leaf import row_leaf_hash
from verifier.note import Checkpoint, NoteError

ORIGIN = "shop.example.test/audit-log"
APPEND_ONLY = ("audit_event", "audit_posting", "audit_leaf", "audit_node", "audit_checkpoint")


@pytest.fixture(autouse=True, params=["one process", "id ranges"])
def walk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    """Every test twice: the log walked in this process, and in id ranges of 2 rows by two
    worker processes (so that attacks fall at ranges' edges and inside them)."""
    if request.param == "id ranges":
        ranged = functools.partial(
            log_verify.verify_log, workers=2, database_url=database_url, range_rows=2
        )
        monkeypatch.setattr(sys.modules[__name__], "verify_log", ranged)
    return str(request.param)


@pytest.fixture
def config(tmp_path: Path) -> LogConfig:
    return LogConfig(ORIGIN, tmp_path / "keys", None)


def record(clock: FakeClock, n: int) -> AuditRecord:
    return AuditRecord(
        at=clock.now(),
        actor_kind="employee",
        actor_id=f"e-{n % 2}",
        roles="customer_care",
        event="access",
        decision="allow",
        category="contact.email",
        action="read",
        purpose="support",
        subject_id=f"c-{n},c-{n + 100}",
    )


async def grow(clock: FakeClock, start: int, count: int) -> None:
    for n in range(start, start + count):
        await append([record(clock, n)])
        clock.advance(seconds=1)


async def intrude(sql: str) -> None:
    """SQL run by someone with the database's keys: the append-only triggers set aside."""
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        off = "".join(f"ALTER TABLE {t} DISABLE TRIGGER {t}_append_only;" for t in APPEND_ONLY)
        on = "".join(f"ALTER TABLE {t} ENABLE TRIGGER {t}_append_only;" for t in APPEND_ONLY)
        sql = off + sql + ";" + on
    await conn.execute_script(sql)


async def held(config: LogConfig, clock: FakeClock) -> HeldCheckpoint:
    """A checkpoint the auditor fetched and kept: signed now, opened with the log's keys."""
    signed = await checkpoints.sign(config, clock.now(), force=True)
    return open_held("auditor's checkpoint", signed.note, await published_verifiers())


async def test_an_intact_log_verifies_against_held_and_signed_checkpoints(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 0, 7)
    first = await held(config, clock)
    await grow(clock, 7, 5)
    second = await held(config, clock)
    await grow(clock, 12, 2)  # rows after the last checkpoint, integrated or not
    result = await verify_log([first, second], batch=3)
    assert result.ok, result.problem
    assert (result.checked, result.tree_size) == (14, 12)
    assert len(result.checkpoints) == 4  # two held, two the log signed


@pytest.mark.parametrize(
    ("column", "value"),
    [("category", "contact.phone"), ("actor_id", "e-9"), ("roles", "admin"), ("decision", "deny")],
)
async def test_an_edited_row_is_named(
    clock: FakeClock, config: LogConfig, column: str, value: str
) -> None:
    await grow(clock, 0, 6)
    checkpoint = await held(config, clock)
    target = (await AuditEvent.all().order_by("id"))[3]
    await intrude(f"UPDATE audit_event SET {column} = '{value}' WHERE id = {target.id}")
    result = await verify_log([checkpoint])
    assert (result.ok, result.kind, result.first_broken_id) == (False, "edited", target.id)
    assert result.problem == "hash does not match the row's content"
    assert result.checked == 3


async def test_an_edited_leaf_salt_is_named(clock: FakeClock, config: LogConfig) -> None:
    await grow(clock, 0, 4)
    checkpoint = await held(config, clock)
    target = (await AuditEvent.all().order_by("id"))[1]
    await intrude(f"UPDATE audit_leaf SET salt = '{'0' * 32}' WHERE event_id = {target.id}")
    result = await verify_log([checkpoint])
    assert (result.kind, result.first_broken_id) == ("edited", target.id)
    assert result.problem == "its content does not match its leaf"
    assert result.checked == 1


async def test_deleting_the_newest_rows_is_named_truncation(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 0, 9)
    checkpoint = await held(config, clock)
    # the intruder deletes the 3 newest rows with everything derived from them, the log's
    # own checkpoints included: the chain of what is left still verifies on its own
    keep = (await AuditEvent.all().order_by("id"))[5].id
    await intrude(
        f"DELETE FROM audit_posting WHERE first_id > {keep};"  # each row's subjects its own
        f"DELETE FROM audit_leaf WHERE event_id > {keep};"
        f"DELETE FROM audit_event WHERE id > {keep};"
        "DELETE FROM audit_checkpoint"
    )
    await rebuild_nodes()
    assert (await verify_log()).ok  # without a checkpoint from outside, nothing shows
    result = await verify_log([checkpoint])
    assert (result.ok, result.kind) == (False, "truncated")
    assert result.problem == "auditor's checkpoint covers 9 rows; the log holds 6"


async def _rewrite_from(index: int) -> None:
    """Change row `index` and recompute everything after it as the app would: chain
    hashes, leaves (with their salts) and nodes; the log's own checkpoints deleted."""
    rows = await AuditEvent.all().order_by("id").values("id", *STORED, "prev_hash", "hash")
    conn = connections.get("default")
    leaves = await conn.execute_query_dict("SELECT idx, event_id, salt FROM audit_leaf")
    salts = {int(r["event_id"]): bytes.fromhex(r["salt"]) for r in leaves}
    prev = GENESIS if index == 0 else str(rows[index - 1]["hash"])
    sql = ["DELETE FROM audit_checkpoint"]
    for n, row in enumerate(rows):
        if n == index:
            row["purpose"] = "marketing.email"
            sql.append(f"UPDATE audit_event SET purpose = 'marketing.email' WHERE id = {row['id']}")
        if n >= index:
            digest = hashlib.sha256(prev.encode() + canonical_values([row[k] for k in STORED]))
            row["hash"] = digest.hexdigest()
            sql.append(
                f"UPDATE audit_event SET prev_hash = '{prev}', hash = '{row['hash']}' "
                f"WHERE id = {row['id']}"
            )
        prev = str(row["hash"])
        leaf = row_leaf_hash(row, salts[int(row["id"])])
        if n >= index:
            sql.append(f"UPDATE audit_leaf SET hash = '{leaf.hex()}' WHERE event_id = {row['id']}")
    await intrude(";".join(sql))
    await rebuild_nodes()


async def rebuild_nodes() -> None:
    """Every interior node recomputed from the leaves as they now are."""
    conn = connections.get("default")
    rows = await conn.execute_query_dict("SELECT hash FROM audit_leaf ORDER BY idx")
    digests = [bytes.fromhex(str(r["hash"])) for r in rows]
    nodes = []
    for level in range(1, len(digests).bit_length()):
        width = 1 << level
        for i in range(len(digests) // width):
            subtree = merkle.root(digests[i * width : (i + 1) * width])
            nodes.append((level * _LEVEL + i, subtree.hex()))
    await intrude("DELETE FROM audit_node")
    await _insert(conn, "audit_node", ("id", "hash"), nodes)


async def test_a_rewritten_chain_with_recomputed_hashes_is_named(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 0, 10)
    checkpoint = await held(config, clock)
    await _rewrite_from(4)
    assert (await verify_log()).ok  # internally consistent: the chain alone is fooled
    result = await verify_log([checkpoint])
    assert (result.ok, result.kind) == (False, "rewritten")
    assert (
        result.problem == "the log's first 10 rows do not hash to the root of auditor's checkpoint"
    )


async def test_a_rewrite_after_an_older_checkpoint_names_both(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 0, 4)
    old = await held(config, clock)
    await grow(clock, 4, 6)
    new = await held(config, clock)
    await _rewrite_from(6)
    result = await verify_log([old, HeldCheckpoint("the newer one", new.checkpoint, 0)])
    assert (result.ok, result.kind) == (False, "rewritten")
    assert "still match auditor's checkpoint (4 rows)" in result.problem


async def test_a_checkpoint_inconsistent_with_another_is_named(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 0, 5)
    honest = await held(config, clock)
    await grow(clock, 5, 3)
    # the log (its key) signs a second history of 5 rows, shown to another auditor
    key = await log_keys.current(ORIGIN)
    assert key is not None
    signer = log_keys.load_signer(config.key_dir, key)
    forked = Checkpoint(ORIGIN, 5, hashlib.sha256(b"another history").digest())
    note = forked.text + "\n" + signer.signature_line(forked.text, 1)
    other = open_held("the other auditor's checkpoint", note, await published_verifiers())
    result = await verify_log([honest, other])
    assert (result.ok, result.kind) == (False, "inconsistent")
    assert "two different roots for 5 rows" in result.problem
    # and a lone forked checkpoint, the log's own history kept intact, is not consistent
    # with the log's later signed checkpoint
    await checkpoints.sign(config, clock.now(), force=True)
    await intrude("DELETE FROM audit_checkpoint WHERE size = 5")
    result = await verify_log([other])
    assert (result.ok, result.kind) == (False, "inconsistent")
    assert "is not consistent with signed checkpoint" in result.problem


async def test_a_checkpoint_not_signed_by_the_log_is_refused(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 0, 3)
    signed = await checkpoints.sign(config, clock.now(), force=True)
    verifiers = await published_verifiers()
    tampered = signed.note.replace("\n3\n", "\n2\n", 1)
    with pytest.raises(NoteError):
        open_held("tampered", tampered, verifiers)
    stranger = await log_keys.rotate("elsewhere.test/log", config.key_dir, clock.now())
    assert stranger.key_id != signed.key_id
    with pytest.raises(NoteError):
        open_held("unsigned", signed.note.split("\n\n")[0] + "\n\n", verifiers)


async def test_the_stored_tree_disagreeing_with_the_rows_is_named(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 0, 8)
    await log_tree.integrate()
    await intrude(
        f"UPDATE audit_node SET hash = '{'ab' * 32}' WHERE id = (SELECT MAX(id) FROM audit_node)"
    )
    assert await AuditCheckpoint.all().count() == 0
    assert await AuditLogKey.all().count() == 0
    result = await verify_log()
    assert (result.ok, result.kind) == (False, "tree")
