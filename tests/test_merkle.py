"""verifier/merkle.py against the published test vectors of transparency-dev/merkle (Go), and
every proof of small trees against the verifiers, intact and tampered with."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import merkle
from verifier.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    consistency_proof_from,
    inclusion_proof,
    inclusion_proof_from,
    leaf_hash,
    node_hash,
    range_hasher,
    root,
    verify_consistency,
    verify_inclusion,
)

# Published vectors, copied from github.com/transparency-dev/merkle at commit
# 417fb0c314750d94e53942e9f92e79b6d35915db:
#   testonly/constants.go: LeafInputs, NodeHashes, RootHashes, EmptyRootHash;
#   testdata/inclusion/{0..4}/happy-path.json and testdata/consistency/{0..4}/happy-path.json
#   (base64 there, hex here; the same proofs as the inclusionProofs / consistencyProofs
#   tables of proof/verify_test.go before commit bcba819, and of certificate-transparency-go);
#   testdata/inclusion/{additional,single-entry}/*.json and
#   testdata/consistency/additional/*.json (edge cases, as EDGE_* below).

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# NodeHashes: level 0 (the leaf hashes) up to level 3 (the root of all eight).
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

# RootHashes: the root of the tree of the first n LEAF_INPUTS, n = 0..8.
ROOT_HASHES = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# (leaf index, tree size, proof) from testdata/inclusion/{0..4}/happy-path.json.
INCLUSION_PROOFS: list[tuple[int, int, list[str]]] = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (old size, new size, proof) from testdata/consistency/{0..4}/happy-path.json.
CONSISTENCY_PROOFS: list[tuple[int, int, list[str]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

_E = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # empty root
_R = "abacaba000000000000000000000000000000000000000000060061e00123456"  # "random leaf"
_S = "0d3aed023148ffd2a259fbd0cdc7fb3cf975658760d3775b82af6f90aacc2dfc"  # single entry
_DC1 = b"don't care 1".hex()
_DC2 = b"don't care 2".hex()

# (file, leaf index, tree size, leaf hash, root, proof, valid per the Go library).
EDGE_INCLUSION: list[tuple[str, int, int, str, str, list[str], bool]] = [
    ("additional/0/empty-root-and-random-leaf", 0, 0, _R, _E, [], False),
    ("additional/0/empty-root", 0, 0, "", _E, [], False),
    ("additional/0/random-leaf", 0, 0, _R, "", [], False),
    ("additional/1/empty-root-and-random-leaf", 0, 1, _R, _E, [], False),
    ("additional/1/empty-root", 0, 1, "", _E, [], False),
    ("additional/1/random-leaf", 0, 1, _R, "", [], False),
    ("additional/2/empty-root-and-random-leaf", 1, 0, _R, _E, [], False),
    ("additional/2/empty-root", 1, 0, "", _E, [], False),
    ("additional/2/random-leaf", 1, 0, _R, "", [], False),
    ("additional/3/empty-root-and-random-leaf", 2, 1, _R, _E, [], False),
    ("additional/3/empty-root", 2, 1, "", _E, [], False),
    ("additional/3/random-leaf", 2, 1, _R, "", [], False),
    ("single-entry/empty-leaf", 0, 1, "", _S, [], False),
    ("single-entry/empty-root-and-leaf", 0, 1, "", "", [], False),
    ("single-entry/empty-root", 0, 1, _S, "", [], False),
    ("single-entry/matching-root-and-leaf", 0, 1, _S, _S, [], True),
]

# (file, old size, new size, old root, new root, proof, valid per the Go library).
EDGE_CONSISTENCY: list[tuple[str, int, int, str, str, list[str], bool]] = [
    ("consistency-check-on-empty-tree-size1-is-zero-is-useless", 0, 1, _E, _E, [_E], False),
    ("roots-do-not-match-and-sizes-are-zero", 0, 0, _E, _DC2, [], False),
    ("roots-do-not-not-match-and-sizes-are-one", 1, 1, _E, _DC2, [], False),
    ("size1-is-greater-than-size2-again", 2, 1, _DC1, _DC2, [], False),
    ("size1-is-greater-than-size2", 1, 0, _DC1, _DC2, [], False),
    ("size1-is-zero-and-does-not-equal-size2", 0, 1, _DC1, _DC2, [], False),
    ("size1-is-zero-and-size2-is-not-zero", 0, 1, _E, _DC2, [], False),
    # Go accepts equal 12-byte "roots"; a root is 32 bytes, so merkle.py rejects them.
    ("sizes-are-equal-one-and-proof-is-empty", 1, 1, _DC2, _DC2, [], True),
    ("sizes-are-equal-one-but-roots-are-not", 1, 1, _DC1, _DC2, [], False),
    ("sizes-are-equal-zero-and-proof-is-empty", 0, 0, _DC1, _DC1, [], False),
    ("sizes-are-equal-zero-but-roots-are-not", 0, 0, _DC1, _DC2, [], False),
    ("sizes-do-not-watch-and-proof-is-empty", 1, 2, _DC1, _DC2, [], False),
    ("sizes-match-but-proof-is-not-empty-and-sizes-are-one", 1, 1, _E, _E, [_E], False),
    ("sizes-match-but-proof-is-not-empty-and-sizes-are-zero", 0, 0, _E, _E, [_E], False),
]

LEAVES = [leaf_hash(data) for data in LEAF_INPUTS]


def _hex(hashes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]


def _leaves(n: int, salt: int = 0) -> list[bytes]:
    return [leaf_hash(f"row {salt} {i}".encode()) for i in range(n)]


def _flip(h: bytes, at: int) -> bytes:
    return h[:at] + bytes([h[at] ^ 0x01]) + h[at + 1 :]


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _inclusion_shape(index: int, size: int) -> list[str]:
    """Which side each proof hash sits on, from RFC 9162's PATH recursion."""
    if size == 1:
        return []
    k = _split(size)
    if index < k:
        return [*_inclusion_shape(index, k), "right"]
    return [*_inclusion_shape(index - k, size - k), "left"]


