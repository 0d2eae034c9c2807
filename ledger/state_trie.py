"""State trie nodes, their storage form, a node cache and the batched update.

How it works: nodes (see ``ledger.state_proof`` for their shape and hashes) are
content-addressed: a node is stored under ``schema.state_node_key(hash)`` as its
birth height (8 bytes, big-endian: the height of the commit that last wrote it) and
then its canonical encoding. A node written again after it left the trie (a value set
back to an earlier value re-creates the same leaf, and can re-create branches) is
simply put again with the new birth height, with no read; ``ledger.state_prune``
compares that height with the height a node died at to tell a node that came back
from one that may be deleted. Values written before birth heights existed start with
a msgpack array byte (0x93 or 0x95), never 0x00, and read as born at height 0.
``NodeReader`` loads nodes through a bounded cache of decoded branches and checks each
loaded node against its hash.

``TrieUpdate`` applies a whole write-set at once. The changed keys are sorted and
walked down the trie together: at each branch they are split into runs by their next
nibble and each run descends once, so a branch shared by many changed keys is read,
re-encoded and hashed once per commit, not once per key. Untouched subtrees are kept
by hash and never read. Work is O(changed keys x depth). Each new node is encoded
once; the same bytes are hashed and written. Branches list the key of each leaf
child, so the walk never reads a leaf or an old value: a write that reaches a leaf
slot compares keys and leaf hashes (which also tells a no-op write from a change),
and an old leaf that must move down is carried by hash and key. After the changes, a
branch left with one occupied slot is collapsed (a leaf moves up unchanged, because
a leaf's hash does not depend on its position; a branch child absorbs the parent's
path), which keeps the trie canonical.

The update also lists every stored node it removes from the trie: branches it
replaces (``replaced``) and leaves whose value changed or was deleted
(``dead_leaves``); a leaf that only moves keeps its hash and is not listed. They are
the commit's death row.

Recursion goes one or two frames per branch level; a key of ``MAX_STATE_KEY_BYTES``
can make a chain of ``MAX_PATH_NIBBLES`` branches, so ``ensure_recursion_limit``
raises the interpreter's limit to cover that worst case.
"""

from __future__ import annotations

import gc
import hashlib
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice

import msgpack

from ledger.errors import CorruptionError, StorageError
from ledger.state_proof import (
    BRANCH_KIND,
    BRANCH_TAG,
    EMPTY_ROOT,
    HASH_BYTES,
    HEX_DIGITS,
    LEAF_KIND,
    MAX_PATH_NIBBLES,
    NIBBLE_INDEX,
    RADIX,
    compute_leaf_hash,
    compute_value_hash,
)
from ledger.storage.kv import CORRUPTION_RECOVERY
from ledger.storage.schema import state_node_key

#: Decoded branches kept in memory (about 1 KB each). A state of 1,000,000 random keys
#: has about 330,000 live branches, so all of it stays cached (~0.35 GB) and a commit
#: reads nothing from disk; on a bigger state the least recently used fall out first.
NODE_CACHE_ENTRIES = 400_000
#: When the cache overflows, this fraction (1/N) of it is evicted at once.
CACHE_EVICTION_FRACTION = 8
#: Young objects left at the end of a commit above which they are promoted past the young
#: collections instead of walked by them (see ``_promote_young_objects``).
PROMOTE_YOUNG_OBJECTS = 10_000
#: Promotions between two full collections, which find any cyclic garbage promoted meanwhile.
PROMOTIONS_PER_FULL_COLLECTION = 50
#: Python frames the update may need: two per branch level on the deepest path, plus slack.
RECURSION_FRAMES_NEEDED = 3 * MAX_PATH_NIBBLES + 1000

#: Bytes of the birth height in front of every stored node.
NODE_BIRTH_BYTES = 8
_LEGACY_ZERO_BIRTH = bytes(NODE_BIRTH_BYTES)

_EMPTY_CHILDREN = (b"",) * RADIX
_sha256 = hashlib.sha256
# One reusable packer: msgpack.packb builds a new one per call, which costs as much as
# packing a branch. pack() holds the GIL throughout, so sharing it across threads is safe.
_pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack


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
            self.encoded = _pack([LEAF_KIND, self.key, self.value])
        return self.encoded

    def proof_form(self) -> list:
        return [LEAF_KIND, self.key, compute_value_hash(self.value)]


