"""Verifying the whole decision log (docs/AUDIT_LOG.md: verification): every row against its
chain link, its own hash, its subject index and its leaf; the tree's root recomputed from
the rows and compared with checkpoints held outside the database and with every
checkpoint the log signed. Each attack is named:

- `edited`: a row no longer matches its hash, its leaf or its subject index;
- `truncated`: a checkpoint covers more rows than the log holds (the newest were deleted);
- `rewritten`: the rows hash consistently, but not to the root a checkpoint signed (the
  chain was rewritten from some row on, hashes recomputed);
- `inconsistent`: two checkpoints cannot both be views of one log (a split view);
- `signature`: a checkpoint given to check is not signed by a key of the log;
- `tree`: the stored tree (from which proofs are served) disagrees with the rows.

One pass over the rows, in batches, with O(log n) memory for the tree; or, for a large log
and several cores, id ranges checked side by side in worker processes (authz/log_ranges.py),
joined in order. The per-row checks are authz/log_walk.py's, the same on both paths."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from authz import log_tree
from authz.audit import GENESIS
from authz.log_ranges import DIGEST, RangeWalk, plan, walk_range
from authz.log_walk import UNLINKED, Walk, blocks, lists_sql, rows_sql
from models import AuditCheckpoint, AuditLogKey
from verifier import merkle
from verifier.note import Checkpoint, NoteError, Verifier, open_checkpoint, parse_vkey


@dataclass(frozen=True, slots=True)
class HeldCheckpoint:
    """A checkpoint an auditor holds (a file), opened: where it came from and what it says."""

    label: str
    checkpoint: Checkpoint
    signed_at: int


@dataclass
class LogVerification:
    ok: bool
    checked: int = 0
    tree_size: int = 0
    kind: str = ""
    problem: str = ""
    first_broken_id: int | None = None
    checkpoints: list[str] = field(default_factory=list)


async def published_verifiers() -> list[Verifier]:
    """The log's keys as its database publishes them (an auditor should pin their own)."""
    return [parse_vkey(k.vkey) for k in await AuditLogKey.all()]


def open_held(label: str, note: str | bytes, verifiers: Sequence[Verifier]) -> HeldCheckpoint:
    """A checkpoint file opened with the log's keys; NoteError names what is wrong."""
    checkpoint, signed_at = open_checkpoint(note, verifiers)
    return HeldCheckpoint(label, checkpoint, signed_at)


RANGE_ROWS = 100_000
"""Rows per id range when verifying with workers; a smaller log is walked in one process
(starting the workers costs about a second)."""


class _Tree:
    """The tree's root as leaves arrive: a stack of complete subtrees (O(log n)). The root
    at each size in `wanted` is written there as the tree passes it."""

    def __init__(self, wanted: dict[int, bytes]) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []
        self._wanted = wanted
        if 0 in wanted:
            wanted[0] = self.root()

    def add(self, digest: bytes) -> None:
        self.size += 1
        level, node = 0, digest
        while self._stack and self._stack[-1][0] == level:
            node = merkle.node_hash(self._stack.pop()[1], node)
            level += 1
        self._stack.append((level, node))
        if self.size in self._wanted:
            self._wanted[self.size] = self.root()

    def root(self) -> bytes:
        if not self._stack:
            return merkle.EMPTY_ROOT
        folded = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            folded = merkle.node_hash(left, folded)
        return folded


async def _batch(conn: BaseDBAsyncClient, after: int, size: int) -> Sequence[Sequence[object]]:
    """The next rows by id, each a tuple (authz/log_walk.py's positions): no dicts."""
    sql = rows_sql(conn.capabilities.dialect == "postgres") + str(int(size))
    _, rows = await conn.execute_query(sql, [after])
    return rows  # type: ignore[return-value]


async def verify_log(
    held: Sequence[HeldCheckpoint] = (),
    *,
    batch: int = 20_000,
    workers: int = 1,
    database_url: str = "",
    range_rows: int = RANGE_ROWS,
) -> LogVerification:
    """Walk the log once; check it against `held` (opened checkpoints from outside the
    database) and against every checkpoint the log signed. With `workers` above 1 and the
    `database_url` of a file or a server, a log of more than `range_rows` rows is checked
    in id ranges by that many worker processes (authz/log_ranges.py)."""
    signed = await AuditCheckpoint.all().order_by("size", "id").values("size", "root", "id")
    wanted: dict[int, bytes] = {}  # tree size -> recomputed root, filled during the walk
    for cp in held:
        wanted[cp.checkpoint.size] = b""
    for cp_row in signed:
        wanted[int(str(cp_row["size"]))] = b""
    tree = _Tree(wanted)
    conn = connections.get("default")
    ids = await _id_span(conn) if workers > 1 and _parallel_url(database_url) else None
    if ids is not None and ids[1] - ids[0] >= range_rows:
        found = await _walk_ranges(tree, ids, workers, database_url, batch, range_rows)
    else:
        found = await _walk_here(conn, tree, batch)
    if isinstance(found, LogVerification):
        return found
    return await _against_checkpoints(found, tree, held, signed, wanted)


