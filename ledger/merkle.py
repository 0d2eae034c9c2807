"""Merkle roots and inclusion proofs for ordered lists (transactions, receipts).

How it works: the RFC 6962 (Certificate Transparency) tree. A leaf hashes as
``sha256(0x00 || data)`` and an inner node as ``sha256(0x01 || left || right)``, so a
leaf can never be passed off as a node. A list of n > 1 items splits at the largest
power of two below n, which makes the tree unique for every length without padding
or duplicating the last leaf (the duplication is what made Bitcoin's tree ambiguous).
The empty list's root is ``sha256(b"")``. A proof is the list of sibling hashes from
the leaf up; ``verify_inclusion`` needs only the root, the index, the list length and
the leaf's bytes.
"""

from __future__ import annotations

import hashlib

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()
#: Longest proof accepted: enough for 2**64 leaves.
MAX_PROOF_HASHES = 64


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root_of_hashes(hashes: list[bytes]) -> bytes:
    # Iterative bottom-up pairing gives the same tree as the recursive RFC 6962
    # definition: pair neighbours left to right and carry an odd last node up unchanged.
    level = hashes
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_root(items: list[bytes]) -> bytes:
    """Root of the list of leaf byte strings."""
    if not items:
        return EMPTY_ROOT
    return _root_of_hashes([leaf_hash(item) for item in items])


def merkle_proof(items: list[bytes], index: int) -> list[bytes]:
    """Sibling hashes from leaf ``index`` up to the root."""
    if not 0 <= index < len(items):
        raise IndexError(f"leaf index must be in [0, {len(items)}), found {index}")
    return _path(index, [leaf_hash(item) for item in items])


def _path(index: int, hashes: list[bytes]) -> list[bytes]:
    n = len(hashes)
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return _path(index, hashes[:k]) + [_root_of_hashes(hashes[k:])]
    return _path(index - k, hashes[k:]) + [_root_of_hashes(hashes[:k])]


def verify_inclusion(root: bytes, index: int, size: int, leaf: bytes, proof: list[bytes]) -> bool:
    """True iff ``leaf`` is item ``index`` of a list of ``size`` items with this root."""
    if not isinstance(proof, list) or len(proof) > MAX_PROOF_HASHES:
        return False
    if type(index) is not int or type(size) is not int or not 0 <= index < size:
        return False
    if any(type(h) is not bytes or len(h) != 32 for h in proof):
        return False
    # RFC 9162 section 2.1.3.2: walk up, using the bit pattern of index and size - 1.
    fn, sn = index, size - 1
    current = leaf_hash(leaf)
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and current == root