def _consistency_shape(m: int, n: int, whole: bool = True) -> list[str]:
    """The same for a consistency proof, from RFC 9162's SUBPROOF recursion."""
    if m == n:
        return [] if whole else ["seed"]
    k = _split(n)
    if m <= k:
        return [*_consistency_shape(m, k, whole), "right"]
    return [*_consistency_shape(m - k, n - k, False), "left"]


# --- published vectors ------------------------------------------------------------------


def test_empty_tree_root() -> None:
    assert root([]) == EMPTY_ROOT == bytes.fromhex(ROOT_HASHES[0])


@pytest.mark.parametrize("size", range(len(ROOT_HASHES)))
def test_root_matches_published(size: int) -> None:
    assert root(LEAVES[:size]).hex() == ROOT_HASHES[size]
    if size:
        assert range_hasher(LEAVES)(0, size).hex() == ROOT_HASHES[size]


def test_node_hashes_match_published() -> None:
    hash_range = range_hasher(LEAVES)
    for level, hashes in enumerate(NODE_HASHES):
        width = 1 << level
        for i, expected in enumerate(hashes):
            assert hash_range(i * width, (i + 1) * width).hex() == expected
    assert [h.hex() for h in LEAVES] == NODE_HASHES[0]
    assert node_hash(LEAVES[0], LEAVES[1]).hex() == NODE_HASHES[1][0]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_published_inclusion_proof(index: int, size: int, proof: list[str]) -> None:
    expected = _hex(proof)
    assert inclusion_proof(LEAVES[:size], index) == expected
    assert verify_inclusion(LEAVES[index], index, size, expected, bytes.fromhex(ROOT_HASHES[size]))


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS)
def test_published_consistency_proof(old: int, new: int, proof: list[str]) -> None:
    expected = _hex(proof)
    assert consistency_proof(LEAVES[:new], old) == expected
    old_root, new_root = bytes.fromhex(ROOT_HASHES[old]), bytes.fromhex(ROOT_HASHES[new])
    assert verify_consistency(old, new, old_root, new_root, expected)


