// Checking a decision-log proof in the customer's browser, with Web Crypto and nothing else:
// the leaf of a log row about the customer, the proof that it is in the log's Merkle tree
// (RFC 9162) and the checkpoint the log signed over that tree (a C2SP signed note with a
// timestamped Ed25519 signature, type 0x04, cosignature/v1). These are the checks of the
// Python package verifier/ (merkle.py, note.py, leaf.py), step for step, so that what the
// server sent is checked against the log's published key, not taken on trust. (This file
// comes from the same server: it catches a wrong or altered row, proof or tree head, not a
// server that also changes the checker; for that, verifier/ runs on the auditor's machine.)
//
// Every function takes untrusted input: a malformed value gives a ProofError with a short
// `reason` code (or false, for verifyInclusion), never another exception. Numbers are
// JavaScript numbers, so a tree size or index must be a safe integer (below 2^53); the
// bit arithmetic runs on BigInt, as JavaScript's own bit operators stop at 32 bits.

const HASH_SIZE = 32;
const KEY_ID_SIZE = 4;
const TIMESTAMP_SIZE = 8;
const SIGNATURE_SIZE = 64;
const SIGNATURE_TYPE = 0x04;
const MAX_TIMESTAMP = (1n << 63n) - 1n;
const MAX_DATE_SECONDS = 8640000000000n; // the last second a Date can hold
const MAX_NOTE_CHARS = 1 << 16;
const MAX_SIGNATURES = 64;
const MAX_VKEYS = 64;
const MAX_VKEY_CHARS = 1024;
const MAX_PROOF_HASHES = 64;
const MAX_LEAF_CHARS = 1 << 20;
const MAX_ID_CHARS = 1024;
const DASH = "\u2014 ";
const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const KEY_NAME = /^[^\s+\p{C}\p{Z}]+$/u; // no spaces, plus signs, controls or separators
const ORIGIN = /^(?:[^\p{C}\p{Z}]| )+$/u; // printable, spaces allowed
const CONTROL = /[\u0000-\u0009\u000b-\u001f]/; // controls a note may not hold (all but LF)
const DECIMAL = /^(?:0|[1-9][0-9]*)$/;
const ASCII_PRINTABLE = /^[\u0020-\u007e]*$/; // what verifier/leaf.py writes
const SUBJECT_KEY = /^[0-9a-fA-F]{64}$/; // HMAC-SHA256: 32 bytes in hex

const utf8 = new TextEncoder();

/** Why a proof, a checkpoint or a key was refused: `reason` is one of malformed, bad-key
 * (a verifier key that is not one), unknown-key (no key of the log signed), bad-signature,
 * size-mismatch, bad-proof, not-about-you. */
export class ProofError extends Error {
  constructor(reason) {
    super(reason);
    this.name = "ProofError";
    this.reason = reason;
  }
}

function fail(reason) {
  throw new ProofError(reason);
}

function isHash(value) {
  return value instanceof Uint8Array && value.length === HASH_SIZE;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function sameBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(parts)));
}

function toHex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function fromHex(text) {
  return Uint8Array.from(text.match(/../g) || [], (pair) => parseInt(pair, 16));
}

/** Standard base64 with its padding (as Python decodes it with validate=True); null for
 * anything else. */
function fromBase64(text) {
  if (typeof text !== "string" || !BASE64.test(text)) {
    return null;
  }
  return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
}

function isCount(value) {
  return Number.isSafeInteger(value) && value >= 0;
}

function bitLength(value) {
  return value === 0n ? 0 : value.toString(2).length;
}

function bitCount(value) {
  return value.toString(2).replaceAll("0", "").length;
}

/** The hash of one leaf, SHA-256(0x00 || bytes): a Uint8Array of 32 bytes. */
export async function leafHash(bytes) {
  if (!(bytes instanceof Uint8Array)) {
    fail("malformed");
  }
  return sha256(LEAF_PREFIX, bytes);
}

/** The hash of an interior node from its two 32-byte children, SHA-256(0x01 || left ||
 * right). The two prefixes keep a leaf from passing for a node. */
