"""Proofs over the decision log's Merkle tree (docs/AUDIT_LOG.md: proofs): for auditors, one
row's inclusion in a tree size and the consistency of two sizes; for a customer, the
evidence that each access shown to them is a row of the log a signed checkpoint covers."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from api.errors import InvalidArgument, NotFound
from authz import checkpoints, log_tree
from models import AuditCheckpoint
from verifier import leaf as leaf_format

MAX_SIZE = (1 << 63) - 1


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True, slots=True)
class Inclusion:
    leaf_index: int
    tree_size: int
    hashes: list[bytes]
    leaf: bytes
    leaf_hash: bytes
    checkpoint: str | None


@dataclass(frozen=True, slots=True)
class Consistency:
    old_size: int
    new_size: int
    hashes: list[bytes]


@dataclass(frozen=True, slots=True)
class Evidence:
    leaf: bytes
    subject_key: bytes
    inclusion: Inclusion | None  # None until a signed checkpoint covers the row


async def _checkpoint_of(size: int) -> str | None:
    row = await AuditCheckpoint.filter(size=size).order_by("-id").first()
    return row.note if row else None


async def _tree_size(asked: int | None, argument: str) -> tuple[int, str | None]:
    """The size asked for, or the latest checkpoint's with its note; never beyond the
    tree."""
    size = await log_tree.integrate()
    if asked is None:
        latest = await checkpoints.latest()
        if latest is None:
            raise NotFound("The log has signed no checkpoint yet.")
        return int(latest.size), latest.note
    if not 0 <= asked <= size:
        raise InvalidArgument(argument, f"The tree holds {size} rows.")
    return asked, None


async def inclusion(event_id: int, tree_size: int | None) -> Inclusion:
    """Row `event_id`'s leaf and its inclusion proof in the tree of `tree_size` rows (the
    latest checkpoint's when None)."""
    size, note = await _tree_size(tree_size, "treeSize")
    row, found = (await log_tree.rows_and_leaves([event_id])).get(event_id, ({}, None))
    if found is None:
        raise NotFound("No row of the log has this id.", field="eventId")
    if found.index >= size:
        raise InvalidArgument("treeSize", f"Row {event_id} is leaf {found.index}: not in {size}.")
    hashes = await log_tree.inclusion_proof(found.index, size)
    data = leaf_format.leaf_data(row, found.salt)
    if note is None:  # a size asked for: the note of a checkpoint of that size, if any
        note = await _checkpoint_of(size)
    return Inclusion(found.index, size, hashes, data, found.hash, note)


async def consistency(old_size: int, new_size: int) -> Consistency:
    """The consistency proof between two sizes of the tree, 0 < old <= new <= tree size."""
    size = await log_tree.integrate()
    if not 0 < old_size <= MAX_SIZE:
        raise InvalidArgument("from", "A consistency proof starts from a size of 1 or more.")
    if not old_size <= new_size <= size:
        raise InvalidArgument("to", f"`to` is from `from` to the tree's size ({size}).")
    return Consistency(old_size, new_size, await log_tree.consistency_proof(old_size, new_size))


async def evidence_for(customer_id: UUID, event_ids: Sequence[int]) -> dict[int, Evidence]:
    """For each row about the customer: its leaf, the opening of the customer's commitment
    in it, and its inclusion proof in the latest checkpoint (if that covers the row). One
    read each for the rows, leaves, checkpoint and every proof's nodes."""
    if not event_ids:
        return {}
    read = await log_tree.rows_and_leaves(event_ids)
    if any(leaf is None for _, leaf in read.values()):  # rows of the last second: bring them
        await log_tree.integrate()
        read = await log_tree.rows_and_leaves(event_ids)
    rows = {event_id: row for event_id, (row, _) in read.items()}
    leaves = {event_id: leaf for event_id, (_, leaf) in read.items() if leaf is not None}
    latest = await checkpoints.latest()
    size = latest.size if latest else 0
    proven = sorted(leaves[i].index for i in leaves if leaves[i].index < size)
    proofs = await log_tree.inclusion_proofs(proven, size)
    subject = str(customer_id)
    found: dict[int, Evidence] = {}
    for event_id, leaf in leaves.items():
        data = leaf_format.leaf_data(rows[event_id], leaf.salt)
        key = leaf_format.key(leaf.salt, "subject", subject)
        proof = None
        if latest is not None and leaf.index < size:
            proof = Inclusion(leaf.index, size, proofs[leaf.index], data, leaf.hash, latest.note)
        found[event_id] = Evidence(data, key, proof)
    return found


class EvidenceBatch:
    """The evidence of one page of a customer's access log, read once for all its entries
    when the first of them asks (entries resolve concurrently)."""

    def __init__(self, customer_id: UUID, event_ids: Sequence[int]) -> None:
        self._customer_id = customer_id
        self._event_ids = list(event_ids)
        self._found: asyncio.Future[dict[int, Evidence]] | None = None

    async def get(self) -> dict[int, Evidence]:
        if self._found is None:
            self._found = asyncio.ensure_future(evidence_for(self._customer_id, self._event_ids))
        return await asyncio.shield(self._found)
