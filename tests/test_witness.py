"""verifier/witness.py: the auditor's witness against a log played by a real HTTP server
(http.server in a thread) over in-memory leaves (verifier/merkle.py) and a log Signer.
Every attack must raise the ALARM (exit 2) with its reason and leave the accepted
checkpoint alone; an unreachable or incoherent log is an error (exit 1), never an alarm."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.ports import free_port as _free_port
from verifier import merkle, witness
from verifier.fetch import FetchError, get
from verifier.note import Checkpoint, Note, Signer, Verifier, parse_note, parse_vkey

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "custos.example/decisions"


def leaves(count: int, tag: str = "") -> list[bytes]:
    return [merkle.leaf_hash(f"row {i}{tag}".encode()) for i in range(count)]


@dataclass
class FakeLog:
    """The log's three published endpoints over `leaves`, served at `size` rows."""

    signer: Signer
    leaves: list[bytes]
    size: int
    signed_at: int = field(default_factory=lambda: int(time.time()))
    keys: list[dict[str, object]] | None = None
    override: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def note(self, signer: Signer | None = None, signed_at: int | None = None) -> str:
        checkpoint = Checkpoint(ORIGIN, self.size, merkle.root(self.leaves[: self.size]))
        return str(
            Note(checkpoint.text, ()).signed(
                signer or self.signer, self.signed_at if signed_at is None else signed_at
            )
        )

    def answer(self, target: str) -> tuple[int, bytes]:
        self.requests.append(target)
        url = urlsplit(target)
        if url.path in self.override:
            return self.override[url.path]
        if url.path == witness.CHECKPOINT_PATH:
            return 200, self.note().encode()
        if url.path == witness.LOG_KEYS_PATH:
            keys = self.keys or [
                {
                    "vkey": self.signer.verifier.vkey,
                    "keyId": self.signer.verifier.key_id.hex(),
                    "validFrom": "2020-01-01T00:00:00Z",
                    "validUntil": None,
                }
            ]
            return 200, json.dumps({"origin": ORIGIN, "keys": keys}).encode()
        if url.path == witness.CONSISTENCY_PATH:
            query = parse_qs(url.query)
            old, new = int(query["from"][0]), int(query["to"][0])
            if not 0 < old <= new <= len(self.leaves):
                return 400, b"bad sizes"
            proof = merkle.consistency_proof(self.leaves[:new], old)
            body = {"from": old, "to": new, "hashes": [base64.b64encode(h).decode() for h in proof]}
            return 200, json.dumps(body).encode()
        return 404, b"not found"


class _Handler(BaseHTTPRequestHandler):
    log: FakeLog

    def do_GET(self) -> None:
        status, body = self.server.log.answer(self.path)  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@dataclass
class Served:
    log: FakeLog
    url: str
    state: Path
    log_key: str


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    log = FakeLog(Signer.generate(ORIGIN), leaves(300), 120)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.log = log  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(
            log,
            f"http://127.0.0.1:{server.server_address[1]}",
            tmp_path / "state",
            log.signer.verifier.vkey,
        )
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Outcome:
    status: int
    stdout: str
    stderr: str


def run_cli(served: Served, *extra: str, log_keys: list[str] | None = None) -> Outcome:
    keys = [arg for key in (log_keys or [served.log_key]) for arg in ("--log-key", key)]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "witness",
            "--log",
            served.url,
            *keys,
            "--state",
            str(served.state),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def run_function(
    served: Served, signer: Signer | None = None, log_keys: list[str] | None = None
) -> Outcome:
    """The same run through witness.run, mapped onto the CLI's statuses and messages."""

    def fetch(path: str) -> bytes:
        return get(served.url + path, timeout=5)

    verifiers = [parse_vkey(k) for k in log_keys or [served.log_key]]
    try:
        result = witness.run(fetch, verifiers, served.state, signer)
    except witness.WitnessError as exc:
        return Outcome(1, "", f"error: {exc}")
    if result.outcome == "alarm":
        return Outcome(2, f"evidence kept in {result.evidence}", f"ALARM: {result.message}")
    return Outcome(0, result.message + "\n" + (result.cosigned or ""), "")


RUNNERS: dict[str, Callable[..., Outcome]] = {"cli": run_cli, "function": run_function}


def accepted(served: Served) -> str:
    return (served.state / witness.ACCEPTED).read_text()


def alarms(served: Served) -> list[Path]:
    return sorted(served.state.glob("alarm-*"))


def test_the_first_run_trusts_on_first_use(served: Served) -> None:
    out = run_cli(served)
    assert out.status == 0, out.stderr
    assert "trust on first use" in out.stdout
    assert "120 rows" in out.stdout
    assert accepted(served) == served.log.note()
    assert not alarms(served)