export async function nodeHash(left, right) {
  if (!isHash(left) || !isHash(right)) {
    fail("malformed");
  }
  return sha256(NODE_PREFIX, left, right);
}

/** How many hashes the inclusion proof of leaf `index` in a tree of `size` has (BigInt
 * arguments, index < size), as verifier/merkle.py counts them. */
function inclusionProofLength(index, size) {
  const inner = bitLength(index ^ (size - 1n));
  return inner + bitCount(index >> BigInt(inner));
}

/** Whether `proof` (Uint8Arrays of 32 bytes, nearest the leaf first) shows that
 * `leafHash` is leaf `index` of the tree of `size` leaves whose hash is `root`: RFC 9162
 * section 2.1.3.2, as verify_inclusion of verifier/merkle.py. Resolves to false on any
 * malformed input (numbers that are not safe non-negative integers, hashes that are not
 * 32 bytes, a proof of the wrong length or type); never rejects. */
export async function verifyInclusion(index, size, leafHash, proof, root) {
  if (!isCount(index) || !isCount(size) || !isHash(leafHash) || !isHash(root)) {
    return false;
  }
  if (!Array.isArray(proof) || proof.length > MAX_PROOF_HASHES || !proof.every(isHash)) {
    return false;
  }
  // Step 1.
  if (index >= size) {
    return false;
  }
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  // Not in the RFC steps, which catch a wrong length only after hashing.
  if (proof.length !== inclusionProofLength(fn, sn + 1n)) {
    return false;
  }
  // Steps 2 to 4.
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0n) {
      return false;
    }
    if ((fn & 1n) === 1n || fn === sn) {
      r = await sha256(NODE_PREFIX, p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await sha256(NODE_PREFIX, r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  // Step 5.
  return sn === 0n && sameBytes(r, root);
}

async function keyId(name, publicKey) {
  const digest = await sha256(utf8.encode(name), new Uint8Array([0x0a, SIGNATURE_TYPE]), publicKey);
  return digest.slice(0, KEY_ID_SIZE);
}

/** A verifier key as the log publishes it, name+keyid+base64(0x04 || 32-byte Ed25519
 * key): resolves to { name, keyId, publicKey } once the key id is recomputed from the
 * name and key, SHA-256(name || 0x0A || 0x04 || key)[:4]. Rejects with ProofError
 * bad-key for anything else. */
export async function parseVkey(vkey) {
  if (typeof vkey !== "string" || vkey.length > MAX_VKEY_CHARS) {
    fail("bad-key");
  }
  // name+id+key: the name and the id hold no plus sign, the base64 key may (C2SP note)
  const parts = /^([^+]*)\+([^+]*)\+(.*)$/s.exec(vkey.replace(/^[ \t\n\r]+|[ \t\n\r]+$/g, ""));
  if (parts === null) {
    fail("bad-key");
  }
  const [, name, hexId, material] = parts;
  const raw = fromBase64(material);
  if (!KEY_NAME.test(name) || !/^[0-9a-fA-F]{8}$/.test(hexId) || raw === null) {
    fail("bad-key");
  }
  if (raw.length !== 1 + HASH_SIZE || raw[0] !== SIGNATURE_TYPE) {
    fail("bad-key");
  }
  const publicKey = raw.slice(1);
  const id = await keyId(name, publicKey);
  if (toHex(id) !== hexId.toLowerCase()) {
    fail("bad-key");
  }
  return { name, keyId: id, publicKey };
}

/** Split a signed note into its text (ending with its newline) and its signature lines,
 * each { name, keyId, blob } (blob: what follows the key id). Not yet verified. */
function parseNote(note) {
  if (typeof note !== "string" || note.length > MAX_NOTE_CHARS || !note.isWellFormed()) {
    fail("malformed");
  }
  if (CONTROL.test(note) || !note.endsWith("\n")) {
    fail("malformed");
  }
  const split = note.lastIndexOf("\n\n");
  if (split < 0) {
    fail("malformed");
  }
  const text = note.slice(0, split + 1);
  const rest = note.slice(split + 2);
  const lines = rest === "" ? [] : rest.slice(0, -1).split("\n");
  if (lines.length === 0 || lines.length > MAX_SIGNATURES) {
    fail("malformed");
  }
  return {
    text,
    signatures: lines.map((line) => {
      if (!line.startsWith(DASH)) {
        fail("malformed");
      }
      const body = line.slice(DASH.length);
      const space = body.indexOf(" ");
      const name = space < 0 ? body : body.slice(0, space);
      const blob = space < 0 ? new Uint8Array(0) : fromBase64(body.slice(space + 1));
      if (!KEY_NAME.test(name) || blob === null || blob.length <= KEY_ID_SIZE) {
        fail("malformed");
      }
      return { name, keyId: blob.slice(0, KEY_ID_SIZE), blob: blob.slice(KEY_ID_SIZE) };
    }),
  };
}

/** A checkpoint text: three lines, origin, size in decimal, base64 root hash; no
 * extension lines. A size beyond 2^53 is refused too (no safe JavaScript number). */
function parseCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.length !== 4 || lines[3] !== "") {
    fail("malformed");
  }
  const [origin, size, root64] = lines;
  const root = fromBase64(root64);
  if (!ORIGIN.test(origin) || !DECIMAL.test(size) || !Number.isSafeInteger(Number(size))) {
    fail("malformed");
  }
  if (root === null || root.length !== HASH_SIZE) {
    fail("malformed");
  }
  return { origin, size: Number(size), root };
}

