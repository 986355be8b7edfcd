"""Rights requests by email address, handled after the answer.

Looking the address up while the requester waits made a known address slower than an
unknown one (11.9 against 7.0 ms): the time of the answer told who is a customer. So the
request path only checks the input and writes one `deferred_intake` row, the same for
every address; the intake worker (every process, every `CUSTOS_INTAKE_POLL_SECONDS`, or
`custos rights intake`) later looks the address up and does what the request asks.

Rows are claimed with a conditional UPDATE (as the mail sender claims the outbox), and a
row is deleted in the transaction that handles it: two processes never handle one row, and
a worker that dies mid-way leaves the row to be handled again once its lease runs out. No
row outlives its handling, or MAX_ATTEMPTS failed tries."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from api.clock import Clock
from api.rights import lifecycle
from api.rights.rules import Kind
from api.security.authn import account_key
from api.services import Services
from models import DeferredIntake

log = logging.getLogger("custos.rights")

RIGHTS_BY_EMAIL = "rights_by_email"
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 5


class _LostLease(Exception):
    """Another round took the row over (this one outlived its lease): nothing is done."""


async def accept_by_email(
    *, services: Services, email: str, kind: Kind, details: str, changes: dict[str, Any] | None
) -> None:
    """The request path: VALIDATION for bad input, else one queued row, whoever owns the
    address (if anyone)."""
    lifecycle.check_input(kind=kind, details=details, changes=changes)
    now = services.clock.now()
    await DeferredIntake.create(
        operation=RIGHTS_BY_EMAIL,
        address=account_key(email),
        data={"kind": kind.value, "details": details, "changes": changes},
        due_at=now,
        created_at=now,
    )


async def _claim(*, clock: Clock, limit: int) -> list[DeferredIntake]:
    """Take up to `limit` due rows for one lease, in one conditional UPDATE: a concurrent
    round's UPDATE waits for this one's row locks, re-checks `due_at` and skips them."""
    now = clock.now()
    due = (
        await DeferredIntake.filter(due_at__lte=now)
        .order_by("id")
        .limit(limit)
        .values_list("id", flat=True)
    )
    if not due:
        return []
    round_id = uuid.uuid4().hex
    await DeferredIntake.filter(id__in=list(due), due_at__lte=now).update(
        claimed_by=round_id, due_at=now + LEASE, attempts=F("attempts") + 1
    )
    return await DeferredIntake.filter(id__in=list(due), claimed_by=round_id).order_by("id")


async def _handle(services: Services, row: DeferredIntake) -> None:
    """Delete the row and do its work, in one transaction (the lease is checked by the
    DELETE itself: a row another round took over is left alone)."""
    async with in_transaction() as conn:
        taken = (
            await DeferredIntake.filter(id=row.id, claimed_by=row.claimed_by)
            .using_db(conn)
            .delete()
        )
        if taken != 1:
            raise _LostLease
        if row.operation == RIGHTS_BY_EMAIL:
            data = row.data
            await lifecycle.submit_by_email(
                services=services,
                address=row.address,
                kind=Kind(data["kind"]),
                details=data["details"],
                changes=data["changes"],
            )


async def _failed(row: DeferredIntake, error: str) -> None:
    """Tried again after its lease; dropped after MAX_ATTEMPTS (an address is not kept
    for a request that cannot be handled). The log names the row and the error type."""
    dropped = row.attempts >= MAX_ATTEMPTS
    if dropped:
        await DeferredIntake.filter(id=row.id, claimed_by=row.claimed_by).delete()
    log.warning(
        "deferred request %s attempt %d failed: %s%s",
        row.id,
        row.attempts,
        error,
        " (dropped)" if dropped else "",
    )


async def handle_deferred(*, services: Services, limit: int = 100) -> int:
    """Handle what is due; returns how many rows were handled."""
    handled = 0
    for row in await _claim(clock=services.clock, limit=limit):
        try:
            await _handle(services, row)
        except _LostLease:
            continue
        except Exception as exc:  # retried after the lease; the log names only the type
            await _failed(row, type(exc).__name__)
            continue
        handled += 1
    return handled


async def run_intake_loop(*, services: Services, poll_seconds: float) -> None:
    """Background handling, every `poll_seconds` (every process may run it)."""
    while True:
        try:
            await handle_deferred(services=services)
        except Exception as exc:  # keep the loop alive; log no address
            log.error("deferred intake round failed: %s", type(exc).__name__)
        await asyncio.sleep(poll_seconds)
