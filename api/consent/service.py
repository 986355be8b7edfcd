"""Consent per purpose (privacy policy sections 1, 2 and 7): an append-only history whose
latest record per purpose is the current state, and the one question the rest of the code
asks before processing: `may_process`."""

from __future__ import annotations

from uuid import UUID

from tortoise.transactions import in_transaction

from api.consent.records import consent_record
from api.customers import validation as v
from api.customers.directory import latest_consents
from api.customers.service import RequestMeta
from api.services import Services
from authz.registry import PURPOSES, ConsentSource
from models import ConsentRecord


async def may_process(*, customer_id: UUID, purpose: str) -> bool:
    """Whether the customer's data may be used for `purpose` now. A purpose resting on
    another legal basis (service, support, security, legal) always may; a purpose that needs
    consent only while the latest record grants it (off until given)."""
    known = PURPOSES.get(purpose)
    if known is None:
        raise ValueError(f"unknown purpose {purpose!r}")
    if not known.consent_required:
        return True
    [latest] = await latest_consents([customer_id])
    record = latest.get(purpose)
    return bool(record and record.granted)


async def set_consent(
    *,
    services: Services,
    customer_id: UUID,
    purpose: str,
    granted: bool,
    source: ConsentSource,
    meta: RequestMeta,
) -> tuple[ConsentRecord, bool]:
    """Give or withdraw consent for one purpose: appends a record when the state changes.
    Returns the current record and whether it changed (asking twice records once)."""
    p = v.Problems()
    v.purpose(purpose, p, "purpose")
    p.raise_if_any()
    async with in_transaction() as conn:
        current = (
            await ConsentRecord.filter(customer_id=customer_id, purpose=purpose)
            .using_db(conn)
            .order_by("-at", "-id")
            .first()
        )
        if current is not None and current.granted == granted:
            return current, False
        record = consent_record(
            customer_id=customer_id,
            purpose=purpose,
            granted=granted,
            source=source,
            meta=meta,
            at=services.clock.now(),
        )
        await record.save(using_db=conn)
    return record, True


async def histories(customer_ids: list[UUID]) -> list[list[ConsentRecord]]:
    """Each customer's consent records, newest first, in one query (a batch loader)."""
    found: dict[UUID, list[ConsentRecord]] = {i: [] for i in customer_ids}
    rows = await ConsentRecord.filter(customer_id__in=customer_ids).order_by("-at", "-id")
    for record in rows:
        found[UUID(str(record.customer_id))].append(record)  # type: ignore[attr-defined]
    return [found[i] for i in customer_ids]