/** The time (BigInt seconds) of a valid timestamped Ed25519 signature `blob` (timestamp
 * || signature) of `text` by `verifier`, else null. */
async function signatureTime(verifier, text, blob) {
  if (blob.length !== TIMESTAMP_SIZE + SIGNATURE_SIZE) {
    return null;
  }
  const time = new DataView(blob.buffer, blob.byteOffset).getBigUint64(0, false);
  if (time > MAX_TIMESTAMP) {
    return null;
  }
  const message = concat([utf8.encode(`cosignature/v1\ntime ${time}\n`), utf8.encode(text)]);
  try {
    const key = await crypto.subtle.importKey(
      "raw",
      verifier.publicKey,
      { name: "Ed25519" },
      false,
      ["verify"],
    );
    const valid = await crypto.subtle.verify(
      { name: "Ed25519" },
      key,
      blob.slice(TIMESTAMP_SIZE),
      message,
    );
    return valid ? time : null;
  } catch {
    return null; // a public key that is not a curve point
  }
}

/** The latest time `verifier` signed `text` among `signatures`; null when it did not sign
 * it; false when one of its signatures fails (C2SP: the whole note is refused then). */
async function signedBy(verifier, text, signatures) {
  let found = null;
  for (const signature of signatures) {
    if (signature.name !== verifier.name || !sameBytes(signature.keyId, verifier.keyId)) {
      continue;
    }
    const time = await signatureTime(verifier, text, signature.blob);
    if (time === null) {
      return false;
    }
    found = found === null || time > found ? time : found;
  }
  return found;
}

async function parseVkeys(vkeys) {
  if (!Array.isArray(vkeys) || vkeys.length > MAX_VKEYS) {
    fail("bad-key");
  }
  const parsed = [];
  for (const vkey of vkeys) {
    parsed.push(await parseVkey(vkey));
  }
  return parsed;
}

/** A checkpoint note (its text) verified by one of `vkeys` (the log's verifier keys, as
 * published): resolves to { origin, size, root (Uint8Array), signedAt (Date) }. Only a key
 * named as the checkpoint's origin counts. Rejects with ProofError: malformed (note or
 * checkpoint syntax), bad-key (a vkey), unknown-key (no such key signed it),
 * bad-signature (a signature under such a key and id does not verify). */
