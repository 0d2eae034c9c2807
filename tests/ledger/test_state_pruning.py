"""State pruning (ledger.state_prune): every retained version stays whole and provable, nothing else stays.

The model is a dict per committed height. After each commit (and its pruning step,
in the same batch, as node.core.chain does it) every retained height is checked
against its dict through ``get_at`` and ``prove``, and the stored node set is
compared with the union of the nodes reachable from the retained roots: a missing
node is a pruning bug that loses data, an extra one (once pruning has caught up) a
leak that makes disk grow.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.state import StateStore
from ledger.state_proof import EMPTY_ROOT, compute_leaf_hash, verify_proof
from ledger.state_prune import (PRUNE_NODES_PER_COMMIT, SNAPSHOTS_KEPT, PrunedStateError, StatePruner,
                                read_pruned_below)
from ledger.state_trie import Branch, decode_node, node_birth, node_payload
from ledger.errors import StorageError
from ledger.storage.kv import MemoryKV
from ledger.storage.schema import (STATE_DEATH_ROW, STATE_NODE_PREFIX, STATE_PRUNED_KEY, decode_height, encode_height,
                                   state_death_row_key, state_node_key)

# Few distinct bytes and values: keys share prefixes (splits, collapses) and values are
# often set back to an earlier one, which re-creates leaves and branches already seen.
KEYS = [bytes([a]) + bytes([b]) * n for a in (0x00, 0x01, 0x10, 0xF0) for b in (0x00, 0x0F) for n in range(3)]
VALUES = [b"a", b"b", b"c", None]


def commit(store: StateStore, pruner: StatePruner, writes: dict[bytes, bytes | None],
           limit: int = PRUNE_NODES_PER_COMMIT) -> bytes:
    """One block's state commit with its pruning step in the same batch, in node.core.chain's order."""
    overlay = store.overlay()
    for key, value in writes.items():
        if value is None:
            overlay.delete(key)
        else:
            overlay.put(key, value)
    diff = overlay.commit()
    prune_ops, marker = pruner.plan(diff.height, limit, diff.ops)
    store.kv.write(prune_ops + diff.ops)
    pruner.written(marker, prune_ops)
    store.mark_committed(diff)
    return diff.root


def reachable(kv: MemoryKV, root: bytes) -> set[bytes]:
    """Every node hash of the version under ``root``, leaves included, each loaded and hash-checked."""
    found: set[bytes] = set()
    stack = [] if root == EMPTY_ROOT else [root]
    while stack:
        node_hash = stack.pop()
        data = kv.get(state_node_key(node_hash))
        assert data is not None, f"node {node_hash.hex()} of a retained root is gone"
        node = decode_node(node_hash, node_payload(data))
        found.add(node_hash)
        if type(node) is Branch:
            stack.extend(c for c in node.children if c)
            if node.here:
                stack.append(node.here)
    return found


def stored_nodes(kv: MemoryKV) -> set[bytes]:
    return {key[1:] for key, _ in kv.iterate(prefix=STATE_NODE_PREFIX)}


def check_versions(store: StateStore, pruner: StatePruner, roots: dict[int, bytes],
                   models: dict[int, dict[bytes, bytes]], exact: bool) -> None:
    head = store.height
    live: set[bytes] = set()
    for height in range(pruner.pruned_below, head + 1):
        root, model = roots[height], models[height]
        live |= reachable(store.kv, root)
        for key in KEYS:
            value = store.get_at(root, key)
            assert value == model.get(key), (height, key)
            assert verify_proof(root, key, value, store.prove(key, root)), (height, key)
    if exact:
        # No leak: a stored node outside the window is one still listed on a death row not yet
        # due (with retain_states = 1, the head's own row waits for the next commit).
        pending: set[bytes] = set()
        for row_key, row in store.kv.iterate(prefix=STATE_DEATH_ROW):
            assert decode_height(row_key[1:]) >= pruner.pruned_below
            pending.update(row[i:i + 32] for i in range(0, len(row), 32))
        extra = stored_nodes(store.kv) - live
        assert extra <= pending
        assert not extra or pruner.retain_states == 1
    store.check_flat_table()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(retain=st.integers(1, 4),
       blocks=st.lists(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), min_size=1, max_size=6),
                       min_size=1, max_size=15))
def test_every_retained_version_matches_its_model_and_nothing_else_is_kept(retain, blocks) -> None:
    kv = MemoryKV()
    store, pruner = StateStore(kv), StatePruner(kv, retain)
    roots, models = {0: commit(store, pruner, {KEYS[0]: b"genesis"})}, {0: {KEYS[0]: b"genesis"}}
    for writes in blocks:
        model = dict(models[store.height])
        for key, value in writes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        root = commit(store, pruner, writes)
        roots[store.height], models[store.height] = root, model
        assert pruner.pruned_below == max(0, store.height - retain + 1)
        check_versions(store, pruner, roots, models, exact=True)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limit=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_steps_cut_short_keep_every_state_at_or_above_the_marker_whole(limit, seed) -> None:
    """A tiny per-commit budget leaves death rows half done between commits: the marker
    must still only cover heights whose states are whole, and a catch-up finishes the work."""
    rng = random.Random(seed)
    kv = MemoryKV()
    store, pruner = StateStore(kv), StatePruner(kv, 2)
    roots, models = {}, {}
    model: dict[bytes, bytes] = {}
    for _ in range(15):
        writes = {key: rng.choice(VALUES) for key in rng.sample(KEYS, 4)}
        for key, value in writes.items():
            model.pop(key, None) if value is None else model.__setitem__(key, value)
        root = commit(store, pruner, writes, limit=limit)
        roots[store.height], models[store.height] = root, dict(model)
        assert read_pruned_below(kv) == pruner.pruned_below
        check_versions(store, pruner, roots, models, exact=False)
    while pruner.step(store.height, limit=limit):
        check_versions(store, pruner, roots, models, exact=False)
    assert pruner.pruned_below == store.height - 1
    check_versions(store, pruner, roots, models, exact=True)


def test_a_value_set_back_re_creates_its_leaf_which_survives_the_pruning_of_its_first_death() -> None:
    kv = MemoryKV()
    store, pruner = StateStore(kv), StatePruner(kv, 2)
    commit(store, pruner, {b"k": b"old", b"other": b"x"})           # height 0: leaf L(old) born
    leaf = store.prove(b"k")[-1]
    old_leaf = compute_leaf_hash(leaf[1], leaf[2])
    commit(store, pruner, {b"k": b"new"})                           # 1: L(old) dies
    row = kv.get(state_death_row_key(1))
    assert old_leaf in [row[i:i + 32] for i in range(0, len(row), 32)]
    # 2: L(old) born again in the very batch that prunes row 1, which lists it: it must stay.
    commit(store, pruner, {b"k": b"old"})
    assert pruner.pruned_below == 1 and kv.get(state_death_row_key(1)) is None
    assert node_birth(kv.get(state_node_key(old_leaf))) == 2
    commit(store, pruner, {b"other": b"y"})                         # 3: prunes row 2 (L(new) goes)
    commit(store, pruner, {b"other": b"z"})
    assert kv.get(state_node_key(old_leaf)) is not None
    assert store.get_at(store.root, b"k") == b"old"
    assert verify_proof(store.root, b"k", b"old", store.prove(b"k"))


def test_archive_mode_keeps_everything_and_can_turn_pruning_on_later() -> None:
    kv = MemoryKV()
    store, archive = StateStore(kv), StatePruner(kv, 0)
    roots = []
    for height in range(30):
        roots.append(commit(store, archive, {KEYS[height % 5]: bytes([height % 3]), KEYS[7]: bytes([height])}))
    assert archive.pruned_below == 0 and archive.nodes_deleted == 0
    before = len(stored_nodes(kv))
    rows = sum(1 for _ in kv.iterate(prefix=STATE_DEATH_ROW))
    assert rows == 29  # every commit after the first removed something
    pruning = StatePruner(kv, 3)
    steps = pruning.catch_up(store.height)
    assert steps >= 1 and pruning.pruned_below == store.height - 2
    assert len(stored_nodes(kv)) < before / 3
    assert stored_nodes(kv) == set().union(*(reachable(kv, root) for root in roots[pruning.pruned_below:]))


def test_disk_stays_flat_under_a_workload_that_rewrites_the_same_keys() -> None:
    """The order workload's shape: the same keys rewritten block after block. Archive grows
    with every block; with a window the stored nodes stay bounded by the window's versions."""
    rng = random.Random(7)
    keys = [b"order/" + i.to_bytes(2, "big") for i in range(300)]
    counts = {}
    for retain in (0, 8):
        kv = MemoryKV()
        store, pruner = StateStore(kv), StatePruner(kv, retain)
        commit(store, pruner, {key: b"new" for key in keys})
        sizes = []
        for height in range(1, 201):
            commit(store, pruner, {key: rng.randbytes(8) for key in rng.sample(keys, 20)})
            sizes.append(len(stored_nodes(kv)))
        counts[retain] = sizes
    archive, pruned = counts[0], counts[8]
    assert archive[-1] > 5 * archive[9]  # grows with every block
    assert max(pruned[50:]) <= 1.2 * max(pruned[10:50])  # flat once the window is full
    assert pruned[-1] < archive[-1] / 8


