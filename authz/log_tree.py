"""The decision log's Merkle tree (docs/AUDIT_LOG.md: the tree), stored so that proofs are
cheap: every leaf, and every interior node over a complete subtree (2^level leaves
starting at a multiple of 2^level). A stored node never changes once written; the hash of
any range a proof needs is one stored node, or the fold of at most log2(n) of them. So an
inclusion or consistency proof is one indexed read of O(log² n) keys at most, whatever the
log's size.

Rows become leaves after they are committed, not while they are written: `integrate`
(run every second by each server, and before a checkpoint or a proof) takes the rows
beyond the tree in chain order, gives each a random salt (verifier/leaf.py), and stores
their leaves and the nodes they complete. Appending a row stays what it was, off the
tree's path; the tree is never more than a moment behind the log, and a checkpoint
only ever signs integrated rows."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError, OperationalError, TransactionManagementError
from tortoise.transactions import in_transaction

from authz import sql
from verifier import merkle
from verifier.leaf import SALT_BYTES, fast_row_leaf_hash

log = logging.getLogger(__name__)

_LEVEL = 1 << 48
# Any constant (not the chain's): serialises integration across processes on PostgreSQL.
_TREE_LOCK = 0x637573746F74
_BATCH = 5_000
_LINKS_PER_BATCH = 20_000
"""At most this many subject links in one batch (a row names one customer or more; a staff
page of 100 names 100): a batch's transaction stays short, and a process stopping mid-pass
waits for little (5,000 such rows took 11 s on PostgreSQL)."""
_SQLITE_LINKS_PER_BATCH = 20_000
"""The same on SQLite, where a batch holds the database's one write lock, and every read a
server answers waits for its log rows to be written: no server answers while a batch
runs. With the links as posting lists, a batch of 20,000 holds it about 7 ms on the
development machine (5,000 about 4 ms, each batch's commit costing the same: 2.6 times the
lock time in all); as one row per link, 5,000 held it about 17 ms."""
LEAF_COLUMNS = (
    "id",
    "action",
    "actor_id",
    "actor_kind",
    "at",
    "category",
    "conditions",
    "decision",
    "event",
    "operation",
    "policy_version",
    "purpose",
    "reason",
    "request_id",
    "roles",
    "rule",
    "subject_id",
)
Key = tuple[int, int]  # (level, index): the perfect subtree of 2^level leaves at index


class NotInTree(LookupError):
    """The row or size asked for is not (yet) in the tree."""


def _conn() -> BaseDBAsyncClient:
    conn: BaseDBAsyncClient = connections.get("default")
    return conn


def _marks(conn: BaseDBAsyncClient, count: int, first: int = 1) -> str:
    return sql.marks(conn.capabilities.dialect, count, first)


async def _insert(
    conn: BaseDBAsyncClient,
    table: str,
    columns: tuple[str, ...],
    rows: Sequence[tuple[object, ...]],
    tail: str = "",
) -> None:
    chunk = 1_000
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        statement = sql.insert(conn.capabilities.dialect, table, columns, len(part)) + tail
        await conn.execute_query(statement, [value for row in part for value in row])


def perfect_subtrees(start: int, end: int) -> list[Key]:
    """The complete subtrees that make up leaves [start, end), left to right, when the
    range is a subtree of the tree or a prefix of it (the only ranges proofs ask for)."""
    keys: list[Key] = []
    while start < end:
        level = (end - start).bit_length() - 1
        while start % (1 << level):
            level -= 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def _fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its complete subtrees, left to right (RFC 9162 splits at
    the largest power of two, so the right-most pair joins first)."""
    folded = hashes[-1]
    for left in reversed(hashes[:-1]):
        folded = merkle.node_hash(left, folded)
    return folded


