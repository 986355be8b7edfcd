"""Signed checkpoints of the decision log: keys outside the database, rotation with
published validity, publication to a directory and at /.well-known/custos/, and a log
that refuses to sign a tree that no longer extends what it signed."""

from __future__ import annotations

import json
import stat
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from tortoise import connections

from api.clock import FakeClock
from api.services import Services
from authz import checkpoints, log_keys, log_tree
from authz.audit import AuditRecord, append
from authz.checkpoints import CheckpointRefused, LogConfig
from models import AuditCheckpoint, AuditLogKey
from verifier import merkle
from verifier.note import NoteError, open_checkpoint, parse_vkey

ORIGIN = "shop.example.test/audit-log"


@pytest.fixture
def config(tmp_path: Path) -> LogConfig:
    return LogConfig(ORIGIN, tmp_path / "keys", tmp_path / "published")


def row(clock: FakeClock, n: int) -> AuditRecord:
    return AuditRecord(
        at=clock.now(),
        actor_kind="employee",
        actor_id="e-1",
        event="access",
        decision="allow",
        category="contact.email",
        subject_id=f"c-{n}",
    )


async def grow(clock: FakeClock, count: int) -> None:
    await append([row(clock, n) for n in range(count)])
    clock.advance(minutes=2)


async def test_a_checkpoint_is_signed_by_a_key_kept_outside_the_database(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 5)
    signed = await checkpoints.sign(config, clock.now())
    # the private key is a 0600 file in the key directory; the database has the public one
    key = await AuditLogKey.get(key_id=signed.key_id)
    private = config.key_dir / f"{key.key_id}.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes()
    assert "PRIVATE" not in key.vkey
    assert key.retired_at is None
    # the note opens with the published key and says what the tree is
    checkpoint, signed_at = open_checkpoint(signed.note, [parse_vkey(key.vkey)])
    assert (checkpoint.origin, checkpoint.size) == (ORIGIN, 5)
    assert checkpoint.root == await log_tree.root(5)
    assert signed_at == int(clock.now().timestamp())
    # and it is published: latest, by size, and the key list
    assert config.publish_dir is not None
    assert (config.publish_dir / "checkpoint").read_text() == signed.note
    assert (config.publish_dir / "checkpoints" / "5").read_text() == signed.note
    keys = json.loads((config.publish_dir / "log-keys.json").read_text())
    assert keys["keys"][0]["vkey"] == key.vkey
    assert keys["keys"][0]["validUntil"] is None


async def test_a_new_checkpoint_only_when_the_log_grew_and_the_last_is_old_enough(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 3)
    first = await checkpoints.sign(config, clock.now())
    assert (await checkpoints.sign(config, clock.now() + timedelta(hours=1))).id == first.id
    await append([row(clock, 9)])
    assert (await checkpoints.sign(config, clock.now() + timedelta(seconds=5))).id == first.id
    later = await checkpoints.sign(config, clock.now() + timedelta(seconds=61))
    assert (later.size, await AuditCheckpoint.all().count()) == (4, 2)
    forced = await checkpoints.sign(config, clock.now() + timedelta(seconds=62), force=True)
    assert forced.id != later.id
    assert forced.size == 4


async def test_rotation_retires_the_old_key_whose_checkpoints_still_verify(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 2)
    old = await checkpoints.sign(config, clock.now())
    rotated_at = clock.now() + timedelta(minutes=1)
    new_key = await log_keys.rotate(ORIGIN, config.key_dir, rotated_at)
    await grow(clock, 2)
    new = await checkpoints.sign(config, clock.now())
    assert new.key_id == new_key.key_id != old.key_id
    keys = {k.key_id: k for k in await log_keys.published()}
    assert keys[old.key_id].retired_at == rotated_at.replace(microsecond=0)
    assert keys[new.key_id].retired_at is None
    old_vkey, new_vkey = parse_vkey(keys[old.key_id].vkey), parse_vkey(keys[new.key_id].vkey)
    assert open_checkpoint(old.note, [old_vkey, new_vkey])[0].size == 2
    assert open_checkpoint(new.note, [old_vkey, new_vkey])[0].size == 4
    with pytest.raises(NoteError):
        open_checkpoint(new.note, [old_vkey])