def test_reads_below_the_window_are_refused_naming_the_oldest_height_kept() -> None:
    kv = MemoryKV()
    kv.write([(STATE_PRUNED_KEY, encode_height(9_000))])  # as a node at head 9,999 keeping 1,000 leaves it
    pruner = StatePruner(kv, 1000)
    with pytest.raises(PrunedStateError) as info:
        pruner.check_retained(120)
    assert str(info.value).startswith("state at height 120 is pruned: this node keeps states from height 9,000 "
                                      "(retain_states = 1000)")
    assert info.value.oldest == 9_000
    pruner.check_retained(9_000)


def test_the_window_keeps_the_head_and_the_two_latest_snapshot_heights() -> None:
    kv = MemoryKV()
    assert StatePruner(kv, 0).target(10**6) == 0
    assert StatePruner(kv, 1).target(57) == 57                          # only the head
    assert StatePruner(kv, 10).target(57) == 48
    offering = StatePruner(kv, 10, snapshot_interval=100)
    assert offering.target(257) == 257 - 57 - (SNAPSHOTS_KEPT - 1) * 100  # 100: snapshots 200 and 100 stay
    assert offering.target(50) == 0
    assert StatePruner(kv, 10, snapshot_interval=5).target(57) == 48     # the window reaches further back
    with pytest.raises(StorageError, match="retain_states: expected an int in 0..1000000000000"):
        StatePruner(kv, -1)


