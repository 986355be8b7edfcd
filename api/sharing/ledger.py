"""The disclosure ledger (policy section 3): one row per customer per disclosure, whether
a share with a processor or a disclosure to an authority legal recorded. Append-only and
hash-chained like the audit log; the hash leaves out `note`, legal's free text, which is
the one value erasure blanks (docs/DECISIONS.md, "Disclosure ledger")."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from api.clock import iso
from authz.audit import GENESIS, VerifyResult
from models import Disclosure

# Any constant other than the audit log's: the advisory lock that serialises appends.
_LEDGER_LOCK = 0x6C6564676572
_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


class LegalBasis(StrEnum):
    """Why data left us: a processor's contract, or the basis of a recorded disclosure."""

    PROCESSOR_CONTRACT = "processor_contract"
    LEGAL_OBLIGATION = "legal_obligation"
    COURT_ORDER = "court_order"
    REGULATOR = "regulator"
    VITAL_INTEREST = "vital_interest"
    CONSENT = "consent"


@dataclass(frozen=True, slots=True)
class Entry:
    """One disclosure of one customer's data, before it is chained."""

    at: datetime
    customer_id: UUID
    recipient: str
    categories: list[str]
    legal_basis: str
    recorded_by: UUID
    purpose: str = ""
    reference: str = ""
    processor_id: UUID | None = None
    nondisclosure_until: datetime | None = None
    note: str = ""


def canonical(row: dict[str, Any]) -> bytes:
    """What a row's hash covers: every field but id, note and the hashes, as sorted-key
    JSON, ids as text and times in UTC ISO 8601 with microseconds."""
    return _ENCODE(
        {
            "at": iso(row["at"]),
            "categories": list(row["categories"]),
            "customer_id": str(row["customer_id"]),
            "legal_basis": row["legal_basis"],
            "nondisclosure_until": iso(row["nondisclosure_until"]),
            "processor_id": str(row["processor_id"]) if row["processor_id"] else None,
            "purpose": row["purpose"],
            "recipient": row["recipient"],
            "recorded_by": str(row["recorded_by"]),
            "reference": row["reference"],
        }
    ).encode()


def _link(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical(row)).hexdigest()


async def _last_hash(conn: BaseDBAsyncClient) -> str:
    if conn.capabilities.dialect == "postgres":
        await conn.execute_query(f"SELECT pg_advisory_xact_lock({_LEDGER_LOCK})")
    last = await Disclosure.all().using_db(conn).order_by("-id").first().values("hash")
    return str(last["hash"]) if last else GENESIS


async def append(entries: Sequence[Entry]) -> list[Disclosure]:
    """Chain and insert the entries in order; joins the caller's transaction (a share
    and its ledger rows commit together)."""
    if not entries:
        return []
    async with in_transaction() as conn:
        prev = await _last_hash(conn)
        rows = []
        for entry in entries:
            values = asdict(entry)
            digest = _link(prev, values)
            rows.append(Disclosure(**values, prev_hash=prev, hash=digest))
            prev = digest
        await Disclosure.bulk_create(rows, batch_size=500, using_db=conn)
        hashes = [row.hash for row in rows]
        return await Disclosure.filter(hash__in=hashes).using_db(conn).order_by("id")


async def verify(*, batch: int = 5_000) -> VerifyResult:
    """Walk the chain in id order: ok, or the first row whose link or content was altered."""
    prev, checked, last_id = GENESIS, 0, 0
    while True:
        rows = await Disclosure.filter(id__gt=last_id).order_by("id").limit(batch).values()
        if not rows:
            return VerifyResult(True, checked)
        for row in rows:
            row_id = int(row["id"])
            if row["prev_hash"] != prev:
                return VerifyResult(False, checked, row_id, "its link to the previous row")
            if _link(prev, row) != row["hash"]:
                return VerifyResult(False, checked, row_id, "its content was altered")
            prev, checked = str(row["hash"]), checked + 1
        last_id = int(rows[-1]["id"])


def visible_to_customer(*, now: datetime) -> Q:
    """Rows the customer may be told about: no non-disclosure order running at `now`."""
    return Q(nondisclosure_until=None) | Q(nondisclosure_until__lte=now)


async def disclosures_of(*, customer_id: UUID, now: datetime) -> list[Disclosure]:
    """What the customer sees about themselves, newest first."""
    return (
        await Disclosure.filter(Q(customer_id=customer_id) & visible_to_customer(now=now))
        .order_by("-at", "-id")
        .all()
    )


@dataclass(frozen=True, slots=True)
class LedgerFilter:
    """Conditions on the ledger, all optional, ANDed; `until` is exclusive."""

    customer_id: UUID | None = None
    recipient: str | None = None
    processor_id: UUID | None = None
    legal_basis: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def q(self) -> Q:
        where = Q()
        for name in ("customer_id", "recipient", "processor_id", "legal_basis"):
            if (value := getattr(self, name)) is not None:
                where &= Q(**{name: value})
        if self.since is not None:
            where &= Q(at__gte=self.since)
        if self.until is not None:
            where &= Q(at__lt=self.until)
        return where


async def page(*, where: LedgerFilter, first: int, before_id: int | None) -> list[Disclosure]:
    """Newest first (by id: the chain's order), `first` + 1 rows to tell if more follow."""
    query = Disclosure.filter(where.q())
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return await query.order_by("-id").limit(first + 1)


def export_row(row: Disclosure) -> dict[str, object]:
    """A row as auditors export it: everything but legal's note."""
    return {
        "id": row.id,
        "at": iso(row.at),
        "customer_id": str(row.customer_id),
        "recipient": row.recipient,
        "processor_id": str(row.processor_id) if row.processor_id else None,
        "categories": list(row.categories),
        "purpose": row.purpose,
        "legal_basis": row.legal_basis,
        "reference": row.reference,
        "nondisclosure_until": iso(row.nondisclosure_until),
        "recorded_by": str(row.recorded_by),
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


async def export_rows(
    *, where: LedgerFilter, batch: int = 5_000
) -> AsyncIterator[dict[str, object]]:
    """Every row matching, in chain order, a batch at a time."""
    last_id = 0
    while True:
        rows = await Disclosure.filter(where.q() & Q(id__gt=last_id)).order_by("id").limit(batch)
        if not rows:
            return
        for row in rows:
            yield export_row(row)
        last_id = rows[-1].id


async def blank_notes(*, customer_id: UUID, conn: BaseDBAsyncClient | None = None) -> int:
    """Erasure: legal's free-text notes about the customer go; the rows stay as the record
    of a lawful disclosure (ids, recipient, categories, basis, reference)."""
    return await (
        Disclosure.filter(customer_id=customer_id).exclude(note="").using_db(conn).update(note="")
    )
