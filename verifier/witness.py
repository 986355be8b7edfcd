"""A witness for Custos's decision log, run by an auditor on their own machine (cron), in
the manner of C2SP tlog-witness: `python -m verifier witness --log URL --log-key VKEY
--state DIR [--key FILE]`.

Each run fetches the log's latest checkpoint and checks it against the one it accepted
last time (kept in `DIR/checkpoint`):

- the checkpoint must be signed by one of the pinned log keys (and, when the log's own
  key list gives the key a validity window, signed within it), not in the future beyond
  `MAX_SKEW` seconds, and not earlier than the accepted one;
- its tree must not be smaller than the accepted one (a rollback or truncation), must
  have the same root when it has the same size (a split view or rewritten history), and
  when it is larger, the log's consistency proof between the two must verify (history
  only appended to).

The first run has nothing to compare with: it trusts the checkpoint it sees and says so.
A checkpoint that passes replaces the accepted one (atomically) and, with a witness key,
is cosigned (`DIR/cosigned-checkpoint`). One that fails is an ALARM: the accepted
checkpoint stays, and the evidence (both notes, the proof) is kept in
`DIR/alarm-<UTC time>/`. A log that cannot be reached or answers nonsense is an error, not
an alarm: nothing was shown to be wrong.

`run` is the whole check over a `fetch(path) -> bytes` callable, so that it can be tested
without HTTP; `verifier/__main__.py` wraps it. Witness keys are Ed25519 private keys in
PKCS#8 PEM, with their name on a first line (`write_key`, `load_signer`)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from verifier import merkle
from verifier.fetch import FetchError
from verifier.note import (
    Checkpoint,
    Note,
    NoteError,
    Signer,
    Verifier,
    parse_checkpoint,
    parse_note,
    parse_vkey,
)

CHECKPOINT_PATH = "/.well-known/custos/checkpoint"
LOG_KEYS_PATH = "/.well-known/custos/log-keys"
CONSISTENCY_PATH = "/.well-known/custos/consistency"
MAX_SKEW = 300
"""How far (seconds) a checkpoint's signature time may lie ahead of the witness's clock."""

ACCEPTED = "checkpoint"
COSIGNED = "cosigned-checkpoint"
KEY_HEADER = "custos-witness-key "
"""The first line of a witness key file, followed by the key's name."""

Fetch = Callable[[str], bytes]
"""`fetch(path_and_query)`: the body of the log's 200 answer; raises FetchError."""
Outcome = Literal["first", "accepted", "alarm"]


class WitnessError(Exception):
    """The run could not check anything: the log is unreachable or answered nonsense, the
    state or a key file is unusable. Not an alarm (exit status 1)."""


class _Alarm(Exception):
    """The log showed something it must never show (exit status 2)."""


@dataclass(frozen=True, slots=True)
class Result:
    """What one run decided. `message` is one line for a person; `cosigned` the cosigned
    note when a witness key was given and the checkpoint passed; `evidence` the folder
    an alarm's evidence was kept in."""

    outcome: Outcome
    message: str
    checkpoint: Checkpoint | None = None
    cosigned: str | None = None
    evidence: Path | None = None


