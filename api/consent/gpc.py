"""Global Privacy Control (policy section 7): `Sec-GPC: 1` from a signed-in customer is an
opt-out of personalised advertising, recorded once with source `gpc`."""

from __future__ import annotations

from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.consent.records import consent_record
from api.customers.service import RequestMeta
from api.recipients.service import notify_withdrawal
from api.serial import lock_customer
from api.services import Services
from authz.audit import AuditTrail
from authz.registry import ConsentSource, PurposeKey
from models import ConsentRecord

HEADER = "sec-gpc"
PURPOSE = PurposeKey.MARKETING_ADS


def sends_gpc(headers: object) -> bool:
    get = getattr(headers, "get", None)
    return bool(get and get(HEADER, "").strip() == "1")


async def record_opt_out(
    *,
    services: Services,
    customer_id: UUID,
    meta: RequestMeta,
    seen: set[UUID],
    conn: BaseDBAsyncClient,
) -> bool:
    """Record the signal as an opt-out of `marketing.ads`, once per customer: the first
    request carrying it writes the record; later ones find it (and this process remembers
    them in `seen`, so they cost no query). A later explicit `setConsent` by the customer
    is respected: the signal is not re-applied over it. True when a record was written."""
    if customer_id in seen:
        return False
    await lock_customer(conn, customer_id)  # two first requests at once: one record
    already = (
        await ConsentRecord.filter(
            customer_id=customer_id, purpose=PURPOSE, source=ConsentSource.GPC
        )
        .using_db(conn)
        .exists()
    )
    if not already:
        await consent_record(
            customer_id=customer_id,
            purpose=PURPOSE,
            granted=False,
            source=ConsentSource.GPC,
            meta=meta,
            at=services.clock.now(),
            policy_version=await services.policies.version_in_force(),
        ).save(using_db=conn)
        await notify_withdrawal(
            services=services, customer_id=customer_id, purpose=PURPOSE, conn=conn
        )
    if len(seen) >= 100_000:
        seen.clear()
    seen.add(customer_id)
    return not already


async def honour_signal(
    *, services: Services, customer_id: UUID, meta: RequestMeta, trail: AuditTrail
) -> bool:
    """Record the opt-out (once) with its audit event, committed together whatever the
    request is (a GraphQL operation or a beacon)."""
    async with in_transaction() as conn:
        recorded = await record_opt_out(
            services=services,
            customer_id=customer_id,
            meta=meta,
            seen=services.gpc_recorded,
            conn=conn,
        )
        if recorded:
            trail.event(
                at=services.clock.now(),
                event="consent",
                operation="gpc",
                decision="allow",
                actor_kind="customer",
                actor_id=customer_id,
                subject_id=customer_id,
            )
            await trail.flush()
    return recorded
