"""Advance notice of a material policy change: one email per active customer (a verified
address), queued in the outbox in batches.

Each batch is one transaction: it moves the version's `notice_cursor` (the last customer id
queued) with a compare-and-set UPDATE and inserts that batch's messages. A crash between
batches loses nothing and repeats nothing: the next run resumes after the committed cursor.
Two processes never queue the same customer: the second to move the cursor from the same
value updates no row and rolls its batch back, then carries on from the new cursor."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from api.mail import templates
from api.mail.outbox import enqueue_many
from api.services import Services
from models import Customer, PrivacyPolicy

log = logging.getLogger("custos.policy")


class _LostRace(Exception):
    """Another process moved the cursor first: this batch is rolled back."""


async def _active_customers(
    conn: BaseDBAsyncClient, *, after: UUID | None, limit: int
) -> list[tuple[str, UUID]]:
    """(address, id) of the next customers with a verified address, in id order."""
    active = Customer.filter(email_verified_at__isnull=False)
    if after is not None:
        active = active.filter(id__gt=after)
    rows = await active.using_db(conn).order_by("id").limit(limit).values_list("email", "id")
    return [(email, UUID(str(customer_id))) for email, customer_id in rows]


async def _move_cursor(
    conn: BaseDBAsyncClient,
    *,
    policy_id: int,
    old: UUID | None,
    new: UUID | None,
    queued: int,
    done: bool,
) -> bool:
    """Compare-and-set: `WHERE notice_cursor IS NOT DISTINCT FROM old`, written as IS NULL
    or = so that SQLite and PostgreSQL both take it. False when another process moved it."""
    guard = PrivacyPolicy.filter(id=policy_id, notice_done=False)
    guard = (
        guard.filter(notice_cursor__isnull=True) if old is None else guard.filter(notice_cursor=old)
    )
    moved = await guard.using_db(conn).update(
        notice_cursor=new, notices_queued=F("notices_queued") + queued, notice_done=done
    )
    return moved == 1


async def _queue_batch(*, services: Services, policy_id: int) -> int:
    """Queue the next batch of one version's notices; returns how many were queued."""
    try:
        async with in_transaction() as conn:
            policy = await PrivacyPolicy.filter(id=policy_id).using_db(conn).get()
            if policy.notice_done:
                return 0
            old, size = policy.notice_cursor, services.settings.policy_notice_batch
            batch = await _active_customers(conn, after=old, limit=size)
            new = batch[-1][1] if batch else old
            # A short batch is the last one.
            done = len(batch) < size
            if not await _move_cursor(
                conn, policy_id=policy_id, old=old, new=new, queued=len(batch), done=done
            ):
                raise _LostRace
            if batch:
                mail = templates.policy_notice(
                    settings=services.settings,
                    version=policy.version,
                    effective_at=policy.effective_at,
                    summary=policy.summary,
                )
                await enqueue_many(mail=mail, recipients=batch, clock=services.clock, using_db=conn)
    except _LostRace:
        return 0
    return len(batch)


async def queue_policy_notices(*, services: Services, limit_batches: int | None = None) -> int:
    """Queue the notices of every material version still owing them, batch by batch,
    until none is left (or `limit_batches` batches ran); returns how many were queued."""
    queued = batches = 0
    while limit_batches is None or batches < limit_batches:
        owing = (
            await PrivacyPolicy.filter(material=True, notice_done=False)
            .order_by("effective_at", "id")
            .first()
        )
        if owing is None:
            break
        queued += await _queue_batch(services=services, policy_id=owing.id)
        batches += 1
    return queued


async def run_notice_loop(*, services: Services, poll_seconds: float) -> None:
    """Background queueing, every `poll_seconds` (every process may run it)."""
    while True:
        try:
            queued = await queue_policy_notices(services=services)
            if queued:
                log.info("queued %d policy notice(s)", queued)
        except Exception as exc:  # keep the loop alive; the next round resumes
            log.error("policy notice round failed: %s", type(exc).__name__)
        await asyncio.sleep(poll_seconds)
