"""State pruning: keep the trie versions of the last ``retain_states`` heights, delete older nodes.

How it works. The design is a death row per height plus a birth height in every
stored node, chosen over reference counts because it adds no read and no extra key
per new node at commit time (the cost point 2 of issue 16 is about):

* every commit of height h writes, in its own atomic batch, each new node with birth
  height h in front of its encoding (``ledger.state_trie.stored_node``) and the
  hashes of the stored nodes it removed from the trie under
  ``schema.state_death_row_key(h)`` (``StateDiff.dead``: branches it replaced, leaves
  whose value changed or was deleted; a node removed and re-made by the same commit
  is not dead);
* a node appears at most once in any one version of the trie (a leaf holds its key,
  a branch commits to every key below it), so the births and deaths of one hash
  strictly alternate in height order: born b1 < died d1 < born b2 < died d2 ...  A
  node that comes back (a value set back to an earlier value re-creates the same
  leaf, and can re-create branches) is simply written again with its new birth
  height, blindly, overwriting the old copy;
* pruning the death row of height d (which makes the version d - 1 unreadable)
  reads each listed node and deletes it only if its birth height is at most d: a
  later birth means it came back and is alive (its next death row will list it), and
  a missing one was already pruned. So the one read per dead node happens when it
  is pruned, not when it is written.

``StatePruner.plan`` gives the operations of one bounded step (at most ``limit``
listed hashes, ``PRUNE_NODES_PER_COMMIT`` inside a block commit or
``PRUNE_NODES_PER_STEP`` in a catch-up step): node deletes, the processed part of
each death row removed (a row cut short is rewritten with its rest) and the marker
``schema.STATE_PRUNED_KEY`` moved to the height below which states may be
incomplete. The marker only ever covers rows whose deletes are in the same batch,
so every state at or above it is whole, whatever instant a ``kill -9`` hits: each
step is one atomic batch, and a step that never happened is simply redone. The
block commit (node.core.chain) puts one step in its batch, placed before the state
writes so a node the commit re-creates is written after any delete of its old copy
(it is skipped as well); ``catch_up`` runs steps on their own when ``retain_states``
was lowered or the store was opened after a long archive period.

What is kept: the head and the ``retain_states - 1`` heights below it, and, when the
node serves state sync, the state at the latest ``SNAPSHOTS_KEPT`` multiples of the
snapshot interval, so a newcomer that started fetching one can finish (the window
then reaches back to the older of them). ``retain_states = 0`` is archive mode:
nothing is pruned, but death rows are still written (32 bytes per dead node), so a
node can turn pruning on later and reclaim everything. Reads of a pruned height are
refused by ``check_retained`` with the oldest height kept.

Cost, measured by ``python -m bench.state_bench`` (200k keys, 4,000-key commits, a
loaded 2-core machine): the commit itself writes 8 bytes more per new node and 32
per dead one (~9% more bytes, no more CPU); the pruning step in the same batch reads
~8,700 dead nodes (about 9 us each, mostly from table files) and deletes them, which
made that block commit ~0.33 s instead of ~0.16 s. On disk, a workload rewriting the
same 20,000 keys (``--disk``) takes ~97 MB after 100k and after 1M transactions with
``retain_states = 100``, against 2.8 GB (linear) in archive mode. The reads are the
price of writing blindly at commit time; a filter of recent births kept in memory
could skip most of them and is not built.
"""

from __future__ import annotations

from ledger.errors import ChainError, StorageError
from ledger.state_proof import HASH_BYTES
from ledger.state_trie import node_birth
from ledger.storage.kv import KVStore
from ledger.storage.schema import (STATE_DEATH_ROW, STATE_NODE_PREFIX, STATE_PRUNED_KEY, decode_height, encode_height,
                                   state_death_row_key)

#: Dead-node hashes one block commit examines (and deletes) at most, inside its batch: a
#: steady workload kills about as many nodes per block as it writes (~3 per changed key),
#: so this keeps up with blocks of ~15,000 changed keys and catches up on a backlog.
PRUNE_NODES_PER_COMMIT = 50_000
#: Dead-node hashes one catch-up step examines at most (one atomic batch of deletes).
PRUNE_NODES_PER_STEP = 100_000
#: Catch-up steps run when a node opens; a larger backlog is worked off by later commits.
OPEN_PRUNE_MAX_STEPS = 50
#: Snapshot heights kept for state sync: the one offered and the one before, which a
#: newcomer may still be fetching.
SNAPSHOTS_KEPT = 2
#: Largest ``retain_states`` accepted (0 = archive).
MAX_RETAIN_STATES = 10**12

Op = tuple[bytes, "bytes | None"]


class PrunedStateError(ChainError):
    """A state older than the pruning window was asked for; the message names the oldest height kept."""

    def __init__(self, message: str, height: int, oldest: int) -> None:
        super().__init__(message)
        self.height = height
        self.oldest = oldest


def read_pruned_below(kv: KVStore) -> int:
    """The store's pruning marker: states below it may be incomplete (0: nothing pruned)."""
    raw = kv.get(STATE_PRUNED_KEY)
    return 0 if raw is None else decode_height(raw)


