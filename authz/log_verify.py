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

One pass over the rows, in batches, with O(log n) memory for the tree."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from authz import log_tree
from authz.audit import GENESIS, STORED, canonical_values, subjects_of
from models import AuditCheckpoint, AuditLogKey
from verifier import merkle
from verifier.leaf import row_leaf_hash
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


class _Tree:
    """The tree's root as leaves arrive: a stack of complete subtrees (O(log n))."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []

    def add(self, digest: bytes) -> None:
        self.size += 1
        level, node = 0, digest
        while self._stack and self._stack[-1][0] == level:
            node = merkle.node_hash(self._stack.pop()[1], node)
            level += 1
        self._stack.append((level, node))

    def root(self) -> bytes:
        if not self._stack:
            return merkle.EMPTY_ROOT
        folded = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            folded = merkle.node_hash(left, folded)
        return folded


_COLUMNS = ",".join(f"e.{c}" for c in dict.fromkeys(("id", *STORED, "prev_hash", "hash")))


async def _batch(conn: BaseDBAsyncClient, after: int, size: int) -> list[dict[str, object]]:
    mark = "$1" if conn.capabilities.dialect == "postgres" else "?"
    sql = (
        f"SELECT {_COLUMNS}, l.idx AS leaf_idx, l.salt AS leaf_salt, l.hash AS leaf_hash, "  # noqa: S608
        "(SELECT string_agg(s.subject_id, ',') FROM audit_subject s WHERE s.event_id = e.id) "
        "AS linked FROM audit_event e LEFT JOIN audit_leaf l ON l.event_id = e.id "
        f"WHERE e.id > {mark} ORDER BY e.id LIMIT {int(size)}"
    )
    if conn.capabilities.dialect != "postgres":
        sql = sql.replace("string_agg(s.subject_id, ',')", "group_concat(s.subject_id, ',')")
    return await conn.execute_query_dict(sql, [after])


def _at(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


async def verify_log(
    held: Sequence[HeldCheckpoint] = (), *, batch: int = 20_000
) -> LogVerification:
    """Walk the log once; check it against `held` (opened checkpoints from outside the
    database) and against every checkpoint the log signed."""
    conn = connections.get("default")
    signed = await AuditCheckpoint.all().order_by("size", "id").values("size", "root", "id")
    wanted: dict[int, bytes] = {}  # tree size -> recomputed root, filled during the walk
    for cp in held:
        wanted[cp.checkpoint.size] = b""
    for row in signed:
        wanted[int(str(row["size"]))] = b""
    tree = _Tree()
    if 0 in wanted:
        wanted[0] = tree.root()
    prev, checked, after = GENESIS, 0, 0
    encode_values = canonical_values
    while True:
        rows = await _batch(conn, after, batch)
        if not rows:
            break
        for row in rows:
            row_id = int(str(row["id"]))
            values = [row[name] for name in STORED]
            values[STORED.index("at")] = _at(values[STORED.index("at")])
            canonical = encode_values(values)
            if row["prev_hash"] != prev:
                return _broken(checked, tree, row_id, "prev_hash does not link to the row before")
            if hashlib.sha256(prev.encode() + canonical).hexdigest() != row["hash"]:
                return _broken(checked, tree, row_id, "hash does not match the row's content")
            linked = set(str(row["linked"] or "").split(",")) - {""}
            if linked != set(subjects_of(str(row["subject_id"]))):
                return _broken(checked, tree, row_id, "its subject index was altered")
            prev = str(row["hash"])
            if row["leaf_idx"] is None:
                checked += 1
                continue  # not in the tree yet: only rows after the last integrated one
            if int(str(row["leaf_idx"])) != tree.size:
                return _broken(checked, tree, row_id, "its leaf is out of order or missing")
            row["at"] = values[STORED.index("at")]
            digest = row_leaf_hash(row, bytes.fromhex(str(row["leaf_salt"])))
            if digest.hex() != row["leaf_hash"]:
                return _broken(checked, tree, row_id, "its content does not match its leaf")
            checked += 1
            tree.add(digest)
            if tree.size in wanted:
                wanted[tree.size] = tree.root()
        after = int(str(rows[-1]["id"]))
    return await _against_checkpoints(checked, tree, held, signed, wanted)


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
