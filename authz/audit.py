"""The decision log (DESIGN section 4): records collected during a request, appended in
one batch, hash-chained, verifiable."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from models import AuditEvent

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


_CHAINED = tuple(AuditRecord.__dataclass_fields__)


def canonical(values: dict[str, object]) -> bytes:
    """The bytes a row's hash covers: every field but id and the hashes, in a fixed form."""
    row = {name: values[name] for name in _CHAINED}
    at = row["at"]
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise TypeError("audit times are aware datetimes")
    row["at"] = at.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(row, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(prev_hash: str, values: dict[str, object]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(values)).hexdigest()


async def _lock_chain(conn: BaseDBAsyncClient) -> None:
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query(f"SELECT pg_advisory_xact_lock({_CHAIN_LOCK})")


async def append(records: list[AuditRecord]) -> None:
    """Append records in one INSERT, chained to the last row. Joins the caller's
    transaction when there is one (a mutation's writes and its log commit together)."""
    if not records:
        return
    async with in_transaction() as conn:
        await _lock_chain(conn)
        last = await AuditEvent.all().using_db(conn).order_by("-id").first().values("hash")
        prev = last["hash"] if last else GENESIS
        rows = []
        for record in records:
            values = asdict(record)
            digest = chain_hash(prev, values)
            rows.append(AuditEvent(**values, prev_hash=prev, hash=digest))
            prev = digest
        await AuditEvent.bulk_create(rows, using_db=conn)


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    problem: str = ""


async def _rows(
    batch: int, *, since: datetime | None = None, until: datetime | None = None
) -> AsyncIterator[dict[str, object]]:
    """Rows in chain order, a batch at a time (keyset pagination on id)."""
    last_id = 0
    while True:
        query = AuditEvent.filter(id__gt=last_id)
        if since is not None:
            query = query.filter(at__gte=since)
        if until is not None:
            query = query.filter(at__lt=until)
        chunk = await query.order_by("id").limit(batch).values("id", *_CHAINED, "prev_hash", "hash")
        if not chunk:
            return
        for row in chunk:
            yield row
        last_id = int(str(chunk[-1]["id"]))


async def verify(*, batch: int = 10_000) -> VerifyResult:
    """Walk the chain from the first row; name the first row whose link or hash is wrong."""
    prev = GENESIS
    checked = 0
    async for row in _rows(batch):
        row_id = int(str(row["id"]))
        if row["prev_hash"] != prev:
            return VerifyResult(False, checked, row_id, "prev_hash does not link to the row before")
        if chain_hash(prev, row) != row["hash"]:
            return VerifyResult(False, checked, row_id, "hash does not match the row's content")
        prev = str(row["hash"])
        checked += 1
    return VerifyResult(True, checked)


async def export_rows(
    *, since: datetime | None = None, until: datetime | None = None, batch: int = 5_000
) -> AsyncIterator[dict[str, object]]:
    """Rows in chain order, with their hashes, for auditors' own verification."""
    async for row in _rows(batch, since=since, until=until):
        at = row["at"]
        if isinstance(at, datetime):
            row["at"] = at.astimezone(UTC).isoformat(timespec="microseconds")
        yield row


@dataclass
class AuditTrail:
    """The records of one request, written together at its end."""

    request_id: str
    records: list[AuditRecord] = field(default_factory=list)

    def add(self, record: AuditRecord) -> None:
        self.records.append(record)

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

    async def flush(self) -> None:
        records, self.records = self.records, []
        await append(records)