@pytest.fixture
def witness_key(tmp_path: Path) -> tuple[Path, Verifier]:
    path = tmp_path / "witness.key"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "witness-key",
            "--name",
            "auditor.example/w1",
            "--out",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return path, parse_vkey(done.stdout.strip())


def test_growth_is_accepted_and_cosigned(
    served: Served, witness_key: tuple[Path, Verifier]
) -> None:
    key_file, witness_verifier = witness_key
    assert run_cli(served).status == 0
    served.log.size = 250
    served.log.signed_at += 60
    out = run_cli(served, "--key", str(key_file))
    assert out.status == 0, out.stderr
    assert "grew from 120 to 250 rows" in out.stdout
    assert any("consistency?from=120&to=250" in r for r in served.log.requests)
    assert accepted(served) == served.log.note()
    cosigned = (served.state / witness.COSIGNED).read_text()
    assert cosigned in out.stdout
    note = parse_note(cosigned)
    assert note.text == parse_note(served.log.note()).text
    now = int(time.time())
    assert abs(note.verified_by(witness_verifier) - now) < 60
    assert note.verified_by(served.log.signer.verifier) == served.log.signed_at
    # Anyone else's key does not verify it.
    with pytest.raises(ValueError, match="not signed by"):
        note.verified_by(Signer.generate("auditor.example/w1").verifier)


def test_growth_through_the_function_and_an_unchanged_log(served: Served) -> None:
    signer = Signer.generate("auditor.example/w2")
    assert run_function(served).status == 0
    served.log.size = 121
    out = run_function(served, signer)
    assert out.status == 0
    assert "grew from 120 to 121 rows" in out.stdout
    assert parse_note(out.stdout.split("\n", 1)[1]).verified_by(signer.verifier) > 0
    out = run_function(served, signer)
    assert out.status == 0
    assert "still holds 121 rows" in out.stdout


def _shrink(log: FakeLog) -> str:
    log.size = 100
    return "ALARM: the log's tree shrank from 120 to 100 rows"


def _other_root(log: FakeLog) -> str:
    log.leaves[7] = merkle.leaf_hash(b"rewritten")
    return "ALARM: two different roots for 120 rows"


def _rewritten_history(log: FakeLog) -> str:
    log.leaves[7] = merkle.leaf_hash(b"rewritten")
    log.size = 150
    return "ALARM: the checkpoint of 150 rows is not consistent with the accepted one of 120 rows"


def _bad_signature(log: FakeLog) -> str:
    note = parse_note(log.note())
    line = note.signatures[0].line
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[-1] ^= 1
    tampered = line.rsplit(" ", 1)[0] + " " + base64.b64encode(bytes(blob)).decode() + "\n"
    log.override[witness.CHECKPOINT_PATH] = (200, (note.text + "\n" + tampered).encode())
    return "ALARM: signature does not verify"


def _unknown_key(log: FakeLog) -> str:
    log.override[witness.CHECKPOINT_PATH] = (200, log.note(Signer.generate(ORIGIN)).encode())
    return "ALARM: the checkpoint is not signed by any pinned key"


def _replayed(log: FakeLog) -> str:
    log.signed_at -= 3600
    return "ALARM: the checkpoint is signed at"  # ..., before the accepted one


def _future(log: FakeLog) -> str:
    log.signed_at = int(time.time()) + 3600
    return "s in the future"


def _other_log(log: FakeLog) -> str:
    other = Signer.generate("elsewhere.example/log")
    checkpoint = Checkpoint("elsewhere.example/log", 120, merkle.root(log.leaves[:120]))
    note = Note(checkpoint.text, ()).signed(other, log.signed_at)
    log.override[witness.CHECKPOINT_PATH] = (200, str(note).encode())
    return "ALARM: the checkpoint is of log 'elsewhere.example/log'"


def _retired_key(log: FakeLog) -> str:
    log.keys = [
        {
            "vkey": log.signer.verifier.vkey,
            "keyId": log.signer.verifier.key_id.hex(),
            "validFrom": "2020-01-01T00:00:00Z",
            "validUntil": "2021-01-01T00:00:00+00:00",
        }
    ]
    log.size = 130
    return "outside the validity the log publishes for that key"


def _empty_tree_root(log: FakeLog) -> str:
    checkpoint = Checkpoint(ORIGIN, 0, merkle.leaf_hash(b"x"))
    note = Note(checkpoint.text, ()).signed(log.signer, log.signed_at)
    log.override[witness.CHECKPOINT_PATH] = (200, str(note).encode())
    return "ALARM: the checkpoint of 0 rows has a root other than the empty tree's"


