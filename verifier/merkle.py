"""Merkle tree hashing and proofs of RFC 9162 (Certificate Transparency 2.0), the same
tree as RFC 6962: the decision log's tree (docs/AUDIT_LOG.md).

A leaf is hashed as SHA-256(0x00 || data), an interior node as SHA-256(0x01 || left ||
right); the two prefixes keep a leaf from ever passing for a node. The tree over n
leaves splits at the largest power of two below n, so every prefix of the log is a tree
of its own, and a short proof shows that one row is in the tree (inclusion) or that a
later tree only appends to an earlier one (consistency).

This module depends on nothing but the Python standard library and on nothing else in
Custos, on purpose: an auditor can copy this one file (or the `verifier` package) and
check proofs with it without trusting, or installing, anything else of ours.

Building proofs: the `*_from` functions ask a `hash_range(start, end)` callable for the
Merkle tree hash of the leaves [start, end). They only ask for perfect subtrees (a power
of two leaves, starting at a multiple of that power) and for ranges that end at the tree
size, so a store of interior nodes can answer in O(log n) reads. `inclusion_proof` and
`consistency_proof` do the same over an in-memory list of leaf hashes.

Checking proofs: `verify_inclusion` and `verify_consistency` follow the algorithms of
RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step. They take whatever an untrusted
party sent and answer True or False; they never raise on malformed input (negative or
oversized numbers, hashes that are not 32 bytes, proofs of the wrong length or type)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
"""Every hash here is a SHA-256 digest: 32 bytes."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""The Merkle tree hash of the empty tree (RFC 9162 section 2.1.1): SHA-256 of nothing."""

_MAX_SIZE = 1 << 64
"""Tree sizes and indices are 64-bit unsigned numbers (RFC 9162); anything larger is
rejected, which also bounds the length of any valid proof."""

HashRange = Callable[[int, int], bytes]
"""`hash_range(start, end)`: the Merkle tree hash of leaves [start, end), 0 <= start < end."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node from its two children: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n >= 2): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    """The Merkle tree hash of leaf_hashes[start:end], start < end, without copying."""
    if end - start == 1:
        return leaf_hashes[start]
    k = _split(end - start)
    return node_hash(
        _subtree_root(leaf_hashes, start, start + k), _subtree_root(leaf_hashes, start + k, end)
    )


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) of a list of leaf hashes; EMPTY_ROOT for no leaves."""
    if not leaf_hashes:
        return EMPTY_ROOT
    return _subtree_root(leaf_hashes, 0, len(leaf_hashes))


def range_hasher(leaf_hashes: Sequence[bytes]) -> HashRange:
    """A `hash_range` callable over an in-memory list of leaf hashes."""

    def hash_range(start: int, end: int) -> bytes:
        if not 0 <= start < end <= len(leaf_hashes):
            raise ValueError(f"range [{start}, {end}) is not inside {len(leaf_hashes)} leaves")
        return _subtree_root(leaf_hashes, start, end)

    return hash_range


def inclusion_proof_from(hash_range: HashRange, size: int, index: int) -> list[bytes]:
    """The inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 section
    2.1.3.1, PATH), nearest the leaf first. Raises ValueError unless 0 <= index < size."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(hash_range(start + k, end))
            end = start + k
        else:
            path.append(hash_range(start, start + k))
            start += k
    path.reverse()
    return path


def consistency_proof_from(hash_range: HashRange, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of `new_size` leaves extends the one of `old_size` (RFC 9162
    section 2.1.4.1, SUBPROOF), nearest the leaves first; empty when the sizes are equal.
    Raises ValueError unless 0 < old_size <= new_size: the RFC defines no proof from the
    empty tree."""
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    path: list[bytes] = []
    start, end, m = 0, new_size, old_size
    whole = True  # SUBPROOF's b: the old tree is still the left edge of [start, end)
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            path.append(hash_range(start + k, end))
            end = start + k
        else:
            path.append(hash_range(start, start + k))
            start += k
            m -= k
            whole = False
    if not whole:
        path.append(hash_range(start, end))
    path.reverse()
    return path


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The inclusion proof of leaf `index` in the tree over all of `leaf_hashes`."""
    return inclusion_proof_from(range_hasher(leaf_hashes), len(leaf_hashes), index)


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """The consistency proof from the first `old_size` leaves to all of `leaf_hashes`."""
    return consistency_proof_from(range_hasher(leaf_hashes), old_size, len(leaf_hashes))


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_SIZE


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == HASH_SIZE


def _is_proof(value: object) -> bool:
    return isinstance(value, list | tuple) and all(_is_hash(h) for h in value)


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes the inclusion proof of leaf `index` in a tree of `size` has
    (0 <= index < size): one per level below where the paths to `index` and to the last
    leaf part, plus one per left sibling above it."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(old_size: int, new_size: int) -> int:
    """How many hashes the consistency proof from `old_size` to `new_size` has
    (0 < old_size <= new_size); the old root itself is left out when old_size is a power
    of two, as the RFC does."""
    if old_size == new_size:
        return 0
    fork = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> fork).bit_count()
    shift = (old_size & -old_size).bit_length() - 1
    seed = 0 if old_size & (old_size - 1) == 0 else 1
    return seed + fork - shift + border


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether `proof` shows that `leaf_hash` is leaf `index` of the tree of `size` leaves
    whose hash is `root` (RFC 9162 section 2.1.3.2). False on any malformed input."""
    if not (
        _is_hash(leaf_hash)
        and _is_size(index)
        and _is_size(size)
        and _is_proof(proof)
        and _is_hash(root)
    ):
        return False
    # Step 1.
    if index >= size:
        return False
    # Not in the RFC's steps, which catch a wrong length only after hashing: reject it
    # before doing any work for it.
    if len(proof) != inclusion_proof_length(index, size):
        return False
    # Steps 2 and 3.
    fn, sn = index, size - 1
    r = leaf_hash
    # Step 4.
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Step 5.
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether `proof` shows that the tree of `new_size` leaves with hash `new_root` only
    appends to the tree of `old_size` leaves with hash `old_root` (RFC 9162 section
    2.1.4.2). Equal sizes need equal roots and an empty proof. The RFC defines no proof
    from the empty tree, so old_size 0 is always False (as in transparency-dev/merkle):
    whoever holds no earlier tree has nothing to check and must trust the first one.
    False on any malformed input."""
    if not (
        _is_size(old_size)
        and _is_size(new_size)
        and _is_hash(old_root)
        and _is_hash(new_root)
        and _is_proof(proof)
    ):
        return False
    if old_size == 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return len(proof) == 0 and old_root == new_root
    # Step 1 (an empty proof fails) is covered by the length check: it is never 0 here.
    if len(proof) != consistency_proof_length(old_size, new_size):
        return False
    path = list(proof)
    # Step 2.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # Step 3.
    fn, sn = old_size - 1, new_size - 1
    # Step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    return sn == 0 and fr == old_root and sr == new_root