async def test_a_swapped_or_missing_private_key_is_refused(
    clock: FakeClock, config: LogConfig
) -> None:
    await grow(clock, 2)
    first = await checkpoints.sign(config, clock.now())
    other = await log_keys.rotate("elsewhere.test/log", config.key_dir, clock.now())
    # the file of another key put in place of the one in use
    path = config.key_dir / f"{first.key_id}.pem"
    (config.key_dir / f"{other.key_id}.pem").replace(path)
    key = await AuditLogKey.get(key_id=first.key_id)
    with pytest.raises(log_keys.KeyUnavailable):
        log_keys.load_signer(config.key_dir, key)
    path.unlink()
    with pytest.raises(log_keys.KeyUnavailable):
        log_keys.load_signer(config.key_dir, key)


async def _rewrite_leaf(index: int, digest: bytes) -> None:
    """What an intruder with database access does: replace a leaf and every node above."""
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    tables = ("audit_leaf", "audit_node")
    script = "".join(
        f"ALTER TABLE {t} DISABLE TRIGGER {t}_append_only;" for t in tables if postgres
    )
    script += f"UPDATE audit_leaf SET hash = '{digest.hex()}' WHERE idx = {index};"
    script += "DELETE FROM audit_node;"
    script += "".join(
        f"ALTER TABLE {t} ENABLE TRIGGER {t}_append_only;" for t in tables if postgres
    )
    await conn.execute_script(script)


async def test_the_log_refuses_to_sign_a_rewritten_tree(
    clock: FakeClock, config: LogConfig, services: Services
) -> None:
    await grow(clock, 6)
    await checkpoints.sign(config, clock.now())
    # the intruder rewrites leaf 2 and recomputes every node consistently
    await _rewrite_leaf(2, bytes(32))
    from authz.log_tree import _LEVEL, _insert  # the intruder's tool: the same node writer

    leaves = [bytes.fromhex(h) for h in await _leaf_hashes()]
    nodes = []
    for level in range(1, 3):
        width = 1 << level
        for index in range(len(leaves) // width):
            subtree = merkle.root(leaves[index * width : (index + 1) * width])
            nodes.append((level * _LEVEL + index, subtree.hex()))
    await _insert(connections.get("default"), "audit_node", ("id", "hash"), nodes)
    await grow(clock, 2)
    before = await AuditCheckpoint.all().count()
    with pytest.raises(CheckpointRefused, match="not consistent with the checkpoint of 6"):
        await checkpoints.sign(config, clock.now())
    assert await AuditCheckpoint.all().count() == before


async def _leaf_hashes() -> list[str]:
    conn = connections.get("default")
    rows = await conn.execute_query_dict("SELECT hash FROM audit_leaf ORDER BY idx")
    return [str(r["hash"]) for r in rows]


async def test_the_published_endpoints(
    clock: FakeClock, client: httpx.AsyncClient, services: Services, settings_dirs: LogConfig
) -> None:
    # before any checkpoint: a 404 that says so
    assert (await client.get("/.well-known/custos/checkpoint")).status_code == 404
    await grow(clock, 9)
    first = await checkpoints.sign(settings_dirs, clock.now())
    await grow(clock, 4)
    latest = await checkpoints.sign(settings_dirs, clock.now())
    got = await client.get("/.well-known/custos/checkpoint")
    assert got.status_code == 200
    assert got.text == latest.note
    keys = (await client.get("/.well-known/custos/log-keys")).json()
    vkeys = [parse_vkey(k["vkey"]) for k in keys["keys"]]
    assert keys["origin"] == settings_dirs.origin
    assert open_checkpoint(got.text, vkeys)[0].size == 13
    proof = (await client.get("/.well-known/custos/consistency?from=9&to=13")).json()
    old_root, new_root = bytes.fromhex(first.root), bytes.fromhex(latest.root)
    hashes = [__import__("base64").b64decode(h) for h in proof["hashes"]]
    assert merkle.verify_consistency(9, 13, old_root, new_root, hashes)
    for query in (
        "from=0&to=13",
        "from=14&to=13",
        "from=1&to=99",
        "from=-1&to=3",
        "from=1",
        "from=1&to=1e3",
        "from=%00&to=3",
        "from=1&to=" + "9" * 40,
        "from=%EF%BF%BD&to=3",
    ):
        answer = await client.get(f"/.well-known/custos/consistency?{query}")
        assert answer.status_code == 400, query
        assert "error" in answer.json()


@pytest.fixture
def settings_dirs(services: Services) -> LogConfig:
    from api.audit.log_config import log_config

    return replace(log_config(services.settings), every=timedelta(0))