async def _node_hashes(conn: BaseDBAsyncClient, keys: Iterable[Key]) -> dict[Key, bytes]:
    """The stored hashes of `keys`, in one statement."""
    leaves = sorted({index for level, index in keys if level == 0})
    nodes = sorted({level * _LEVEL + index for level, index in keys if level > 0})
    parts, params = [], []
    if leaves:
        marks = _marks(conn, len(leaves))
        parts.append(f"SELECT 0 AS kind, idx AS k, hash FROM audit_leaf WHERE idx IN ({marks})")  # noqa: S608
        params += leaves
    if nodes:
        marks = _marks(conn, len(nodes), len(params) + 1)
        parts.append(f"SELECT 1 AS kind, id AS k, hash FROM audit_node WHERE id IN ({marks})")  # noqa: S608
        params += nodes
    if not parts:
        return {}
    rows = await conn.execute_query_dict(" UNION ALL ".join(parts), params)
    found: dict[Key, bytes] = {}
    for row in rows:
        k = int(row["k"])
        key = (0, k) if int(row["kind"]) == 0 else (k // _LEVEL, k % _LEVEL)
        found[key] = bytes.fromhex(str(row["hash"]))
    return found


async def _ranges_many(
    builders: Sequence[Callable[[merkle.HashRange], list[bytes]]],
    conn: BaseDBAsyncClient | None = None,
) -> list[list[bytes]]:
    """Run proof builders of verifier/merkle.py over the stored nodes: once to learn which
    ranges they need (a builder never branches on a hash), then with every node they need
    read in one statement."""
    wanted: list[tuple[int, int]] = []

    def record(start: int, end: int) -> bytes:
        wanted.append((start, end))
        return bytes(merkle.HASH_SIZE)

    for build in builders:
        build(record)
    keys = {key for start, end in wanted for key in perfect_subtrees(start, end)}
    stored = await _node_hashes(conn or _conn(), keys)
    if len(stored) != len(keys):
        raise NotInTree("the tree is missing nodes it should hold")

    def hash_range(start: int, end: int) -> bytes:
        return _fold([stored[key] for key in perfect_subtrees(start, end)])

    return [build(hash_range) for build in builders]


async def _ranges(
    build: Callable[[merkle.HashRange], list[bytes]], conn: BaseDBAsyncClient | None = None
) -> list[bytes]:
    return (await _ranges_many([build], conn))[0]


async def size(conn: BaseDBAsyncClient | None = None) -> int:
    """How many rows the tree holds."""
    rows = await (conn or _conn()).execute_query_dict(
        "SELECT idx FROM audit_leaf ORDER BY idx DESC LIMIT 1"
    )
    return int(rows[0]["idx"]) + 1 if rows else 0


async def root(tree_size: int, conn: BaseDBAsyncClient | None = None) -> bytes:
    """The root hash of the tree's first `tree_size` leaves."""
    if tree_size == 0:
        return merkle.EMPTY_ROOT
    hashes = await _ranges(lambda hr: [hr(0, tree_size)], conn)
    return hashes[0]


@dataclass(frozen=True, slots=True)
class Leaf:
    index: int
    event_id: int
    salt: bytes
    hash: bytes

    @classmethod
    def stored(cls, index: object, event_id: int, salt: str, digest: str) -> Leaf:
        """A leaf as `audit_leaf` holds it (salt and hash in hex)."""
        return cls(int(str(index)), event_id, bytes.fromhex(salt), bytes.fromhex(digest))


async def leaves_of(event_ids: Sequence[int]) -> dict[int, Leaf]:
    """The leaves of rows, by row id (rows not yet integrated are missing)."""
    if not event_ids:
        return {}
    conn = _conn()
    rows = await conn.execute_query_dict(
        f"SELECT idx, event_id, salt, hash FROM audit_leaf WHERE event_id IN ({_marks(conn, len(event_ids))})",  # noqa: S608, E501
        list(event_ids),
    )
    return {
        int(r["event_id"]): Leaf.stored(r["idx"], int(r["event_id"]), r["salt"], r["hash"])
        for r in rows
    }


async def rows_and_leaves(
    event_ids: Sequence[int],
) -> dict[int, tuple[dict[str, object], Leaf | None]]:
    """Rows of the log by id, each with its leaf (None while it waits to join the tree), in
    one statement. A row's fields are LEAF_COLUMNS, as the database returns them (what
    integration hashes)."""
    if not event_ids:
        return {}
    conn = _conn()
    columns = ", ".join(f"e.{name}" for name in LEAF_COLUMNS)
    rows = await conn.execute_query_dict(
        f"SELECT {columns}, l.idx AS leaf_idx, l.salt AS leaf_salt, l.hash AS leaf_hash "  # noqa: S608
        "FROM audit_event e LEFT JOIN audit_leaf l ON l.event_id = e.id "
        f"WHERE e.id IN ({_marks(conn, len(event_ids))})",
        list(event_ids),
    )
    found: dict[int, tuple[dict[str, object], Leaf | None]] = {}
    for r in rows:
        event_id = int(r["id"])
        index, salt, digest = r.pop("leaf_idx"), r.pop("leaf_salt"), r.pop("leaf_hash")
        leaf = None if index is None else Leaf.stored(index, event_id, salt, digest)
        found[event_id] = (r, leaf)
    return found


async def inclusion_proof(index: int, tree_size: int) -> list[bytes]:
    """The inclusion proof of leaf `index` in the tree of `tree_size` leaves."""
    return await _ranges(lambda hr: merkle.inclusion_proof_from(hr, tree_size, index))


async def inclusion_proofs(indexes: Sequence[int], tree_size: int) -> dict[int, list[bytes]]:
    """The inclusion proofs of several leaves in one tree size, from one read."""
    builders = [
        functools.partial(_inclusion_builder, tree_size=tree_size, index=i) for i in indexes
    ]
    proofs = await _ranges_many(builders) if builders else []
    return dict(zip(indexes, proofs, strict=True))


def _inclusion_builder(hash_range: merkle.HashRange, *, tree_size: int, index: int) -> list[bytes]:
    return merkle.inclusion_proof_from(hash_range, tree_size, index)


async def consistency_proof(old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of `new_size` leaves extends the one of `old_size`."""
    return await _ranges(lambda hr: merkle.consistency_proof_from(hr, old_size, new_size))


async def _lock(conn: BaseDBAsyncClient) -> None:
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query(f"SELECT pg_advisory_xact_lock({_TREE_LOCK})")


async def _tree_end(conn: BaseDBAsyncClient) -> tuple[int, int]:
    """The tree's size and the id of its last row (0 when empty)."""
    last = await conn.execute_query_dict(
        "SELECT idx, event_id FROM audit_leaf ORDER BY idx DESC LIMIT 1"
    )
    return (int(last[0]["idx"]) + 1, int(last[0]["event_id"])) if last else (0, 0)


class _Moved(Exception):
    """Another process extended the tree while this one hashed: its work is discarded."""


def _hashed(
    rows: Sequence[dict[str, object]], tree_size: int, stack: list[tuple[int, bytes]]
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The leaves of `rows` (appended at `tree_size`) and the nodes they complete, from the
    tree's frontier `stack` (its complete subtrees, left to right)."""
    leaves: list[tuple[object, ...]] = []
    nodes: list[tuple[object, ...]] = []
    for row in rows:
        salt = os.urandom(SALT_BYTES)
        digest = fast_row_leaf_hash(row, salt)
        leaves.append((tree_size, int(str(row["id"])), salt.hex(), digest.hex()))
        tree_size += 1
        stack.append((0, digest))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            level, right = stack.pop()
            _, left = stack.pop()
            level += 1
            joined = merkle.node_hash(left, right)
            nodes.append((level * _LEVEL + (tree_size >> level) - 1, joined.hex()))
            stack.append((level, joined))
    return leaves, nodes


def _within_links(rows: list[dict[str, object]], limit: int) -> list[dict[str, object]]:
    """The first rows whose subject links stay within `limit` (at least one)."""
    links = 0
    for count, row in enumerate(rows):
        links += str(row["subject_id"] or "").count(",") + 1
        if links > limit and count:
            return rows[:count]
    return rows


async def _integrate_batch(batch: int) -> tuple[int, int, bool]:
    """Integrate up to `batch` rows, fewer if they name more than _LINKS_PER_BATCH subjects;
    returns (rows integrated, tree size, whether more rows may follow). The rows are read
    and hashed before the write lock is taken (on SQLite it stops every other process's
    writes, the servers' log rows included): the lock covers only a check that the tree
    still ends where it was read (else _Moved) and the inserts."""
    conn = _conn()
    tree_size, after = await _tree_end(conn)
    columns = ",".join(LEAF_COLUMNS)
    rows = await conn.execute_query_dict(
        f"SELECT {columns} FROM audit_event WHERE id > {_marks(conn, 1)} ORDER BY id LIMIT {int(batch)}",  # noqa: S608, E501
        [after],
    )
    if not rows:
        return 0, tree_size, False
    more = len(rows) >= batch
    sqlite = conn.capabilities.dialect == "sqlite"
    limit = _SQLITE_LINKS_PER_BATCH if sqlite else _LINKS_PER_BATCH
    if len(taken := _within_links(rows, limit)) < len(rows):
        rows, more = taken, True
    frontier = perfect_subtrees(0, tree_size)
    stored = await _node_hashes(conn, frontier)
    if len(stored) != len(frontier):
        if await _tree_end(conn) == (tree_size, after):
            raise NotInTree("the tree is missing nodes it should hold")
        raise _Moved  # read as another process wrote: read again
    leaves, nodes = _hashed(rows, tree_size, [(k[0], stored[k]) for k in frontier])
    lists = postings(rows)
    async with in_transaction() as tx:
        started = time.monotonic()  # SQLite: the write lock is held from here
        await _lock(tx)
        if await _tree_end(tx) != (tree_size, after):
            raise _Moved
        await _insert(tx, "audit_leaf", ("idx", "event_id", "salt", "hash"), leaves)
        await _insert(tx, "audit_node", ("id", "hash"), nodes)
        # a list already there (written by hand: nothing else writes one) is left as it is
        await _insert(tx, "audit_posting", _POSTING_COLUMNS, lists, " ON CONFLICT DO NOTHING")
    if sqlite and more:
        await _give_way(time.monotonic() - started)
    return len(rows), tree_size + len(rows), more


async def _give_way(held: float) -> None:
    """On SQLite, between two batches of one pass: leave the write lock free for as long
    as the batch held it, so that servers waiting to write their log rows (and to answer
    the reads those rows log) take it in turn, and a long pass holds it half the time."""
    await asyncio.sleep(held)


BLOCK_BITS = 10
"""A posting list holds ids of one block of 1,024 (id >> 10): the lists holding a range of
rows are those of the range's blocks (models/migrations/0023_audit_posting.py)."""
_POSTING_COLUMNS = ("subject_id", "first_id", "block", "first_at", "last_at", "event_ids")


def postings(rows: Sequence[dict[str, object]]) -> list[tuple[object, ...]]:
    """The `audit_posting` rows indexing the subjects of `rows` (in id order): per subject
    and block, the ids of the rows naming it, ascending, with their first id and their
    earliest and latest times. A subject listed twice in one row is listed once."""
    lists: dict[tuple[str, int], list[dict[str, object]]] = {}
    for row in rows:
        row_id = int(str(row["id"]))
        for subject in dict.fromkeys(str(row["subject_id"] or "").split(",")):
            if subject:
                lists.setdefault((subject, row_id >> BLOCK_BITS), []).append(row)
    found: list[tuple[object, ...]] = []
    for (subject, block), named in lists.items():
        times = [r["at"] for r in named]
        ids = ",".join(str(r["id"]) for r in named)
        found.append((subject, named[0]["id"], block, min(times), max(times), ids))  # type: ignore[type-var]
    return found


# Rows after the tree's last leaf whose comma-separated subject list holds a given id.
# Bounded on both sides: PostgreSQL plans `id > (subquery)` alone as a third of the log and
# scans all of it (23 ms for 200,000 rows, on every read by subject); a range of two
# unknown bounds it takes for a narrow one, read through the key.
_NOT_YET_INDEXED = (
    "SELECT id FROM audit_event WHERE id > coalesce("
    "(SELECT event_id FROM audit_leaf ORDER BY idx DESC LIMIT 1), 0) "
    "AND id <= (SELECT coalesce(max(id), 0) FROM audit_event) "
    "AND {position}(',' || subject_id || ',', {mark}) > 0 ORDER BY id"
)


async def rows_not_yet_indexed(subject_id: str) -> list[int]:
    """The ids of rows about `subject_id` that are not in the tree yet, so not yet in the
    subject index (`postings`, written as rows join the tree): the rows of
    the last second or so while the integration loop runs, read in one statement."""
    if not subject_id or "," in subject_id:  # no row lists such an id as one subject
        return []
    conn = _conn()
    postgres = conn.capabilities.dialect == "postgres"
    statement = _NOT_YET_INDEXED.format(
        position="strpos" if postgres else "instr", mark=_marks(conn, 1)
    )
    rows = await conn.execute_query_dict(statement, [f",{subject_id},"])
    return [int(str(row["id"])) for row in rows]


async def _size_if_complete() -> int | None:
    """The tree's size when it holds every committed row, read without a transaction (the
    loop of each server asks every second: no lock is taken when there is nothing to do);
    None when rows wait to join it."""
    rows = await _conn().execute_query_dict(
        "SELECT (SELECT id FROM audit_event ORDER BY id DESC LIMIT 1) AS last_row, "
        "(SELECT event_id FROM audit_leaf ORDER BY idx DESC LIMIT 1) AS last_leaf_row, "
        "(SELECT idx FROM audit_leaf ORDER BY idx DESC LIMIT 1) AS last_idx"
    )
    found = rows[0]
    if found["last_row"] is None:
        return 0
    if found["last_leaf_row"] is not None and int(str(found["last_leaf_row"])) == int(
        str(found["last_row"])
    ):
        return int(str(found["last_idx"])) + 1
    return None


async def integrate(*, batch: int = _BATCH) -> int:
    """Bring every committed row into the tree; returns the tree's size. Safe to run in
    several processes at once: each batch's inserts are serialised (an advisory lock on
    PostgreSQL, the write lock on SQLite), and a process that finds the tree moved on
    since it read it drops its batch and carries on from the new end."""
    if (up_to_date := await _size_if_complete()) is not None:
        return up_to_date
    failures = 0
    while True:
        try:
            _, tree_size, more = await _integrate_batch(batch)
        except _Moved:  # another process integrated meanwhile: carry on from its end
            continue
        except (IntegrityError, OperationalError, TransactionManagementError):
            failures += 1
            if failures > 5:
                raise
            continue
        if not more:
            return tree_size