class Branch:
    """A branch point; ``hash``/``encoded`` are None while it is being built in an update."""

    __slots__ = ("path", "here", "children", "leaf_keys", "hash", "encoded")

    def __init__(self, path: str, here: bytes, children: list[bytes], leaf_keys: list[bytes]) -> None:
        self.path = path
        self.here = here
        self.children = children
        self.leaf_keys = leaf_keys
        self.hash: bytes | None = None
        self.encoded: bytes | None = None

    def seal(self) -> "Branch":
        """Encode once and hash those bytes; the same bytes are what gets stored."""
        # Tuples: immutable once sealed, and what the cache keeps (see CacheEntry).
        self.children = tuple(self.children)  # type: ignore[assignment]
        self.leaf_keys = tuple(self.leaf_keys)  # type: ignore[assignment]
        # msgpack emits minimal forms and there are no maps, so this equals ledger.encoding.encode.
        self.encoded = encoded = _pack([BRANCH_KIND, self.path, self.here, self.children, self.leaf_keys])
        self.hash = _sha256(BRANCH_TAG + encoded).digest()  # compute_branch_hash, inlined: it runs per branch
        return self

    def proof_form(self) -> list:
        return [BRANCH_KIND, self.path, self.here, list(self.children), list(self.leaf_keys)]


Node = Leaf | Branch


def stored_node(birth: bytes, encoded: bytes) -> bytes:
    """The stored value of a node: ``birth`` (``schema.encode_height`` of its height) then its encoding."""
    return birth + encoded


def node_payload(data: bytes) -> bytes:
    """The node encoding inside a stored value (what hashes to the node's hash and goes over the wire)."""
    return data[NODE_BIRTH_BYTES:] if data[:1] == b"\x00" else data


def node_birth(data: bytes) -> int:
    """The height a stored value says its node was last written at (0 for values older than birth heights)."""
    return int.from_bytes(data[:NODE_BIRTH_BYTES], "big") if data[:1] == b"\x00" else 0


def decode_node(node_hash: bytes, data: bytes) -> Node:
    """Decode a stored node and check it against the hash it is stored under.

    The hash is checked before anything else: bytes that hash to ``node_hash`` are the
    bytes a commit encoded from a well-formed node, so past that check only the
    discriminating fields are looked at (a full shape check costs more than the hash).
    """
    if _sha256(BRANCH_TAG + data).digest() == node_hash:
        fields = _unpack_node(node_hash, data)
        if type(fields) is list and len(fields) == 5 and fields[0] == BRANCH_KIND and len(fields[3]) == RADIX:
            branch = Branch(fields[1], fields[2], tuple(fields[3]), tuple(fields[4]))  # type: ignore[arg-type]
            branch.hash = node_hash
            return branch
        raise CorruptionError(f"state node {node_hash.hex()} hashes as a branch but does not have a branch's shape",
                              CORRUPTION_RECOVERY)
    fields = _unpack_node(node_hash, data)
    if not _is_stored_leaf_shape(fields):
        raise CorruptionError(f"state node {node_hash.hex()} hashes to neither its branch nor its leaf form",
                              CORRUPTION_RECOVERY)
    leaf = Leaf(fields[1], fields[2], encoded=data)
    if leaf.hash != node_hash:
        raise CorruptionError(f"state leaf stored under {node_hash.hex()} hashes to {leaf.hash.hex()}",
                              CORRUPTION_RECOVERY)
    return leaf


def _unpack_node(node_hash: bytes, data: bytes) -> object:
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises assorted types on damaged bytes
        raise CorruptionError(f"state node {node_hash.hex()} is not valid msgpack ({type(exc).__name__})",
                              CORRUPTION_RECOVERY) from None


def _is_stored_leaf_shape(fields: object) -> bool:
    return (
        type(fields) is list
        and len(fields) == 3
        and type(fields[0]) is int
        and fields[0] == LEAF_KIND
        and type(fields[1]) is bytes
        and type(fields[2]) is bytes
    )


# What the cache keeps of a branch: (path, here, children, leaf_keys). A plain tuple of
# str, bytes and tuples of bytes is invisible to the cycle collector once it has been
# seen, so a cache of hundreds of thousands of branches adds nothing to collections
# (as objects they made every full collection walk the whole cache).
CacheEntry = tuple[str, bytes, tuple, tuple]