ATTACKS = {
    "truncation": _shrink,
    "same size, other root": _other_root,
    "bigger tree, old leaf changed": _rewritten_history,
    "bad signature": _bad_signature,
    "unknown key": _unknown_key,
    "replayed older checkpoint": _replayed,
    "signed in the future": _future,
    "another log's checkpoint": _other_log,
    "key outside its validity": _retired_key,
    "empty tree with a root": _empty_tree_root,
}


@pytest.mark.parametrize("runner", sorted(RUNNERS))
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_an_attack_raises_the_alarm_and_keeps_the_accepted_checkpoint(
    served: Served, attack: str, runner: str
) -> None:
    run = RUNNERS[runner]
    served.log.signed_at -= 60
    assert run(served).status == 0
    before = accepted(served)
    served.log.signed_at += 30
    expected = ATTACKS[attack](served.log)
    out = run(served)
    assert out.status == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ALARM: ")
    assert expected in lines[0]
    assert accepted(served) == before
    [evidence] = alarms(served)
    assert str(evidence) in out.stdout
    assert (evidence / "accepted-checkpoint").read_text() == before
    offending = (evidence / "offending-checkpoint").read_bytes()
    assert offending == served.log.answer(witness.CHECKPOINT_PATH)[1]
    assert (evidence / "reason.txt").read_text().strip() == lines[0].removeprefix("ALARM: ")
    if attack == "bigger tree, old leaf changed":
        proof = json.loads((evidence / "consistency.json").read_text())
        assert (proof["from"], proof["to"]) == (120, 150)
    # The alarm does not go away on the next run, and never replaces the checkpoint.
    assert run(served).status == 2
    assert accepted(served) == before
    assert len(alarms(served)) == 2


def test_an_alarm_on_the_first_run_accepts_nothing(served: Served) -> None:
    _bad_signature(served.log)
    out = run_cli(served)
    assert out.status == 2
    assert out.stderr.startswith("ALARM: signature does not verify")
    assert not (served.state / witness.ACCEPTED).exists()
    [evidence] = alarms(served)
    assert not (evidence / "accepted-checkpoint").exists()


def test_a_rotated_key_is_accepted_when_pinned(served: Served) -> None:
    assert run_cli(served).status == 0
    old = served.log.signer
    served.log.signer = Signer.generate(ORIGIN)
    served.log.keys = [
        {"vkey": old.verifier.vkey, "validFrom": "2020-01-01T00:00:00Z", "validUntil": None},
        {"vkey": served.log.signer.verifier.vkey, "validFrom": "2020-01-01T00:00:00Z"},
    ]
    served.log.size = 140
    out = run_cli(served)
    assert out.status == 2
    assert "not signed by any pinned key" in out.stderr
    out = run_cli(served, log_keys=[served.log_key, served.log.signer.verifier.vkey])
    assert out.status == 0, out.stderr
    assert "grew from 120 to 140 rows" in out.stdout


@pytest.mark.parametrize("runner", sorted(RUNNERS))
def test_a_log_that_is_down_is_an_error_not_an_alarm(served: Served, runner: str) -> None:
    run = RUNNERS[runner]
    assert run(served).status == 0
    before = accepted(served)
    served.url = f"http://127.0.0.1:{_free_port()}"
    out = run(served)
    assert out.status == 1
    assert out.stderr.startswith("error: cannot fetch the checkpoint: cannot reach")
    assert "Traceback" not in out.stderr
    assert "ALARM" not in out.stderr
    assert accepted(served) == before
    assert not alarms(served)


def _set(path: str, status: int, body: bytes) -> object:
    def change(log: FakeLog) -> None:
        log.size = 200
        log.override[path] = (status, body)

    return change