@pytest.mark.parametrize(
    ("index", "size", "proof"),
    [(i, s, p) for i, s, p in INCLUSION_PROOFS if p],
)
def test_published_inclusion_proof_mutations_rejected(
    index: int, size: int, proof: list[str]
) -> None:
    """The mutations of the Go library's testdata/inclusion probes, applied to its proofs."""
    good, leaf, good_root = _hex(proof), LEAVES[index], bytes.fromhex(ROOT_HASHES[size])
    assert verify_inclusion(leaf, index, size, good, good_root)
    for wrong_index in {index + 1, index - 1, index ^ 2} - {index}:
        assert not verify_inclusion(leaf, wrong_index, size, good, good_root)
    for wrong_size in (size * 2, size // 2):
        assert not verify_inclusion(leaf, index, wrong_size, good, good_root)
    assert not verify_inclusion(LEAVES[(index + 1) % size], index, size, good, good_root)
    assert not verify_inclusion(leaf, index, size, good, EMPTY_ROOT)
    assert not verify_inclusion(leaf, index, size, [b"", *good], good_root)
    assert not verify_inclusion(leaf, index, size, [*good, b""], good_root)
    assert not verify_inclusion(leaf, index, size, [good_root, *good], good_root)
    assert not verify_inclusion(leaf, index, size, [*good, good_root], good_root)
    assert not verify_inclusion(leaf, index, size, good[:-1], good_root)
    assert not verify_inclusion(leaf, index, size, [*good[:1], EMPTY_ROOT, *good[1:]], good_root)
    for at in range(len(good)):
        bad = [*good[:at], _flip(good[at], 3), *good[at + 1 :]]
        assert not verify_inclusion(leaf, index, size, bad, good_root)


@pytest.mark.parametrize(
    ("old", "new", "proof"),
    [(o, n, p) for o, n, p in CONSISTENCY_PROOFS if p],
)
def test_published_consistency_proof_mutations_rejected(
    old: int, new: int, proof: list[str]
) -> None:
    """The mutations of the Go library's testdata/consistency probes, applied to its proofs."""
    good = _hex(proof)
    r1, r2 = bytes.fromhex(ROOT_HASHES[old]), bytes.fromhex(ROOT_HASHES[new])
    assert verify_consistency(old, new, r1, r2, good)
    for wrong_old in {old + 1, old - 1, old ^ 2} - {old}:
        assert not verify_consistency(wrong_old, new, r1, r2, good)
    for wrong_new in (new * 2, new // 2):
        assert not verify_consistency(old, wrong_new, r1, r2, good)
    assert not verify_consistency(old, new, r2, r1, good)
    assert not verify_consistency(old, new, EMPTY_ROOT, r2, good)
    assert not verify_consistency(old, new, r1, EMPTY_ROOT, good)
    assert not verify_consistency(old, new, r1, r2, [])
    assert not verify_consistency(old, new, r1, r2, [b"", *good])
    assert not verify_consistency(old, new, r1, r2, [*good, b""])
    assert not verify_consistency(old, new, r1, r2, [r1, *good])
    assert not verify_consistency(old, new, r1, r2, [*good, r2])
    assert not verify_consistency(old, new, r1, r2, good[:-1])
    for at in range(len(good)):
        bad = [*good[:at], _flip(good[at], 4), *good[at + 1 :]]
        assert not verify_consistency(old, new, r1, r2, bad)


@pytest.mark.parametrize(
    ("name", "index", "size", "leaf", "root_hex", "proof", "valid"),
    EDGE_INCLUSION,
    ids=[case[0] for case in EDGE_INCLUSION],
)
def test_published_inclusion_edge_case(
    name: str, index: int, size: int, leaf: str, root_hex: str, proof: list[str], valid: bool
) -> None:
    del name
    got = verify_inclusion(bytes.fromhex(leaf), index, size, _hex(proof), bytes.fromhex(root_hex))
    assert got is valid


@pytest.mark.parametrize(
    ("name", "old", "new", "old_root", "new_root", "proof", "valid"),
    EDGE_CONSISTENCY,
    ids=[case[0] for case in EDGE_CONSISTENCY],
)
def test_published_consistency_edge_case(
    name: str, old: int, new: int, old_root: str, new_root: str, proof: list[str], valid: bool
) -> None:
    r1, r2 = bytes.fromhex(old_root), bytes.fromhex(new_root)
    got = verify_consistency(old, new, r1, r2, _hex(proof))
    if name == "sizes-are-equal-one-and-proof-is-empty":
        # The one deliberate difference: Go only compares the bytes, we want real hashes.
        assert valid
        assert got is False
        assert verify_consistency(old, new, EMPTY_ROOT, EMPTY_ROOT, []) is True
    else:
        assert got is valid


# --- every proof of small trees ---------------------------------------------------------

SMALL = 32


@pytest.fixture(scope="module")
def small_tree() -> tuple[list[bytes], list[bytes]]:
    leaves = _leaves(SMALL + 8)
    return leaves, [root(leaves[:n]) for n in range(len(leaves) + 1)]


def test_every_inclusion_proof_up_to_32_verifies(
    small_tree: tuple[list[bytes], list[bytes]],
) -> None:
    leaves, roots = small_tree
    for size in range(1, SMALL + 1):
        for index in range(size):
            proof = inclusion_proof(leaves[:size], index)
            assert len(proof) == merkle.inclusion_proof_length(index, size)
            assert verify_inclusion(leaves[index], index, size, proof, roots[size]), (index, size)


def test_every_consistency_proof_up_to_32_verifies(
    small_tree: tuple[list[bytes], list[bytes]],
) -> None:
    leaves, roots = small_tree
    for new in range(1, SMALL + 1):
        for old in range(1, new + 1):
            proof = consistency_proof(leaves[:new], old)
            assert len(proof) == merkle.consistency_proof_length(old, new)
            assert verify_consistency(old, new, roots[old], roots[new], proof), (old, new)


TAMPER = 16


def test_tampered_inclusion_proofs_rejected(
    small_tree: tuple[list[bytes], list[bytes]],
) -> None:
    """Every single flipped byte (in the proof, the leaf, the root), every other index,
    and a shortened or lengthened proof fail, for every leaf of trees up to 16."""
    leaves, roots = small_tree
    for size in range(1, TAMPER + 1):
        r = roots[size]
        for index in range(size):
            leaf, proof = leaves[index], inclusion_proof(leaves[:size], index)
            for at in range(len(proof)):
                for byte in range(merkle.HASH_SIZE):
                    bad = [*proof[:at], _flip(proof[at], byte), *proof[at + 1 :]]
                    assert not verify_inclusion(leaf, index, size, bad, r)
            for byte in range(merkle.HASH_SIZE):
                assert not verify_inclusion(_flip(leaf, byte), index, size, proof, r)
                assert not verify_inclusion(leaf, index, size, proof, _flip(r, byte))
            for other in range(size + 2):
                if other != index:
                    assert not verify_inclusion(leaf, other, size, proof, r), (index, other)
            if proof:
                assert not verify_inclusion(leaf, index, size, proof[:-1], r)
                assert not verify_inclusion(leaf, index, size, proof[1:], r)
            assert not verify_inclusion(leaf, index, size, [*proof, leaf], r)
            assert not verify_inclusion(leaf, index, size, [leaf, *proof], r)


def test_inclusion_proof_for_another_size_only_passes_with_the_same_shape(
    small_tree: tuple[list[bytes], list[bytes]],
) -> None:
    """An RFC 9162 proof does not bind the tree size (the signed checkpoint does): a proof
    passes for another size exactly when that size puts the leaf on the same path."""
    leaves, roots = small_tree
    for size in range(1, TAMPER + 1):
        for index in range(size):
            proof = inclusion_proof(leaves[:size], index)
            for other in range(TAMPER + 8):
                if other != size:
                    same = index < other and (
                        _inclusion_shape(index, other) == _inclusion_shape(index, size)
                    )
                    got = verify_inclusion(leaves[index], index, other, proof, roots[size])
                    assert got is same, (index, size, other)


def test_tampered_consistency_proofs_rejected(
    small_tree: tuple[list[bytes], list[bytes]],
) -> None:
    """Every single flipped byte (in the proof and either root), swapped roots, and a
    shortened or lengthened proof fail, for every pair of sizes up to 16."""
    leaves, roots = small_tree
    for new in range(1, TAMPER + 1):
        for old in range(1, new + 1):
            r1, r2 = roots[old], roots[new]
            proof = consistency_proof(leaves[:new], old)
            for at in range(len(proof)):
                for byte in range(merkle.HASH_SIZE):
                    bad = [*proof[:at], _flip(proof[at], byte), *proof[at + 1 :]]
                    assert not verify_consistency(old, new, r1, r2, bad)
            for byte in range(merkle.HASH_SIZE):
                assert not verify_consistency(old, new, _flip(r1, byte), r2, proof)
                assert not verify_consistency(old, new, r1, _flip(r2, byte), proof)
            if old != new:
                assert not verify_consistency(old, new, r2, r1, proof)
                assert not verify_consistency(old, new, r1, r2, proof[:-1])
                assert not verify_consistency(old, new, r1, r2, proof[1:])
            assert not verify_consistency(old, new, r1, r2, [*proof, r1])
            assert not verify_consistency(old, new, r1, r2, [r1, *proof])
            assert not verify_consistency(0, new, EMPTY_ROOT, r2, proof)
            assert not verify_consistency(new, old, r2, r1, proof) or old == new


def test_consistency_proof_for_other_sizes_only_passes_with_the_same_shape(
    small_tree: tuple[list[bytes], list[bytes]],
) -> None:
    """As for inclusion: other sizes pass exactly when the RFC recursion has the same
    shape for them; another old size with the same new size never passes."""
    leaves, roots = small_tree
    for new in range(1, TAMPER + 1):
        for old in range(1, new + 1):
            proof = consistency_proof(leaves[:new], old)
            shape = _consistency_shape(old, new)
            for other_old in range(TAMPER + 4):
                for other_new in range(TAMPER + 4):
                    if (other_old, other_new) == (old, new):
                        continue
                    same = 0 < other_old <= other_new and (
                        _consistency_shape(other_old, other_new) == shape
                    )
                    if other_new == new:
                        assert not same
                    got = verify_consistency(other_old, other_new, roots[old], roots[new], proof)
                    assert got is same, (old, new, other_old, other_new)


# --- building proofs from stored subtrees -----------------------------------------------


def _recording(leaves: list[bytes], calls: list[tuple[int, int]]) -> Callable[[int, int], bytes]:
    inner = range_hasher(leaves)

    def hash_range(start: int, end: int) -> bytes:
        calls.append((start, end))
        return inner(start, end)

    return hash_range


def test_proofs_only_ask_for_perfect_subtrees_or_the_right_edge() -> None:
    """What a store of interior nodes must answer: a perfect, aligned subtree, or a range
    that ends at the tree size (made of O(log n) perfect ones)."""
    leaves = _leaves(45)
    for size in range(1, len(leaves) + 1):
        calls: list[tuple[int, int]] = []
        hash_range = _recording(leaves[:size], calls)
        for index in range(size):
            inclusion_proof_from(hash_range, size, index)
        for old in range(1, size + 1):
            consistency_proof_from(hash_range, old, size)
        for start, end in calls:
            width = end - start
            perfect = width & (width - 1) == 0 and start % width == 0
            assert perfect or end == size, (size, start, end)


def test_builders_refuse_impossible_requests() -> None:
    leaves = _leaves(5)
    for index in (-1, 5, 6):
        with pytest.raises(ValueError, match="not in a tree"):
            inclusion_proof(leaves, index)
    for old in (-1, 0, 6):
        with pytest.raises(ValueError, match="no consistency proof"):
            consistency_proof(leaves, old)
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof([], 0)
    with pytest.raises(ValueError, match="not inside"):
        range_hasher(leaves)(3, 3)


# --- hostile input ----------------------------------------------------------------------

_GOOD = _leaves(7)
_GOOD_ROOT = root(_GOOD)
_GOOD_PROOF = inclusion_proof(_GOOD, 3)
_OLD_ROOT = root(_GOOD[:3])
_CONS_PROOF = consistency_proof(_GOOD, 3)

_HOSTILE_NUMBERS: list[object] = [-1, 1 << 64, (1 << 64) + 3, True, False, 3.0, "3", None]
_HOSTILE_HASHES: list[object] = [
    None,
    "",
    "a" * 32,
    b"",
    b"\x00" * 31,
    b"\x00" * 33,
    bytearray(32),
    memoryview(b"\x00" * 32),
    32,
]
_HOSTILE_PROOFS: list[object] = [
    None,
    "",
    b"",
    b"\x00" * 32,
    [None],
    [1, 2, 3],
    ["00" * 32] * 3,
    iter(_GOOD_PROOF),
    dict.fromkeys(_GOOD_PROOF, 1),
    [b"\x00" * 32] * 10_000,
    [*_GOOD_PROOF[:2], bytearray(_GOOD_PROOF[2])],
]


def test_verify_inclusion_never_raises_on_hostile_input() -> None:
    assert verify_inclusion(_GOOD[3], 3, 7, _GOOD_PROOF, _GOOD_ROOT)
    assert verify_inclusion(_GOOD[3], 3, 7, tuple(_GOOD_PROOF), _GOOD_ROOT)
    for number in _HOSTILE_NUMBERS:
        assert verify_inclusion(_GOOD[3], number, 7, _GOOD_PROOF, _GOOD_ROOT) is False  # type: ignore[arg-type]
        assert verify_inclusion(_GOOD[3], 3, number, _GOOD_PROOF, _GOOD_ROOT) is False  # type: ignore[arg-type]
    for value in _HOSTILE_HASHES:
        assert verify_inclusion(value, 3, 7, _GOOD_PROOF, _GOOD_ROOT) is False  # type: ignore[arg-type]
        assert verify_inclusion(_GOOD[3], 3, 7, _GOOD_PROOF, value) is False  # type: ignore[arg-type]
    for proof in _HOSTILE_PROOFS:
        assert verify_inclusion(_GOOD[3], 3, 7, proof, _GOOD_ROOT) is False  # type: ignore[arg-type]
    huge = (1 << 64) - 1
    assert verify_inclusion(_GOOD[3], huge - 1, huge, [_GOOD_ROOT] * 64, _GOOD_ROOT) is False


def test_verify_consistency_never_raises_on_hostile_input() -> None:
    assert verify_consistency(3, 7, _OLD_ROOT, _GOOD_ROOT, _CONS_PROOF)
    for number in _HOSTILE_NUMBERS:
        assert verify_consistency(number, 7, _OLD_ROOT, _GOOD_ROOT, _CONS_PROOF) is False  # type: ignore[arg-type]
        assert verify_consistency(3, number, _OLD_ROOT, _GOOD_ROOT, _CONS_PROOF) is False  # type: ignore[arg-type]
    for value in _HOSTILE_HASHES:
        assert verify_consistency(3, 7, value, _GOOD_ROOT, _CONS_PROOF) is False  # type: ignore[arg-type]
        assert verify_consistency(3, 7, _OLD_ROOT, value, _CONS_PROOF) is False  # type: ignore[arg-type]
    for proof in _HOSTILE_PROOFS:
        assert verify_consistency(3, 7, _OLD_ROOT, _GOOD_ROOT, proof) is False  # type: ignore[arg-type]
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []) is False
    assert verify_consistency(0, 7, EMPTY_ROOT, _GOOD_ROOT, []) is False
    assert verify_consistency(0, 7, EMPTY_ROOT, _GOOD_ROOT, _CONS_PROOF) is False
    assert verify_consistency(7, 3, _GOOD_ROOT, _OLD_ROOT, _CONS_PROOF) is False
    huge = (1 << 64) - 1
    assert verify_consistency(huge - 1, huge, _OLD_ROOT, _GOOD_ROOT, [_OLD_ROOT] * 64) is False


# --- random trees -----------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=200),
    data=st.data(),
)
def test_random_trees_prove_and_reject(size: int, data: st.DataObject) -> None:
    leaves = _leaves(size, salt=size)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    old = data.draw(st.integers(min_value=1, max_value=size), label="old")
    new_root, old_root = root(leaves), root(leaves[:old])

    proof = inclusion_proof(leaves, index)
    assert verify_inclusion(leaves[index], index, size, proof, new_root)
    assert not verify_inclusion(
        leaves[index], index, size + 1, proof, root([*leaves, leaf_hash(b"x")])
    )
    if proof:
        at = data.draw(st.integers(min_value=0, max_value=len(proof) - 1), label="at")
        byte = data.draw(st.integers(min_value=0, max_value=31), label="byte")
        bad = [*proof[:at], _flip(proof[at], byte), *proof[at + 1 :]]
        assert not verify_inclusion(leaves[index], index, size, bad, new_root)
        assert not verify_inclusion(leaves[index], index, size, proof[:-1], new_root)
    other = data.draw(st.integers(min_value=0, max_value=size), label="other")
    if other != index:
        assert not verify_inclusion(leaves[index], other, size, proof, new_root)

    cons = consistency_proof(leaves, old)
    assert verify_consistency(old, size, old_root, new_root, cons)
    rewritten = root([*leaves[:old], *_leaves(size - old, salt=-1)])
    assert rewritten == new_root or not verify_consistency(old, size, old_root, rewritten, cons)
    if cons:
        at = data.draw(st.integers(min_value=0, max_value=len(cons) - 1), label="cons_at")
        bad = [*cons[:at], _flip(cons[at], 0), *cons[at + 1 :]]
        assert not verify_consistency(old, size, old_root, new_root, bad)
        assert not verify_consistency(old, size, old_root, new_root, [*cons, old_root])


def test_random_large_trees_with_a_fixed_seed() -> None:
    """A few bigger trees than the exhaustive tests reach, reproducible without hypothesis."""
    rng = random.Random(19)
    for _ in range(5):
        size = rng.randint(200, 1200)
        leaves = _leaves(size, salt=size)
        new_root = root(leaves)
        for _ in range(20):
            index = rng.randrange(size)
            assert verify_inclusion(
                leaves[index], index, size, inclusion_proof(leaves, index), new_root
            )
            old = rng.randint(1, size)
            cons = consistency_proof(leaves, old)
            assert verify_consistency(old, size, root(leaves[:old]), new_root, cons)
