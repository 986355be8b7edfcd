"""Signed checkpoints of the decision log (docs/AUDIT_LOG.md: checkpoints).

A checkpoint is the tree's size and root hash under the log's name, as a C2SP signed note
signed by the key in use (authz/log_keys.py). It is kept in `audit_checkpoint` (for
`auditCheckpoints`) and published outside the database: to a directory (a setting) and at
/.well-known/custos/checkpoint. Before signing, the log checks that its tree is consistent
with the last checkpoint it signed: a tree rewritten in the database is never signed, the
refusal is logged and counted, and every checkpoint already handed out keeps showing it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tortoise.transactions import in_transaction

from authz import log_keys, log_tree
from models import AuditCheckpoint, AuditLogKey
from verifier import merkle
from verifier.note import Checkpoint

log = logging.getLogger(__name__)

# Any constant: serialises signing across processes on PostgreSQL.
_SIGN_LOCK = 0x637573746F63


@dataclass(frozen=True, slots=True)
class LogConfig:
    """Where the log's name, keys and published checkpoints are (from the settings)."""

    origin: str
    key_dir: Path
    publish_dir: Path | None
    every: timedelta = timedelta(seconds=60)


class CheckpointRefused(RuntimeError):
    """The tree is not consistent with the last checkpoint signed: it was rewritten."""


def _verify_growth(last: AuditCheckpoint, size: int, root: bytes, proof: list[bytes]) -> None:
    if size < last.size:
        raise CheckpointRefused(f"the tree shrank from {last.size} to {size} rows")
    if size == last.size:
        if root.hex() != last.root:
            raise CheckpointRefused(f"the first {size} rows no longer hash to the signed root")
        return
    if last.size and not merkle.verify_consistency(
        last.size, size, bytes.fromhex(last.root), root, proof
    ):
        raise CheckpointRefused(
            f"the tree of {size} rows is not consistent with the checkpoint of {last.size}"
        )


async def latest() -> AuditCheckpoint | None:
    return await AuditCheckpoint.all().order_by("-id").first()


async def sign(config: LogConfig, now: datetime, *, force: bool = False) -> AuditCheckpoint:
    """Integrate the committed rows and sign a checkpoint of the tree, unless the last one
    is younger than `config.every` or has the same size (then it is returned), or `force`.
    Raises CheckpointRefused, and signs nothing, when the tree no longer extends the last
    checkpoint."""
    size = await log_tree.integrate()
    async with in_transaction() as conn:
        if conn.capabilities.dialect == "postgres":
            await conn.execute_query(f"SELECT pg_advisory_xact_lock({_SIGN_LOCK})")
        last = await AuditCheckpoint.all().using_db(conn).order_by("-id").first()
        fresh = last is not None and (last.size == size or now - last.signed_at < config.every)
        if last is not None and fresh and not force:
            return last
        root = await log_tree.root(size, conn)
        if last is not None:
            grew = 0 < last.size < size
            proof = await log_tree.consistency_proof(last.size, size) if grew else []
            try:
                _verify_growth(last, size, root, proof)
            except CheckpointRefused as refusal:
                log.error("audit checkpoint refused", extra={"reason": str(refusal)})
                raise
        key = await log_keys.ensure(config.origin, config.key_dir, now)
        signer = log_keys.load_signer(config.key_dir, key)
        text = Checkpoint(config.origin, size, root).text
        note = text + "\n" + signer.signature_line(text, int(now.timestamp()))
        row = await AuditCheckpoint.create(
            size=size, root=root.hex(), signed_at=now, key_id=key.key_id, note=note, using_db=conn
        )
    if config.publish_dir is not None:
        await asyncio.to_thread(publish, config.publish_dir, row, await log_keys.published())
    return row


def keys_document(origin: str, keys: list[AuditLogKey]) -> dict[str, object]:
    """The published key list: each key with the period it signed in."""
    return {
        "origin": origin,
        "keys": [
            {
                "vkey": k.vkey,
                "keyId": k.key_id,
                "validFrom": k.created_at.isoformat(),
                "validUntil": k.retired_at.isoformat() if k.retired_at else None,
            }
            for k in keys
        ],
    }


def _write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def publish(directory: Path, checkpoint: AuditCheckpoint, keys: list[AuditLogKey]) -> None:
    """Write the checkpoint as `checkpoint` (the latest) and `checkpoints/<size>`, and the
    key list as `log-keys.json`, each replaced atomically."""
    (directory / "checkpoints").mkdir(parents=True, exist_ok=True)
    _write(directory / "checkpoints" / str(checkpoint.size), checkpoint.note)
    _write(directory / "checkpoint", checkpoint.note)
    origin = keys[-1].name if keys else ""
    _write(directory / "log-keys.json", json.dumps(keys_document(origin, keys), indent=2) + "\n")


async def run_loop(
    config: LogConfig,
    now: Callable[[], datetime],
    *,
    integrate_seconds: float,
    on_refusal: Callable[[], None] = lambda: None,
) -> None:
    """A server's background work: integrate new rows every `integrate_seconds` and sign
    a checkpoint when the last is older than `config.every`. Errors are logged, never
    fatal: the next turn tries again."""
    while True:
        try:
            await sign(config, now())
        except CheckpointRefused:
            on_refusal()
        except log_keys.KeyUnavailable as exc:
            log.warning("audit checkpoint not signed here", extra={"reason": str(exc)})
        except Exception:
            log.exception("audit checkpoint loop failed")
        await asyncio.sleep(integrate_seconds)
