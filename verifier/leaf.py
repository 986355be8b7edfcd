"""The leaf of one decision-log row: the bytes the Merkle tree hashes (docs/AUDIT_LOG.md).

A leaf is a JSON object with sorted keys, no spaces, ASCII only (non-ASCII escaped):

    {"action": ..., "actor": <commitment or "">, "actor_kind": ..., "at": <UTC ISO 8601,
     microseconds>, "category": ..., "conditions": ..., "decision": ..., "event": ...,
     "operation": ..., "policy_version": <int>, "purpose": ..., "reason": ...,
     "request_id": ..., "roles": ..., "rule": ..., "subjects": [<commitment>, ...],
     "v": 1}

Every field is the row's own, but who acted and whose data it was: those are commitments,
so that a customer can be handed the leaf of a row about them (to check its proof)
without learning the ids of the employee or of the other customers on the same page.
Each row has a random 16-byte salt; for an id `x` with role `r` ("actor" or "subject"):

    key(x)        = HMAC-SHA256(salt, r || "\\n" || x)
    commitment(x) = hex(SHA-256(key(x) || x))

The customer is given their own `key`, recomputes their commitment from their id and
finds it among `subjects`; the other commitments tell them nothing, since each key needs
the salt. Whoever holds the row and its salt (an auditor with an export) recomputes every
commitment, so a changed actor or subject breaks the leaf like any other field."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime

from verifier.merkle import leaf_hash

VERSION = 1
SALT_BYTES = 16
_ENCODE = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode
_PLAIN = (
    "action",
    "actor_kind",
    "category",
    "conditions",
    "decision",
    "event",
    "operation",
    "purpose",
    "reason",
    "request_id",
    "roles",
    "rule",
)


def key(salt: bytes, role: str, value: str) -> bytes:
    """The opening of one id's commitment: HMAC-SHA256(salt, role || "\\n" || id)."""
    return hmac.digest(salt, f"{role}\n{value}".encode(), "sha256")


def commitment(opening: bytes, value: str) -> str:
    """hex(SHA-256(opening || id))."""
    return hashlib.sha256(opening + value.encode()).hexdigest()


def committed(salt: bytes, role: str, value: str) -> str:
    return commitment(key(salt, role, value), value)


def timestamp(at: datetime | str) -> str:
    """The row's time as the leaf writes it: UTC, ISO 8601, microseconds."""
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    if at.tzinfo is None:
        raise ValueError("audit times are aware datetimes")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def leaf_data(row: Mapping[str, object], salt: bytes) -> bytes:
    """The leaf of `row`, a decision-log row as exported (`actor_id`, `subject_id` as a
    comma-separated list of ids, `at` as a datetime or ISO 8601 text, every other field
    of the leaf under its own name)."""
    actor = str(row["actor_id"] or "")
    subjects = {s for s in str(row["subject_id"] or "").split(",") if s}
    leaf: dict[str, object] = {name: str(row[name] or "") for name in _PLAIN}
    leaf["actor"] = committed(salt, "actor", actor) if actor else ""
    leaf["subjects"] = sorted(committed(salt, "subject", s) for s in subjects)
    leaf["at"] = timestamp(row["at"])  # type: ignore[arg-type]
    leaf["policy_version"] = int(str(row["policy_version"] or 0))
    leaf["v"] = VERSION
    return _ENCODE(leaf).encode()


def row_leaf_hash(row: Mapping[str, object], salt: bytes) -> bytes:
    """SHA-256(0x00 || leaf): the row's hash in the tree."""
    return leaf_hash(leaf_data(row, salt))