@dataclass(frozen=True, slots=True)
class _Window:
    valid_from: datetime
    valid_until: datetime | None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _utc(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{seconds} s after 1970"


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and os.replace: a reader (or a
    crash) sees the old file or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _log_times(note: Note, origin: str) -> list[int]:
    """The times in the log's own signature lines (name == origin) of a note the witness
    already accepted (its own state, so not verified again: pinned keys may have rotated)."""
    return [
        struct.unpack(">Q", sig.blob[:8])[0]
        for sig in note.signatures
        if sig.name == origin and len(sig.blob) == 72
    ]


def _read_state(state: Path, origin: str) -> tuple[Note, Checkpoint, int] | None:
    path = state / ACCEPTED
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WitnessError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        note = parse_note(raw)
        checkpoint = parse_checkpoint(note.text)
    except NoteError as exc:
        raise WitnessError(f"{path} is not a checkpoint note ({exc})") from None
    if checkpoint.origin != origin:
        raise WitnessError(
            f"{path} holds a checkpoint of {checkpoint.origin!r}, not of {origin!r}: "
            "use another state folder for another log"
        )
    return note, checkpoint, max(_log_times(note, origin), default=0)


def _pinned_name(verifiers: Sequence[Verifier]) -> str:
    names = {v.name for v in verifiers}
    if len(names) != 1:
        raise WitnessError("give one or more --log-key of one log (all under the same name)")
    return names.pop()


def _parse_time(value: object, what: str) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise WitnessError(f"the log's key list has no ISO 8601 time for {what}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise WitnessError(f"the log's key list has a bad time for {what}: {value!r}") from None
    if parsed.tzinfo is None:
        raise WitnessError(f"the log's key list has a time without a zone for {what}")
    return parsed


def _windows(body: bytes, origin: str) -> dict[tuple[str, bytes], _Window]:
    """The validity windows the log publishes for its keys, by (name, key id)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise WitnessError("the log's key list is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise WitnessError('the log\'s key list is not {"origin": ..., "keys": [...]}')
    if document.get("origin") != origin:
        raise WitnessError(f"the log's key list is not of {origin!r}")
    windows: dict[tuple[str, bytes], _Window] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("vkey"), str):
            raise WitnessError("the log's key list has an entry without a vkey")
        parts = entry["vkey"].split("+", 2)
        try:
            if len(parts) != 3 or len(parts[1]) != 8:
                raise ValueError
            key = (parts[0], bytes.fromhex(parts[1]))
        except ValueError:
            raise WitnessError(f"the log's key list has a bad vkey: {entry['vkey']!r}") from None
        until = entry.get("validUntil")
        windows[key] = _Window(
            _parse_time(entry.get("validFrom"), parts[0] + "+" + parts[1]),
            None if until is None else _parse_time(until, parts[0] + "+" + parts[1]),
        )
    return windows


def _in_window(window: _Window | None, seconds: int) -> bool:
    if window is None:
        return True
    at = window.valid_from.timestamp() <= seconds
    return at and (window.valid_until is None or seconds <= window.valid_until.timestamp())


def _signature_time(
    note: Note, checkpoint: Checkpoint, verifiers: Sequence[Verifier], fetch: Fetch | None
) -> int:
    """The time the log signed `note` with a pinned key valid then. Raises _Alarm when a
    pinned key's signature fails, no pinned key signed, or none was valid at the time."""
    signed: list[tuple[Verifier, int]] = []
    for verifier in verifiers:
        if not any(
            s.name == verifier.name and s.key_id == verifier.key_id for s in note.signatures
        ):
            continue
        try:
            signed.append((verifier, note.verified_by(verifier)))
        except NoteError:
            raise _Alarm(
                f"signature does not verify: the checkpoint's signature by the pinned key "
                f"{verifier.name}+{verifier.key_id.hex()} is wrong"
            ) from None
    if not signed:
        others = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in note.signatures)
        raise _Alarm(
            f"the checkpoint is not signed by any pinned key of the log (signed by: {others})"
        )
    if fetch is None:
        return max(t for _, t in signed)
    windows = _windows(_get(fetch, LOG_KEYS_PATH, "the log's key list"), checkpoint.origin)
    valid = [t for v, t in signed if _in_window(windows.get((v.name, v.key_id)), t)]
    if not valid:
        verifier, at = signed[0]
        raise _Alarm(
            f"the checkpoint was signed at {_utc(at)} by key {verifier.name}+"
            f"{verifier.key_id.hex()}, outside the validity the log publishes for that key"
        )
    return max(valid)


def _get(fetch: Fetch, path: str, what: str) -> bytes:
    try:
        return fetch(path)
    except FetchError as exc:
        if exc.status == 404 and path == CHECKPOINT_PATH:
            raise WitnessError("the log has no checkpoint yet (HTTP 404)") from None
        raise WitnessError(f"cannot fetch {what}: {exc}") from None


def _consistency(fetch: Fetch, old: int, new: int) -> tuple[bytes, list[bytes]]:
    """The raw answer and the hashes of the log's consistency proof from old to new."""
    body = _get(fetch, f"{CONSISTENCY_PATH}?from={old}&to={new}", "the consistency proof")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise WitnessError("the consistency proof is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("hashes"), list):
        raise WitnessError('the consistency proof is not {"from", "to", "hashes": [...]}')
    if document.get("from") != old or document.get("to") != new:
        raise WitnessError(
            f"the log answered a consistency proof for other sizes than {old}, {new}"
        )
    hashes = []
    for item in document["hashes"]:
        if not isinstance(item, str) or len(item) > 100:
            raise WitnessError("the consistency proof holds a hash that is not base64 text")
        try:
            hashes.append(base64.b64decode(item.encode("ascii"), validate=True))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise WitnessError("the consistency proof holds a hash that is not base64") from None
    return body, hashes


def _keep_evidence(state: Path, reason: str, files: dict[str, bytes]) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for attempt in range(1000):
        folder = state / (f"alarm-{stamp}" if attempt == 0 else f"alarm-{stamp}-{attempt}")
        try:
            folder.mkdir(mode=0o700)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - a thousand alarms in one second
        raise WitnessError(f"cannot make an alarm folder in {state}")
    (folder / "reason.txt").write_text(reason + "\n", encoding="utf-8")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def run(
    fetch: Fetch,
    verifiers: Iterable[Verifier],
    state: Path,
    signer: Signer | None = None,
    now: int | None = None,
    *,
    check_key_windows: bool = True,
) -> Result:
    """Check the log's latest checkpoint against the accepted one in `state` (a folder,
    made when missing), keep it or raise the alarm (see the module's docstring). Raises
    WitnessError when nothing could be checked."""
    pinned = list(verifiers)
    if not pinned:
        raise WitnessError("give at least one --log-key")
    origin = _pinned_name(pinned)
    now = int(time.time()) if now is None else now
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise WitnessError(f"cannot make the state folder {state}: {exc.strerror or exc}") from None
    accepted = _read_state(state, origin)
    raw = _get(fetch, CHECKPOINT_PATH, "the checkpoint")
    try:
        note = parse_note(raw)
        checkpoint = parse_checkpoint(note.text)
    except NoteError as exc:
        raise WitnessError(f"the log's checkpoint is malformed: {exc}") from None
    evidence = {"offending-checkpoint": raw}
    if accepted is not None:
        evidence["accepted-checkpoint"] = str(accepted[0]).encode()
    try:
        outcome, message = _check(
            fetch, pinned, origin, checkpoint, note, accepted, now, evidence, check_key_windows
        )
    except _Alarm as alarm:
        reason = _one_line(str(alarm))
        return Result("alarm", reason, checkpoint, evidence=_keep_evidence(state, reason, evidence))
    _write_atomically(state / ACCEPTED, str(note).encode())
    cosigned = None
    if signer is not None:
        cosigned = str(note.signed(signer, now))
        _write_atomically(state / COSIGNED, cosigned.encode())
    return Result(outcome, message, checkpoint, cosigned)


def _check(
    fetch: Fetch,
    pinned: Sequence[Verifier],
    origin: str,
    checkpoint: Checkpoint,
    note: Note,
    accepted: tuple[Note, Checkpoint, int] | None,
    now: int,
    evidence: dict[str, bytes],
    check_key_windows: bool,
) -> tuple[Outcome, str]:
    if checkpoint.origin != origin:
        raise _Alarm(
            f"the checkpoint is of log {checkpoint.origin!r}, not of the pinned {origin!r}"
        )
    signed_at = _signature_time(note, checkpoint, pinned, fetch if check_key_windows else None)
    if signed_at > now + MAX_SKEW:
        raise _Alarm(
            f"the checkpoint is signed at {_utc(signed_at)}, {signed_at - now} s in the future"
        )
    if checkpoint.size == 0 and checkpoint.root != merkle.EMPTY_ROOT:
        raise _Alarm("the checkpoint of 0 rows has a root other than the empty tree's")
    rows = f"{checkpoint.size} rows"
    if accepted is None:
        return "first", (
            f"trust on first use: accepted the checkpoint of {rows} signed at "
            f"{_utc(signed_at)}; later runs check the log against it"
        )
    _, old, old_at = accepted
    if signed_at < old_at:
        raise _Alarm(
            f"the checkpoint is signed at {_utc(signed_at)}, before the accepted one "
            f"({_utc(old_at)}): an old checkpoint replayed"
        )
    if checkpoint.size < old.size:
        raise _Alarm(f"the log's tree shrank from {old.size} to {checkpoint.size} rows")
    if checkpoint.size == old.size:
        if checkpoint.root != old.root:
            raise _Alarm(f"two different roots for {old.size} rows")
        return "accepted", f"the log still holds {rows}, same root"
    if old.size > 0:
        body, proof = _consistency(fetch, old.size, checkpoint.size)
        evidence["consistency.json"] = body
        if not merkle.verify_consistency(
            old.size, checkpoint.size, old.root, checkpoint.root, proof
        ):
            raise _Alarm(
                f"the checkpoint of {rows} is not consistent with the accepted one of "
                f"{old.size} rows"
            )
    return "accepted", f"the log grew from {old.size} to {rows}, consistently"


def write_key(name: str, path: Path) -> Signer:
    """A new witness key under `name`, written to `path` (mode 0600; never overwrites)."""
    try:
        signer = Signer.generate(name)
    except NoteError as exc:
        raise WitnessError(f"bad key name {name!r}: {exc}") from None
    pem = signer.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    data = f"{KEY_HEADER}{name}\n".encode() + pem
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise WitnessError(f"{path} exists: not overwriting a key") from None
    except OSError as exc:
        raise WitnessError(f"cannot create {path}: {exc.strerror or exc}") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return signer


def load_signer(path: Path) -> Signer:
    """The witness key in `path` (as `write_key` writes it): a Signer. Raises WitnessError."""
    try:
        data = path.read_bytes()[: 1 << 16]
    except OSError as exc:
        raise WitnessError(f"cannot read the key {path}: {exc.strerror or exc}") from None
    first, _, pem = data.partition(b"\n")
    try:
        header = first.decode("utf-8")
    except UnicodeDecodeError:
        header = ""
    if not header.startswith(KEY_HEADER):
        raise WitnessError(f"{path} is not a witness key (no {KEY_HEADER.strip()!r} line)")
    name = header[len(KEY_HEADER) :].strip()
    try:
        key = load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise WitnessError(f"{path} holds no readable private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise WitnessError(f"{path} holds a key that is not Ed25519")
    signer = Signer(name, key)
    try:
        # The same rules as a vkey's name: checked by round-tripping through the vkey.
        parse_vkey(signer.verifier.vkey)
    except NoteError:
        raise WitnessError(f"{path} names its key {name!r}, not a valid key name") from None
    return signer
