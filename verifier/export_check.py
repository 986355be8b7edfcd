"""Check an export of the decision log against a signed checkpoint:
`python -m verifier check-export --rows FILE.jsonl --checkpoint FILE --log-key VKEY`.

The export (`custos audit export`) is JSON Lines in leaf order: per row every field of
the leaf (verifier/leaf.py) plus `leaf_index` (0, 1, 2, ...) and the row's `salt` (32 hex
digits). The check recomputes every row's leaf hash and the Merkle root of the first
`checkpoint.size` rows, and says which of these it found:

- ok: the export's first rows are exactly the rows the log signed;
- truncated: the export holds fewer rows than the checkpoint covers;
- rewritten: the root of the export's rows is not the checkpoint's (a row was edited,
  added, removed or moved);
- bad rows: a row that is not a JSON object, lacks a field, has a field of the wrong
  type or a bad salt, or a `leaf_index` out of sequence (a gap or disorder), each named.

The root is computed as the rows stream by, with a stack of at most log2(n) subtree roots
(RFC 9162 splits at the largest power of two, so the tree of n leaves is the perfect
subtrees of n's binary digits, joined from the right): memory does not grow with the log.

Speed: recomputing leaves is most of the work, so `_leaf_data` checks an export row's
types and hands it to verifier.leaf.fast_leaf_data (the leaf written directly, HMAC from
SHA-256 states shared by the row's commitments), two to three times the speed of
verifier.leaf.leaf_data; the first row of every chunk is also computed by leaf_data and
must agree byte for byte, so that the two can never drift apart unnoticed. Large files
are spread over several processes (`jobs`)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from operator import itemgetter
from pathlib import Path

from verifier import leaf, merkle
from verifier.note import Checkpoint

TEXT_FIELDS = leaf.PLAIN_ORDER
"""The leaf's plain text fields, in its (sorted) key order: verifier/leaf.py's list."""
ID_FIELDS = ("actor_id", "subject_id")
REQUIRED = (*TEXT_FIELDS, *ID_FIELDS, "at", "policy_version", "leaf_index", "salt")
_REQUIRED_SET = frozenset(REQUIRED)
MAX_LINE = 1 << 20
MAX_PROBLEMS = 1000
"""Problems kept (and printed) in full; the rest are only counted."""
CHUNK = 4096
PARALLEL_FROM = 4 << 20
"""Files smaller than this (bytes) are checked in one process: starting workers costs
more than it saves."""
_HEX = frozenset("0123456789abcdefABCDEF")
_INT64 = 1 << 63
_sha256 = hashlib.sha256


class ExportError(Exception):
    """The input cannot be checked at all (exit status 1)."""


class _BadRow(Exception):
    pass


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A row the check could not use: its line in the file, its leaf index if it had one."""

    line: int
    leaf_index: int | None
    reason: str

    def __str__(self) -> str:
        where = f"leaf {self.leaf_index}" if self.leaf_index is not None else "a row"
        return f"{where} (line {self.line}): {self.reason}"


@dataclass(slots=True)
class Report:
    """What the check found; `findings` is empty when the export matches."""

    size: int
    expected_root: bytes
    rows: int = 0
    root: bytes | None = None
    problems: list[RowProblem] = field(default_factory=list)
    problem_count: int = 0
    seconds: float = 0.0

    @property
    def truncated(self) -> bool:
        return self.rows < self.size

    @property
    def rewritten(self) -> bool:
        return self.root is not None and self.root != self.expected_root

    @property
    def ok(self) -> bool:
        return not (self.problem_count or self.truncated or self.rewritten)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def findings(self) -> list[str]:
        """One line per finding, most specific first."""
        lines = [f"bad row: {p}" for p in self.problems]
        if self.problem_count > len(self.problems):
            lines.append(f"bad rows: {self.problem_count - len(self.problems)} more not shown")
        if self.truncated:
            lines.append(
                f"truncated: the export holds {self.rows} rows, the checkpoint covers {self.size}"
            )
        elif self.rewritten:
            lines.append(
                f"rewritten: the root of the export's first {self.size} rows is not the "
                "checkpoint's (a row was edited, added, removed or moved)"
            )
        elif self.problem_count and self.root is None:
            lines.append(f"the root of the first {self.size} rows cannot be computed: bad rows")
        return lines

    def summary(self) -> str:
        if not self.ok:
            return f"FAILED: {self.rows} rows read, checkpoint of {self.size} rows"
        extra = self.rows - self.size
        more = f"; {extra} later rows are not covered by this checkpoint" if extra else ""
        return f"ok: {self.size} rows, the root matches the checkpoint{more}"


