"""An auditor's witness against a real Custos server: `custos audit witness` (the standalone
verifier) accepts and cosigns checkpoints while the log grows, and raises the alarm when
someone with the database's keys deletes the newest rows and lets the server sign the
shorter log."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from api.clock import FakeClock
from api.settings import Settings
from authz.audit import AuditRecord, append
from tests.cli_helpers import custos
from tests.real_servers import server_env, servers
from tests.test_log_verify import intrude, rebuild_nodes
from verifier.note import open_checkpoint, parse_note, parse_vkey
from verifier.witness import load_signer, write_key


def wait_for(check: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def checkpoint_size(url: str) -> int:
    answer = httpx.get(f"{url}/.well-known/custos/checkpoint", timeout=5)
    return int(answer.text.split("\n")[1]) if answer.status_code == 200 else -1


async def grow(clock: FakeClock, count: int) -> None:
    await append(
        [
            AuditRecord(
                at=clock.now(),
                actor_kind="employee",
                actor_id="e-1",
                roles="customer_care",
                event="access",
                decision="allow",
                category="contact.email",
                action="read",
                purpose="support",
                subject_id=f"c-{n}",
            )
            for n in range(count)
        ]
    )


async def test_a_witness_cosigns_a_growing_log_and_catches_a_truncation(
    settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    state, key_file = tmp_path / "witness", tmp_path / "witness.key"
    witness_vkey = write_key("auditor.example/witness", key_file).verifier
    env = server_env(settings.database_url)
    fast = {"CUSTOS_AUDIT_CHECKPOINT_SECONDS": "0", "CUSTOS_AUDIT_INTEGRATE_SECONDS": "0.2"}
    with servers(settings.database_url, 1, tmp_path, **fast) as [server]:
        await grow(clock, 5)
        wait_for(lambda: checkpoint_size(server.url) == 5, "a checkpoint of 5 rows")
        async with httpx.AsyncClient() as client:
            keys = (await client.get(f"{server.url}/.well-known/custos/log-keys")).json()
        [log_vkey] = [k["vkey"] for k in keys["keys"]]

        def witness() -> tuple[int, str, str]:
            args = ["--log", server.url, "--log-key", log_vkey, "--state", str(state)]
            done = custos(env, "audit", "witness", *args, "--key", str(key_file))
            return done.returncode, done.stdout, done.stderr

        # first run: trust on first use; then the log grows and the witness follows
        first = witness()
        assert first[0] == 0, first
        await grow(clock, 7)
        wait_for(lambda: checkpoint_size(server.url) == 12, "a checkpoint of 12 rows")
        status, out, err = witness()
        assert status == 0, err
        cosigned = parse_note((state / "cosigned-checkpoint").read_text())
        assert cosigned.verified_by(witness_vkey) > 0
        checkpoint, _ = open_checkpoint(str(cosigned), [parse_vkey(log_vkey)])
        assert checkpoint.size == 12
        # someone with the database's keys deletes the 4 newest rows, what derives from
        # them and the log's own checkpoints; the server signs the shorter log
        await intrude(
            # (each row's subject is listed once a batch: their lists hold their ids alone)
            "DELETE FROM audit_posting WHERE first_id IN (SELECT event_id FROM audit_leaf "
            "WHERE idx >= 8);"
            "DELETE FROM audit_event WHERE id IN (SELECT event_id FROM audit_leaf "
            "WHERE idx >= 8);"
            "DELETE FROM audit_leaf WHERE idx >= 8; DELETE FROM audit_checkpoint"
        )
        await rebuild_nodes()
        try:
            wait_for(lambda: checkpoint_size(server.url) == 8, "8 rows signed", seconds=60)
        except AssertionError:
            log = server.log.read_text(errors="replace")[-3000:]
            raise AssertionError(f"the server did not sign 8 rows; its log: {log}") from None
        accepted = (state / "checkpoint").read_text()
        status, out, err = witness()
        assert status == 2, (out, err)
        assert err.strip() == "ALARM: the log's tree shrank from 12 to 8 rows"
        assert (state / "checkpoint").read_text() == accepted
        assert any(p.name.startswith("alarm-") for p in state.iterdir())
    assert load_signer(key_file).verifier == witness_vkey