class NodeCache:
    """A bounded map of decoded branches; the oldest entries are evicted first.

    Oldest means least recently written: a commit drops every branch it replaces and
    inserts the new versions, so the branches a workload keeps touching stay young and
    the order approximates LRU for the trie without reordering on every hit.
    """

    def __init__(self, limit: int = NODE_CACHE_ENTRIES) -> None:
        self.limit = limit
        self._entries: dict[bytes, CacheEntry] = {}
        self.hits = 0
        self.misses = 0

    def get(self, node_hash: bytes) -> Branch | None:
        entry = self._entries.get(node_hash)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        branch = Branch(*entry)
        branch.hash = node_hash
        return branch

    def put(self, branch: Branch) -> None:
        """Keep a sealed branch."""
        entries = self._entries
        entries[branch.hash] = (branch.path, branch.here, branch.children, branch.leaf_keys)  # type: ignore[index]
        if len(entries) > self.limit:
            self._evict()

    def _evict(self) -> None:
        # In bulk: deleting one entry at a time from the front of a dict leaves dummy
        # slots that each later front lookup must skip, which turns quadratic.
        entries = self._entries
        excess = len(entries) - self.limit + self.limit // CACHE_EVICTION_FRACTION
        for node_hash in list(islice(entries, excess)):
            del entries[node_hash]

    def discard(self, node_hash: bytes) -> None:
        self._entries.pop(node_hash, None)

    def replace(self, dropped: "tuple[bytes, ...] | list[bytes]", added: "tuple[Branch, ...]") -> None:
        """``discard`` each of ``dropped`` and ``put`` each (sealed) branch of ``added``, in bulk:
        a commit swaps thousands, and one call per branch cost as much as the swap itself."""
        entries = self._entries
        pop = entries.pop
        for node_hash in dropped:
            pop(node_hash, None)
        entries.update({branch.hash: (branch.path, branch.here, branch.children, branch.leaf_keys)  # type: ignore[misc]
                        for branch in added})
        if len(entries) > self.limit:
            self._evict()

    def __contains__(self, node_hash: bytes) -> bool:
        return node_hash in self._entries

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
                f"state node {node_hash.hex()} is not in the store: expected every node of a retained root "
                f"to be present (was the root committed here, is its height still retained, and were its "
                f"writes applied?)"
            )
        node = decode_node(node_hash, data[NODE_BIRTH_BYTES:] if data[:1] == b"\x00" else data)
        if type(node) is Branch:
            self.cache.put(node)
        return node

    def load_branch(self, node_hash: bytes) -> Branch:
        node = self.load(node_hash)
        if type(node) is not Branch:
            raise CorruptionError(f"state node {node_hash.hex()} is listed as a branch but is a leaf",
                                  CORRUPTION_RECOVERY)
        return node


def ensure_recursion_limit() -> None:
    """Let the deepest legal trie be updated (Python 3.11 frames do not use the C stack)."""
    if sys.getrecursionlimit() < RECURSION_FRAMES_NEEDED:
        sys.setrecursionlimit(RECURSION_FRAMES_NEEDED)


# Raised once at import rather than in the middle of some caller's work.
ensure_recursion_limit()


