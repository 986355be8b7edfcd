"""api/privacy_centre/static/log-proof.js, the privacy centre's checker of decision-log
proofs, in Debian's Chromium (Web Crypto: SHA-256 and Ed25519) on a page of a real server,
under the page's Content-Security-Policy, against the Python package verifier/: the
published RFC 9162 vectors of tests/test_merkle.py and every proof of small and of huge
trees give what verifier.merkle gives, tampered proofs and hostile values fail without an
exception; checkpoints signed in Python open in JS, and every altered, unknown or
malformed one fails with its reason (the same notes verifier.note refuses); evidence built
from verifier.leaf rows passes for the customers it is about and for no one else."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.browser.harness import LiveServer, Watch
from tests.cli_helpers import REPO
from tests.test_merkle import (
    EDGE_INCLUSION,
    INCLUSION_PROOFS,
    LEAF_INPUTS,
    NODE_HASHES,
    ROOT_HASHES,
)
from verifier import leaf as leaf_format
from verifier import merkle
from verifier.note import (
    Checkpoint,
    NoteError,
    Signer,
    open_checkpoint,
    parse_vkey,
)

SOURCE = REPO / "api" / "privacy_centre" / "static" / "log-proof.js"
MODULE = "/privacy/static/log-proof.js"
PRELUDE = f"""
const m = await import("{MODULE}");
const hex = (s) => Uint8Array.from(s.match(/../g) || [], (b) => parseInt(b, 16));
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const open = async (note, vkeys) => {{
  try {{
    const c = await m.openCheckpoint(note, vkeys);
    return {{ origin: c.origin, size: c.size, root: toHex(c.root), at: c.signedAt.getTime() }};
  }} catch (e) {{
    return {{ reason: e instanceof m.ProofError ? e.reason : "other: " + e }};
  }}
}};
"""
ORIGIN = "shop.example/custos/decision-log"
SIGNED_AT = 1_767_225_600  # 2026-01-01T00:00:00Z


class Lab:
    """A privacy centre page (sign-in) open in Chromium, its console and requests watched."""

    def __init__(self, page: Any) -> None:
        self.page = page

    async def run(self, body: str, arg: Any = None) -> Any:
        """`body` run as an async function of `arg` after the module is imported as `m`."""
        return await self.page.evaluate(f"async (arg) => {{ {PRELUDE}\n{body}\n}}", arg)


@pytest.fixture
async def lab(server: LiveServer, browser: Any) -> AsyncIterator[Lab]:
    context = await browser.new_context()
    page = await context.new_page()
    watch = Watch(server.url)
    watch.attach(page)
    response = await page.goto(f"{server.url}/privacy/sign-in")
    assert response is not None
    assert response.status == 200
    # the module runs under the centre's policy: scripts from this origin only, no eval
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-eval" not in policy
    assert await page.evaluate("window.isSecureContext")  # Web Crypto needs one
    try:
        yield Lab(page)
        watch.assert_clean()  # the module loaded and ran without a console error
    finally:
        await context.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def test_the_module_stands_alone() -> None:
    """No import (nothing to load but itself), no page globals (any page or worker can use
    it), no eval-like construct the CSP would refuse."""
    source = SOURCE.read_text("utf-8")
    assert re.search(r"^\s*import\b|\bimport\(", source, re.MULTILINE) is None
    assert re.search(r"\b(document|window|eval|Function)\b", source) is None
    for name in ("leafHash", "nodeHash", "verifyInclusion", "parseVkey", "openCheckpoint"):
        assert f"export async function {name}(" in source
    assert "export async function checkEvidence(" in source
    assert "export class ProofError extends Error" in source


# --- Merkle trees --------------------------------------------------------------------------

MTH = """
async function mth(hashes) {
  if (hashes.length === 1) return hashes[0];
  let k = 1;
  while (k * 2 < hashes.length) k *= 2;
  return m.nodeHash(await mth(hashes.slice(0, k)), await mth(hashes.slice(k)));
}
"""


async def test_published_vectors_hash_and_verify(lab: Lab) -> None:
    got = await lab.run(
        MTH
        + """
        const leaves = [];
        for (const input of arg.inputs) leaves.push(await m.leafHash(hex(input)));
        const levels = [leaves.map(toHex)];
        while (levels.at(-1).length > 1) {
          const below = levels.at(-1), above = [];
          for (let i = 0; i < below.length; i += 2)
            above.push(toHex(await m.nodeHash(hex(below[i]), hex(below[i + 1]))));
          levels.push(above);
        }
        const roots = [];
        for (let n = 1; n <= leaves.length; n++) roots.push(toHex(await mth(leaves.slice(0, n))));
        const proofs = [];
        for (const [i, n, proof] of arg.proofs)
          proofs.push(await m.verifyInclusion(i, n, leaves[i], proof.map(hex), hex(arg.roots[n])));
        const edges = [];
        for (const [, i, n, leaf, root, proof] of arg.edges)
          edges.push(await m.verifyInclusion(i, n, hex(leaf), proof.map(hex), hex(root)));
        return { levels, roots, proofs, edges };
        """,
        {
            "inputs": [data.hex() for data in LEAF_INPUTS],
            "proofs": INCLUSION_PROOFS,
            "roots": ROOT_HASHES,
            "edges": EDGE_INCLUSION,
        },
    )
    assert got["levels"] == NODE_HASHES
    assert got["roots"] == ROOT_HASHES[1:]
    assert got["proofs"] == [True] * len(INCLUSION_PROOFS)
    assert got["edges"] == [valid for *_, valid in EDGE_INCLUSION]


Tampered = tuple[str, int, int, str, list[str], str]


def _tampered(index: int, size: int, proof: list[bytes]) -> list[Tampered]:
    """Each published proof changed in one way: (what, index, size, leaf, proof, root)."""
    leaf = merkle.leaf_hash(LEAF_INPUTS[index])
    root = bytes.fromhex(ROOT_HASHES[size])
    cases: list[tuple[str, int, int, bytes, list[bytes], bytes]] = [
        ("leaf flipped", index, size, _flip(leaf, 0), proof, root),
        ("root flipped", index, size, leaf, proof, _flip(root, 31)),
        ("index + 1", index + 1, size, leaf, proof, root),
        ("index - 1", index - 1, size, leaf, proof, root),
        ("size + 1", index, size + 1, leaf, proof, root),
        ("size - 1", index, size - 1, leaf, proof, root),
        ("size = index", index, index, leaf, proof, root),
        ("longer", index, size, leaf, [*proof, leaf], root),
    ]
    for at, _ in enumerate(proof):
        for byte in (0, 17, 31):
            flipped = [*proof[:at], _flip(proof[at], byte), *proof[at + 1 :]]
            cases.append((f"hash {at} byte {byte} flipped", index, size, leaf, flipped, root))
    if proof:
        cases.append(("shorter", index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        cases.append(("reversed", index, size, leaf, proof[::-1], root))
    return [(w, i, n, lf.hex(), [h.hex() for h in p], r.hex()) for w, i, n, lf, p, r in cases]


async def test_tampered_proofs_fail_as_in_python(lab: Lab) -> None:
    cases = [
        case
        for index, size, proof in INCLUSION_PROOFS
        for case in _tampered(index, size, [bytes.fromhex(h) for h in proof])
    ]
    python = [
        merkle.verify_inclusion(
            bytes.fromhex(lf), i, n, [bytes.fromhex(h) for h in p], bytes.fromhex(r)
        )
        for _, i, n, lf, p, r in cases
    ]
    # a few changes keep the path's shape (a size whose tree differs only away from the
    # leaf): those still verify, as in Python; the size is bound by the checkpoint instead
    assert python.count(False) > 50
    got = await lab.run(
        """
        const out = [];
        for (const [, i, n, leaf, proof, root] of arg)
          out.push(await m.verifyInclusion(i, n, hex(leaf), proof.map(hex), hex(root)));
        return out;
        """,
        cases,
    )
    assert got == python


async def test_every_proof_of_small_trees_verifies(lab: Lab) -> None:
    leaves = [merkle.leaf_hash(f"row {i}".encode()) for i in range(20)]
    stranger = merkle.leaf_hash(b"not in the tree").hex()
    cases = [
        (
            i,
            n,
            leaves[i].hex(),
            [h.hex() for h in merkle.inclusion_proof(leaves[:n], i)],
            merkle.root(leaves[:n]).hex(),
        )
        for n in range(1, 21)
        for i in range(n)
    ]
    got = await lab.run(
        """
        const out = [];
        for (const [i, n, leaf, proof, root] of arg.cases) {
          out.push(await m.verifyInclusion(i, n, hex(leaf), proof.map(hex), hex(root)));
          // the same proof for a leaf not in the tree never verifies
          out.push(!(await m.verifyInclusion(i, n, hex(arg.stranger), proof.map(hex), hex(root))));
        }
        return out;
        """,
        {"cases": cases, "stranger": stranger},
    )
    assert got == [True] * (2 * len(cases))


def _sparse_hasher(index: int, leaf: bytes) -> Callable[[int, int], bytes]:
    """A `hash_range` for a huge tree in which only leaf `index` is known: every perfect
    subtree away from it is an arbitrary hash, everything above is computed from them, so
    that proof and root agree as in a real tree (only O(log n) ranges are ever asked for)."""

    def hash_range(start: int, end: int) -> bytes:
        if end - start == 1 and start == index:
            return leaf
        width = end - start
        if not start <= index < end and width & (width - 1) == 0:
            return hashlib.sha256(f"{start}-{end}".encode()).digest()
        k = 1 << ((width - 1).bit_length() - 1)
        return merkle.node_hash(hash_range(start, start + k), hash_range(start + k, end))

    return hash_range


HUGE = [
    (2**31, 2**31 + 1),
    (2**32 - 1, 2**33),
    (2**32 + 3, 2**32 + 5),
    (2**39 + 7, 2**40),
    (12_345, 2**53 - 1),
    (0, 2**53 - 1),
    (2**53 - 2, 2**53 - 1),
    (2**52 + 2**33 + 1, 2**53 - 3),
]


async def test_proofs_in_trees_beyond_32_bits_verify(lab: Lab) -> None:
    """JavaScript's bit operators stop at 32 bits: indices and sizes up to 2^53 - 1 must
    still follow the RFC; 2^53 and more are refused (not safe integers)."""
    leaf = merkle.leaf_hash(b"a row far down the log")
    cases = []
    expected: list[list[bool]] = []
    for index, size in HUGE:
        hash_range = _sparse_hasher(index, leaf)
        proof = merkle.inclusion_proof_from(hash_range, size, index)
        root = hash_range(0, size)
        assert merkle.verify_inclusion(leaf, index, size, proof, root)
        assert not merkle.verify_inclusion(leaf, index - 1, size, proof, root)
        # a size one more keeps the proof's shape for some leaves: whatever Python says
        bigger = merkle.verify_inclusion(leaf, index, size + 1, proof, root)
        expected.append([True, False, bigger and size + 1 < 2**53])
        cases.append((index, size, [h.hex() for h in proof], root.hex()))
    got = await lab.run(
        """
        const leaf = hex(arg.leaf), out = [];
        for (const [i, n, proof, root] of arg.cases) {
          const p = proof.map(hex), r = hex(root);
          out.push([
            await m.verifyInclusion(i, n, leaf, p, r),
            await m.verifyInclusion(i - 1, n, leaf, p, r),
            await m.verifyInclusion(i, n + 1, leaf, p, r),
          ]);
        }
        // beyond 2^53: a Number cannot say which leaf, so nothing verifies
        out.push([await m.verifyInclusion(2 ** 53 - 1, 2 ** 53, leaf, [], leaf)]);
        return out;
        """,
        {"leaf": leaf.hex(), "cases": cases},
    )
    assert got == [*expected, [False]]


async def test_hostile_values_give_false_and_never_throw(lab: Lab) -> None:
    index, size, proof = INCLUSION_PROOFS[2]  # leaf 5 of 8: three hashes
    got = await lab.run(
        """
        const [i, n, input, proof, root] = arg;
        const P = proof.map(hex), R = hex(root);
        const L = await m.leafHash(hex(input));
        const sparse = []; sparse.length = 1000000;
        const variants = {
          good: [i, n, L, P, R],
          negative: [-1, n, L, P, R],
          fraction: [5.5, n, L, P, R],
          sizeFraction: [i, 8.5, L, P, R],
          nan: [NaN, n, L, P, R],
          infinite: [i, Infinity, L, P, R],
          text: ["5", n, L, P, R],
          textSize: [i, "8", L, P, R],
          bigint: [5n, 8n, L, P, R],
          nullIndex: [null, n, L, P, R],
          noIndex: [undefined, n, L, P, R],
          boolean: [true, n, L, P, R],
          beyond53: [2 ** 53, 2 ** 53 + 2, L, P, R],
          beyond64: [i, 2 ** 64, L, P, R],
          object: [{ valueOf: () => 5 }, n, L, P, R],
          leafNull: [i, n, null, P, R],
          leafShort: [i, n, L.subarray(0, 31), P, R],
          leafLong: [i, n, new Uint8Array(33), P, R],
          leafArray: [i, n, Array.from(L), P, R],
          leafBuffer: [i, n, L.buffer, P, R],
          leafText: [i, n, toHex(L), P, R],
          rootArray: [i, n, L, P, Array.from(R)],
          rootShort: [i, n, L, P, R.subarray(1)],
          proofNull: [i, n, L, null, R],
          proofText: [i, n, L, "abc", R],
          proofLike: [i, n, L, { length: 3, 0: P[0], 1: P[1], 2: P[2] }, R],
          proofHole: [i, n, L, [P[0], P[1], null], R],
          proofShortHash: [i, n, L, [P[0], P[1], P[2].subarray(1)], R],
          proofArrays: [i, n, L, P.map((h) => Array.from(h)), R],
          proofHuge: [i, n, L, sparse, R],
        };
        const out = {};
        for (const [name, args] of Object.entries(variants)) {
          try {
            out[name] = await m.verifyInclusion(...args);
          } catch (e) {
            out[name] = "threw " + e;
          }
        }
        const thrown = {};
        for (const [name, call] of Object.entries({
          leafHashText: () => m.leafHash("abc"),
          leafHashArray: () => m.leafHash([1, 2]),
          nodeHashShort: () => m.nodeHash(L, L.subarray(1)),
          nodeHashNull: () => m.nodeHash(null, L),
        })) {
          try {
            await call();
            thrown[name] = null;
          } catch (e) {
            thrown[name] = e instanceof m.ProofError ? e.reason : "other " + e;
          }
        }
        return { out, thrown };
        """,
        [index, size, LEAF_INPUTS[index].hex(), proof, ROOT_HASHES[size]],
    )
    out = got["out"]
    assert out.pop("good") is True
    assert out == dict.fromkeys(out, False)
    assert len(out) > 25
    assert got["thrown"] == dict.fromkeys(got["thrown"], "malformed")


# --- checkpoints ---------------------------------------------------------------------------


def _signed(signer: Signer, text: str, at: int = SIGNED_AT) -> str:
    return text + "\n" + signer.signature_line(text, at)


def _line_blob(note: str, line: int = 0) -> tuple[str, bytes]:
    """A note's text-and-blank part up to signature line `line`, and that line's blob."""
    head, sigs = note[: note.rindex("\n\n") + 2], note[note.rindex("\n\n") + 2 :].splitlines()
    _, blob64 = sigs[line].removeprefix("\u2014 ").split(" ")
    return head + "".join(s + "\n" for s in sigs[:line]), base64.b64decode(blob64)


def _with_blob(note: str, blob: bytes, name: str) -> str:
    head, _ = _line_blob(note)
    return f"{head}\u2014 {name} {_b64(blob)}\n"


def _python_opens(note: str, vkeys: list[str]) -> bool:
    try:
        open_checkpoint(note, [parse_vkey(v) for v in vkeys])
    except NoteError:
        return False
    return True


async def test_checkpoints_signed_in_python_open_in_the_browser(lab: Lab) -> None:
    log = Signer.generate(ORIGIN)
    rotated = Signer.generate(ORIGIN)  # another key of the same log
    witness = Signer.generate("witness.example/w1")
    root = hashlib.sha256(b"a tree").digest()
    text = Checkpoint(ORIGIN, 7, root).text
    note = _signed(log, text)
    vkey = log.verifier.vkey
    _, blob = _line_blob(note)
    cosigned = note + witness.signature_line(text, SIGNED_AT + 5)

    def checkpoint(origin: str, size: object, root64: str, *extra: str) -> str:
        return _signed(log, f"{origin}\n{size}\n{root64}\n" + "".join(extra))

    cases: dict[str, tuple[str, list[str], str | None]] = {
        "signed": (note, [vkey], None),
        "cosigned by a witness": (cosigned, [witness.verifier.vkey, vkey], None),
        "after a key rotation": (note, [rotated.verifier.vkey, vkey], None),
        "the later of two signatures": (
            note + log.signature_line(text, SIGNED_AT - 9),
            [vkey],
            None,
        ),
        "text altered": (note.replace("\n7\n", "\n8\n"), [vkey], "bad-signature"),
        "signature flipped": (_with_blob(note, _flip(blob, 71), ORIGIN), [vkey], "bad-signature"),
        "time flipped": (_with_blob(note, _flip(blob, 11), ORIGIN), [vkey], "bad-signature"),
        "signature cut": (_with_blob(note, blob[:40], ORIGIN), [vkey], "bad-signature"),
        "a bad signature beside a good one": (
            note + f"\u2014 {ORIGIN} {_b64(_flip(blob, 50))}\n",
            [vkey],
            "bad-signature",
        ),
        "another key of the log's name": (note, [rotated.verifier.vkey], "unknown-key"),
        "the witness's key only": (cosigned, [witness.verifier.vkey], "unknown-key"),
        "no key": (note, [], "unknown-key"),
        "wrong key id": (_with_blob(note, _flip(blob, 2), ORIGIN), [vkey], "unknown-key"),
        "signed under another name": (
            _with_blob(note, blob, "other.example"),
            [vkey],
            "unknown-key",
        ),
        "signed by the witness only": (_signed(witness, text), [vkey], "unknown-key"),
        "another origin": (
            checkpoint("other.example/log", 7, _b64(root)),
            [vkey],
            "unknown-key",
        ),
        "no final newline": (note[:-1], [vkey], "malformed"),
        "no blank line": (note.replace("\n\n", "\n"), [vkey], "malformed"),
        "no signature": (text + "\n", [vkey], "malformed"),
        "carriage returns": (note.replace("\n", "\r\n"), [vkey], "malformed"),
        "a NUL": (note.replace(ORIGIN, ORIGIN + "\x00"), [vkey], "malformed"),
        "a hyphen for the dash": (note.replace("\u2014", "-"), [vkey], "malformed"),
        "not base64": (note.replace(_b64(blob), "!" + _b64(blob)[1:]), [vkey], "malformed"),
        "base64 unpadded": (note.replace(_b64(blob), _b64(blob).rstrip("=")), [vkey], "malformed"),
        "a key id alone": (_with_blob(note, blob[:4], ORIGIN), [vkey], "malformed"),
        "no signature blob": (note.rsplit(" ", 1)[0] + "\n", [vkey], "malformed"),
        "65 signatures": (note + "".join([log.signature_line(text, 1)] * 64), [vkey], "malformed"),
        "an extension line": (checkpoint(ORIGIN, 7, _b64(root), "ext\n"), [vkey], "malformed"),
        "two lines": (_signed(log, f"{ORIGIN}\n7\n"), [vkey], "malformed"),
        "a leading zero": (checkpoint(ORIGIN, "07", _b64(root)), [vkey], "malformed"),
        "a negative size": (checkpoint(ORIGIN, -1, _b64(root)), [vkey], "malformed"),
        "a size of 2^64": (checkpoint(ORIGIN, 2**64, _b64(root)), [vkey], "malformed"),
        "a short root": (checkpoint(ORIGIN, 7, _b64(root[:31])), [vkey], "malformed"),
        "an empty origin": (checkpoint("", 7, _b64(root)), [vkey], "malformed"),
        "a bad vkey": (note, [vkey, vkey.replace("+", "+0", 1)], "bad-key"),
    }
    for what, (case_note, vkeys, reason) in cases.items():
        assert _python_opens(case_note, vkeys) == (reason is None), what
    # Python counts to 2^64; a JavaScript Number only safely to 2^53.
    beyond = checkpoint(ORIGIN, 2**53, _b64(root))
    assert _python_opens(beyond, [vkey])
    cases["a size of 2^53"] = (beyond, [vkey], "malformed")
    largest = checkpoint(ORIGIN, 2**53 - 1, _b64(root))
    cases["a size of 2^53 - 1"] = (largest, [vkey], None)

    got = await lab.run(
        """
        const out = {};
        for (const [what, [note, vkeys]] of Object.entries(arg)) {
          out[what] = await open(note, vkeys);
        }
        return out;
        """,
        cases,
    )
    opened = {"origin": ORIGIN, "size": 7, "root": root.hex(), "at": SIGNED_AT * 1000}
    for what, (_, _, reason) in cases.items():
        expected = opened if reason is None else {"reason": reason}
        if what == "a size of 2^53 - 1":
            expected = {**opened, "size": 2**53 - 1}
        assert got[what] == expected, what


async def test_hostile_notes_and_keys_are_refused_with_a_reason(lab: Lab) -> None:
    log = Signer.generate(ORIGIN)
    note = _signed(log, Checkpoint(ORIGIN, 3, bytes(32)).text)
    vkey = log.verifier.vkey
    got = await lab.run(
        """
        const [note, vkey] = arg;
        const cases = {
          number: [42, [vkey]],
          nothing: [null, [vkey]],
          object: [{ toString: () => note }, [vkey]],
          bytes: [new TextEncoder().encode(note), [vkey]],
          huge: ["x\\n".repeat(40000) + note, [vkey]],
          loneSurrogate: [note.replace("\\n3\\n", "\\n3\\ud800\\n"), [vkey]],
          surrogateName: [note.replace("\\u2014 shop", "\\u2014 \\udc00shop"), [vkey]],
          vkeysNotArray: [note, vkey],
          vkeyNumber: [note, [42]],
          vkeyHuge: [note, [vkey + "A".repeat(5000)]],
          tooManyVkeys: [note, Array(65).fill(vkey)],
        };
        const out = {};
        for (const [what, [n, v]] of Object.entries(cases)) out[what] = (await open(n, v)).reason;
        out.fine = (await open(note, [vkey])).size;
        return out;
        """,
        [note, vkey],
    )
    assert got == {
        "number": "malformed",
        "nothing": "malformed",
        "object": "malformed",
        "bytes": "malformed",
        "huge": "malformed",
        "loneSurrogate": "malformed",
        "surrogateName": "malformed",
        "vkeysNotArray": "bad-key",
        "vkeyNumber": "bad-key",
        "vkeyHuge": "bad-key",
        "tooManyVkeys": "bad-key",
        "fine": 3,
    }


def _signer(*, plus: bool) -> Signer:
    """A new key of the log whose base64 in the vkey holds a plus sign, or holds none."""
    for _ in range(500):
        signer = Signer.generate(ORIGIN)
        material = signer.verifier.vkey.split("+", 2)[2]
        if ("+" in material) == plus:
            return signer
    raise AssertionError("500 keys and none of the kind asked for")


async def test_verifier_keys_are_parsed_and_their_ids_checked(lab: Lab) -> None:
    verifier = _signer(plus=False).verifier
    vkey = verifier.vkey
    name, hex_id, material = vkey.split("+")
    plussed = _signer(plus=True).verifier  # name and id hold no plus sign, base64 may
    assert parse_vkey(plussed.vkey) == plussed
    raw = base64.b64decode(material)
    type01 = _b64(bytes([1]) + raw[1:])
    bad = {
        "wrong key id": f"{name}+{_flip(bytes.fromhex(hex_id), 0).hex()}+{material}",
        "id of another name": f"other.example+{hex_id}+{material}",
        "short id": f"{name}+{hex_id[:6]}+{material}",
        "signature type 0x01": f"{name}+{hex_id}+{type01}",
        "a 31-byte key": f"{name}+{hex_id}+{_b64(raw[:-1])}",
        "two parts": f"{name}+{material}",
        "a plus in the name": f"a+{vkey}",
        "a space in the name": f"shop example+{hex_id}+{material}",
        "not base64": f"{name}+{hex_id}+{material[:-4]}****",
        "empty": "",
    }
    for what, text in bad.items():
        with pytest.raises(NoteError):
            parse_vkey(text)
        assert what
    got = await lab.run(
        """
        const out = {};
        const k = await m.parseVkey(arg.good);
        out.good = [k.name, toHex(k.keyId), toHex(k.publicKey)];
        out.upper = toHex((await m.parseVkey(arg.upper)).keyId);
        out.spaced = (await m.parseVkey(arg.spaced)).name;
        out.plussed = toHex((await m.parseVkey(arg.plussed)).publicKey);
        for (const [what, text] of Object.entries(arg.bad)) {
          try {
            await m.parseVkey(text);
            out[what] = "accepted";
          } catch (e) {
            out[what] = e instanceof m.ProofError ? e.reason : "other " + e;
          }
        }
        return out;
        """,
        {
            "good": vkey,
            "upper": f"{name}+{hex_id.upper()}+{material}",
            "spaced": f"  {vkey}\n",
            "plussed": plussed.vkey,
            "bad": bad,
        },
    )
    assert got.pop("good") == [ORIGIN, verifier.key_id.hex(), verifier.public_key.hex()]
    assert got.pop("upper") == verifier.key_id.hex()
    assert got.pop("spaced") == ORIGIN
    assert got.pop("plussed") == plussed.public_key.hex()
    assert got == dict.fromkeys(bad, "bad-key")


# --- evidence ------------------------------------------------------------------------------


def _row(i: int, subjects: str, **changes: object) -> dict[str, object]:
    """A decision-log row as exported (verifier/leaf.py)."""
    row: dict[str, object] = {
        "action": "read",
        "actor_id": f"employee-{i % 3}",
        "actor_kind": "employee",
        "at": datetime(2026, 1, 5, 12, i, 30, 123456, tzinfo=UTC),
        "category": "contact.email",
        "conditions": "",
        "decision": "allow",
        "event": "access",
        "operation": "customer",
        "purpose": "support",
        "reason": "",
        "request_id": f"request-{i}",
        "roles": "customer_care",
        "rule": "p, customer_care, contact.email, read, support",
        "subject_id": subjects,
        "policy_version": 3,
    }
    row.update(changes)
    return row


async def test_evidence_passes_for_the_customers_it_is_about_only(lab: Lab) -> None:
    log = Signer.generate(ORIGIN)
    impostor = Signer.generate(ORIGIN)
    salts = [bytes([i + 1]) * leaf_format.SALT_BYTES for i in range(7)]
    rows = [_row(i, f"customer-{i}") for i in range(7)]
    # the row checked is about two customers, and its reason has non-ASCII (escaped) text
    rows[4] = _row(4, "customer-42,customer-7", reason="Ringgr\u00f6\u00dfe \u00e4ndern")
    leaves = [leaf_format.leaf_data(row, salt) for row, salt in zip(rows, salts, strict=True)]
    hashes = [merkle.leaf_hash(data) for data in leaves]
    root = merkle.root(hashes)
    proof = merkle.inclusion_proof(hashes, 4)
    note = _signed(log, Checkpoint(ORIGIN, 7, root).text)
    vkeys = [log.verifier.vkey]
    mine = leaf_format.key(salts[4], "subject", "customer-42").hex()
    theirs = leaf_format.key(salts[4], "subject", "customer-7").hex()

    def evidence(**changes: object) -> dict[str, object]:
        proof_part: dict[str, object] = {
            "leafIndex": 4,
            "treeSize": 7,
            "hashes": [_b64(h) for h in proof],
            "checkpoint": note,
        }
        proof_part.update({k: v for k, v in changes.items() if k in proof_part})
        found: dict[str, object] = {
            "leaf": leaves[4].decode("ascii"),
            "subjectKey": mine,
            "proof": proof_part,
        }
        found.update({k: v for k, v in changes.items() if k in found})
        return found

    leaf = leaves[4].decode("ascii")
    assert "\\u00f6" in leaf
    assert '"decision":"allow"' in leaf
    cut_proof = [_b64(h) for h in proof[:-1]]
    flipped_proof = [_b64(_flip(proof[0], 9)), *(_b64(h) for h in proof[1:])]
    _, blob = _line_blob(note)
    cases: dict[str, tuple[object, object, object, str | None]] = {
        "about customer 42": (evidence(), "customer-42", vkeys, None),
        "about customer 7 too": (evidence(subjectKey=theirs), "customer-7", vkeys, None),
        "another customer": (evidence(), "customer-43", vkeys, "not-about-you"),
        "the other subject with 42's key": (evidence(), "customer-7", vkeys, "not-about-you"),
        "a key of another row": (
            evidence(subjectKey=leaf_format.key(salts[3], "subject", "customer-42").hex()),
            "customer-42",
            vkeys,
            "not-about-you",
        ),
        "a changed leaf byte": (
            evidence(leaf=leaf.replace('"decision":"allow"', '"decision":"allaw"')),
            "customer-42",
            vkeys,
            "bad-proof",
        ),
        "a row about them, the proof of another": (
            evidence(
                leaf=leaves[3].decode("ascii"),
                subjectKey=leaf_format.key(salts[3], "subject", "customer-3").hex(),
            ),
            "customer-3",
            vkeys,
            "bad-proof",
        ),
        "the leaf before": (evidence(leafIndex=3), "customer-42", vkeys, "bad-proof"),
        "an index beyond the tree": (evidence(leafIndex=7), "customer-42", vkeys, "bad-proof"),
        "a flipped proof hash": (evidence(hashes=flipped_proof), "customer-42", vkeys, "bad-proof"),
        "a shorter proof": (evidence(hashes=cut_proof), "customer-42", vkeys, "bad-proof"),
        "another tree size": (evidence(treeSize=8), "customer-42", vkeys, "size-mismatch"),
        "a checkpoint of another key": (
            evidence(checkpoint=_signed(impostor, Checkpoint(ORIGIN, 7, root).text)),
            "customer-42",
            vkeys,
            "unknown-key",
        ),
        "a forged checkpoint": (
            evidence(checkpoint=_with_blob(note, _flip(blob, 40), ORIGIN)),
            "customer-42",
            vkeys,
            "bad-signature",
        ),
        "a checkpoint of another root": (
            evidence(checkpoint=_signed(log, Checkpoint(ORIGIN, 7, bytes(32)).text)),
            "customer-42",
            vkeys,
            "bad-proof",
        ),
        "a bad vkey": (evidence(), "customer-42", ["nonsense"], "bad-key"),
        "no evidence": (None, "customer-42", vkeys, "malformed"),
        "a list": ([], "customer-42", vkeys, "malformed"),
        "no proof": (evidence(proof=None), "customer-42", vkeys, "malformed"),
        "a leaf not JSON": (evidence(leaf="not json"), "customer-42", vkeys, "malformed"),
        "a leaf array": (evidence(leaf="[]"), "customer-42", vkeys, "malformed"),
        "a leaf null": (evidence(leaf="null"), "customer-42", vkeys, "malformed"),
        "subjects not a list": (
            evidence(leaf='{"subjects":"abc"}'),
            "customer-42",
            vkeys,
            "malformed",
        ),
        "a leaf not ASCII": (
            evidence(leaf=leaf.replace("\\u00f6", "\u00f6")),
            "customer-42",
            vkeys,
            "malformed",
        ),
        "a leaf of bytes": (evidence(leaf=list(leaves[4])), "customer-42", vkeys, "malformed"),
        "a key not hex": (evidence(subjectKey="zz" * 32), "customer-42", vkeys, "malformed"),
        "a short key": (evidence(subjectKey=mine[:62]), "customer-42", vkeys, "malformed"),
        "an empty id": (evidence(), "", vkeys, "malformed"),
        "an id not text": (evidence(), 42, vkeys, "malformed"),
        "an id far too long": (evidence(), "c" * 5000, vkeys, "malformed"),
        "a hash not base64": (evidence(hashes=["!!"]), "customer-42", vkeys, "malformed"),
        "a short hash": (evidence(hashes=[_b64(bytes(31))] * 3), "customer-42", vkeys, "malformed"),
        "hashes not a list": (evidence(hashes=_b64(proof[0])), "customer-42", vkeys, "malformed"),
        "too many hashes": (
            evidence(hashes=[_b64(bytes(32))] * 65),
            "customer-42",
            vkeys,
            "malformed",
        ),
        "a negative index": (evidence(leafIndex=-1), "customer-42", vkeys, "malformed"),
        "an index as text": (evidence(leafIndex="4"), "customer-42", vkeys, "malformed"),
        "a fractional size": (evidence(treeSize=7.5), "customer-42", vkeys, "malformed"),
        "a checkpoint not text": (evidence(checkpoint=42), "customer-42", vkeys, "malformed"),
        "a checkpoint cut": (evidence(checkpoint=note[:20]), "customer-42", vkeys, "malformed"),
    }
    got = await lab.run(
        """
        const out = {};
        for (const [what, [evidence, id, vkeys]] of Object.entries(arg.cases)) {
          const answer = await m.checkEvidence(evidence, id, vkeys);
          out[what] = answer.ok ? [answer.size, answer.signedAt.getTime()] : answer.reason;
        }
        const lone = { ...arg.good, leaf: arg.good.leaf.replace("request", "\\ud800") };
        const id = "customer-42\\udfff";
        out["a lone surrogate in the leaf"] =
          (await m.checkEvidence(lone, "customer-42", arg.vkeys)).reason;
        out["a lone surrogate in the id"] = (await m.checkEvidence(arg.good, id, arg.vkeys)).reason;
        return out;
        """,
        {"cases": cases, "good": evidence(), "vkeys": vkeys},
    )
    expected: dict[str, object] = {
        what: [7, SIGNED_AT * 1000] if reason is None else reason
        for what, (_, _, _, reason) in cases.items()
    }
    expected["a lone surrogate in the leaf"] = "malformed"
    expected["a lone surrogate in the id"] = "malformed"
    assert got == expected
