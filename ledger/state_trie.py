"""State trie nodes, their storage form, a node cache and the batched update.

How it works: nodes (see ``ledger.state_proof`` for their shape and hashes) are
content-addressed: a node is stored under ``schema.state_node_key(hash)`` and never
deleted, so every committed root stays readable. ``NodeReader`` loads nodes through a
bounded cache of decoded branches and checks each loaded node against its hash.

``TrieUpdate`` applies a whole write-set at once. The changed keys are sorted and
walked down the trie together: at each branch they are split into runs by their next
nibble and each run descends once, so a branch shared by many changed keys is read,
re-encoded and hashed once per commit, not once per key. Untouched subtrees are kept
by hash and never read. Work is O(changed keys x depth). Each new node is encoded
once; the same bytes are hashed and written. A changed key that already existed and
sits alone in a slot marked as a leaf must be that leaf, so it is replaced without
reading the old leaf. After the changes, a branch left with one occupied slot is
collapsed (a leaf moves up unchanged, because a leaf's hash does not depend on its
position; a branch child absorbs the parent's path), which keeps the trie canonical.

Recursion goes one or two frames per branch level; a key of ``MAX_STATE_KEY_BYTES``
can make a chain of ``MAX_PATH_NIBBLES`` branches, so ``ensure_recursion_limit``
raises the interpreter's limit to cover that worst case.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import msgpack

from ledger.errors import CorruptionError, StorageError
from ledger.state_proof import (
    BRANCH_KIND,
    EMPTY_ROOT,
    HASH_BYTES,
    HEX_DIGITS,
    LEAF_KIND,
    MAX_PATH_NIBBLES,
    NIBBLE_INDEX,
    RADIX,
    compute_branch_hash,
    compute_leaf_hash,
    compute_value_hash,
    is_branch_shape,
)
from ledger.storage.schema import state_node_key

#: Decoded branches kept in memory. A state of 1,000,000 random keys has about
#: 130,000 branches, so its whole upper trie stays cached (roughly 60 MB).
NODE_CACHE_ENTRIES = 262_144
#: Python frames the update may need: two per branch level on the deepest path, plus slack.
RECURSION_FRAMES_NEEDED = 3 * MAX_PATH_NIBBLES + 1000

_EMPTY_CHILDREN = (b"",) * RADIX


class Leaf:
    """One key and its value. ``hash`` is position independent."""

    __slots__ = ("key", "value", "hash", "encoded")

    def __init__(self, key: bytes, value: bytes, node_hash: bytes | None = None, encoded: bytes | None = None) -> None:
        self.key = key
        self.value = value
        self.hash = node_hash if node_hash is not None else compute_leaf_hash(key, compute_value_hash(value))
        self.encoded = encoded

    def encode(self) -> bytes:
        if self.encoded is None:
            self.encoded = msgpack.packb([LEAF_KIND, self.key, self.value], use_bin_type=True)
        return self.encoded

    def proof_form(self) -> list:
        return [LEAF_KIND, self.key, compute_value_hash(self.value)]


class Branch:
    """A branch point; ``hash``/``encoded`` are None while it is being built in an update."""

    __slots__ = ("path", "here", "children", "leaf_mask", "hash", "encoded")

    def __init__(self, path: str, here: bytes, children: list[bytes], leaf_mask: int) -> None:
        self.path = path
        self.here = here
        self.children = children
        self.leaf_mask = leaf_mask
        self.hash: bytes | None = None
        self.encoded: bytes | None = None

    def seal(self) -> "Branch":
        """Encode once and hash those bytes; the same bytes are what gets stored."""
        # msgpack emits minimal forms and there are no maps, so this equals ledger.encoding.encode.
        self.encoded = msgpack.packb([BRANCH_KIND, self.path, self.here, self.children, self.leaf_mask], use_bin_type=True)
        self.hash = compute_branch_hash(self.encoded)
        return self

    def proof_form(self) -> list:
        return [BRANCH_KIND, self.path, self.here, list(self.children), self.leaf_mask]


Node = Leaf | Branch


def decode_node(node_hash: bytes, data: bytes) -> Node:
    """Decode a stored node and check it against the hash it is stored under."""
    try:
        fields = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises assorted types on damaged bytes
        raise CorruptionError(f"state node {node_hash.hex()} is not valid msgpack ({type(exc).__name__})") from None
    if _is_stored_leaf_shape(fields):
        leaf = Leaf(fields[1], fields[2], encoded=data)
        if leaf.hash != node_hash:
            raise CorruptionError(f"state leaf stored under {node_hash.hex()} hashes to {leaf.hash.hex()}")
        return leaf
    if not is_branch_shape(fields):
        raise CorruptionError(f"state node {node_hash.hex()} has neither the leaf nor the branch shape")
    if compute_branch_hash(data) != node_hash:
        raise CorruptionError(f"state branch stored under {node_hash.hex()} hashes to {compute_branch_hash(data).hex()}")
    branch = Branch(fields[1], fields[2], fields[3], fields[4])
    branch.hash = node_hash
    branch.encoded = data
    return branch


def _is_stored_leaf_shape(fields: object) -> bool:
    return (
        type(fields) is list
        and len(fields) == 3
        and type(fields[0]) is int
        and fields[0] == LEAF_KIND
        and type(fields[1]) is bytes
        and type(fields[2]) is bytes
    )


class NodeCache:
    """A bounded map of decoded branches, least recently used evicted first."""

    def __init__(self, limit: int = NODE_CACHE_ENTRIES) -> None:
        self.limit = limit
        self._entries: dict[bytes, Branch] = {}
        self.hits = 0
        self.misses = 0

    def get(self, node_hash: bytes) -> Branch | None:
        entries = self._entries
        node = entries.pop(node_hash, None)
        if node is None:
            self.misses += 1
            return None
        entries[node_hash] = node  # re-insert: dict order is recency order
        self.hits += 1
        return node

    def put(self, node: Branch) -> None:
        entries = self._entries
        entries[node.hash] = node
        if len(entries) > self.limit:
            for _ in range(len(entries) - self.limit):
                del entries[next(iter(entries))]

    def __len__(self) -> int:
        return len(self._entries)


class NodeReader:
    """Loads nodes by hash from the store, through the cache."""

    def __init__(self, get: Callable[[bytes], bytes | None], cache: NodeCache) -> None:
        self._get = get
        self.cache = cache

    def load(self, node_hash: bytes) -> Node:
        node = self.cache.get(node_hash)
        if node is not None:
            return node
        data = self._get(state_node_key(node_hash))
        if data is None:
            raise StorageError(
                f"state node {node_hash.hex()} is not in the store: expected every node of a committed root "
                f"to be present (was the root committed here, and were its writes applied?)"
            )
        node = decode_node(node_hash, data)
        if type(node) is Branch:
            self.cache.put(node)
        return node

    def load_branch(self, node_hash: bytes) -> Branch:
        node = self.load(node_hash)
        if type(node) is not Branch:
            raise CorruptionError(f"state node {node_hash.hex()} is marked as a branch but is a leaf")
        return node

    def load_leaf(self, node_hash: bytes) -> Leaf:
        node = self.load(node_hash)
        if type(node) is not Leaf:
            raise CorruptionError(f"state node {node_hash.hex()} is marked as a leaf but is a branch")
        return node


def ensure_recursion_limit() -> None:
    """Let the deepest legal trie be updated (Python 3.11 frames do not use the C stack)."""
    if sys.getrecursionlimit() < RECURSION_FRAMES_NEEDED:
        sys.setrecursionlimit(RECURSION_FRAMES_NEEDED)


# An item is (nibble path, key, new value or None, existed in the base trie, existing Leaf or None).
Item = tuple[str, bytes, "bytes | None", bool, "Leaf | None"]
# A result is the new subtree: None (empty) or (hash, is_leaf).
Result = tuple[bytes, bool] | None


class TrieUpdate:
    """One batched update of the trie under ``base_root``; collects the new nodes."""

    def __init__(self, reader: NodeReader, base_root: bytes) -> None:
        self._reader = reader
        self.base_root = base_root
        self.new_nodes: dict[bytes, Node] = {}  # hash -> node, in creation order

    def apply(self, items: list[Item]) -> bytes:
        """Apply ``items`` (sorted by key, unique) and return the new root."""
        if not items:
            return self.base_root
        ensure_recursion_limit()
        if self.base_root == EMPTY_ROOT:
            result = self._build(0, [item for item in items if item[2] is not None])
        else:
            root_node = self._reader.load(self.base_root)
            result = self._update_node(root_node, 0, items)
        return EMPTY_ROOT if result is None else result[0]

    # -- node creation ------------------------------------------------------------------

    def _new_leaf(self, item: Item) -> Leaf:
        leaf = Leaf(item[1], item[2])  # type: ignore[arg-type]
        self.new_nodes[leaf.hash] = leaf
        return leaf

    def _seal(self, branch: Branch) -> bytes:
        branch.seal()
        self.new_nodes[branch.hash] = branch  # type: ignore[index]
        return branch.hash  # type: ignore[return-value]

    def _load(self, node_hash: bytes) -> Node:
        node = self.new_nodes.get(node_hash)
        return node if node is not None else self._reader.load(node_hash)

    # -- the update ---------------------------------------------------------------------

    def _update_node(self, node: Node, depth: int, items: list[Item]) -> Result:
        if type(node) is Leaf:
            return self._merge_into_leaf(node, depth, items)
        return self._update_branch(node, depth, items)  # type: ignore[arg-type]

    def _merge_into_leaf(self, leaf: Leaf, depth: int, items: list[Item]) -> Result:
        """A slot held one leaf; rebuild it from that leaf plus the changed keys."""
        entries = [item for item in items if item[2] is not None]
        if all(item[1] != leaf.key for item in items):
            entries.append((leaf.key.hex(), leaf.key, leaf.value, True, leaf))
            entries.sort(key=_item_path)
        return self._build(depth, entries)

    def _update_branch(self, node: Branch, depth: int, items: list[Item]) -> Result:
        path = node.path
        if path:
            split = len(path)
            for item in items:
                if not item[0].startswith(path, depth):
                    split = min(split, _common_prefix_length(item[0], path, depth))
            if split < len(path):
                return self._split_branch(node, depth, split, items)
        after_path = depth + len(path)
        here = node.here
        children = list(node.children)
        leaf_mask = node.leaf_mask
        index = 0
        count = len(items)
        if len(items[0][0]) == after_path:  # sorted, so a key ending here comes first
            item = items[0]
            here = self._new_leaf(item).hash if item[2] is not None else b""
            index = 1
        while index < count:
            digit = items[index][0][after_path]
            end = index + 1
            while end < count and items[end][0][after_path] == digit:
                end += 1
            slot = NIBBLE_INDEX[digit]
            bit = 1 << slot
            result = self._update_slot(children[slot], leaf_mask & bit, after_path + 1, items[index:end])
            if result is None:
                children[slot] = b""
                leaf_mask &= ~bit
            else:
                child = result[0]
                children[slot] = child
                leaf_mask = leaf_mask | bit if result[1] else leaf_mask & ~bit
            index = end
        return self._finish_branch(path, here, children, leaf_mask)

    def _update_slot(self, ref: bytes | Branch, is_leaf: int, depth: int, items: list[Item]) -> Result:
        if type(ref) is Branch:  # the unsealed lower half of a split branch
            return self._update_branch(ref, depth, items)
        if not ref:
            return self._build(depth, [item for item in items if item[2] is not None])
        if is_leaf:
            if len(items) == 1 and items[0][3]:
                # The slot's only key exists and this key exists with this prefix: it is that leaf.
                item = items[0]
                return None if item[2] is None else (self._new_leaf(item).hash, True)
            return self._merge_into_leaf(self._reader.load_leaf(ref), depth, items)  # type: ignore[arg-type]
        return self._update_branch(self._reader.load_branch(ref), depth, items)  # type: ignore[arg-type]

    def _split_branch(self, node: Branch, depth: int, split: int, items: list[Item]) -> Result:
        """Some changed keys leave ``node.path`` at ``split``: put a new branch above it."""
        path = node.path
        lower = Branch(path[split + 1:], node.here, node.children, node.leaf_mask)
        children: list = list(_EMPTY_CHILDREN)
        lower_slot = NIBBLE_INDEX[path[split]]
        at = depth + split
        lower_digit = path[split]
        if any(len(item[0]) > at and item[0][at] == lower_digit for item in items):
            children[lower_slot] = lower  # sealed once the keys that descend into it are applied
        else:
            children[lower_slot] = self._seal(lower)
        upper = Branch(path[:split], b"", children, 0)
        return self._update_branch(upper, depth, items)

    def _finish_branch(self, path: str, here: bytes, children: list, leaf_mask: int) -> Result:
        occupied = RADIX - children.count(b"")
        if here:
            occupied += 1
        if occupied >= 2:
            return (self._seal(Branch(path, here, children, leaf_mask)), False)
        if occupied == 0:
            return None
        if here:
            return (here, True)
        slot = next(i for i in range(RADIX) if children[i])
        if leaf_mask >> slot & 1:
            return (children[slot], True)
        # One branch child left: it absorbs this branch's path and its slot digit.
        child = self._load(children[slot])
        if type(child) is not Branch:
            raise CorruptionError(f"state node {children[slot].hex()} is marked as a branch but is a leaf")
        self.new_nodes.pop(children[slot], None)  # superseded within this update: never write it
        merged = Branch(path + HEX_DIGITS[slot] + child.path, child.here, child.children, child.leaf_mask)
        return (self._seal(merged), False)

    def _build(self, depth: int, entries: list[Item]) -> Result:
        """A fresh subtree for ``entries`` (sorted, all with values) below ``depth`` nibbles."""
        count = len(entries)
        if count == 0:
            return None
        if count == 1:
            entry = entries[0]
            leaf = entry[4] if entry[4] is not None else self._new_leaf(entry)
            return (leaf.hash, True)
        first = entries[0][0]
        last = entries[-1][0]
        end = depth
        limit = min(len(first), len(last))
        while end < limit and first[end] == last[end]:
            end += 1
        children = list(_EMPTY_CHILDREN)
        leaf_mask = 0
        here = b""
        index = 0
        if len(first) == end:
            entry = entries[0]
            here = (entry[4] if entry[4] is not None else self._new_leaf(entry)).hash
            index = 1
        while index < count:
            digit = entries[index][0][end]
            stop = index + 1
            while stop < count and entries[stop][0][end] == digit:
                stop += 1
            result = self._build(end + 1, entries[index:stop])
            slot = NIBBLE_INDEX[digit]
            children[slot] = result[0]  # type: ignore[index]
            if result[1]:  # type: ignore[index]
                leaf_mask |= 1 << slot
            index = stop
        return (self._seal(Branch(first[depth:end], here, children, leaf_mask)), False)


def _item_path(item: Item) -> str:
    return item[0]


def _common_prefix_length(nibbles: str, path: str, depth: int) -> int:
    """How many leading nibbles of ``path`` equal ``nibbles`` from ``depth`` on."""
    length = 0
    limit = min(len(path), len(nibbles) - depth)
    while length < limit and nibbles[depth + length] == path[length]:
        length += 1
    return length


__all__ = [
    "Branch",
    "HASH_BYTES",
    "Leaf",
    "NODE_CACHE_ENTRIES",
    "NodeCache",
    "NodeReader",
    "TrieUpdate",
    "decode_node",
]
