"""Signed notes and checkpoints (C2SP signed-note, tlog-checkpoint, tlog-cosignature).

A checkpoint is a note whose text is three lines: the log's origin, the tree size in
decimal, the root hash in base64. Its signatures follow a blank line, one per line:
`— <key name> base64(key id || signature)`.

Custos's log and every witness sign the same way: a timestamped Ed25519 signature
(signature type 0x04 of C2SP tlog-cosignature, "cosignature/v1"), over
`cosignature/v1\\ntime <seconds>\\n` followed by the note text. The signature carries the
time it was made, so a checkpoint says when the log vouched for its tree without any
extension line. A key is published as a verifier key ("vkey"):
`<name>+<key id, 8 hex digits>+<base64(0x04 || 32-byte public key)>`, the key id being
SHA-256(name || 0x0A || 0x04 || public key)[:4].

Parsing never trusts its input: anything malformed raises `NoteError` with a reason."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from verifier.merkle import HASH_SIZE

SIGNATURE_TYPE = 0x04
"""C2SP signed-note signature type: timestamped Ed25519 (tlog-cosignature)."""

MAX_NOTE_BYTES = 1 << 16
MAX_SIGNATURES = 64
_DASH = "\u2014 "
_MAX_TIMESTAMP = (1 << 63) - 1


class NoteError(ValueError):
    """A note, checkpoint, key or signature that is malformed or does not verify."""


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError("not standard base64") from exc


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise NoteError("a key name is non-empty, without spaces, plus signs or controls")


def key_id(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([SIGNATURE_TYPE]) + public_key).digest()[:4]


def signed_message(text: str, timestamp: int) -> bytes:
    """What a timestamped signature covers: the cosignature/v1 header, the time, the text."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


@dataclass(frozen=True, slots=True)
class Verifier:
    """A public key under a name: checks signatures made by the matching `Signer`."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    @property
    def vkey(self) -> str:
        material = base64.b64encode(bytes([SIGNATURE_TYPE]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def verify(self, text: str, signature: bytes) -> int | None:
        """The signature's time if `signature` (key id stripped) signs `text`, else None."""
        if len(signature) != 8 + 64:
            return None
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > _MAX_TIMESTAMP:
            return None
        try:
            key = Ed25519PublicKey.from_public_bytes(self.public_key)
            key.verify(signature[8:], signed_message(text, timestamp))
        except (InvalidSignature, ValueError):
            return None
        return timestamp


def parse_vkey(vkey: str) -> Verifier:
    """A verifier key `<name>+<hex key id>+<base64(0x04 || key)>`, its id checked."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("a verifier key is <name>+<key id>+<key>")
    name, hex_id, material = parts
    _check_name(name)
    raw = _b64decode(material)
    if len(raw) != 33 or raw[0] != SIGNATURE_TYPE:
        raise NoteError("not a timestamped Ed25519 (0x04) verifier key")
    verifier = Verifier(name, raw[1:])
    if hex_id.lower() != verifier.key_id.hex() or len(hex_id) != 8:
        raise NoteError("the verifier key's id does not match its name and key")
    return verifier


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 private key under a name."""

    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        return cls(name, Ed25519PrivateKey.generate())

    @property
    def verifier(self) -> Verifier:
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return Verifier(self.name, raw)

    def signature_line(self, text: str, timestamp: int) -> str:
        if not 0 <= timestamp <= _MAX_TIMESTAMP:
            raise NoteError("a timestamp is 0 to 2^63-1 seconds")
        stamp = struct.pack(">Q", timestamp)
        signature = self.private_key.sign(signed_message(text, timestamp))
        blob = base64.b64encode(self.verifier.key_id + stamp + signature).decode()
        return f"{_DASH}{self.name} {blob}\n"


@dataclass(frozen=True, slots=True)
class Signature:
    name: str
    key_id: bytes
    blob: bytes  # after the key id: the timestamp and the Ed25519 signature
    line: str


