"""Certificates of erasure (docs/RECIPIENTS.md, "Proof of erasure"): what an erasure did,
per data category, and which recipients of the data acknowledged it, signed by the
decision log's key and tied to the log rows that record it.

A certificate is a JSON document of three parts:

- `certificate`: a signed note (verifier/note.py) whose text is, one item a line,

      custos.erasure-certificate/1
      log <origin>
      request <request id>
      customer <customer id>
      fulfilled <UTC ISO 8601>
      completed <UTC ISO 8601>
      category <name> <action> <JSON: {"references": [...], "why": "..."}>
      recipient <JSON: the recipient's name> <status> <outcome or -> <acknowledged at or ->
      evidence <leaf index> <leaf hash, hex>
      checkpoint <tree size> <root hash, hex>

  signed by the log's key (the key that signs its checkpoints);
- `checkpoint`: the signed checkpoint whose size and root the last line names;
- `proofs`: per evidence leaf index, its inclusion proof in that checkpoint (hex hashes).

`check` needs nothing of Custos but the log's published verifier keys: it opens the
checkpoint and the certificate with them, checks that both name the same tree, and that
every evidence row is in it. The rows themselves (what each decided) are the auditor's to
read in the log by leaf index."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from verifier import merkle
from verifier.note import NoteError, Verifier, open_checkpoint, parse_note

FORMAT = "custos.erasure-certificate/1"
MAX_BYTES = 1 << 20


class CertificateError(ValueError):
    """A certificate that is malformed, or does not verify."""


@dataclass
class Certificate:
    origin: str = ""
    request: str = ""
    customer: str = ""
    fulfilled: str = ""
    completed: str = ""
    categories: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    recipients: list[tuple[str, str, str, str]] = field(default_factory=list)
    evidence: list[tuple[int, bytes]] = field(default_factory=list)
    tree_size: int = 0
    root: bytes = b""

    @property
    def text(self) -> str:
        lines = [
            FORMAT,
            f"log {self.origin}",
            f"request {self.request}",
            f"customer {self.customer}",
            f"fulfilled {self.fulfilled}",
            f"completed {self.completed}",
        ]
        lines += [
            f"category {name} {action} {json.dumps(detail, sort_keys=True)}"
            for name, action, detail in self.categories
        ]
        lines += [
            f"recipient {json.dumps(name)} {status} {outcome or '-'} {at or '-'}"
            for name, status, outcome, at in self.recipients
        ]
        lines += [f"evidence {index} {digest.hex()}" for index, digest in self.evidence]
        lines.append(f"checkpoint {self.tree_size} {self.root.hex()}")
        return "\n".join(lines) + "\n"


def _word(line: str, prefix: str) -> str:
    if not line.startswith(prefix + " "):
        raise CertificateError(f"expected a `{prefix}` line")
    return line[len(prefix) + 1 :]


def parse(text: str) -> Certificate:
    """The certificate a note's text states (not yet verified)."""
    lines = text.split("\n")
    if len(lines) < 8 or lines[0] != FORMAT or lines[-1] != "":
        raise CertificateError(f"not a {FORMAT} certificate")
    c = Certificate()
    c.origin, c.request, c.customer, c.fulfilled, c.completed = (
        _word(line, prefix)
        for line, prefix in zip(
            lines[1:6], ("log", "request", "customer", "fulfilled", "completed"), strict=True
        )
    )
    decoder = json.JSONDecoder()
    try:
        for line in lines[6:-2]:
            kind, _, rest = line.partition(" ")
            if kind == "category":
                name, action, detail = rest.split(" ", 2)
                c.categories.append((name, action, json.loads(detail)))
            elif kind == "recipient":
                name, end = decoder.raw_decode(rest)
                status, outcome, at = rest[end:].split()
                c.recipients.append((str(name), status, outcome, at))
            elif kind == "evidence":
                index, digest = rest.split()
                c.evidence.append((int(index), bytes.fromhex(digest)))
            else:
                raise CertificateError(f"unknown line `{kind}`")
        size, root = _word(lines[-2], "checkpoint").split()
        c.tree_size, c.root = int(size), bytes.fromhex(root)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"a malformed line: {exc}") from None
    return c


def check(document: bytes | str, keys: list[Verifier]) -> Certificate:
    """The certificate, when the log's key signed it, its checkpoint opens with the same
    keys and names the same tree, and every evidence row's proof leads to that tree's
    root. Raises CertificateError naming what failed."""
    if len(document) > MAX_BYTES:
        raise CertificateError("the certificate is too large")
    try:
        parts = json.loads(document)
        note, checkpoint_note = parts["certificate"], parts["checkpoint"]
        proofs = {int(i): [bytes.fromhex(h) for h in p] for i, p in parts["proofs"].items()}
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CertificateError(f"not a certificate document: {exc}") from None
    try:
        checkpoint, _ = open_checkpoint(checkpoint_note, keys)
        signed = parse_note(note)
    except NoteError as exc:
        raise CertificateError(f"the checkpoint does not verify: {exc}") from None
    certificate = parse(signed.text)
    signers = [k for k in keys if k.name == certificate.origin]
    for key in signers:
        try:
            signed.verified_by(key)
            break
        except NoteError:
            continue
    else:
        raise CertificateError("the certificate is not signed by the log's key")
    if (checkpoint.origin, checkpoint.size, checkpoint.root) != (
        certificate.origin,
        certificate.tree_size,
        certificate.root,
    ):
        raise CertificateError("the certificate names another tree than its checkpoint")
    for index, digest in certificate.evidence:
        proof = proofs.get(index)
        if proof is None or not merkle.verify_inclusion(
            digest, index, checkpoint.size, proof, checkpoint.root
        ):
            raise CertificateError(f"evidence row {index} is not in the signed tree")
    return certificate
