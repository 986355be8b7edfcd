"""Consent per purpose (privacy policy sections 1, 2 and 7): an append-only history whose
latest record per purpose is the current state, and the one question the rest of the code
asks before processing: `may_process`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from tortoise.transactions import in_transaction

from api.consent.records import consent_record
from api.consent.state import ConsentState, consent_state
from api.customers import validation as v
from api.customers.directory import latest_consents
from api.recipients.service import notify_withdrawal
from api.serial import lock_customer
from api.services import Services
from authz.registry import PURPOSES, ConsentSource
from models import ConsentRecord

if TYPE_CHECKING:
    from api.customers.service import RequestMeta


async def allowed_purposes(
    *, services: Services, customer_id: UUID, purposes: Iterable[str]
) -> frozenset[str]:
    """Which of `purposes` the customer's data may be used for now, in one query. A purpose
    resting on another legal basis (service, support, security, legal) always may; a purpose
    that needs consent only while the latest record grants it (off until given), and that
    grant was given after the last material policy change of the purpose's scope
    (`ConsentState`). The policy copy and clock of `services` decide."""
    wanted = list(purposes)
    unknown = [p for p in wanted if p not in PURPOSES]
    if unknown:
        raise ValueError(f"unknown purpose {unknown[0]!r}")
    needs_consent = [p for p in wanted if PURPOSES[p].consent_required]
    allowed = {p for p in wanted if p not in needs_consent}
    if needs_consent:
        [latest] = await latest_consents([customer_id])
        since = await services.policies.ask_again_since()
        allowed.update(
            p
            for p in needs_consent
            if consent_state(latest.get(p), ask_again_since=since.get(p)) is ConsentState.GRANTED
        )
    return frozenset(allowed)


async def consenting_customers(
    *, services: Services, customer_ids: Sequence[UUID], purpose: str
) -> set[UUID]:
    """Of `customer_ids`, those whose data may be used for `purpose` now: the rule of
    `may_process` for a batch (a marketing send), in one query."""
    known = PURPOSES.get(purpose)
    if known is None:
        raise ValueError(f"unknown purpose {purpose!r}")
    if not known.consent_required:
        return set(customer_ids)
    latest = await latest_consents(customer_ids)
    since = (await services.policies.ask_again_since()).get(purpose)
    return {
        customer_id
        for customer_id, records in zip(customer_ids, latest, strict=True)
        if consent_state(records.get(purpose), ask_again_since=since) is ConsentState.GRANTED
    }


async def may_process(*, services: Services, customer_id: UUID, purpose: str) -> bool:
    """Whether the customer's data may be used for `purpose` now (see allowed_purposes):
    the one question marketing sends, personalisation and analytics collection ask."""
    return purpose in await allowed_purposes(
        services=services, customer_id=customer_id, purposes=[purpose]
    )


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
    Returns the current record and whether it changed (asking twice records once). A grant
    that is to be asked again (`ASK_AGAIN`) is renewed by a new grant."""
    p = v.Problems()
    v.purpose(purpose, p, "purpose")
    p.raise_if_any()
    policy_version = await services.policies.version_in_force()
    since = (await services.policies.ask_again_since()).get(purpose)
    wanted = ConsentState.GRANTED if granted else ConsentState.WITHDRAWN
    async with in_transaction() as conn:
        # Ten identical calls at once append one record (issue 15): the read waits for
        # any concurrent call's commit.
        await lock_customer(conn, customer_id)
        current = (
            await ConsentRecord.filter(customer_id=customer_id, purpose=purpose)
            .using_db(conn)
            .order_by("-at", "-id")
            .first()
        )
        if current is not None and consent_state(current, ask_again_since=since) is wanted:
            return current, False
        record = consent_record(
            customer_id=customer_id,
            purpose=purpose,
            granted=granted,
            source=source,
            meta=meta,
            at=services.clock.now(),
            policy_version=policy_version,
        )
        await record.save(using_db=conn)
        if not granted:  # every processor that received data for it is told to stop
            await notify_withdrawal(
                services=services, customer_id=customer_id, purpose=purpose, conn=conn
            )
    return record, True


async def histories(customer_ids: list[UUID]) -> list[list[ConsentRecord]]:
    """Each customer's consent records, newest first, in one query (a batch loader)."""
    found: dict[UUID, list[ConsentRecord]] = {i: [] for i in customer_ids}
    rows = await ConsentRecord.filter(customer_id__in=customer_ids).order_by("-at", "-id")
    for record in rows:
        found[UUID(str(record.customer_id))].append(record)  # type: ignore[attr-defined]
    return [found[i] for i in customer_ids]
