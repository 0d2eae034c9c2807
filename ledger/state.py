"""The authenticated state: a versioned key-value map whose root commits to every entry.

How it works: the state lives in the node's KVStore in two forms. The Merkle trie
(``ledger.state_trie``, hashing and proofs in ``ledger.state_proof``) is stored node by
node under ``schema.state_node_key(hash)``, each with the height it was written at;
nodes are content-addressed, so any retained root can still be read (``get_at``) and
proved (``prove``). Each commit also records its death row (the nodes it removed
from the trie, ``schema.state_death_row_key``), from which ``ledger.state_prune``
deletes the nodes of heights that fall out of the window a node retains (all of
them, in archive mode, are kept). Beside it a flat table ``schema.state_value_key(key) -> value`` holds the
latest values, which makes the common read one LevelDB get and lets ``iterate`` walk a
key prefix in key order.

A block executes on a ``StateOverlay``: writes land in a dict with an undo journal
(``checkpoint``/``revert`` for nested calls and failed transactions), reads fall
through to the flat table. ``commit`` applies the pending writes to the trie in one
batched pass, which also finds which of them change nothing (a put of the current
value, a delete of an absent key) without reading old values, and returns a
``StateDiff``: the new root, the net changes and the KV operations (new nodes and
flat-table puts/deletes, the death row). It writes nothing: the caller puts ``diff.ops`` into the
block's single atomic batch and then calls ``StateStore.mark_committed``, which moves
the root and swaps the replaced branches for the new ones in the node cache. An
overlay whose block does not commit is simply dropped.

Reading from or committing an overlay requires its base root to still be the store's
latest root; an overlay made before another commit raises StorageError.

The flat table is a copy, and a copy can be wrong (a value rewritten on disk, an entry
lost). ``check_flat_table`` proves it equal to the trie: it walks the trie in key
order (every branch loaded is checked against its hash, so the walk is authenticated
by the root) and the flat table with one iterator, in step, and for each key compares
the leaf hash the trie holds with the hash of the flat value; the first disagreement
is reported by key. ``shopchain node verify`` runs it on the head root. It is not run
at every open: it costs a full pass over the state (``python -m bench.storage``), and
a cheaper running digest would have to be updated from the old values of every
changed key, which commits deliberately never read. Reads can instead be checked one
by one: ``get_verified`` (and overlays made with ``verify_reads=True``) compare the
flat value with the leaf hash the cached branches give, for RPC reads whose answer
leaves the node; execution reads need not, since a wrong value there makes the
block's state root disagree with the other validators' and the node halts.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from ledger.errors import CorruptionError, StorageError, ValidationError
from ledger.state_proof import (
    EMPTY_ROOT,
    HASH_BYTES,
    MAX_PROOF_NODES,
    MAX_STATE_KEY_BYTES,
    MAX_STATE_VALUE_BYTES,
    HEX_DIGITS,
    NIBBLE_INDEX,
    RADIX,
    compute_leaf_hash,
    compute_value_hash,
    verify_proof,
)
from ledger.state_trie import Branch, Leaf, NodeCache, NodeReader, TrieUpdate, paused_cycle_collector
from ledger.storage.kv import CORRUPTION_RECOVERY, KVStore
from ledger.storage.schema import (STATE_NODE_PREFIX, STATE_VALUE_PREFIX, encode_height, state_death_row_key,
                                   state_node_key)

#: Most entries one ``iterate`` call returns; page with a longer prefix or a start key.
MAX_ITERATE_ITEMS = 10_000
#: Most journal entries (writes) one overlay records; a block's gas limit keeps real
#: blocks far below it, so reaching it means a runaway loop, not a big block.
MAX_OVERLAY_JOURNAL_ENTRIES = 1_000_000

__all__ = [
    "EMPTY_ROOT",
    "MAX_ITERATE_ITEMS",
    "MAX_OVERLAY_JOURNAL_ENTRIES",
    "MAX_STATE_KEY_BYTES",
    "MAX_STATE_VALUE_BYTES",
    "StateDiff",
    "StateOverlay",
    "StateStore",
    "verify_proof",
]

_VALUE_PREFIX_LENGTH = len(STATE_VALUE_PREFIX)
#: Flat entries ``check_flat_table`` compares between two progress callbacks.
FLAT_CHECK_PROGRESS_EVERY = 10_000


def check_key(key: Any) -> None:
    if type(key) is not bytes:
        raise ValidationError(f"state key: expected bytes, found {type(key).__name__}")
    if not 1 <= len(key) <= MAX_STATE_KEY_BYTES:
        raise ValidationError(f"state key: expected 1..{MAX_STATE_KEY_BYTES} bytes, found {len(key)}")


def check_value(key: bytes, value: Any) -> None:
    if type(value) is not bytes:
        raise ValidationError(f"state value for {key!r:.60}: expected bytes, found {type(value).__name__}")
    if len(value) > MAX_STATE_VALUE_BYTES:
        raise ValidationError(
            f"state value for {key!r:.60}: expected at most {MAX_STATE_VALUE_BYTES} bytes, found {len(value)}"
        )


def check_prefix_and_limit(prefix: Any, limit: Any) -> None:
    if type(prefix) is not bytes or len(prefix) > MAX_STATE_KEY_BYTES:
        found = f"{len(prefix)} bytes" if type(prefix) is bytes else type(prefix).__name__
        raise ValidationError(f"state prefix: expected bytes of at most {MAX_STATE_KEY_BYTES}, found {found}")
    if type(limit) is not int or not 0 <= limit <= MAX_ITERATE_ITEMS:
        raise ValidationError(f"iterate limit: expected an int in 0..{MAX_ITERATE_ITEMS}, found {limit!r}")


def check_root(root: Any) -> None:
    if type(root) is not bytes or len(root) != HASH_BYTES:
        found = f"{len(root)} bytes" if type(root) is bytes else type(root).__name__
        raise ValidationError(f"state root: expected {HASH_BYTES} bytes, found {found}")


@dataclass(frozen=True)
class StateDiff:
    """What one overlay changed: write ``ops`` atomically, then ``mark_committed``."""

    base_root: bytes
    root: bytes
    ops: list[tuple[bytes, bytes | None]]
    changes: dict[bytes, bytes | None]
    #: The new branches, decoded, so the store can cache them without re-reading.
    new_branches: tuple[Branch, ...] = field(default=(), compare=False, repr=False)
    #: Hashes of the branches this diff supersedes, which the store drops from its cache.
    replaced_branches: tuple[bytes, ...] = field(default=(), compare=False, repr=False)
    #: The height this diff commits (the birth height of its new nodes, the key of its death row).
    height: int = 0
    #: Hashes of the stored nodes the diff removes from the trie (its death row, also in ``ops``).
    dead: tuple[bytes, ...] = field(default=(), compare=False, repr=False)


class StateStore:
    """The committed state over a KVStore, at its latest root and every retained one."""

    def __init__(self, kv: KVStore, root: bytes = EMPTY_ROOT, cache: NodeCache | None = None,
                 height: int = -1) -> None:
        check_root(root)
        if type(height) is not int or height < -1:
            raise ValidationError(f"state height: expected an int >= -1 (-1: nothing committed yet), found {height!r}")
        self.kv = kv
        #: The height of ``root``: overlays commit at ``height + 1`` (genesis is height 0). It is the
        #: birth height of the nodes they write, which pruning relies on, so a store that commits
        #: (node.core.chain) must be opened at its true height.
        self.height = height
        self.cache = cache if cache is not None else NodeCache()
        self._reader = NodeReader(kv.get, self.cache)
        #: Called with every CorruptionError a read (proof, historical or verified read) is about to raise.
        self.on_corruption: Callable[[CorruptionError], None] | None = None
        if root != EMPTY_ROOT:
            if kv.get(state_node_key(root)) is None:
                raise StorageError(
                    f"state root {root.hex()} is not in this store: expected its root node under "
                    f"{state_node_key(root).hex()}, found nothing (wrong home directory, or the state was not written)"
                )
            self._reader.load(root)  # CorruptionError unless the stored root node hashes to the root
        self._root = root

    @property
    def root(self) -> bytes:
        """The latest committed root."""
        return self._root

    def get(self, key: bytes) -> bytes | None:
        """Latest committed value, from the flat table."""
        check_key(key)
        return self.kv.get(STATE_VALUE_PREFIX + key)

    def get_at(self, root: bytes, key: bytes) -> bytes | None:
        """The value of ``key`` under any retained ``root``, by walking its trie."""
        check_root(root)
        check_key(key)
        node = self._walk(root, key, None)
        if type(node) is Leaf and node.key == key:
            return node.value
        return None

    def prove(self, key: bytes, root: bytes | None = None) -> list:
        """A proof of the key's value (or absence) under ``root`` (default: latest)."""
        if root is None:
            root = self._root
        check_root(root)
        check_key(key)
        proof: list = []
        self._walk(root, key, proof)
        return proof

    def _report(self, exc: CorruptionError) -> None:
        if self.on_corruption is not None:
            self.on_corruption(exc)

    def _walk(self, root: bytes, key: bytes, proof: list | None) -> Leaf | Branch | None:
        """Follow ``key`` down from ``root``; return the node where the walk ends (reporting corruption)."""
        try:
            return self._walk_unreported(root, key, proof)
        except CorruptionError as exc:
            self._report(exc)
            raise

    def _walk_unreported(self, root: bytes, key: bytes, proof: list | None) -> Leaf | Branch | None:
        if root == EMPTY_ROOT:
            return None
        if root != self._root and root not in self.cache and self.kv.get(state_node_key(root)) is None:
            raise StorageError(f"state root {root.hex()} is not retained in this store: expected its root node, found nothing")
        path_of_key = key.hex()
        depth = 0
        node_hash = root
        for _ in range(MAX_PROOF_NODES):
            node = self._reader.load(node_hash)
            if proof is not None:
                proof.append(node.proof_form())
            if type(node) is Leaf:
                return node
            path = node.path
            if not path_of_key.startswith(path, depth):
                return node
            depth += len(path)
            if depth == len(path_of_key):
                node_hash = node.here
            else:
                node_hash = node.children[NIBBLE_INDEX[path_of_key[depth]]]
                depth += 1
            if not node_hash:
                return node
        raise StorageError(f"state trie under {root.hex()} is deeper than {MAX_PROOF_NODES} nodes: it is corrupted")

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Up to ``limit`` latest entries whose key starts with ``prefix``, in key order."""
        check_prefix_and_limit(prefix, limit)
        if limit == 0:
            return []
        entries = self.kv.iterate(prefix=STATE_VALUE_PREFIX + prefix)
        return [(stored_key[_VALUE_PREFIX_LENGTH:], value) for stored_key, value in islice(entries, limit)]

    def overlay(self, verify_reads: bool = False) -> "StateOverlay":
        """An overlay on the latest root; ``verify_reads`` checks each flat-table read against the trie."""
        return StateOverlay(self, verify_reads)

    # --- the flat table against the trie ---------------------------------------------

    def _flat_corruption(self, key: bytes, problem: str) -> CorruptionError:
        """The error for a flat entry that is not the trie's; ``state_key`` names the key for tools."""
        exc = CorruptionError(f"flat state entry {key.hex()} (stored key {(STATE_VALUE_PREFIX + key).hex()}) "
                              f"{problem} under the state root {self._root.hex()}", CORRUPTION_RECOVERY)
        exc.state_key = key  # type: ignore[attr-defined]
        return exc

    def leaf_hash_of(self, key: bytes, root: bytes | None = None) -> bytes | None:
        """The hash of ``key``'s leaf under ``root`` (default latest), or None if the key is absent.

        Walks cached branches only: a branch names the hash of every leaf below it, so
        the leaf itself (and its value) is never read.
        """
        root = self._root if root is None else root
        if root == EMPTY_ROOT:
            return None
        node = self._reader.load(root)
        if type(node) is Leaf:
            return node.hash if node.key == key else None
        nibbles = key.hex()
        depth = 0
        for _ in range(MAX_PROOF_NODES):
            if not nibbles.startswith(node.path, depth):
                return None
            depth += len(node.path)
            if depth == len(nibbles):
                return node.here or None
            slot = NIBBLE_INDEX[nibbles[depth]]
            child, leaf_key = node.children[slot], node.leaf_keys[slot]
            if not child:
                return None
            if leaf_key:
                return child if leaf_key == key else None
            node = self._reader.load_branch(child)
            depth += 1
        raise CorruptionError(f"state trie under {root.hex()} is deeper than {MAX_PROOF_NODES} nodes",
                              CORRUPTION_RECOVERY)

    def check_flat_value(self, key: bytes, value: bytes | None) -> None:
        """Raise CorruptionError unless ``value`` (read from the flat table) is ``key``'s value in the trie."""
        try:
            leaf_hash = self.leaf_hash_of(key)
            if value is None:
                if leaf_hash is not None:
                    raise self._flat_corruption(key, "is missing, but the trie holds the key")
            elif leaf_hash is None:
                raise self._flat_corruption(key, "is present, but the trie does not hold the key")
            elif compute_leaf_hash(key, compute_value_hash(value)) != leaf_hash:
                raise self._flat_corruption(key, f"holds a value (sha256 {compute_value_hash(value).hex()[:16]}) "
                                                 f"that differs from the trie's")
        except CorruptionError as exc:
            self._report(exc)
            raise

    def get_verified(self, key: bytes) -> bytes | None:
        """Like ``get``, but CorruptionError unless the flat value is the one the trie commits to."""
        value = self.get(key)
        self.check_flat_value(key, value)
        return value

    def iter_leaf_hashes(self, root: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """(key, leaf hash) of every entry under ``root`` (default latest), in key order.

        Depth first, each branch's ``here`` leaf before its children in nibble order:
        with keys as nibble paths that is byte order. Every branch is loaded through
        the hash-checking reader; leaves are named by their parents and never read.
        """
        root = self._root if root is None else root
        if root == EMPTY_ROOT:
            return
        top = self._reader.load(root)
        if type(top) is Leaf:
            yield top.key, top.hash
            return
        # Pending work, popped last-in first-out: (key, leaf hash) to emit, or
        # (nibbles above, branch hash) to expand. Each expansion pushes at most
        # RADIX + 1 items and the walk descends at most MAX_PROOF_NODES levels.
        stack: list[tuple[bytes | str, bytes]] = [("", root)]
        limit = (RADIX + 1) * MAX_PROOF_NODES
        while stack:
            item, node_hash = stack.pop()
            if type(item) is bytes:
                yield item, node_hash
                continue
            branch = top if node_hash == root else self._reader.load_branch(node_hash)
            prefix = item + branch.path  # type: ignore[operator]
            for slot in range(RADIX - 1, -1, -1):
                child, leaf_key = branch.children[slot], branch.leaf_keys[slot]
                if child:
                    stack.append((leaf_key, child) if leaf_key else (prefix + HEX_DIGITS[slot], child))
            if branch.here:
                if len(prefix) % 2:
                    raise CorruptionError(f"state branch {node_hash.hex()} holds a leaf at the odd nibble path "
                                          f"{prefix!r}", CORRUPTION_RECOVERY)
                stack.append((bytes.fromhex(prefix), branch.here))
            if len(stack) > limit:
                raise CorruptionError(f"state trie under {root.hex()} is deeper than {MAX_PROOF_NODES} nodes",
                                      CORRUPTION_RECOVERY)

    def check_flat_table(self, progress: Callable[[int], None] | None = None) -> int:
        """Compare the whole flat table with the trie at the latest root; returns the entry count.

        Raises CorruptionError naming the first key (in key order) where they differ:
        a flat value whose hash is not the trie's leaf, a flat entry the trie lacks, or
        a trie entry the flat table lacks.
        """
        flat = self.kv.iterate(prefix=STATE_VALUE_PREFIX)
        count = 0
        for key, leaf_hash in self.iter_leaf_hashes():
            for stored_key, value in flat:
                flat_key = stored_key[_VALUE_PREFIX_LENGTH:]
                if flat_key < key:
                    raise self._flat_corruption(flat_key, "is present, but the trie does not hold the key")
                if flat_key > key:
                    raise self._flat_corruption(key, "is missing, but the trie holds the key")
                if compute_leaf_hash(key, compute_value_hash(value)) != leaf_hash:
                    raise self._flat_corruption(key, f"holds a value (sha256 {compute_value_hash(value).hex()[:16]}) "
                                                     f"that differs from the trie's")
                break
            else:
                raise self._flat_corruption(key, "is missing, but the trie holds the key")
            count += 1
            if progress is not None and count % FLAT_CHECK_PROGRESS_EVERY == 0:
                progress(FLAT_CHECK_PROGRESS_EVERY)
        for stored_key, _value in flat:
            raise self._flat_corruption(stored_key[_VALUE_PREFIX_LENGTH:],
                                        "is present, but the trie does not hold the key")
        if progress is not None:
            progress(count % FLAT_CHECK_PROGRESS_EVERY)
        return count

    def mark_committed(self, diff: StateDiff) -> None:
        """Move to ``diff.root``; call once ``diff.ops`` are durably written."""
        if diff.base_root != self._root:
            raise StorageError(
                f"state diff was computed on root {diff.base_root.hex()} but the store is at {self._root.hex()}: "
                f"expected a diff of the latest committed state (was another block committed first?)"
            )
        self.cache.replace(diff.replaced_branches, diff.new_branches)
        self._root = diff.root
        self.height = diff.height

    def apply(self, diff: StateDiff, sync: bool = True) -> None:
        """Write ``diff.ops`` on their own and move to ``diff.root`` (genesis, tests, tools)."""
        if diff.base_root != self._root:
            self.mark_committed(diff)  # raises with the explanation, before anything is written
        self.kv.write(diff.ops, sync=sync)
        self.mark_committed(diff)


_ABSENT = object()  # journal marker: the key had no pending write


class StateOverlay:
    """Pending writes on top of the store's latest committed root."""

    def __init__(self, store: StateStore, verify_reads: bool = False) -> None:
        self._store = store
        self._verify_reads = verify_reads
        self.base_root = store.root
        self._writes: dict[bytes, bytes | None] = {}
        self._journal: list[tuple[bytes, Any]] = []
        self._base_values: dict[bytes, bytes | None] = {}  # flat-table reads, valid while base_root is latest
        self._version = 0
        self._diff: StateDiff | None = None
        self._diff_version = -1

    def _check_fresh(self) -> None:
        if self._store.root != self.base_root:
            raise StorageError(
                f"overlay was made on root {self.base_root.hex()} but the store has moved to "
                f"{self._store.root.hex()}: expected an overlay of the latest state; make a new one"
            )

    def _base_value(self, key: bytes) -> bytes | None:
        try:
            return self._base_values[key]
        except KeyError:
            value = self._store.kv.get(STATE_VALUE_PREFIX + key)
            if self._verify_reads:
                self._store.check_flat_value(key, value)
            self._base_values[key] = value
            return value

    # get and put run for every storage access of every contract call, so they test the
    # common case inline and call the checking functions only to raise their errors.

    def get(self, key: bytes) -> bytes | None:
        if type(key) is not bytes or not 0 < len(key) <= MAX_STATE_KEY_BYTES:
            check_key(key)
        if self._store._root != self.base_root:
            self._check_fresh()
        value = self._writes.get(key, _ABSENT)
        if value is not _ABSENT:
            return value
        try:
            return self._base_values[key]
        except KeyError:
            return self._base_value(key)

    def has(self, key: bytes) -> bool:
        return self.get(key) is not None

    def put(self, key: bytes, value: bytes) -> None:
        if type(key) is not bytes or not 0 < len(key) <= MAX_STATE_KEY_BYTES:
            check_key(key)
        if type(value) is not bytes or len(value) > MAX_STATE_VALUE_BYTES:
            check_value(key, value)
        journal = self._journal
        if len(journal) >= MAX_OVERLAY_JOURNAL_ENTRIES:
            self._record(key, value)  # raises the limit error
        writes = self._writes
        journal.append((key, writes.get(key, _ABSENT)))
        writes[key] = value
        self._version += 1

    def delete(self, key: bytes) -> None:
        check_key(key)
        self._record(key, None)

    def _record(self, key: bytes, value: bytes | None) -> None:
        if len(self._journal) >= MAX_OVERLAY_JOURNAL_ENTRIES:
            raise ValidationError(
                f"overlay journal: expected at most {MAX_OVERLAY_JOURNAL_ENTRIES} writes, found one more"
            )
        self._journal.append((key, self._writes.get(key, _ABSENT)))
        self._writes[key] = value
        self._version += 1

    def checkpoint(self) -> int:
        """A mark to ``revert`` to: the number of writes recorded so far."""
        return len(self._journal)

    def revert(self, checkpoint: int) -> None:
        """Undo every write made after ``checkpoint`` (later checkpoints become invalid)."""
        if type(checkpoint) is not int or not 0 <= checkpoint <= len(self._journal):
            raise ValidationError(
                f"checkpoint: expected an int in 0..{len(self._journal)}, found {checkpoint!r}"
            )
        journal = self._journal
        writes = self._writes
        while len(journal) > checkpoint:
            key, previous = journal.pop()
            if previous is _ABSENT:
                del writes[key]
            else:
                writes[key] = previous
        self._version += 1

    def changes(self) -> dict[bytes, bytes | None]:
        """Pending writes that differ from the base, in key order (None = delete).

        The trie walk of ``commit`` finds these without reading old values, so this
        computes (and caches) the diff.
        """
        return dict(self.commit().changes)

    def iterate(self, prefix: bytes, limit: int) -> list[tuple[bytes, bytes]]:
        """Like ``StateStore.iterate`` with the pending writes merged over the base."""
        check_prefix_and_limit(prefix, limit)
        self._check_fresh()
        result: list[tuple[bytes, bytes]] = []
        if limit == 0:
            return result
        pending = sorted(key for key in self._writes if key.startswith(prefix))
        base = self._store.kv.iterate(prefix=STATE_VALUE_PREFIX + prefix)
        position = 0
        for stored_key, value in base:
            key = stored_key[_VALUE_PREFIX_LENGTH:]
            if self._verify_reads:
                self._store.check_flat_value(key, value)
            # Emit pending keys that sort before this base key.
            stop = bisect.bisect_left(pending, key, position)
            for pending_key in pending[position:stop]:
                if self._writes[pending_key] is not None:
                    result.append((pending_key, self._writes[pending_key]))  # type: ignore[arg-type]
                    if len(result) == limit:
                        return result
            position = stop
            if position < len(pending) and pending[position] == key:
                value = self._writes[key]  # type: ignore[assignment]
                position += 1
                if value is None:
                    continue
            result.append((key, value))
            if len(result) == limit:
                return result
        for pending_key in pending[position:]:
            if self._writes[pending_key] is not None:
                result.append((pending_key, self._writes[pending_key]))  # type: ignore[arg-type]
                if len(result) == limit:
                    break
        return result

    def root(self) -> bytes:
        """The root ``commit`` would produce (computed once per set of writes)."""
        return self.commit().root

    def commit(self) -> StateDiff:
        """The diff of this overlay against its base; writes nothing."""
        self._check_fresh()
        if self._diff is not None and self._diff_version == self._version:
            return self._diff
        with paused_cycle_collector():
            items = [(key.hex(), key, value) for key, value in sorted(self._writes.items())]
            update = TrieUpdate(self._store._reader, self.base_root)
            root = update.apply(items)
            unchanged = update.unchanged
            changes = {key: value for _, key, value in items if key not in unchanged}
            height = self._store.height + 1
            birth = encode_height(height)
            new_nodes = update.new_nodes
            ops: list[tuple[bytes, bytes | None]] = [
                (STATE_NODE_PREFIX + node_hash, birth + (node.encode() if type(node) is Leaf else node.encoded))
                for node_hash, node in new_nodes.items()
            ]
            ops.extend((STATE_VALUE_PREFIX + key, value) for key, value in changes.items())
            # A node removed at one place and written again by the same commit stays alive.
            dead = tuple(node_hash for node_hash in update.replaced + update.dead_leaves if node_hash not in new_nodes)
            if dead:
                ops.append((state_death_row_key(height), b"".join(dead)))
            branches = tuple(node for node in new_nodes.values() if type(node) is Branch)
            self._diff = StateDiff(self.base_root, root, ops, changes, branches, tuple(update.replaced), height, dead)
        self._diff_version = self._version
        return self._diff
