"""State trie node hashing and the light-client proof verifier.

How it works: the state is a 16-ary, path-compressed Merkle trie over the nibbles of
the raw key bytes (keys are not hashed, so the trie is in key order). Nibbles are
written as lowercase hex digits, so ``key.hex()`` is a key's nibble path. There are
two kinds of node:

* a leaf ``[0, key, value]`` holds one whole key and its value. Its hash commits to
  the key and to the hash of the value only, so it does not depend on where in the
  trie the leaf sits and a proof never has to carry a value it is not about:
  ``sha256(0x00 || len(key):2 || key || sha256(value))``.
* a branch ``[1, path, here, children, leaf_keys]``: ``path`` is the compressed run of
  nibbles (a str of hex digits) shared by every key below it, ``here`` is the hash of
  the leaf whose key ends exactly after ``path`` (keys can be prefixes of other keys)
  or ``b""``, ``children`` is 16 child hashes (``b""`` for none) indexed by the next
  nibble, and ``leaf_keys[i]`` is the key of child i if that child is a leaf, else
  ``b""`` (so an update can replace or push down a leaf without reading it). Its hash
  is ``sha256(0x01 || encode(branch))``: the same canonical bytes that are stored.

The leading 0x00 / 0x01 byte separates the two domains, so no leaf can be passed off
as a branch or the other way round. A trie with no keys has the fixed root
``EMPTY_ROOT``. A trie is canonical: every branch has at least two occupied slots and
the longest possible path, so one set of entries has exactly one root.

A proof is the list of nodes from the root to where the key's walk ends: branches as
stored, and a final leaf as ``[0, key, sha256(value)]``. It is made of lists, bytes,
str and ints, so ``encode(proof)`` carries it over JSON-RPC as hex. ``verify_proof``
needs nothing but this module, ``hashlib`` and ``ledger.encoding`` (it takes two
limit constants from ``ledger.storage``, which imports no backend).
"""

from __future__ import annotations

import hashlib
from typing import Any

from ledger.encoding import decode, encode
from ledger.storage.kv import MAX_KEY_BYTES
from ledger.storage.schema import STATE_VALUE_PREFIX

#: Longest state key. The flat table stores ``STATE_VALUE_PREFIX || key`` under the
#: backend's key limit, so a state key gets what the namespace byte leaves over.
MAX_STATE_KEY_BYTES = MAX_KEY_BYTES - len(STATE_VALUE_PREFIX)
#: Largest state value. Contract state is small records; a bigger blob belongs off chain.
MAX_STATE_VALUE_BYTES = 1024 * 1024
#: Deepest nibble path: every branch below the root consumes at least one nibble.
MAX_PATH_NIBBLES = 2 * MAX_STATE_KEY_BYTES
#: Most nodes in a proof: one branch per nibble plus the root branch and a final leaf.
MAX_PROOF_NODES = MAX_PATH_NIBBLES + 2

HASH_BYTES = 32
LEAF_TAG = b"\x00"
BRANCH_TAG = b"\x01"
LEAF_KIND = 0
BRANCH_KIND = 1
RADIX = 16
HEX_DIGITS = "0123456789abcdef"
NIBBLE_INDEX = {digit: index for index, digit in enumerate(HEX_DIGITS)}

#: Root of the trie with no entries; the domain string has no node form, so no node hashes to it.
EMPTY_ROOT = hashlib.sha256(b"\x02shopchain/state/empty/v1").digest()

_sha256 = hashlib.sha256


def compute_leaf_hash(key: bytes, value_hash: bytes) -> bytes:
    """Hash of the leaf for ``key`` whose value hashes to ``value_hash``."""
    return _sha256(LEAF_TAG + len(key).to_bytes(2, "big") + key + value_hash).digest()


def compute_value_hash(value: bytes) -> bytes:
    return _sha256(value).digest()