async def _walk_here(conn: BaseDBAsyncClient, tree: _Tree, batch: int) -> int | LogVerification:
    """The walk in this process: the rows checked, or the first broken row."""
    walk = Walk(tree.add, prev=GENESIS, next_leaf=0)
    after = 0
    lists_of = lists_sql(conn.capabilities.dialect == "postgres")
    while rows := await _batch(conn, after, batch):
        _, lists = await conn.execute_query(lists_of, list(blocks(rows)))
        if not walk.feed(rows, lists):  # type: ignore[arg-type]
            return _broken(walk.checked, tree, *walk.broken)  # type: ignore[misc]
        after = int(str(rows[-1][0]))
    return walk.checked


def _parallel_url(database_url: str) -> bool:
    if database_url.startswith("sqlite://"):
        return ":memory:" not in database_url and "mode=memory" not in database_url
    return database_url.startswith(("postgres://", "asyncpg://"))


async def _id_span(conn: BaseDBAsyncClient) -> tuple[int, int] | None:
    _, rows = await conn.execute_query("SELECT min(id), max(id) FROM audit_event")
    low, high = rows[0][0], rows[0][1]
    return None if low is None else (int(str(low)), int(str(high)))


async def _walk_ranges(
    tree: _Tree, ids: tuple[int, int], workers: int, url: str, batch: int, range_rows: int
) -> int | LogVerification:
    """The walk in id ranges, joined in order: each range's first row must link to the
    range before and its first leaf continue the tree."""
    loop = asyncio.get_running_loop()
    ranges = plan(*ids, workers=workers, range_rows=range_rows)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = [
            loop.run_in_executor(pool, walk_range, url, after, upto, batch)
            for after, upto in ranges
        ]
        try:
            return await _join(tree, parts)
        finally:
            for part in parts:
                part.cancel()


async def _join(tree: _Tree, parts: list[asyncio.Future[RangeWalk]]) -> int | LogVerification:
    prev, checked = GENESIS, 0
    for pending in parts:
        part = await pending
        if part.first_id is None:
            continue  # no rows in these ids
        if part.first_prev != prev:
            return _broken(checked, tree, part.first_id, UNLINKED)
        broken = part.broken
        before_leaves = broken is not None and (
            part.first_leaf_id is None or broken[0] < part.first_leaf_id
        )
        if part.first_leaf is not None and not before_leaves and part.first_leaf != tree.size:
            return _broken(
                checked + part.checked_before_first_leaf,
                tree,
                part.first_leaf_id,  # type: ignore[arg-type]
                "its leaf is out of order or missing",
            )
        digests = part.digests
        for start in range(0, len(digests), DIGEST):
            tree.add(digests[start : start + DIGEST])
        if broken is not None:
            return _broken(checked + part.checked, tree, *broken)
        checked += part.checked
        prev = part.last_hash  # type: ignore[assignment]
    return checked


def _broken(checked: int, tree: _Tree, row_id: int, problem: str) -> LogVerification:
    return LogVerification(False, checked, tree.size, "edited", problem, first_broken_id=row_id)


async def _against_checkpoints(
    checked: int,
    tree: _Tree,
    held: Sequence[HeldCheckpoint],
    signed: list[dict[str, object]],
    wanted: dict[int, bytes],
) -> LogVerification:
    result = LogVerification(True, checked, tree.size)
    views: list[tuple[str, int, bytes]] = [
        (cp.label, cp.checkpoint.size, cp.checkpoint.root) for cp in held
    ]
    for r in signed:
        views.append((f"signed checkpoint #{r['id']}", int(str(r["size"])), _hex(r["root"])))
    for label, size, _ in views:
        if size > tree.size:
            return _finding(
                result, "truncated", f"{label} covers {size} rows; the log holds {tree.size}"
            )
    # Two views of one size with different roots cannot come from one log.
    by_size: dict[int, tuple[str, bytes]] = {}
    for label, size, root in views:
        other = by_size.setdefault(size, (label, root))
        if other[1] != root:
            return _finding(
                result,
                "inconsistent",
                f"{label} and {other[0]} give two different roots for {size} rows",
            )
    matching = [(label, size) for label, size, root in views if wanted[size] == root]
    for label, size, root in sorted(views, key=lambda v: v[1]):
        if wanted[size] == root:
            continue
        later = [m for m in matching if m[1] > size]
        earlier = [m for m in matching if m[1] < size]
        if later or earlier:
            ref = (later or earlier)[0]
            return _finding(
                result,
                "inconsistent" if later else "rewritten",
                f"{label} ({size} rows) is not consistent with {ref[0]} ({ref[1]} rows)"
                if later
                else f"the log's first {size} rows do not hash to the root of {label}; "
                f"they still match {ref[0]} ({ref[1]} rows): rewritten after it",
            )
        return _finding(
            result, "rewritten", f"the log's first {size} rows do not hash to the root of {label}"
        )
    stored = await log_tree.size()
    try:
        same = stored != tree.size or await log_tree.root(stored) == tree.root()
    except log_tree.NotInTree:
        same = False
    if not same:
        return _finding(result, "tree", "the stored tree's nodes do not match the rows")
    result.checkpoints = [label for label, _, _ in views]
    return result


def _hex(value: object) -> bytes:
    return bytes.fromhex(str(value))


def _finding(result: LogVerification, kind: str, problem: str) -> LogVerification:
    result.ok, result.kind, result.problem = False, kind, problem
    return result


__all__ = [
    "HeldCheckpoint",
    "LogVerification",
    "NoteError",
    "open_held",
    "published_verifiers",
    "verify_log",
]