def test_a_damaged_death_row_is_reported_not_half_applied() -> None:
    kv = MemoryKV()
    store, pruner = StateStore(kv), StatePruner(kv, 1)
    commit(store, pruner, {b"a": b"1", b"b": b"2"})
    kv.write([(state_death_row_key(0), b"\x00" * 33)])
    with pytest.raises(StorageError, match="death row 0 holds 33 bytes: expected a multiple of 32"):
        pruner.plan(1, 10)


def test_the_disk_benchmark_runs_and_reports_the_agreed_fields(tmp_path) -> None:
    from bench.state_bench import DISK_RETAIN_STATES, run_disk

    lines = run_disk([300], str(tmp_path))
    assert [line["metric"] for line in lines] == [
        "disk_bytes_per_tx_300_archive", f"disk_bytes_per_tx_300_retain{DISK_RETAIN_STATES}",
        "disk_bytes_per_tx_300_archive_compacted", f"disk_bytes_per_tx_300_retain{DISK_RETAIN_STATES}_compacted"]
    for line in lines:
        assert set(line) == {"bench", "metric", "value", "unit", "baseline", "ratio"}
        assert line["unit"] == "bytes/tx" and line["value"] > 0 and line["baseline"] > 0
    with pytest.raises(ValueError, match="expected transaction counts in 1..10,000,000, found \\[0\\]"):
        run_disk([0])
