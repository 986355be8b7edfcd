"""Submitting a change of the access policy: a narrowing change is applied at once; one
that may widen access to personal data becomes a proposal (api/access/proposals.py).
Every change is decided under the policy lock on the policy as stored, so two changes
cannot each pass the checks on the same old policy."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.transactions import in_transaction

from api.access import proposals
from api.access.changes import (
    Change,
    changes_anything,
    check_input,
    check_separation,
    write,
)
from authz import separation
from models import PolicyProposal


@dataclass(frozen=True, slots=True)
class Submitted:
    change: Change
    applied: bool
    """Applied now (a narrowing change that changed the policy)."""
    proposal: PolicyProposal | None = None
    """A widening change: the proposal pending for it."""
    created: bool = False
    """A new proposal; False when the same change was already pending."""

    @property
    def changed(self) -> bool:
        return self.applied or self.created


async def submit(change: Change, *, by: UUID, now: datetime, proposal_days: int) -> Submitted:
    """Apply a narrowing change, or open (or find) the proposal for a widening one.
    Raises InputInvalid (nothing changed) when the change is refused."""
    await check_input(change)
    async with in_transaction():
        await separation.lock_policy()
        state = await separation.stored_policy()
        if not await changes_anything(change, state):
            return Submitted(change, applied=False)
        check_separation(change, state, by=by)
        if change.widens(state):
            proposal, created = await proposals.open_proposal(
                change, by=by, now=now, days=proposal_days
            )
            return Submitted(change, applied=False, proposal=proposal, created=created)
        await write(change, now=now, proposed_by=by)
    return Submitted(change, applied=True)
