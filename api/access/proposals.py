"""Four eyes on wider access: the life of a proposal. Pending until a second employee
with the right to approve (declared on the operation) approves or rejects it, or until
it expires. The approver is never the proposer, holds no role the rule is for, and would
be allowed nothing new by it. Approval re-checks the change on the policy as stored then,
applies it, and records proposer and approver in the history (`policy_change`).
Expiry is recorded by a sweep (on every read and decision, and once a minute)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from tortoise.transactions import in_transaction

from api.access.changes import (
    SEPARATION_OF_DUTIES,
    Change,
    changes_anything,
    check_input,
    check_separation,
    invalid,
    write,
)
from api.clock import Clock
from api.errors import InvalidArgument, NotFound
from authz import separation
from authz.adapter import employee_subject
from authz.audit import AuditRecord, append
from models import PolicyChange, PolicyProposal

log = logging.getLogger("custos.policy")
PENDING, APPROVED, REJECTED, EXPIRED = "pending", "approved", "rejected", "expired"
NOTE_MAX = 500
SWEEP_SECONDS = 60.0


def change_of(row: PolicyProposal) -> Change:
    return Change.from_json(row.kind, row.change)


def _event(row: PolicyProposal, now: datetime) -> AuditRecord:
    return AuditRecord(
        at=now,
        actor_kind="system",
        event="admin",
        operation="expirePolicyProposal",
        decision="allow",
        subject_id=str(row.id),
        reason=row.text[:200],
    )


async def expire_due(*, now: datetime) -> int:
    """Mark every pending proposal past its expiry expired, each with a log row: the same
    statements however many expire at once."""
    async with in_transaction():
        # Locked: of two processes sweeping at once, one expires (and logs) a proposal;
        # the other, let through once the first commits, no longer finds it pending.
        due = await PolicyProposal.filter(status=PENDING, expires_at__lte=now).select_for_update()
        if due:
            await PolicyProposal.filter(id__in=[row.id for row in due], status=PENDING).update(
                status=EXPIRED, pending_key=None, decided_at=now
            )
        await append([_event(row, now) for row in due])
    return len(due)


async def open_proposal(
    change: Change, *, by: UUID, now: datetime, days: int
) -> tuple[PolicyProposal, bool]:
    """The pending proposal of this change, new (True) or already pending (False). In the
    caller's transaction, under the policy lock: one pending proposal per change."""
    await expire_due(now=now)
    existing = await PolicyProposal.get_or_none(pending_key=change.text)
    if existing is not None:
        return existing, False
    row = await PolicyProposal.create(
        id=uuid4(),
        kind=change.kind,
        change=change.to_json(),
        text=change.text,
        pending_key=change.text,
        status=PENDING,
        proposed_by=by,
        proposed_at=now,
        expires_at=now + timedelta(days=days),
    )
    return row, True


async def _pending(proposal_id: UUID, now: datetime) -> PolicyProposal:
    """The proposal, still pending (under the policy lock), or a typed refusal."""
    row = await PolicyProposal.get_or_none(id=proposal_id)
    if row is None:
        raise NotFound("No such proposal.")
    if row.status == EXPIRED or (row.status == PENDING and row.expires_at <= now):
        raise invalid(
            "id", "The proposal has expired; propose the change again.", "PROPOSAL_EXPIRED"
        )
    if row.status != PENDING:
        raise invalid("id", f"The proposal was already {row.status}.", "ALREADY_DECIDED")
    return row


def _check_note(note: str) -> str:
    if len(note) > NOTE_MAX:
        raise invalid("note", f"Use at most {NOTE_MAX} characters.")
    return note.strip()


async def approve(proposal_id: UUID, *, by: UUID, now: datetime, note: str = "") -> PolicyProposal:
    """Apply the proposal's change, with `by` as its approver. Raises InputInvalid or
    NotFound (nothing changed) when it is not pending or `by` may not approve it."""
    note = _check_note(note)
    await expire_due(now=now)
    async with in_transaction():
        await separation.lock_policy()
        row = await _pending(proposal_id, now)
        change = change_of(row)
        await check_input(change)  # the employee may have left since
        if row.proposed_by == by:
            message = "You proposed this change: a second person approves it."
            raise invalid("id", message, SEPARATION_OF_DUTIES)
        state = await separation.stored_policy()
        check_separation(change, state, by=by)  # the policy may have moved since
        gain = separation.first_gain(state, change.apply(state), employee_subject(by))
        if gain is not None:
            message = f"You would gain from this change ({gain.text.split(' ', 1)[1]})."
            raise invalid("id", message, SEPARATION_OF_DUTIES)
        version = None
        if await changes_anything(change, state):
            version = await write(
                change, now=now, proposed_by=row.proposed_by, approved_by=by, proposal_id=row.id
            )
        row.status, row.pending_key, row.applied_version = APPROVED, None, version
        row.decided_by, row.decided_at, row.decision_note = by, now, note
        await row.save()
    return row


async def reject(proposal_id: UUID, *, by: UUID, now: datetime, note: str = "") -> PolicyProposal:
    """Close the proposal without applying it."""
    note = _check_note(note)
    await expire_due(now=now)
    async with in_transaction():
        await separation.lock_policy()
        row = await _pending(proposal_id, now)
        row.status, row.pending_key = REJECTED, None
        row.decided_by, row.decided_at, row.decision_note = by, now, note
        await row.save()
    return row


async def run_expiry_loop(*, clock: Clock, interval_seconds: float = SWEEP_SECONDS) -> None:
    """Record expiries even when nobody looks at proposals."""
    while True:
        try:
            await expire_due(now=clock.now())
        except Exception as exc:  # the database may be briefly away; the next turn retries
            log.warning("proposal expiry failed: %s", type(exc).__name__)
        await asyncio.sleep(interval_seconds)


async def listed(*, status: str, first: int) -> list[PolicyProposal]:
    if status not in (PENDING, APPROVED, REJECTED, EXPIRED):
        raise InvalidArgument("status", "One of pending, approved, rejected, expired.")
    if not 1 <= first <= 200:
        raise InvalidArgument("first", "From 1 to 200.")
    return await PolicyProposal.filter(status=status).order_by("-proposed_at").limit(first)


async def history(*, first: int) -> list[PolicyChange]:
    if not 1 <= first <= 200:
        raise InvalidArgument("first", "From 1 to 200.")
    return await PolicyChange.all().order_by("-version").limit(first)
