"""The per-row checks of the decision log's verification, over consecutive rows by id: each
row against its chain link, its own hash, its subject index and its leaf. Shared by the
walk in one process (authz/log_verify.py) and by the walks of id ranges in worker
processes (authz/log_ranges.py), so both check a row the same way.

A walk that starts mid-log does not know the hash the first row must link to, nor the
leaf index it must have: it takes the first row's own and reports them (`first_prev`,
`first_leaf`), and whoever joins the ranges checks them against the range before."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any

from authz.audit import STORED, canonical_values, links_agree, subjects_of
from authz.log_tree import BLOCK_BITS
from verifier.leaf import PLAIN_ORDER, fast_leaf_data, leaf_data, row_leaf_hash
from verifier.merkle import leaf_hash

_COLUMNS = ",".join(f"e.{c}" for c in dict.fromkeys(("id", *STORED, "prev_hash", "hash")))
# Positions in a fetched row: id, the STORED fields, prev_hash, hash, then the leaf's index,
# salt and hash.
_FIRST, _PREV, _HASH = 1, 1 + len(STORED), 2 + len(STORED)
_LEAF_IDX, _LEAF_SALT, _LEAF_HASH = range(3 + len(STORED), 6 + len(STORED))
_AT = STORED.index("at")
_SUBJECT = STORED.index("subject_id")
_ACTOR = STORED.index("actor_id")
_VERSION = STORED.index("policy_version")
_CHAINED = STORED.index("conditions")  # the fields before it are always in the chain
_PLAIN = tuple(STORED.index(name) for name in PLAIN_ORDER)
UNLINKED = "prev_hash does not link to the row before"
_INTEGER = re.compile(r"[+-]?[0-9]+")
_escape: Callable[[object], str] = encode_basestring_ascii  # type: ignore[assignment]


def rows_sql(postgres: bool, *, bounded: bool = False) -> str:
    """The next rows by id after the first parameter (and up to the second, if `bounded`),
    each a tuple in the positions above; the batch size is appended as `LIMIT n`."""
    after, upto = ("$1", "$2") if postgres else ("?", "?")
    bound = f" AND e.id <= {upto}" if bounded else ""
    return (
        f"SELECT {_COLUMNS}, l.idx AS leaf_idx, l.salt AS leaf_salt, l.hash AS leaf_hash "  # noqa: S608
        "FROM audit_event e LEFT JOIN audit_leaf l ON l.event_id = e.id "
        f"WHERE e.id > {after}{bound} ORDER BY e.id LIMIT "
    )


def lists_sql(postgres: bool) -> str:
    """The posting lists (block, subject, ids) of the blocks from the first parameter to
    the second: those of a range of rows are its first row's block to its last's."""
    first, last = ("$1", "$2") if postgres else ("?", "?")
    return (
        "SELECT block, subject_id, event_ids FROM audit_posting "  # noqa: S608
        f"WHERE block >= {first} AND block <= {last} ORDER BY block, subject_id, first_id"
    )


def blocks(rows: Sequence[Sequence[object]]) -> tuple[int, int]:
    """The blocks of `rows` (consecutive by id), the parameters of `lists_sql`."""
    return int(str(rows[0][0])) >> BLOCK_BITS, int(str(rows[-1][0])) >> BLOCK_BITS


def linked_subjects(lists: Sequence[Sequence[Any]]) -> dict[int, list[str]]:
    """Per row id, the subjects the posting lists `lists` (as `lists_sql` returns them)
    link it to, in the lists' order (so a row's in its subjects' order, as the log lists
    them, where the database orders text as Python does); an id listed outside its list's
    block is no link (as the `audit_subject` view reads them), and neither is what is not
    an id (only written by hand)."""
    linked: dict[int, list[str]] = {}
    for block, subject, ids in lists:
        try:  # plain ASCII digits, as the follower writes them (int() takes "1_0", " 1")
            if not (ids.isascii() and ids.replace(",", "").isdigit()):
                raise ValueError(ids)
            numbers = [int(ids)] if "," not in ids else list(map(int, ids.split(",")))
        except ValueError:
            numbers = [int(t) for t in str(ids).split(",") if _INTEGER.fullmatch(t)]
        for row_id in numbers:
            if row_id >> BLOCK_BITS == block:
                if row_id in linked:
                    linked[row_id].append(subject)
                else:
                    linked[row_id] = [subject]
    return linked


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


def _same_subjects(linked: list[str], subjects: object, in_tree: bool) -> bool:
    """authz.audit.links_agree on a row's subject list as stored, with a fast path for
    links in the order the row lists its subjects (the usual case): as many links as the
    list has parts, none empty, joined as the row lists them (so no link holds a comma)."""
    text = str(subjects)
    if len(linked) == text.count(",") + 1 and ",".join(linked) == text and "" not in linked:
        return True
    return links_agree(set(linked), set(subjects_of(str(subjects))), in_tree)


def _check_encodings(
    values: Sequence[object], stamp: str, salt: bytes, canonical: bytes, digest: bytes
) -> None:
    row = dict(zip(STORED, values, strict=True))
    row["at"] = _at(values[_AT])
    if canonical != canonical_values([row[name] for name in STORED]) or digest != row_leaf_hash(
        row, salt
    ):
        raise RuntimeError("internal error: the fast row encodings differ from the defining ones")


@dataclass
class Walk:
    """The state of a walk over consecutive rows. `prev` is the hash the next row must
    link to and `next_leaf` the index the next row in the tree must have; None takes the
    first row's own (recorded in `first_prev`, `first_leaf`). `on_leaf` receives each leaf
    hash in order. After a broken row, `broken` holds its id and what is wrong, and
    `checked` the rows checked before it."""

    on_leaf: Callable[[bytes], object]
    prev: str | None
    next_leaf: int | None
    checked: int = 0
    first_id: int | None = None
    first_prev: str | None = None
    first_leaf: int | None = None
    first_leaf_id: int | None = None
    checked_before_first_leaf: int = 0
    broken: tuple[int, str] | None = field(default=None)

    def feed(self, rows: Sequence[Sequence[object]], lists: Sequence[Sequence[Any]]) -> bool:
        """Check `rows` (the next ones by id, as `rows_sql` returns them) and the posting
        lists of their blocks (`lists_sql` with `blocks(rows)`); False at the first broken
        row."""
        linked = linked_subjects(lists)
        unlinked: list[str] = []
        sha256 = hashlib.sha256
        on_leaf = self.on_leaf
        prev = self.prev
        first = True
        for row in rows:
            row_id = int(str(row[0]))
            if prev is None:
                prev = self.first_prev = str(row[_PREV])
            if self.first_id is None:
                self.first_id = row_id
            values = row[_FIRST:_PREV]
            stamp = _stamp(values[_AT])
            canonical = _canonical(values, stamp)
            if row[_PREV] != prev:
                return self._break(row_id, UNLINKED)
            if sha256(prev.encode() + canonical).hexdigest() != row[_HASH]:
                return self._break(row_id, "hash does not match the row's content")
            in_tree = row[_LEAF_IDX] is not None
            if not _same_subjects(linked.get(row_id, unlinked), values[_SUBJECT], in_tree):
                return self._break(row_id, "its subject index was altered")
            prev = self.prev = str(row[_HASH])
            if row[_LEAF_IDX] is None:
                self.checked += 1
                continue  # not in the tree yet: only rows after the last integrated one
            index = int(str(row[_LEAF_IDX]))
            if self.next_leaf is None:
                self.next_leaf = self.first_leaf = index
                self.first_leaf_id, self.checked_before_first_leaf = row_id, self.checked
            if index != self.next_leaf:
                return self._break(row_id, "its leaf is out of order or missing")
            salt = bytes.fromhex(str(row[_LEAF_SALT]))
            digest = _leaf(values, stamp, salt)
            if first:  # the fast encodings must be the defining ones, byte for byte
                _check_encodings(values, stamp, salt, canonical, digest)
                first = False
            if digest.hex() != row[_LEAF_HASH]:
                return self._break(row_id, "its content does not match its leaf")
            self.checked += 1
            self.next_leaf += 1
            on_leaf(digest)
        return True

    def _break(self, row_id: int, problem: str) -> bool:
        self.broken = (row_id, problem)
        return False
