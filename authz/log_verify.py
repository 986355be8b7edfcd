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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from authz import log_tree
from authz.audit import GENESIS, STORED, canonical_values, links_agree, subjects_of
from models import AuditCheckpoint, AuditLogKey
from verifier import merkle
from verifier.leaf import PLAIN_ORDER, fast_leaf_data, leaf_data, row_leaf_hash
from verifier.merkle import leaf_hash
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
# Positions in a fetched row: id, the STORED fields, prev_hash, hash, then the leaf's index,
# salt and hash and the subjects linked in `audit_subject`.
_FIRST, _PREV, _HASH = 1, 1 + len(STORED), 2 + len(STORED)
_LEAF_IDX, _LEAF_SALT, _LEAF_HASH, _LINKED = range(3 + len(STORED), 7 + len(STORED))
_AT = STORED.index("at")
_SUBJECT = STORED.index("subject_id")
_ACTOR = STORED.index("actor_id")
_VERSION = STORED.index("policy_version")
_CHAINED = STORED.index("conditions")  # the fields before it are always in the chain
_PLAIN = tuple(STORED.index(name) for name in PLAIN_ORDER)
_escape: Callable[[object], str] = encode_basestring_ascii  # type: ignore[assignment]


async def _batch(conn: BaseDBAsyncClient, after: int, size: int) -> Sequence[Sequence[object]]:
    """The next rows by id, each a tuple (see the positions above): raw rows, no dicts."""
    mark = "$1" if conn.capabilities.dialect == "postgres" else "?"
    sql = (
        f"SELECT {_COLUMNS}, l.idx AS leaf_idx, l.salt AS leaf_salt, l.hash AS leaf_hash, "  # noqa: S608
        "(SELECT string_agg(s.subject_id, ',') FROM audit_subject s WHERE s.event_id = e.id) "
        "AS linked FROM audit_event e LEFT JOIN audit_leaf l ON l.event_id = e.id "
        f"WHERE e.id > {mark} ORDER BY e.id LIMIT {int(size)}"
    )
    if conn.capabilities.dialect != "postgres":
        sql = sql.replace("string_agg(s.subject_id, ',')", "group_concat(s.subject_id, ',')")
    _, rows = await conn.execute_query(sql, [after])
    return rows  # type: ignore[return-value]


def _at(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _stamp(value: object) -> str:
    """The row's time as both the chain and the leaf write it (UTC, ISO 8601, microseconds):
    computed once for both. A naive time fails as authz.audit.canonical_values fails."""
    at = _at(value)
    if at.tzinfo is None:
        raise TypeError("audit times are aware datetimes")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical(values: Sequence[object], stamp: str) -> bytes:
    """authz.audit.canonical_values(values), the time given as `stamp`, written directly for
    rows of text and an int version; any other row takes canonical_values itself."""
    chained = list(values[:_CHAINED])
    chained[_AT] = stamp
    conditions, version = values[_CHAINED], values[_VERSION]
    try:
        parts = list(map(_escape, chained))
        if conditions or version:
            if type(version) is not int:
                raise TypeError(version)
            parts += (_escape(conditions), str(version))
    except TypeError:
        exact = list(values)
        exact[_AT] = _at(values[_AT])
        return canonical_values(exact)
    return ("[" + ",".join(parts) + "]").encode()


def _leaf(values: Sequence[object], stamp: str, salt: bytes) -> bytes:
    """The row's leaf hash (verifier/leaf.py), the fast encoding for rows of text and an
    int version, else the defining one."""
    plain = [values[i] for i in _PLAIN]
    actor, subjects, version = values[_ACTOR], values[_SUBJECT], values[_VERSION]
    data = None
    if type(actor) is str and type(subjects) is str and type(version) is int:
        try:  # a plain field that is not text fails in the escaper
            data = fast_leaf_data(plain, actor, subjects, stamp, version, salt)  # type: ignore[arg-type]
        except TypeError:
            data = None
    if data is None:
        row = dict(zip(STORED, values, strict=True))
        row["at"] = _at(values[_AT])
        data = leaf_data(row, salt)
    return leaf_hash(data)


def _same_subjects(linked: object, subjects: object, in_tree: bool) -> bool:
    """authz.audit.links_agree, with a fast path for an index listing the subjects as the
    row does (the usual case)."""
    if linked == subjects and linked:
        return True
    indexed = set(str(linked or "").split(",")) - {""}
    return links_agree(indexed, set(subjects_of(str(subjects))), in_tree)


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
    for cp_row in signed:
        wanted[int(str(cp_row["size"]))] = b""
    tree = _Tree()
    if 0 in wanted:
        wanted[0] = tree.root()
    prev, checked, after = GENESIS, 0, 0
    sha256 = hashlib.sha256
    while True:
        rows = await _batch(conn, after, batch)
        if not rows:
            break
        first = True
        for row in rows:
            row_id = int(str(row[0]))
            values = row[_FIRST:_PREV]
            stamp = _stamp(values[_AT])
            canonical = _canonical(values, stamp)
            if row[_PREV] != prev:
                return _broken(checked, tree, row_id, "prev_hash does not link to the row before")
            if sha256(prev.encode() + canonical).hexdigest() != row[_HASH]:
                return _broken(checked, tree, row_id, "hash does not match the row's content")
            if not _same_subjects(row[_LINKED], values[_SUBJECT], row[_LEAF_IDX] is not None):
                return _broken(checked, tree, row_id, "its subject index was altered")
            prev = str(row[_HASH])
            if row[_LEAF_IDX] is None:
                checked += 1
                continue  # not in the tree yet: only rows after the last integrated one
            if int(str(row[_LEAF_IDX])) != tree.size:
                return _broken(checked, tree, row_id, "its leaf is out of order or missing")
            salt = bytes.fromhex(str(row[_LEAF_SALT]))
            digest = _leaf(values, stamp, salt)
            if first:  # the fast encodings must be the defining ones, byte for byte
                _check_encodings(values, stamp, salt, canonical, digest)
                first = False
            if digest.hex() != row[_LEAF_HASH]:
                return _broken(checked, tree, row_id, "its content does not match its leaf")
            checked += 1
            tree.add(digest)
            if tree.size in wanted:
                wanted[tree.size] = tree.root()
        after = int(str(rows[-1][0]))
    return await _against_checkpoints(checked, tree, held, signed, wanted)


def _check_encodings(
    values: Sequence[object], stamp: str, salt: bytes, canonical: bytes, digest: bytes
) -> None:
    row = dict(zip(STORED, values, strict=True))
    row["at"] = _at(values[_AT])
    if canonical != canonical_values([row[name] for name in STORED]) or digest != row_leaf_hash(
        row, salt
    ):
        raise RuntimeError("internal error: the fast row encodings differ from the defining ones")


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
