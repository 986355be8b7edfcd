"""GraphQL types of the verifiable log: checkpoints, proofs and a customer's evidence."""

from __future__ import annotations

from datetime import datetime
from typing import NewType

import strawberry

from api.audit.proofs import Consistency, Evidence, Inclusion, b64
from models import AuditCheckpoint as CheckpointModel

_MAX = (1 << 63) - 1


def _log_index(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX:
        raise ValueError("a position or size in the log is a whole number from 0 to 2^63-1")
    return value


LogIndex = NewType("LogIndex", int)
LOG_INDEX = strawberry.scalar(
    name="LogIndex",
    description="A position or size in the decision log's Merkle tree: a whole number from "
    "0 to 2^63-1, sent as a JSON number.",
    serialize=int,
    parse_value=_log_index,
)
"""The schema's definition of `LogIndex` (api/schema.py maps the type to it)."""


@strawberry.type(description="A checkpoint the log signed: its tree's size and root, signed.")
class AuditCheckpoint:
    tree_size: LogIndex
    root_hash: str = strawberry.field(description="The tree's root hash, base64.")
    signed_at: datetime
    key_id: str = strawberry.field(description="The signing key's id (8 hex digits).")
    note: str = strawberry.field(
        description="The checkpoint as a C2SP signed note, as published: verify it with the "
        "log's key from /.well-known/custos/log-keys."
    )

    @classmethod
    def from_model(cls, m: CheckpointModel) -> AuditCheckpoint:
        return cls(
            tree_size=LogIndex(m.size),
            root_hash=b64(bytes.fromhex(m.root)),
            signed_at=m.signed_at,
            key_id=m.key_id,
            note=m.note,
        )


@strawberry.type(description="That one row is a leaf of the tree of `treeSize` rows.")
class InclusionProof:
    leaf_index: LogIndex
    tree_size: LogIndex
    hashes: list[str] = strawberry.field(
        description="RFC 9162 inclusion proof, nearest the leaf first, base64."
    )
    leaf: str = strawberry.field(description="The leaf as hashed (docs/AUDIT_LOG.md), JSON.")
    leaf_hash: str = strawberry.field(description="SHA-256(0x00 || leaf), base64.")
    checkpoint: str | None = strawberry.field(
        description="The signed checkpoint of this tree size, when the log signed one."
    )

    @classmethod
    def from_result(cls, p: Inclusion) -> InclusionProof:
        return cls(
            leaf_index=LogIndex(p.leaf_index),
            tree_size=LogIndex(p.tree_size),
            hashes=[b64(h) for h in p.hashes],
            leaf=p.leaf.decode(),
            leaf_hash=b64(p.leaf_hash),
            checkpoint=p.checkpoint,
        )


@strawberry.type(description="That the tree of `to` rows only appends to the one of `from`.")
class ConsistencyProof:
    from_size: LogIndex = strawberry.field(name="from")
    to_size: LogIndex = strawberry.field(name="to")
    hashes: list[str] = strawberry.field(description="RFC 9162 consistency proof, base64.")

    @classmethod
    def from_result(cls, p: Consistency) -> ConsistencyProof:
        return cls(
            from_size=LogIndex(p.old_size),
            to_size=LogIndex(p.new_size),
            hashes=[b64(h) for h in p.hashes],
        )


@strawberry.type(
    description="What lets you check that an access shown to you is in the signed log: "
    "the row's leaf (who acted and whose data it was appear only as commitments), the key "
    "that opens your own commitment, and its inclusion proof in the latest checkpoint."
)
class LogEvidence:
    leaf: str = strawberry.field(description="The leaf as hashed, JSON.")
    subject_key: str = strawberry.field(
        description="hex; SHA-256(key || your customer id) is among the leaf's `subjects`."
    )
    proof: InclusionProof | None = strawberry.field(
        description="Null until a signed checkpoint covers the row (within a minute)."
    )

    @classmethod
    def from_result(cls, e: Evidence) -> LogEvidence:
        return cls(
            leaf=e.leaf.decode(),
            subject_key=e.subject_key.hex(),
            proof=InclusionProof.from_result(e.inclusion) if e.inclusion else None,
        )