def _salt(row: dict[str, object]) -> bytes:
    salt = row["salt"]
    if type(salt) is not str or len(salt) != 2 * leaf.SALT_BYTES or not _HEX.issuperset(salt):
        raise _BadRow(f"salt is not {2 * leaf.SALT_BYTES} hex digits")
    return bytes.fromhex(salt)


_PLAIN_VALUES = itemgetter(*TEXT_FIELDS)
_TEXT_TYPES = frozenset((str, type(None)))


def _leaf_data(row: dict[str, object], salt: bytes) -> bytes:
    """verifier.leaf.leaf_data of an export row whose fields are all present, written
    directly (leaf version 1). Raises _BadRow on a field of the wrong type."""
    values = _PLAIN_VALUES(row)
    if not _TEXT_TYPES.issuperset(map(type, values)):
        name = next(
            n for n, v in zip(TEXT_FIELDS, values, strict=True) if type(v) not in _TEXT_TYPES
        )
        raise _BadRow(f"{name} is not text or null")
    actor = row["actor_id"]
    subject = row["subject_id"]
    if type(actor) is not str:
        if actor is not None:
            raise _BadRow("actor_id is not text or null")
        actor = ""
    if type(subject) is not str:
        if subject is not None:
            raise _BadRow("subject_id is not text or null")
        subject = ""
    at = row["at"]
    if type(at) is not str or len(at) > 64:
        raise _BadRow("at is not ISO 8601 text")
    try:
        stamp = leaf.timestamp(at)
    except (ValueError, OverflowError):
        raise _BadRow(f"at is not an ISO 8601 time with a zone: {at[:40]!r}") from None
    version = row["policy_version"]
    if version is None:
        version = 0
    if type(version) is not int or not -_INT64 <= version < _INT64:
        raise _BadRow("policy_version is not a 64-bit integer or null")
    plain = [v if v is not None else "" for v in values]
    try:
        return leaf.fast_leaf_data(plain, actor, subject, stamp, version, salt)
    except UnicodeEncodeError:
        raise _BadRow("actor_id or subject_id is not valid Unicode") from None


def _parse(line: bytes) -> dict[str, object]:
    if len(line) > MAX_LINE:
        raise _BadRow(f"the line is longer than {MAX_LINE} bytes")
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise _BadRow("the line is not UTF-8") from None
    except (ValueError, RecursionError):
        raise _BadRow("the line is not JSON") from None
    if type(row) is not dict:
        raise _BadRow("the line is not a JSON object")
    return row


def _index(row: dict[str, object]) -> int | None:
    index = row.get("leaf_index")
    return index if type(index) is int and 0 <= index < 1 << 64 else None


def _missing(row: dict[str, object]) -> list[str]:
    if _REQUIRED_SET.issubset(row.keys()):
        return []
    return [name for name in REQUIRED if name not in row]


@dataclass(frozen=True, slots=True)
class _Chunk:
    """The outcome of hashing consecutive lines: per row its leaf index (None when it has
    none) and its leaf hash (32 zero bytes when the row is bad), and the rows' problems
    (position in the chunk, reason)."""

    indices: list[int | None]
    hashes: bytes
    problems: list[tuple[int, str]]


_NO_HASH = bytes(merkle.HASH_SIZE)


PENDING = "leaf_index is null: the row is not in the tree yet"
"""A row the log wrote after its tree was last brought up to date: fine after the rows a
checkpoint covers (an export may end with a few), a finding within them."""


def _hash_chunk(lines: list[bytes]) -> _Chunk:
    indices: list[int | None] = []
    hashes: list[bytes] = []
    problems: list[tuple[int, str]] = []
    checked = False
    for position, line in enumerate(lines):
        index: int | None = None
        try:
            row = _parse(line)
            index = _index(row)
            missing = _missing(row)
            if missing:
                raise _BadRow("missing " + ", ".join(missing))
            if index is None:
                if row["leaf_index"] is None:
                    raise _BadRow(PENDING)
                raise _BadRow("leaf_index is not a number from 0 to 2^64-1")
            salt = _salt(row)
            data = _leaf_data(row, salt)
        except _BadRow as bad:
            indices.append(index)
            hashes.append(_NO_HASH)
            problems.append((position, str(bad)))
            continue
        if not checked:
            # The direct encoding must be verifier/leaf.py's, byte for byte.
            if leaf.leaf_data(row, salt) != data:
                raise ExportError(
                    f"internal error: the fast leaf encoding differs from verifier/leaf.py "
                    f"at leaf {index}"
                )
            checked = True
        indices.append(index)
        hashes.append(_sha256(b"\x00" + data).digest())
    return _Chunk(indices, b"".join(hashes), problems)