def compute_branch_hash(encoded_branch: bytes) -> bytes:
    """Hash of a branch from its canonical encoding (the bytes that are stored)."""
    return _sha256(BRANCH_TAG + encoded_branch).digest()


def is_hash_slot(item: Any) -> bool:
    """A child or ``here`` slot: empty bytes or one hash."""
    return type(item) is bytes and (len(item) == HASH_BYTES or not item)


def is_branch_shape(node: Any) -> bool:
    """Whether ``node`` has the exact shape of a branch (hash binding is checked apart)."""
    if type(node) is not list or len(node) != 5:
        return False
    kind, path, here, children, leaf_keys = node
    if type(kind) is not int or kind != BRANCH_KIND:
        return False
    if type(path) is not str or len(path) > MAX_PATH_NIBBLES or path.strip(HEX_DIGITS):
        return False
    if not is_hash_slot(here):
        return False
    if type(children) is not list or len(children) != RADIX or not all(is_hash_slot(c) for c in children):
        return False
    if type(leaf_keys) is not list or len(leaf_keys) != RADIX:
        return False
    for child, leaf_key in zip(children, leaf_keys):
        if type(leaf_key) is not bytes or len(leaf_key) > MAX_STATE_KEY_BYTES or (leaf_key and not child):
            return False
    return True


def is_proof_leaf_shape(node: Any) -> bool:
    """Whether ``node`` is ``[0, key, value_hash]`` as it appears at the end of a proof."""
    if type(node) is not list or len(node) != 3:
        return False
    kind, key, value_hash = node
    if type(kind) is not int or kind != LEAF_KIND:
        return False
    if type(key) is not bytes or not 1 <= len(key) <= MAX_STATE_KEY_BYTES:
        return False
    return type(value_hash) is bytes and len(value_hash) == HASH_BYTES


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Any) -> bool:
    """True iff ``proof`` shows that under ``root`` the key maps to ``value`` (None: absent).

    ``proof`` is the list from ``StateStore.prove`` or its canonical encoding. Any
    malformed, truncated, extended or tampered proof gives False; nothing raises.
    """
    try:
        return _verify(root, key, value, proof)
    except Exception:  # a light client must get a verdict, never a crash, on hostile input
        return False


def _verify(root: bytes, key: bytes, value: bytes | None, proof: Any) -> bool:
    if type(root) is not bytes or len(root) != HASH_BYTES:
        return False
    if type(key) is not bytes or not 1 <= len(key) <= MAX_STATE_KEY_BYTES:
        return False
    if value is not None and (type(value) is not bytes or len(value) > MAX_STATE_VALUE_BYTES):
        return False
    if type(proof) is bytes:
        proof = decode(proof)
    if type(proof) is not list or len(proof) > MAX_PROOF_NODES:
        return False
    if root == EMPTY_ROOT:
        return not proof and value is None
    path_of_key = key.hex()
    depth = 0
    expected = root
    last_index = len(proof) - 1
    for index, node in enumerate(proof):
        is_last = index == last_index
        if is_proof_leaf_shape(node):
            if not is_last or compute_leaf_hash(node[1], node[2]) != expected:
                return False
            if node[1] == key:
                return value is not None and compute_value_hash(value) == node[2]
            # Another key holds the only slot our key could be in: our key is absent.
            return value is None and node[1].hex().startswith(path_of_key[:depth])
        if not is_branch_shape(node) or compute_branch_hash(encode(node)) != expected:
            return False
        path = node[1]
        if not path_of_key.startswith(path, depth):
            # The key leaves (or ends inside) the path every key below shares: absent.
            return is_last and value is None
        depth += len(path)
        if depth == len(path_of_key):
            expected = node[2]
        else:
            expected = node[3][NIBBLE_INDEX[path_of_key[depth]]]
            depth += 1
        if not expected:
            return is_last and value is None
        if is_last:
            return False  # the proof stops above the node the walk needs next
    return False
