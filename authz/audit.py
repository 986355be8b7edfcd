"""The decision log (docs/ARCHITECTURE.md: decision log): records collected during a request,
appended in one batch, hash-chained, verifiable.

A row's hash is SHA-256(prev_hash || canonical row). The canonical row is a compact JSON
array of the original fields (every field of AuditRecord but the decision inputs) in the
sorted order of their names, the time in UTC ISO 8601 with microseconds. The decision
inputs (`conditions`, `policy_version`), added later, are appended to that array in this
order only when one of them is set (conditions not empty, or policy version not 0): a row
with neither hashes exactly as rows written before they existed, so old chains verify."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import NamedTuple

import orjson
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from authz.log_tree import BLOCK_BITS, leaves_of
from authz.sql import insert as sql_insert
from models import AuditEvent, AuditSubject

GENESIS = "0" * 64
# Any constant: the advisory lock that serialises appends to the chain on PostgreSQL.
_CHAIN_LOCK = 0x637573746F73


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One row of the log, before it is chained. Only ids and names: never values."""

    at: datetime
    actor_kind: str
    event: str
    decision: str
    request_id: str = ""
    actor_id: str = ""
    roles: str = ""
    operation: str = ""
    category: str = ""
    action: str = ""
    subject_id: str = ""
    purpose: str = ""
    rule: str = ""
    reason: str = ""
    # The decision inputs, so that a decision can be replayed against another policy: the
    # conditions Casbin was given (sorted, comma-joined) and the policy version in force.
    conditions: str = ""
    policy_version: int = 0


_INPUTS = ("conditions", "policy_version")
_CHAINED = tuple(sorted(set(AuditRecord.__dataclass_fields__) - set(_INPUTS)))
STORED = (*_CHAINED, *_INPUTS)
_AT = _CHAINED.index("at")
_COLUMNS = (*STORED, "prev_hash", "hash")
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_PLAIN = frozenset({str, int, bool, type(None)})  # what orjson may write (_encoded)
# Rows per INSERT statement (19 parameters each, well under every driver's limit).
_CHUNK = 500


_LAST_HASH = "SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1"


def canonical_values(values: Sequence[object]) -> bytes:
    """`values` in `STORED` order; see the module docstring for the rule."""
    at = values[_AT]
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise TypeError("audit times are aware datetimes")
    chained = list(values if any(values[len(_CHAINED) :]) else values[: len(_CHAINED)])
    chained[_AT] = at.astimezone(UTC).isoformat(timespec="microseconds")
    return _encoded(chained)


def _encoded(chained: list[object]) -> bytes:
    """The standard library's compact JSON with every character past ASCII escaped, as
    bytes. For a row of plain text, ints and nulls whose text is ASCII other than DEL, orjson
    writes the same bytes faster (escaping a page's 100 subject ids character by character
    cost about 1% of a staff page), so its output is kept when it is all such ASCII;
    anything else (text past ASCII, a lone surrogate, an int past 64 bits, any other type)
    is written by the standard library, as before (tests/test_audit_canonical.py compares
    the two)."""
    if all(type(value) in _PLAIN for value in chained):
        try:
            fast = orjson.dumps(chained)
        except orjson.JSONEncodeError:  # an int past 64 bits, a lone surrogate
            return _ENCODE(chained).encode()
        if fast.isascii() and b"\x7f" not in fast:
            return fast
    return _ENCODE(chained).encode()


def canonical(values: Mapping[str, object]) -> bytes:
    """The bytes a row's hash covers: every field but id and the hashes, as a JSON array in
    the sorted order of the field names, the time in UTC ISO 8601 with microseconds; then
    `conditions` and `policy_version` when either is set (see the module docstring)."""
    return canonical_values([values[name] for name in STORED])


def chain_hash(prev_hash: str, values: Mapping[str, object]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(values)).hexdigest()


async def _lock_chain(conn: BaseDBAsyncClient) -> None:
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query(f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK})")


def subjects_of(subject_id: str) -> list[str]:
    return [s for s in subject_id.split(",") if s]