@contextmanager
def paused_cycle_collector() -> Iterator[None]:
    """Keep the cycle collector out of a commit.

    A commit allocates tens of thousands of short-lived, acyclic objects; each burst
    of allocations would otherwise trigger collections that walk the whole heap
    (node cache included) and cost more than the commit itself.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            _promote_young_objects()
            gc.enable()


_promotions = 0


def _promote_young_objects() -> None:
    """After a big commit, move the young objects to the oldest generation without walking them.

    What the commit allocated and still holds (its diff: ~15,000 operations and the new
    branches for a 4,000-key commit) would otherwise be walked by the first young
    collection after re-enabling, ~25 ms, although it dies by reference counting once
    the block is written. ``freeze()`` + ``unfreeze()`` moves every tracked object to the
    oldest generation (and zeroes the young count) without walking anything. Objects are
    still freed by reference counting; only cyclic garbage among them waits for a full
    collection, and since promoted objects do not count towards the interpreter's own
    trigger for one, every ``PROMOTIONS_PER_FULL_COLLECTION`` promotions run one here.
    """
    global _promotions
    if gc.get_count()[0] < PROMOTE_YOUNG_OBJECTS:
        return  # a small commit: the young collection is cheap
    gc.freeze()
    gc.unfreeze()
    _promotions += 1
    if _promotions >= PROMOTIONS_PER_FULL_COLLECTION:
        _promotions = 0
        gc.collect()


# An item is (nibble path, key, new value or None); items are sorted and unique.
Item = tuple[str, bytes, "bytes | None"]
# An entry to build from is (nibble path, key, value, known leaf hash or None).
Entry = tuple[str, bytes, "bytes | None", "bytes | None"]
# A result is the new subtree: None (empty) or (hash, the key if it is a leaf else None).
Result = tuple[bytes, "bytes | None"] | None


class TrieUpdate:
    """One batched update of the trie under ``base_root``.

    Collects the new nodes and the keys whose write changed nothing (same value, or
    delete of an absent key), so the caller learns the net changes from the same walk
    without reading the old values.
    """

    def __init__(self, reader: NodeReader, base_root: bytes) -> None:
        self._reader = reader
        self.base_root = base_root
        self.new_nodes: dict[bytes, Node] = {}  # hash -> node, in creation order
        self.unchanged: set[bytes] = set()
        # Stored branches this update supersedes: the cache drops them on commit, so it
        # holds the live trie rather than a history of versions nobody reads.
        self.replaced: list[bytes] = []
        # Stored leaves whose key this update deleted or gave another value.
        self.dead_leaves: list[bytes] = []

    def apply(self, items: list[Item]) -> bytes:
        """Apply ``items`` (sorted by key, unique) and return the new root."""
        if not items:
            return self.base_root
        ensure_recursion_limit()
        with paused_cycle_collector():
            if self.base_root == EMPTY_ROOT:
                result = self._build(0, self._inserts(items))
            else:
                root_node = self._reader.load(self.base_root)
                if type(root_node) is Leaf:
                    result = self._merge_into_leaf(root_node.hash, root_node.key, 0, items)
                else:
                    result = self._update_branch(root_node, 0, items)  # type: ignore[arg-type]
        return EMPTY_ROOT if result is None else result[0]

    # -- leaves -------------------------------------------------------------------------

    def _leaf_hash(self, entry: Entry) -> bytes:
        if entry[3] is not None:
            return entry[3]
        leaf = Leaf(entry[1], entry[2])  # type: ignore[arg-type]
        self.new_nodes[leaf.hash] = leaf
        return leaf.hash

    def _inserts(self, items: list[Item]) -> list[Entry]:
        """Items landing where no key is: puts become entries, deletes change nothing."""
        entries: list[Entry] = []
        for path, key, value in items:
            if value is None:
                self.unchanged.add(key)
            else:
                entries.append((path, key, value, None))
        return entries

    def _merge_into_leaf(self, leaf_hash: bytes, leaf_key: bytes, depth: int, items: list[Item]) -> Result:
        """A slot held one leaf (known by hash and key, so it is never read): rebuild it with the items."""
        entries: list[Entry] = []
        keep_old = True
        for path, key, value in items:
            if key == leaf_key:
                keep_old = False
                if value is None:
                    self.dead_leaves.append(leaf_hash)
                    continue
                leaf = Leaf(key, value)
                if leaf.hash == leaf_hash:
                    self.unchanged.add(key)
                else:
                    self.new_nodes[leaf.hash] = leaf
                    self.dead_leaves.append(leaf_hash)
                entries.append((path, key, value, leaf.hash))
            elif value is None:
                self.unchanged.add(key)
            else:
                entries.append((path, key, value, None))
        if keep_old:
            entries.append((leaf_key.hex(), leaf_key, None, leaf_hash))
            entries.sort()  # paths are unique, so only they are compared
        return self._build(depth, entries)

    # -- branches -----------------------------------------------------------------------

    def _seal(self, branch: Branch) -> bytes:
        branch.seal()
        self.new_nodes[branch.hash] = branch  # type: ignore[index]
        return branch.hash  # type: ignore[return-value]

    def _update_branch(self, node: Branch, depth: int, items: list[Item]) -> Result:
        if len(items) == 1:
            return self._update_branch_one(node, depth, items[0])
        path = node.path
        if path:
            split = len(path)
            diverging_deletes = False
            for item in items:
                if not item[0].startswith(path, depth):
                    if item[2] is None:  # deleting a key that cannot be below here: a no-op
                        self.unchanged.add(item[1])
                        diverging_deletes = True
                    else:
                        split = min(split, _common_prefix_length(item[0], path, depth))
            if diverging_deletes:
                items = [item for item in items if item[1] not in self.unchanged]
                if not items:
                    return (node.hash, None) if node.hash is not None else (self._seal(node), None)
            if split < len(path):
                return self._replacing(node, self._split_branch(node, depth, split, items))
        after_path = depth + len(path)
        here = node.here
        children = list(node.children)
        leaf_keys = list(node.leaf_keys)
        index = 0
        count = len(items)
        unchanged_before = len(self.unchanged)
        if len(items[0][0]) == after_path:  # sorted, so a key ending here comes first
            here = self._update_here(here, items[0])
            index = 1
        while index < count:
            digit = items[index][0][after_path]
            end = index + 1
            while end < count and items[end][0][after_path] == digit:
                end += 1
            slot = NIBBLE_INDEX[digit]
            result = self._update_slot(children[slot], leaf_keys[slot], after_path + 1, items[index:end])
            if result is None:
                children[slot] = b""
                leaf_keys[slot] = b""
            else:
                children[slot] = result[0]
                leaf_keys[slot] = result[1] or b""
            index = end
        if (
            len(self.unchanged) != unchanged_before
            and node.hash is not None
            and here == node.here
            and tuple(children) == node.children
            and tuple(leaf_keys) == node.leaf_keys
        ):
            return (node.hash, None)  # every write below was a no-op: keep the stored node
        return self._replacing(node, self._finish_branch(path, here, children, leaf_keys, items[0][0][:after_path]))

    def _update_branch_one(self, node: Branch, depth: int, item: Item) -> Result:
        """``_update_branch`` for one item, the common case below the top levels, without grouping."""
        nibbles = item[0]
        path = node.path
        if path and not nibbles.startswith(path, depth):
            if item[2] is None:  # deleting a key that cannot be below here: a no-op
                self.unchanged.add(item[1])
                return (node.hash, None) if node.hash is not None else (self._seal(node), None)
            return self._replacing(node, self._split_branch(node, depth, _common_prefix_length(nibbles, path, depth), [item]))
        after_path = depth + len(path)
        if len(nibbles) == after_path:
            here = self._update_here(node.here, item)
            if here == node.here and node.hash is not None:
                return (node.hash, None)
            return self._replacing(
                node, self._finish_branch(path, here, list(node.children), list(node.leaf_keys), nibbles[:after_path])
            )
        slot = NIBBLE_INDEX[nibbles[after_path]]
        ref = node.children[slot]
        leaf_key = node.leaf_keys[slot]
        if type(ref) is Branch:
            result = self._update_branch_one(ref, after_path + 1, item)
        elif not ref:
            result = self._build(after_path + 1, self._inserts([item]))
        elif leaf_key:
            result = self._merge_into_leaf(ref, leaf_key, after_path + 1, [item])
        else:
            result = self._update_branch_one(self._reader.load_branch(ref), after_path + 1, item)
        children = list(node.children)
        leaf_keys = list(node.leaf_keys)
        if result is None:
            children[slot] = b""
            leaf_keys[slot] = b""
        else:
            node_hash = node.hash
            if result[0] == ref and node_hash is not None:
                return (node_hash, None)  # the write below was a no-op: keep the stored node
            children[slot] = result[0]
            leaf_keys[slot] = result[1] or b""
            if node_hash is not None:
                # A stored (so canonical) branch that loses no slot: nothing can collapse.
                self.replaced.append(node_hash)
                return (self._seal(Branch(path, node.here, children, leaf_keys)), None)
        return self._replacing(node, self._finish_branch(path, node.here, children, leaf_keys, nibbles[:after_path]))

    def _replacing(self, node: Branch, result: Result) -> Result:
        """Note that a stored ``node`` gave way to ``result``."""
        if node.hash is not None and (result is None or result[0] != node.hash):
            self.replaced.append(node.hash)
        return result

    def _update_here(self, here: bytes, item: Item) -> bytes:
        """The slot of the key that ends exactly at this branch."""
        key, value = item[1], item[2]
        if value is None:
            if not here:
                self.unchanged.add(key)
            else:
                self.dead_leaves.append(here)
            return b""
        leaf = Leaf(key, value)
        if leaf.hash == here:
            self.unchanged.add(key)
        else:
            self.new_nodes[leaf.hash] = leaf
            if here:
                self.dead_leaves.append(here)
        return leaf.hash

    def _update_slot(self, ref: bytes | Branch, leaf_key: bytes, depth: int, items: list[Item]) -> Result:
        if type(ref) is Branch:  # the unsealed lower half of a split branch
            return self._update_branch(ref, depth, items)
        if not ref:
            return self._build(depth, self._inserts(items))
        if leaf_key:
            return self._merge_into_leaf(ref, leaf_key, depth, items)  # type: ignore[arg-type]
        return self._update_branch(self._reader.load_branch(ref), depth, items)  # type: ignore[arg-type]

    def _split_branch(self, node: Branch, depth: int, split: int, items: list[Item]) -> Result:
        """Some changed keys leave ``node.path`` at ``split``: put a new branch above it."""
        path = node.path
        lower = Branch(path[split + 1:], node.here, node.children, node.leaf_keys)
        children: list = list(_EMPTY_CHILDREN)
        at = depth + split
        lower_digit = path[split]
        if any(len(item[0]) > at and item[0][at] == lower_digit for item in items):
            children[NIBBLE_INDEX[lower_digit]] = lower  # sealed once the keys that descend into it are applied
        else:
            children[NIBBLE_INDEX[lower_digit]] = self._seal(lower)
        upper = Branch(path[:split], b"", children, list(_EMPTY_CHILDREN))
        return self._update_branch(upper, depth, items)

    def _finish_branch(self, path: str, here: bytes, children: list, leaf_keys: list, prefix: str) -> Result:
        """Seal the branch, or collapse it if fewer than two slots are left (``prefix``: nibbles above its slots)."""
        occupied = RADIX - children.count(b"")
        if here:
            occupied += 1
        if occupied >= 2:
            return (self._seal(Branch(path, here, children, leaf_keys)), None)
        if occupied == 0:
            return None
        if here:
            return (here, bytes.fromhex(prefix))
        slot = next(i for i in range(RADIX) if children[i])
        if leaf_keys[slot]:
            return (children[slot], leaf_keys[slot])
        # One branch child left: it absorbs this branch's path and its slot digit.
        child = self.new_nodes.pop(children[slot], None)  # superseded within this update: never write it
        if child is None:
            child = self._reader.load_branch(children[slot])
            self.replaced.append(children[slot])
        if type(child) is not Branch:
            raise CorruptionError(f"state node {children[slot].hex()} is listed as a branch but is a leaf",
                                  CORRUPTION_RECOVERY)
        merged = Branch(path + HEX_DIGITS[slot] + child.path, child.here, child.children, child.leaf_keys)
        return (self._seal(merged), None)

    def _build(self, depth: int, entries: list[Entry]) -> Result:
        """A fresh subtree for ``entries`` (sorted, all present) below ``depth`` nibbles."""
        count = len(entries)
        if count == 0:
            return None
        if count == 1:
            entry = entries[0]
            return (self._leaf_hash(entry), entry[1])
        first = entries[0][0]
        last = entries[-1][0]
        end = depth
        limit = min(len(first), len(last))
        while end < limit and first[end] == last[end]:
            end += 1
        children = list(_EMPTY_CHILDREN)
        leaf_keys = list(_EMPTY_CHILDREN)
        here = b""
        index = 0
        if len(first) == end:
            here = self._leaf_hash(entries[0])
            index = 1
        while index < count:
            digit = entries[index][0][end]
            stop = index + 1
            while stop < count and entries[stop][0][end] == digit:
                stop += 1
            result = self._build(end + 1, entries[index:stop])
            slot = NIBBLE_INDEX[digit]
            children[slot] = result[0]  # type: ignore[index]
            leaf_keys[slot] = result[1] or b""  # type: ignore[index]
            index = stop
        return (self._seal(Branch(first[depth:end], here, children, leaf_keys)), None)


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
    "NODE_BIRTH_BYTES",
    "NODE_CACHE_ENTRIES",
    "NodeCache",
    "NodeReader",
    "TrieUpdate",
    "decode_node",
    "node_birth",
    "node_payload",
    "stored_node",
]