def _lines(handle: Iterable[bytes]) -> Iterator[tuple[list[int], list[bytes]]]:
    """Chunks of non-blank lines, with the (1-based) line number of each."""
    numbers: list[int] = []
    chunk: list[bytes] = []
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        numbers.append(number)
        chunk.append(line)
        if len(chunk) == CHUNK:
            yield numbers, chunk
            numbers, chunk = [], []
    if chunk:
        yield numbers, chunk


class _Tree:
    """The root of a stream of leaf hashes, in O(log n) memory: `stack` holds the roots of
    the perfect subtrees so far, their sizes the binary digits of the count."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []
        self.count = 0

    def add(self, leaf_hash: bytes) -> None:
        self.count += 1
        node, height = leaf_hash, 0
        stack = self.stack
        while stack and stack[-1][0] == height:
            node = merkle.node_hash(stack.pop()[1], node)
            height += 1
        stack.append((height, node))

    def root(self) -> bytes:
        if not self.stack:
            return merkle.EMPTY_ROOT
        node = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            node = merkle.node_hash(left, node)
        return node


def check_rows(lines: Iterable[bytes], checkpoint: Checkpoint, *, jobs: int = 1) -> Report:
    """Check the export's lines (bytes, one row each) against `checkpoint`, whose
    signature the caller has verified. `jobs` > 1 hashes in that many processes."""
    started = time.perf_counter()
    report = Report(checkpoint.size, checkpoint.root)
    tree = _Tree()
    previous: int | None = None  # the leaf index of the row before
    clean = True  # every row so far (within the checkpoint) could be hashed in place

    def problem(line: int, index: int | None, reason: str) -> None:
        report.problem_count += 1
        if len(report.problems) < MAX_PROBLEMS:
            report.problems.append(RowProblem(line, index, reason))

    for numbers, chunk in _chunks(_lines(lines), jobs):
        bad = dict(chunk.problems)
        for position, index in enumerate(chunk.indices):
            row = report.rows
            report.rows += 1
            if position in bad:
                if bad[position] == PENDING and row >= checkpoint.size:
                    continue  # written after the tree was last brought up to date
                problem(numbers[position], index, bad[position])
                if row < checkpoint.size:
                    clean = False
            expected = 0 if previous is None else previous + 1
            if index is not None and index != expected:
                if previous is None:
                    why = f"the first row has leaf_index {index}, not 0"
                elif index > expected:
                    why = (
                        f"leaf_index {index} follows {previous}: "
                        f"rows {expected} to {index - 1} are missing"
                    )
                else:
                    why = f"leaf_index {index} follows {previous}: rows out of order or repeated"
                problem(numbers[position], index, why)
                if row < checkpoint.size:
                    clean = False
            previous = index if index is not None else expected
            if clean and row < checkpoint.size:
                tree.add(chunk.hashes[position * 32 : position * 32 + 32])
    if clean and report.rows >= checkpoint.size:
        report.root = tree.root()
    report.seconds = time.perf_counter() - started
    return report


def _chunks(
    chunks: Iterator[tuple[list[int], list[bytes]]], jobs: int
) -> Iterator[tuple[list[int], _Chunk]]:
    """The hashed chunks in order; with jobs > 1, computed by a pool of processes with a
    bounded number in flight (so memory stays bounded too)."""
    if jobs <= 1:
        for numbers, lines in chunks:
            yield numbers, _hash_chunk(lines)
        return
    context = get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            pending: deque[tuple[list[int], Future[_Chunk]]] = deque()
            for numbers, lines in chunks:
                pending.append((numbers, pool.submit(_hash_chunk, lines)))
                if len(pending) >= 3 * jobs:
                    first, future = pending.popleft()
                    yield first, future.result()
            while pending:
                first, future = pending.popleft()
                yield first, future.result()
    except BrokenProcessPool:
        raise ExportError("a worker process died; try --jobs 1") from None


def default_jobs(path: Path) -> int:
    """How many processes to hash `path` with: one for small files, else the CPUs (<= 8)."""
    try:
        if path.stat().st_size < PARALLEL_FROM:
            return 1
    except OSError:
        return 1
    return max(1, min(8, os.cpu_count() or 1))


def check_file(path: Path, checkpoint: Checkpoint, *, jobs: int | None = None) -> Report:
    """`check_rows` over a JSON Lines file. Raises ExportError when it cannot be read."""
    jobs = default_jobs(path) if jobs is None else jobs
    try:
        with open(path, "rb") as handle:
            return check_rows(handle, checkpoint, jobs=jobs)
    except OSError as exc:
        raise ExportError(f"cannot read {path}: {exc.strerror or exc}") from None