export async function openCheckpoint(noteText, vkeys) {
  const verifiers = await parseVkeys(vkeys);
  const { text, signatures } = parseNote(noteText);
  const checkpoint = parseCheckpoint(text);
  let refused = false;
  for (const verifier of verifiers) {
    if (verifier.name !== checkpoint.origin) {
      continue;
    }
    const time = await signedBy(verifier, text, signatures);
    if (time === false) {
      refused = true;
    } else if (time !== null) {
      if (time > MAX_DATE_SECONDS) {
        fail("malformed"); // signed, but beyond the year 275760: no Date holds it
      }
      return { ...checkpoint, signedAt: new Date(Number(time) * 1000) };
    }
  }
  return fail(refused ? "bad-signature" : "unknown-key");
}

/** The evidence in plain values, or ProofError malformed. */
function readEvidence(evidence, customerId) {
  if (evidence === null || typeof evidence !== "object") {
    fail("malformed");
  }
  const { leaf, subjectKey, proof } = evidence;
  if (typeof leaf !== "string" || leaf.length > MAX_LEAF_CHARS || !ASCII_PRINTABLE.test(leaf)) {
    fail("malformed");
  }
  if (typeof subjectKey !== "string" || !SUBJECT_KEY.test(subjectKey)) {
    fail("malformed");
  }
  if (typeof customerId !== "string" || customerId.length > MAX_ID_CHARS) {
    fail("malformed");
  }
  if (customerId === "" || !customerId.isWellFormed()) {
    fail("malformed");
  }
  if (proof === null || typeof proof !== "object") {
    fail("malformed");
  }
  const { leafIndex, treeSize, hashes, checkpoint } = proof;
  if (!isCount(leafIndex) || !isCount(treeSize) || typeof checkpoint !== "string") {
    fail("malformed");
  }
  if (!Array.isArray(hashes) || hashes.length > MAX_PROOF_HASHES) {
    fail("malformed");
  }
  const path = hashes.map(fromBase64);
  if (!path.every(isHash)) {
    fail("malformed");
  }
  let parsed;
  try {
    parsed = JSON.parse(leaf);
  } catch {
    fail("malformed");
  }
  const subjects = parsed !== null && typeof parsed === "object" ? parsed.subjects : null;
  if (!Array.isArray(subjects) || !subjects.every((s) => typeof s === "string")) {
    fail("malformed");
  }
  return { leaf, subjects, subjectKey, leafIndex, treeSize, path, checkpoint };
}

/** Whether a log row is about this customer and in the log the keys sign for.
 *
 * `evidence`: { leaf, subjectKey, proof: { leafIndex, treeSize, hashes, checkpoint } },
 * the leaf being the exact JSON text the log hashed (its bytes are hashed, never a
 * re-serialization), subjectKey the customer's opening of their commitment in hex,
 * hashes the inclusion proof in base64, checkpoint the signed note's text. Checks that
 * hex(SHA-256(subjectKey || customerId)) is among the leaf's subjects, that the checkpoint
 * is signed by one of `vkeys`, that treeSize is its size, and that the proof puts the
 * leaf at leafIndex under its root.
 *
 * Resolves to { ok: true, size, signedAt } or { ok: false, reason } with the reason of a
 * ProofError (malformed, bad-key, not-about-you, unknown-key, bad-signature,
 * size-mismatch, bad-proof). */
export async function checkEvidence(evidence, customerId, vkeys) {
  try {
    const found = readEvidence(evidence, customerId);
    const mine = toHex(await sha256(fromHex(found.subjectKey), utf8.encode(customerId)));
    if (!found.subjects.includes(mine)) {
      fail("not-about-you");
    }
    const checkpoint = await openCheckpoint(found.checkpoint, vkeys);
    if (found.treeSize !== checkpoint.size) {
      fail("size-mismatch");
    }
    const hash = await leafHash(utf8.encode(found.leaf));
    const { leafIndex, treeSize, path } = found;
    if (!(await verifyInclusion(leafIndex, treeSize, hash, path, checkpoint.root))) {
      fail("bad-proof");
    }
    return { ok: true, size: checkpoint.size, signedAt: checkpoint.signedAt };
  } catch (error) {
    if (error instanceof ProofError) {
      return { ok: false, reason: error.reason };
    }
    throw error;
  }
}