INCOHERENT = {
    "no checkpoint yet": (_set(witness.CHECKPOINT_PATH, 404, b""), "no checkpoint yet"),
    "server error": (_set(witness.CHECKPOINT_PATH, 500, b"oops"), "HTTP 500"),
    "not a note": (_set(witness.CHECKPOINT_PATH, 200, b"hello"), "malformed"),
    "not UTF-8": (_set(witness.CHECKPOINT_PATH, 200, b"\xff\n\n"), "malformed"),
    "huge": (_set(witness.CHECKPOINT_PATH, 200, b"a" * (2 << 20)), "more than"),
    "proof not JSON": (_set(witness.CONSISTENCY_PATH, 200, b"{"), "not JSON"),
    "proof not base64": (
        _set(witness.CONSISTENCY_PATH, 200, b'{"from":120,"to":200,"hashes":["!!"]}'),
        "not base64",
    ),
    "proof for other sizes": (
        _set(witness.CONSISTENCY_PATH, 200, b'{"from":1,"to":200,"hashes":[]}'),
        "other sizes",
    ),
    "proof refused": (_set(witness.CONSISTENCY_PATH, 400, b"no"), "HTTP 400"),
    "keys not JSON": (_set(witness.LOG_KEYS_PATH, 200, b"[" * 100_000), "not JSON"),
    "keys of another log": (
        _set(witness.LOG_KEYS_PATH, 200, b'{"origin":"x","keys":[]}'),
        "not of",
    ),
    "keys with a bad time": (
        _set(
            witness.LOG_KEYS_PATH,
            200,
            b'{"origin":"custos.example/decisions","keys":[{"vkey":"a+00000000+AA",'
            b'"validFrom":"soon"}]}',
        ),
        "bad time",
    ),
}


@pytest.mark.parametrize("case", sorted(INCOHERENT))
def test_an_incoherent_log_is_an_error_not_an_alarm(served: Served, case: str) -> None:
    change, message = INCOHERENT[case]
    assert run_function(served).status == 0
    before = accepted(served)
    change(served.log)  # type: ignore[operator]
    out = run_cli(served)
    assert out.status == 1, (out.stdout, out.stderr)
    assert message in out.stderr
    assert out.stderr.startswith("error: ")
    assert "Traceback" not in out.stderr
    assert accepted(served) == before
    assert not alarms(served)


def test_a_wrong_proof_that_parses_is_an_alarm(served: Served) -> None:
    assert run_function(served).status == 0
    served.log.size = 200
    hashes = [base64.b64encode(bytes(32)).decode()] * 3
    body = json.dumps({"from": 120, "to": 200, "hashes": hashes}).encode()
    served.log.override[witness.CONSISTENCY_PATH] = (200, body)
    out = run_function(served)
    assert out.status == 2
    assert "is not consistent with the accepted one of 120 rows" in out.stderr


def test_a_state_of_another_log_is_refused(served: Served) -> None:
    assert run_function(served).status == 0
    other = Signer.generate("elsewhere.example/log")
    out = run_cli(served, log_keys=[other.verifier.vkey])
    assert out.status == 1
    assert "holds a checkpoint of" in out.stderr


def test_bad_arguments_exit_1_not_2(served: Served, tmp_path: Path) -> None:
    for extra, message in (
        ((), "bad --log-key"),
        (("--key", str(tmp_path / "missing")), "cannot read the key"),
    ):
        out = run_cli(served, *extra, log_keys=["nope"] if not extra else None)
        assert out.status == 1, out.stderr
        assert message in out.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "verifier",
            "witness",
            "--log",
            "file:///etc/passwd",
            "--log-key",
            served.log_key,
            "--state",
            str(served.state),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "not an http or https URL" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "witness"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "required" in done.stderr


def test_the_witness_key_file(tmp_path: Path) -> None:
    path = tmp_path / "w.key"
    signer = witness.write_key("auditor.example/w", path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    loaded = witness.load_signer(path)
    assert loaded.verifier == signer.verifier
    with pytest.raises(witness.WitnessError, match="not overwriting"):
        witness.write_key("auditor.example/w", path)
    with pytest.raises(witness.WitnessError, match="bad key name"):
        witness.write_key("has space", tmp_path / "x.key")
    for content, message in (
        (b"", "not a witness key"),
        (b"\xff\xfe\n", "not a witness key"),
        (witness.KEY_HEADER.encode() + b"n\nnot pem", "no readable private key"),
        (path.read_bytes().replace(b"auditor.example/w", b"a+b"), "not a valid key name"),
    ):
        bad = tmp_path / "bad.key"
        bad.write_bytes(content)
        with pytest.raises(witness.WitnessError, match=message):
            witness.load_signer(bad)


def test_witness_key_cli_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "w.key"
    args = [sys.executable, "-m", "verifier", "witness-key", "--name", "w.example", "--out"]
    first = subprocess.run(
        [*args, str(path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert first.returncode == 0
    assert parse_vkey(first.stdout.strip()) == witness.load_signer(path).verifier
    again = subprocess.run(
        [*args, str(path)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert again.returncode == 1
    assert "not overwriting" in again.stderr
    assert parse_vkey(first.stdout.strip()) == witness.load_signer(path).verifier


def test_fetch_errors_are_typed() -> None:
    with pytest.raises(FetchError, match="not an http"):
        get("ftp://example.org/")
    with pytest.raises(FetchError, match="cannot reach"):
        get(f"http://127.0.0.1:{_free_port()}/", timeout=2)