def check_retain_states(value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_RETAIN_STATES:
        raise StorageError(f"retain_states: expected an int in 0..{MAX_RETAIN_STATES} (0 = archive), found {value!r}")
    return value


class StatePruner:
    """Plans and runs the pruning steps of one store (see the module docstring)."""

    def __init__(self, kv: KVStore, retain_states: int = 0, snapshot_interval: int = 0) -> None:
        self.kv = kv
        self.retain_states = check_retain_states(retain_states)
        if type(snapshot_interval) is not int or snapshot_interval < 0:
            raise StorageError(f"snapshot_interval: expected an int >= 0 (0: no state sync served), "
                               f"found {snapshot_interval!r}")
        self.snapshot_interval = snapshot_interval
        self._pruned_below = read_pruned_below(kv)
        self.nodes_deleted = 0

    @property
    def pruned_below(self) -> int:
        """States at this height and above are whole; below it they may have lost nodes."""
        return self._pruned_below

    def target(self, head: int) -> int:
        """The height below which states may go once ``head`` is committed (never above the head)."""
        if self.retain_states == 0:
            return 0
        oldest = head - self.retain_states + 1
        interval = self.snapshot_interval
        if interval > 0:
            oldest = min(oldest, head - head % interval - (SNAPSHOTS_KEPT - 1) * interval)
        return max(oldest, 0)

    def check_retained(self, height: int) -> None:
        """Raise PrunedStateError if the state at ``height`` may have been pruned."""
        oldest = self._pruned_below
        if height < oldest:
            raise PrunedStateError(
                f"state at height {height:,} is pruned: this node keeps states from height {oldest:,} "
                f"(retain_states = {self.retain_states}); ask an archive node (retain_states = 0) for older states",
                height, oldest)

    def plan(self, head: int, limit: int, then: "list[Op] | tuple[Op, ...]" = ()) -> tuple[list[Op], int]:
        """One step: (operations, the marker they move to) for the state at ``head``.

        ``then``: the operations the same batch applies after these (a block's state
        writes); a node they write is never deleted. Examines at most ``limit`` listed
        hashes; nothing to do gives ([], the marker).
        """
        marker = self._pruned_below
        target = self.target(head)
        if target < marker or limit <= 0:  # (at the marker itself a row may be left half done)
            return [], marker
        kv = self.kv
        ops: list[Op] = []
        budget = limit
        reached = target
        born: set[bytes] | None = None  # built on the first delete: the keys ``then`` writes
        for row_key, row in kv.iterate(prefix=STATE_DEATH_ROW, start=state_death_row_key(marker),
                                       stop=state_death_row_key(target + 1)):
            height = decode_height(row_key[len(STATE_DEATH_ROW):])
            if len(row) % HASH_BYTES:
                raise StorageError(f"death row {height} holds {len(row)} bytes: expected a multiple of {HASH_BYTES}")
            taken = min(budget, len(row) // HASH_BYTES)
            for start in range(0, taken * HASH_BYTES, HASH_BYTES):
                node_key = STATE_NODE_PREFIX + row[start:start + HASH_BYTES]
                data = kv.get(node_key)
                if data is not None and node_birth(data) <= height:
                    if born is None:
                        born = {key for key, value in then if value is not None and key[:1] == STATE_NODE_PREFIX}
                    if node_key not in born:
                        ops.append((node_key, None))
            budget -= taken
            rest = row[taken * HASH_BYTES:]
            ops.append((row_key, rest or None))
            if rest or budget == 0:
                reached = height  # rows above it are not done: only states from this height on are whole
                break
        if reached > marker:
            ops.append((STATE_PRUNED_KEY, encode_height(reached)))
        return ops, reached

    def written(self, marker: int, ops: list[Op]) -> None:
        """Note that a planned step is durably written."""
        self._pruned_below = max(self._pruned_below, marker)
        self.nodes_deleted += sum(1 for key, value in ops if value is None and key[:1] == STATE_NODE_PREFIX)

    def step(self, head: int, limit: int = PRUNE_NODES_PER_STEP, sync: bool = True) -> bool:
        """Run one step in its own atomic batch; True if it did anything."""
        ops, marker = self.plan(head, limit)
        if not ops:
            return False
        self.kv.write(ops, sync=sync)
        self.written(marker, ops)
        return True

    def catch_up(self, head: int, max_steps: int = OPEN_PRUNE_MAX_STEPS, sync: bool = True) -> int:
        """Run up to ``max_steps`` steps (stopping when there is nothing left); returns how many ran."""
        steps = 0
        while steps < max_steps and self.step(head, sync=sync):
            steps += 1
        return steps


__all__ = [
    "OPEN_PRUNE_MAX_STEPS",
    "PRUNE_NODES_PER_COMMIT",
    "PRUNE_NODES_PER_STEP",
    "PrunedStateError",
    "SNAPSHOTS_KEPT",
    "StatePruner",
    "read_pruned_below",
]