@dataclass(frozen=True, slots=True)
class Note:
    text: str
    signatures: tuple[Signature, ...]

    def __str__(self) -> str:
        return self.text + "\n" + "".join(s.line for s in self.signatures)

    def verified_by(self, verifier: Verifier) -> int:
        """The time of `verifier`'s valid signature on this note. Raises NoteError when the
        key did not sign it, or when a signature under its name and id fails (C2SP: reject
        the whole note then)."""
        found: int | None = None
        for sig in self.signatures:
            if sig.name == verifier.name and sig.key_id == verifier.key_id:
                timestamp = verifier.verify(self.text, sig.blob)
                if timestamp is None:
                    raise NoteError(f"the signature of {verifier.name} does not verify")
                found = timestamp if found is None else max(found, timestamp)
        if found is None:
            raise NoteError(f"not signed by {verifier.name} ({verifier.key_id.hex()})")
        return found

    def signed(self, signer: Signer, timestamp: int) -> Note:
        """This note with one more signature (a witness's cosignature, or the log's)."""
        line = signer.signature_line(self.text, timestamp)
        return parse_note(str(self) + line)


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into its text and signature lines (not yet verified)."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise NoteError("the note is too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("a note is UTF-8") from exc
    if len(note) > MAX_NOTE_BYTES:
        raise NoteError("the note is too large")
    try:
        encoded = note.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("a note is UTF-8") from exc
    if len(encoded) > MAX_NOTE_BYTES:
        raise NoteError("the note is too large")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("a note holds no control characters but newlines")
    if not note.endswith("\n"):
        raise NoteError("a note ends with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a note's text and signatures are separated by a blank line")
    text, rest = note[: split + 1], note[split + 2 :]
    signatures = []
    for line in rest.splitlines(keepends=True):
        if not line.startswith(_DASH):
            raise NoteError("a signature line starts with an em dash and a space")
        name, space, blob64 = line[len(_DASH) :].rstrip("\n").partition(" ")
        _check_name(name)
        blob = _b64decode(blob64) if space else b""
        if len(blob) < 5:
            raise NoteError("a signature is a key id and at least one byte")
        signatures.append(Signature(name, blob[:4], blob[4:], line))
    if not signatures or len(signatures) > MAX_SIGNATURES:
        raise NoteError(f"a note has 1 to {MAX_SIGNATURES} signatures")
    return Note(text, tuple(signatures))


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's tree head: origin, size and root hash (the text of a checkpoint note)."""

    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """The first three lines of a checkpoint's text; extension lines are refused (Custos
    writes none, and a monitor could not audit them)."""
    lines = text.split("\n")
    if len(lines) != 4 or lines[3] != "":
        raise NoteError("a checkpoint is three lines: origin, size, root hash")
    origin, size, root64 = lines[:3]
    if not origin or not origin.isprintable():
        raise NoteError("a checkpoint's origin is a non-empty line")
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise NoteError("a checkpoint's size is a decimal number without leading zeroes")
    if int(size) >= 1 << 64:
        raise NoteError("a checkpoint's size is below 2^64")
    root = _b64decode(root64)
    if len(root) != HASH_SIZE:
        raise NoteError("a checkpoint's root hash is 32 bytes")
    return Checkpoint(origin, int(size), root)


def open_checkpoint(note: str | bytes, verifiers: Iterable[Verifier]) -> tuple[Checkpoint, int]:
    """A checkpoint note verified by one of `verifiers` (the log's keys): its tree head and
    the time the log signed it. Raises NoteError otherwise."""
    parsed = parse_note(note)
    checkpoint = parse_checkpoint(parsed.text)
    found: int | None = None
    for verifier in verifiers:
        if verifier.name != checkpoint.origin or not any(
            s.name == verifier.name and s.key_id == verifier.key_id for s in parsed.signatures
        ):
            continue
        # A known key's bad signature rejects the note, whatever other keys signed (C2SP).
        timestamp = parsed.verified_by(verifier)
        found = timestamp if found is None else max(found, timestamp)
    if found is None:
        raise NoteError("no key of this log signed the checkpoint")
    return checkpoint, found
