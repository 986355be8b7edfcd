"""verifier/note.py: signed notes, vkeys, timestamped Ed25519 (0x04) signatures and
checkpoints. Round trips, a published real-world cosignature, every alteration of a signed
note, and hostile notes, which must raise NoteError and nothing else."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import struct
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import merkle
from verifier.note import (
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    Checkpoint,
    Note,
    NoteError,
    Signer,
    Verifier,
    open_checkpoint,
    parse_checkpoint,
    parse_note,
    parse_vkey,
)

ORIGIN = "log.example/decisions"
ROOT = merkle.root([merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")])
TIME = 1_700_000_000

# A real checkpoint of a public CT log, cosigned by public witnesses; remora.n621.de's
# signature is a timestamped Ed25519 cosignature (type 0x04), its vkey the witness's
# published key. Copied from github.com/florolf/tlog-scales at commit
# dfd5c4bf3b0c9703a6760e52e80e2515ee53f86e, tests/test_signing.py (TestCheckpointSigning).
REAL_NOTE = """arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
"""  # noqa: E501
REMORA = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
# The same published key appears in transparency-dev/formats note/note_cosigv1_test.go
# (TestCoSigV1NewVerifier), and a type 0x01 key of C2SP signed-note's examples:
PLAIN_ED25519 = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def signed(signer: Signer, text: str | None = None, when: int = TIME) -> str:
    return str(Note(text or Checkpoint(ORIGIN, 2, ROOT).text, ()).signed(signer, when))


def test_a_published_cosignature_verifies() -> None:
    note = parse_note(REAL_NOTE)
    witness = parse_vkey(REMORA)
    assert witness.key_id.hex() == "da77ade7"
    assert note.verified_by(witness) == 1779573024
    assert parse_checkpoint(note.text).size == 1432088532
    # Clobbered, as the original test does: another size breaks the signature.
    clobbered = REAL_NOTE.replace("1432088532", "42", 1)
    with pytest.raises(NoteError, match="does not verify"):
        parse_note(clobbered).verified_by(witness)


def test_a_plain_ed25519_vkey_is_not_a_cosignature_key() -> None:
    with pytest.raises(NoteError, match="0x04"):
        parse_vkey(PLAIN_ED25519)


def test_sign_and_verify_round_trip(signer: Signer) -> None:
    note = parse_note(signed(signer))
    assert note.verified_by(signer.verifier) == TIME
    checkpoint, when = open_checkpoint(signed(signer), [signer.verifier])
    assert checkpoint == Checkpoint(ORIGIN, 2, ROOT)
    assert when == TIME
    assert str(note) == signed(signer)


def test_vkey_format_and_key_id(signer: Signer) -> None:
    verifier = signer.verifier
    name, hex_id, material = verifier.vkey.split("+", 2)
    raw = base64.b64decode(material)
    assert name == ORIGIN
    assert raw[0] == 0x04
    assert raw[1:] == verifier.public_key
    # Recomputed here, independently of note.key_id.
    expected = hashlib.sha256(ORIGIN.encode() + b"\x0a\x04" + verifier.public_key).digest()[:4]
    assert hex_id == expected.hex()
    assert len(hex_id) == 8
    assert parse_vkey(verifier.vkey) == verifier
    assert parse_vkey(f"  {verifier.vkey}\n") == verifier
    assert parse_vkey(f"{name}+{hex_id.upper()}+{material}") == verifier
    # The signature line starts with the same key id, then the big-endian time.
    line = parse_note(signed(signer)).signatures[0].line
    blob = base64.b64decode(line.rsplit(" ", 1)[1])
    assert blob[:4] == expected
    assert struct.unpack(">Q", blob[4:12])[0] == TIME
    assert len(blob) == 4 + 8 + 64


def _flip_signature_byte(note: str, index: int) -> str:
    text, _, line = note.rpartition("\n\n")
    head, blob64 = line.rstrip("\n").rsplit(" ", 1)
    blob = bytearray(base64.b64decode(blob64))
    blob[index] ^= 0x01
    return f"{text}\n\n{head} {base64.b64encode(bytes(blob)).decode()}\n"


ALTERATIONS: dict[str, Callable[[str], str]] = {
    "origin": lambda n: n.replace(ORIGIN, ORIGIN + "x", 1),
    "size": lambda n: n.replace("\n2\n", "\n3\n", 1),
    "root": lambda n: n.replace(
        base64.b64encode(ROOT).decode(), base64.b64encode(merkle.EMPTY_ROOT).decode(), 1
    ),
    "timestamp": lambda n: _flip_signature_byte(n, 11),
    "signature byte": lambda n: _flip_signature_byte(n, 40),
    "last signature byte": lambda n: _flip_signature_byte(n, -1),
}


@pytest.mark.parametrize("what", sorted(ALTERATIONS))
def test_an_altered_note_fails(signer: Signer, what: str) -> None:
    altered = ALTERATIONS[what](signed(signer))
    assert altered != signed(signer)
    with pytest.raises(NoteError):
        open_checkpoint(altered, [signer.verifier])
    if what not in ("origin",):
        with pytest.raises(NoteError, match="does not verify"):
            parse_note(altered).verified_by(signer.verifier)


def test_unknown_keys_are_ignored(signer: Signer) -> None:
    other = Signer.generate("witness.example/w")
    stranger = Signer.generate(ORIGIN)  # same name, other key: another key id
    note = Note(Checkpoint(ORIGIN, 2, ROOT).text, ())
    note = note.signed(other, TIME).signed(signer, TIME + 1).signed(stranger, TIME + 2)
    assert open_checkpoint(str(note), [signer.verifier]) == (Checkpoint(ORIGIN, 2, ROOT), TIME + 1)
    # A line under an unknown name with garbage is ignored as well.
    junk = str(note) + "— someone.else AAAAAAAAAAAAAA==\n"
    assert open_checkpoint(junk, [signer.verifier])[1] == TIME + 1
    with pytest.raises(NoteError, match="not signed by"):
        parse_note(str(note)).verified_by(Signer.generate(ORIGIN).verifier)


def test_a_known_key_with_a_bad_signature_rejects_the_note(signer: Signer) -> None:
    second = Signer.generate(ORIGIN)
    good = signed(signer)
    bad_line = _flip_signature_byte(signed(second), 40).rpartition("\n\n")[2]
    note = good + bad_line
    # Known: both keys. One signature is good, the other known one is bad: rejected.
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(note, [signer.verifier, second.verifier])
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(note, [second.verifier, signer.verifier])
    # Knowing only the good key, the bad line is someone else's: ignored.
    assert open_checkpoint(note, [signer.verifier])[1] == TIME


def test_a_known_key_with_two_signatures_one_bad_rejects(signer: Signer) -> None:
    note = signed(signer) + _flip_signature_byte(signed(signer), 40).rpartition("\n\n")[2]
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(note, [signer.verifier])


def test_a_key_of_another_name_does_not_open_the_checkpoint(signer: Signer) -> None:
    renamed = Verifier("other.example/log", signer.verifier.public_key)
    with pytest.raises(NoteError):
        open_checkpoint(signed(signer), [renamed])


def test_timestamps_at_the_limits(signer: Signer) -> None:
    assert parse_note(signed(signer, when=0)).verified_by(signer.verifier) == 0
    top = (1 << 63) - 1
    assert parse_note(signed(signer, when=top)).verified_by(signer.verifier) == top
    for when in (-1, 1 << 63):
        with pytest.raises(NoteError):
            signer.signature_line("x\n", when)


def _huge() -> str:
    return "a\n" * (MAX_NOTE_BYTES // 2) + "\n— a AAAAAAA=\n"


HOSTILE: dict[str, str | bytes] = {
    "empty": "",
    "no blank line": "text\n— a AAAAAAA=\n",
    "no signature": "text\n\n",
    "no final newline": "text\n\n— a AAAAAAA=",
    "control character": "te\x01xt\n\n— a AAAAAAA=\n",
    "carriage return": "text\r\n\n— a AAAAAAA=\n",
    "NUL": "text\x00\n\n— a AAAAAAA=\n",
    "tab in a signature": "text\n\n— a\tAAAAAAA=\n",
    "lone surrogate": "te\ud800xt\n\n— a AAAAAAA=\n",
    "invalid UTF-8": b"te\xffxt\n\n\xe2\x80\x94 a AAAAAAA=\n",
    "huge": _huge(),
    "huge in UTF-8 only": "\u20ac" * (MAX_NOTE_BYTES // 2) + "\n\n— a AAAAAAA=\n",
    "huge bytes": b"a" * (MAX_NOTE_BYTES + 1),
    "too many signatures": "text\n\n" + "— a AAAAAAA=\n" * (MAX_SIGNATURES + 1),
    "bad base64": "text\n\n— a AAAA!AA=\n",
    "base64 without padding": "text\n\n— a AAAAAAA\n",
    "short signature": "text\n\n— a AAAA\n",
    "no signature bytes": "text\n\n— a\n",
    "name with a plus": "text\n\n— a+b AAAAAAA=\n",
    "name with a space": "text\n\n—  a AAAAAAA=\n",
    "hyphen, not em dash": "text\n\n- a AAAAAAA=\n",
    "non-ASCII base64": "text\n\n— a AAAAAA\u0661=\n",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_note_raises_note_error(case: str) -> None:
    with pytest.raises(NoteError):
        parse_note(HOSTILE[case])


def test_signatures_follow_the_last_blank_line() -> None:
    # As in Go's note.Open: earlier blank lines belong to the text (which a checkpoint
    # then refuses), so a signature line cannot be smuggled before a blank line.
    note = parse_note("text\n\n— a AAAAAAA=\n\n— b AAAAAAA=\n")
    assert note.text == "text\n\n— a AAAAAAA=\n"
    assert [s.name for s in note.signatures] == ["b"]
    with pytest.raises(NoteError):
        parse_checkpoint(note.text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300) | st.binary(max_size=300).map(bytes))
def test_any_input_is_a_note_or_a_note_error(data: str | bytes) -> None:
    try:
        note = parse_note(data)
    except NoteError:
        return
    assert str(note).endswith("\n")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=120))
def test_any_vkey_or_checkpoint_text_is_parsed_or_a_note_error(text: str) -> None:
    for parse in (parse_vkey, parse_checkpoint):
        with contextlib.suppress(NoteError):
            parse(text)


def _vkey_parts(signer: Signer) -> tuple[str, str, str]:
    name, hex_id, material = signer.verifier.vkey.split("+", 2)
    return name, hex_id, material


def _material(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


BAD_VKEYS: dict[str, Callable[[str, str, str], str]] = {
    "wrong key id": lambda n, i, m: f"{n}+{'0' * 8 if i != '0' * 8 else '1' * 8}+{m}",
    "short key id": lambda n, i, m: f"{n}+{i[:6]}+{m}",
    "other name": lambda n, i, m: f"{n}x+{i}+{m}",
    "name with a space": lambda n, i, m: f"a b+{i}+{m}",
    "empty name": lambda n, i, m: f"+{i}+{m}",
    "two parts": lambda n, i, m: f"{n}+{i}",
    "type 0x01": lambda n, i, m: f"{n}+{i}+{_material(bytes([1]) + base64.b64decode(m)[1:])}",
    "short key": lambda n, i, m: f"{n}+{i}+{_material(base64.b64decode(m)[:-1])}",
    "bad base64": lambda n, i, m: f"{n}+{i}+{m[:-2]}!!",
    "lone surrogate": lambda n, i, m: f"\ud800+{i}+{m}",
    "control in name": lambda n, i, m: f"a\x00b+{i}+{m}",
}


@pytest.mark.parametrize("case", sorted(BAD_VKEYS))
def test_a_bad_vkey_raises_note_error(signer: Signer, case: str) -> None:
    with pytest.raises(NoteError):
        parse_vkey(BAD_VKEYS[case](*_vkey_parts(signer)))


ROOT64 = base64.b64encode(ROOT).decode()
BAD_CHECKPOINTS = {
    "leading zero": f"{ORIGIN}\n02\n{ROOT64}\n",
    "2^64": f"{ORIGIN}\n{1 << 64}\n{ROOT64}\n",
    "negative": f"{ORIGIN}\n-1\n{ROOT64}\n",
    "plus sign": f"{ORIGIN}\n+1\n{ROOT64}\n",
    "spaces": f"{ORIGIN}\n 1\n{ROOT64}\n",
    "non-ASCII digits": f"{ORIGIN}\n\u0661\n{ROOT64}\n",
    "31-byte root": f"{ORIGIN}\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",
    "33-byte root": f"{ORIGIN}\n1\n{base64.b64encode(ROOT + b'x').decode()}\n",
    "extension line": f"{ORIGIN}\n1\n{ROOT64}\nextension\n",
    "two lines": f"{ORIGIN}\n1\n",
    "empty origin": f"\n1\n{ROOT64}\n",
    "no final newline": f"{ORIGIN}\n1\n{ROOT64}",
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_a_bad_checkpoint_raises_note_error(case: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(BAD_CHECKPOINTS[case])


def test_checkpoint_sizes_at_the_limits() -> None:
    assert parse_checkpoint(f"{ORIGIN}\n0\n{ROOT64}\n").size == 0
    top = (1 << 64) - 1
    assert parse_checkpoint(f"{ORIGIN}\n{top}\n{ROOT64}\n").size == top
    checkpoint = Checkpoint(ORIGIN, 12345, ROOT)
    assert parse_checkpoint(checkpoint.text) == checkpoint


def test_a_signed_checkpoint_with_an_extension_line_is_refused(signer: Signer) -> None:
    text = Checkpoint(ORIGIN, 2, ROOT).text + "extension\n"
    with pytest.raises(NoteError, match="three lines"):
        open_checkpoint(signed(signer, text), [signer.verifier])


def test_a_signer_refuses_a_bad_name() -> None:
    for name in ("", "a b", "a+b", "a\nb"):
        with pytest.raises(NoteError):
            Signer.generate(name)


def test_a_signer_from_a_raw_key_matches_its_verifier() -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    signer = Signer("w.example", key)
    note = parse_note(signed(signer))
    assert note.verified_by(parse_vkey(signer.verifier.vkey)) == TIME
