"""The keys that sign the decision log's checkpoints (docs/AUDIT_LOG.md: keys).

A key's private part is a PKCS#8 PEM file `<key id>.pem` in the key directory (a setting;
mode 0600), never in the database. The database holds its public part as a verifier key,
when it was made and when it was retired, which /.well-known/custos/log-keys publishes so
that a checkpoint signed at time t can be checked against the key in use at t. One key is
in use at a time; rotating makes a new one and retires the old (its checkpoints stay
verifiable with its published public key)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from tortoise.transactions import in_transaction

from models import AuditLogKey
from verifier.note import Signer, Verifier, parse_vkey

# Any constant: serialises key creation and rotation across processes on PostgreSQL.
_KEY_LOCK = 0x637573746F6B


class KeyUnavailable(RuntimeError):
    """The key in use has no private part in this process's key directory."""


def _path(key_dir: Path, key_id: str) -> Path:
    return key_dir / f"{key_id}.pem"


def _write_private(key_dir: Path, signer: Signer) -> None:
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = signer.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path = _path(key_dir, signer.verifier.key_id.hex())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)


def load_signer(key_dir: Path, row: AuditLogKey) -> Signer:
    """The signer of a published key, from its private file; checked against the public
    key the database publishes (a wrong or swapped file is refused)."""
    try:
        private = load_pem_private_key(_path(key_dir, row.key_id).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise KeyUnavailable(f"no private key {row.key_id} in the key directory") from exc
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyUnavailable(f"key {row.key_id} is not an Ed25519 key")
    signer = Signer(row.name, private)
    if signer.verifier.vkey != row.vkey:
        raise KeyUnavailable(f"key file {row.key_id} does not match the published key")
    return signer


async def current(origin: str) -> AuditLogKey | None:
    """The key in use for `origin`, if any."""
    return await AuditLogKey.filter(retired_at=None, name=origin).order_by("-created_at").first()


async def _create(origin: str, key_dir: Path, now: datetime) -> AuditLogKey:
    signer = Signer.generate(origin)
    _write_private(key_dir, signer)
    verifier = signer.verifier
    return await AuditLogKey.create(
        key_id=verifier.key_id.hex(), name=origin, vkey=verifier.vkey, created_at=now
    )


def _second(now: datetime) -> datetime:
    """Validity periods are published in whole seconds, as signatures carry their time."""
    return now.replace(microsecond=0)


async def ensure(origin: str, key_dir: Path, now: datetime) -> AuditLogKey:
    """The key in use for `origin`, made (with its private file) when there is none. A
    key of another origin is retired: a log's key is named after the log."""
    async with in_transaction() as conn:
        if conn.capabilities.dialect == "postgres":
            await conn.execute_query(f"SELECT pg_advisory_xact_lock({_KEY_LOCK})")
        key = await current(origin)
        if key is not None:
            return key
        now = _second(now)
        await AuditLogKey.filter(retired_at=None).using_db(conn).update(retired_at=now)
        return await _create(origin, key_dir, now)


async def rotate(origin: str, key_dir: Path, now: datetime) -> AuditLogKey:
    """A new key in use; every other one retired as of `now`."""
    now = _second(now)
    async with in_transaction() as conn:
        if conn.capabilities.dialect == "postgres":
            await conn.execute_query(f"SELECT pg_advisory_xact_lock({_KEY_LOCK})")
        await AuditLogKey.filter(retired_at=None).using_db(conn).update(retired_at=now)
        return await _create(origin, key_dir, now)


async def published() -> list[AuditLogKey]:
    """Every key that ever signed, oldest first."""
    return await AuditLogKey.all().order_by("created_at", "key_id")


def verifier_of(row: AuditLogKey) -> Verifier:
    return parse_vkey(row.vkey)
