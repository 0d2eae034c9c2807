"""kill -9 during state pruning: a LevelDB store stays whole at every height it still claims to keep.

A child process commits state and prunes in a loop against a LevelDB directory, the
way node.core.chain does (each block's pruning step in its batch, with tiny budgets so
death rows are often left half done, and catch-up steps of their own in between); the
retention window changes from run to run, so catch-up after a lowered window is hit
too. The parent kills it with SIGKILL after a random number of commits (it is then
somewhere inside the next write or prune), reopens the store and walks every retained
root completely (each node loaded and checked against its hash) and proves the flat
table equal to the head's trie.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest

from ledger.state import StateStore
from ledger.state_prune import StatePruner
from ledger.storage import schema
from ledger.storage.leveldb import LevelDBKV
from tests.helpers import walk_state

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Kill rounds; each run commits a few dozen heights before it is killed.
ROUNDS = 40

CHILD = r"""
import random, sys
from ledger.state import StateStore
from ledger.state_prune import StatePruner
from ledger.state_proof import EMPTY_ROOT
from ledger.storage import schema
from ledger.storage.leveldb import LevelDBKV

path, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
kv = LevelDBKV(path)
raw = kv.get(schema.HEAD_KEY)
head = -1 if raw is None else schema.decode_height(raw)
store = StateStore(kv, EMPTY_ROOT if head < 0 else kv.get(schema.state_root_key(head)), height=head)
pruner = StatePruner(kv, rng.choice([1, 2, 3, 6]))
keys = [bytes([i % 5]) + bytes([i % 3]) * (i % 4) + bytes([i]) for i in range(60)]
values = [b"a", b"b", b"c" * 40, None]
print("ready", flush=True)
while True:
    overlay = store.overlay()
    for key in rng.sample(keys, rng.randint(1, 12)):
        value = rng.choice(values)
        overlay.delete(key) if value is None else overlay.put(key, value)
    diff = overlay.commit()
    ops, marker = pruner.plan(diff.height, rng.choice([1, 4, 30, 10_000]), diff.ops)
    kv.write(ops + diff.ops + [(schema.state_root_key(diff.height), diff.root),
                               (schema.HEAD_KEY, schema.encode_height(diff.height))], sync=False)
    pruner.written(marker, ops)
    store.mark_committed(diff)
    if rng.random() < 0.2:
        pruner.step(store.height, limit=rng.choice([2, 50]), sync=False)
    print(store.height, flush=True)
"""


@pytest.mark.integration
def test_kill_9_during_pruning_leaves_every_retained_state_whole(tmp_path) -> None:
    path = str(tmp_path / "db")
    rng = random.Random(16)
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    heads = []
    for round_ in range(ROUNDS):
        child = subprocess.Popen([sys.executable, "-c", CHILD, path, str(round_)], stdout=subprocess.PIPE,
                                 env=env, text=True)
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            for _ in range(rng.randint(3, 80)):
                assert child.stdout.readline(), "the child stopped before it was killed"
            child.kill()  # SIGKILL, somewhere inside the next commit or pruning step
        finally:
            child.kill()
            child.wait()
            child.stdout.close()  # type: ignore[union-attr]
        kv = LevelDBKV(path)
        try:
            head = schema.decode_height(kv.get(schema.HEAD_KEY))
            pruner = StatePruner(kv)
            assert pruner.pruned_below <= head
            for height in range(pruner.pruned_below, head + 1):
                root = kv.get(schema.state_root_key(height))
                assert root is not None and walk_state(kv, root) >= 0
            store = StateStore(kv, kv.get(schema.state_root_key(head)), height=head)
            store.check_flat_table()
            heads.append((head, pruner.pruned_below))
        finally:
            kv.close()
    assert heads[-1][0] > 100 and heads[-1][1] > 50  # it really committed and pruned across the kills