def _chunks_of_rows(
    records: list[AuditRecord], prev: str, postgres: bool
) -> list[tuple[str, list[object]]]:
    """The INSERT statements of `records` chained after `prev`, with their parameters: at
    most _CHUNK rows each."""
    params: list[object] = []
    for record in records:
        values = [getattr(record, name) for name in STORED]
        at = values[_AT]
        digest = hashlib.sha256(prev.encode() + canonical_values(values)).hexdigest()
        values[_AT] = at if postgres else str(at.astimezone(UTC))
        params += values
        params += (prev, digest)
        prev = digest
    width, dialect = len(_COLUMNS), "postgres" if postgres else "sqlite"
    statements = []
    for start in range(0, len(params), _CHUNK * width):
        chunk = params[start : start + _CHUNK * width]
        statements.append(
            (sql_insert(dialect, "audit_event", _COLUMNS, len(chunk) // width), chunk)
        )
    return statements


async def append(records: list[AuditRecord]) -> None:
    """Append records with one multi-row INSERT, chained to the last row. Joins the
    caller's transaction when there is one (a mutation's writes and its log commit
    together). Written without the ORM's per-object work: this is on the path of every
    read. The rows' subjects are indexed in `audit_posting` when the rows join the tree
    (authz/log_tree.py), not here: there a batch of many requests' rows adds each subject's
    ids to one list. On SQLite,
    outside a transaction (a read's rows), the whole append is one call on the
    connection's thread (api/db.py `write_in_one_step`)."""
    if not records:
        return
    one_step = getattr(connections.get("default"), "write_in_one_step", None)
    if one_step is not None:  # SQLite, and no transaction of the caller's to join
        await one_step(partial(_append_in_one_step, records))
        return
    async with in_transaction() as conn:
        await _lock_chain(conn)
        last = await conn.execute_query_dict(_LAST_HASH)
        prev = str(last[0]["hash"]) if last else GENESIS
        postgres = conn.capabilities.dialect == "postgres"
        for sql, params in _chunks_of_rows(records, prev, postgres):
            await conn.execute_query(sql, params)


def _append_in_one_step(records: list[AuditRecord], db: sqlite3.Connection) -> None:
    """`append` on SQLite's own thread, inside the write lock: the same statements."""
    last = db.execute(_LAST_HASH).fetchone()
    for sql, params in _chunks_of_rows(records, str(last[0]) if last else GENESIS, False):
        db.execute(sql, params)


class GroupCommit:
    """Appends the logs of concurrent read requests together: one transaction (one lock,
    one INSERT of rows, one of subject links, one commit) for every request waiting,
    instead of one each. A request still waits until its records are committed, so no
    read is answered before its decisions are durably logged."""

    def __init__(self) -> None:
        self._waiting: list[tuple[list[AuditRecord], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def write(self, records: list[AuditRecord]) -> None:
        if not records:
            return
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((records, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await append([record for records, _ in batch for record in records])
            except Exception as exc:  # every waiting request fails with the same cause
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            else:
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    problem: str = ""


async def _chunks(
    batch: int, *, since: datetime | None = None, until: datetime | None = None
) -> AsyncIterator[list[dict[str, object]]]:
    """Rows in chain order, a batch at a time (keyset pagination on id)."""
    last_id = 0
    while True:
        query = AuditEvent.filter(id__gt=last_id)
        if since is not None:
            query = query.filter(at__gte=since)
        if until is not None:
            query = query.filter(at__lt=until)
        chunk = await query.order_by("id").limit(batch).values("id", *STORED, "prev_hash", "hash")
        if not chunk:
            return
        yield chunk
        last_id = int(str(chunk[-1]["id"]))


async def _links(first_id: object, last_id: object) -> dict[int, set[str]]:
    links: dict[int, set[str]] = defaultdict(set)
    first, last = int(str(first_id)), int(str(last_id))
    rows = await AuditSubject.filter(
        block__gte=first >> BLOCK_BITS,
        block__lte=last >> BLOCK_BITS,
        event_id__gte=first,
        event_id__lte=last,
    ).values_list("event_id", "subject_id")
    for event_id, subject in rows:
        links[int(str(event_id))].add(str(subject))
    return links


def links_agree(linked: set[str], subjects: set[str], in_tree: bool) -> bool:
    """A row's subjects are indexed when it joins the tree: a row in the tree is linked to
    exactly its subjects; a row not yet in it to none of them, or (written before links
    moved to the tree, or integrated meanwhile) to exactly them."""
    return linked == subjects or (not in_tree and not linked)


async def verify(*, batch: int = 10_000) -> VerifyResult:
    """Walk the chain from the first row; name the first row whose link or hash is wrong,
    or whose subjects are not as its posting lists index them (see `links_agree`)."""
    prev = GENESIS
    checked = 0
    async for chunk in _chunks(batch):
        links = await _links(chunk[0]["id"], chunk[-1]["id"])
        in_tree = await leaves_of([int(str(row["id"])) for row in chunk])
        for row in chunk:
            row_id = int(str(row["id"]))
            if row["prev_hash"] != prev:
                return VerifyResult(
                    False, checked, row_id, "prev_hash does not link to the row before"
                )
            if chain_hash(prev, row) != row["hash"]:
                return VerifyResult(False, checked, row_id, "hash does not match the row's content")
            subjects = set(subjects_of(str(row["subject_id"])))
            if not links_agree(links.get(row_id, set()), subjects, row_id in in_tree):
                return VerifyResult(False, checked, row_id, "its subject index was altered")
            prev = str(row["hash"])
            checked += 1
    return VerifyResult(True, checked)


async def export_rows(
    *, since: datetime | None = None, until: datetime | None = None, batch: int = 5_000
) -> AsyncIterator[dict[str, object]]:
    """Rows in chain order, with their hashes and every field a hash covers (the decision
    inputs too), for auditors' own verification (the rule is in the module docstring);
    and, once the row is in the tree, its `leaf_index` and `salt`, from which its leaf is
    rebuilt (verifier/leaf.py), else null."""
    async for chunk in _chunks(batch, since=since, until=until):
        leaves = await leaves_of([int(str(row["id"])) for row in chunk])
        for row in chunk:
            at = row["at"]
            if isinstance(at, datetime):
                row["at"] = at.astimezone(UTC).isoformat(timespec="microseconds")
            leaf = leaves.get(int(str(row["id"])))
            row["leaf_index"] = leaf.index if leaf else None
            row["salt"] = leaf.salt.hex() if leaf else None
            yield row


_BITS: dict[str, int] = {}
"""Each category seen, as one bit: a subject's categories in a row are an int, which the
cyclic collector does not track (a set per subject on a page of 100 made each of its passes
over the page's objects longer)."""
_NAMES: dict[int, str] = {}  # a set of bits, as the categories it names (`_category_names`)


def category_bit(category: str) -> int:
    """The bit of a category (given on first use; categories are a small fixed set)."""
    bit = _BITS.get(category)
    if bit is None:
        bit = _BITS[category] = 1 << len(_BITS)
    return bit


def _category_names(bits: int) -> str:
    """The categories of a set of bits, sorted and joined by commas, as a row writes them."""
    names = _NAMES.get(bits)
    if names is None:
        names = _NAMES[bits] = ",".join(sorted(c for c, b in _BITS.items() if bits & b))
    return names


class _Decision(NamedTuple):
    """What the subjects of one grouped access row share: every decision input but the
    subject and the category, so each subject of a row was decided under its conditions."""

    actor_kind: str
    actor_id: str
    roles: str
    action: str
    purpose: str
    decision: str
    rule: str
    reason: str
    conditions: str
    policy_version: int


@dataclass
class AuditTrail:
    """The records of one request, written together at its end. Access decisions that
    share everything but whose data and which category they were about are grouped: one
    row per set of categories, naming every subject that had exactly those categories
    decided so. A page of 100 customers x 3 fields allowed by one rule is one row (and 100
    subject links), not 300; the row never claims a read that was not decided."""

    request_id: str
    records: list[AuditRecord] = field(default_factory=list)
    _groups: dict[_Decision, tuple[datetime, dict[object, int]]] = field(default_factory=dict)

    def add(self, record: AuditRecord) -> None:
        self.records.append(record)

    def access(
        self,
        *,
        at: datetime,
        actor_kind: str,
        actor_id: str,
        roles: str,
        category: str,
        action: str,
        purpose: str,
        decision: str,
        rule: str,
        reason: str,
        conditions: tuple[str, ...],
        policy_version: int,
        subject_id: object,
    ) -> dict[object, int]:
        """One access decision about one subject's data in one category, decided under
        `conditions` (as given to Casbin) with policy `policy_version`. Returns the
        decision's subjects and their categories (`category_bit`s, or-ed): a caller may
        record further subjects of the same decision there directly (Context.read_access
        does)."""
        key = _Decision(
            actor_kind,
            actor_id,
            roles,
            action,
            purpose,
            decision,
            rule,
            reason,
            ",".join(sorted(conditions)),
            policy_version,
        )
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = (at, {})
        subjects = group[1]
        subjects[subject_id] = subjects.get(subject_id, 0) | category_bit(category)
        return subjects

    def event(
        self,
        *,
        at: datetime,
        event: str,
        operation: str,
        decision: str,
        actor_kind: str,
        actor_id: object = "",
        roles: str = "",
        subject_id: object = "",
        reason: str = "",
    ) -> None:
        """A security or administrative event (sign-in, sign-out, role change...)."""
        self.add(
            AuditRecord(
                at=at,
                request_id=self.request_id,
                actor_kind=actor_kind,
                actor_id=str(actor_id or ""),
                roles=roles,
                event=event,
                operation=operation,
                subject_id=str(subject_id or ""),
                decision=decision,
                reason=reason,
            )
        )

    def _grouped(self) -> list[AuditRecord]:
        records = []
        for key, (at, subjects) in self._groups.items():
            by_categories: dict[int, list[str]] = {}
            kinds = set(subjects.values())
            if len(kinds) == 1:  # the common case: every subject read in the same categories
                by_categories[kinds.pop()] = list(map(str, subjects))
            else:
                for subject, bits in subjects.items():
                    by_categories.setdefault(bits, []).append(str(subject))
            for bits, ids in by_categories.items():
                records.append(
                    AuditRecord(
                        at=at,
                        request_id=self.request_id,
                        event="access",
                        category=_category_names(bits),
                        subject_id=",".join(sorted(set(ids) - {""})),
                        **key._asdict(),
                    )
                )
        return records

    def pending(self) -> list[AuditRecord]:
        return [*self.records, *self._grouped()]

    async def flush(self, writer: GroupCommit | None = None) -> None:
        """Write the request's records: with `writer` grouped with other requests' (reads),
        without it in the caller's transaction (a mutation's)."""
        if not (self.records or self._groups):
            return
        records = self.pending()
        self.records, self._groups = [], {}
        if writer is None:
            await append(records)
        else:
            await writer.write(records)
