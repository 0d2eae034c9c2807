"""Crash consistency of block pruning: SIGKILL a process pruning a long backlog at random
instants, reopen, check.

After every kill the store must pass its open check and be exactly a store whose base is
where the last whole batch put it: every height from the base to the head held with its
certificate, receipts, header, hash and tx index entries, nothing of any height below it,
and the base at least what the child reported. The next child resumes from there.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import pytest

from ledger.storage import schema
from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV
from tests.conftest import PROJECT_ROOT
from tests.helpers import VALIDATOR_KEYS, certify, make_block, make_tx

pytestmark = pytest.mark.integration  # a child process killed mid-prune

BLOCKS = 3_000
TXS_PER_BLOCK = 3
TARGET = 2_900
BATCH_BLOCKS = 2
MAX_KILLS = 12


def build(path: str) -> dict[int, list[bytes]]:
    """A LevelDB store of BLOCKS blocks; returns the tx ids of each height."""
    kv = LevelDBKV(path)
    store = BlockStore(kv)
    store.init_genesis(b"\x42" * 32, [(b"Vgenesis", b"1")], b"\x00" * 32)
    prev = prev_cert = None
    tx_ids: dict[int, list[bytes]] = {}
    for height in range(1, BLOCKS + 1):
        txs = [make_tx(VALIDATOR_KEYS[3], height * 10 + i) for i in range(TXS_PER_BLOCK)]
        block, receipts = make_block(height, prev, prev_cert, txs)
        cert = certify(block, VALIDATOR_KEYS[:1])  # the store checks what a certificate is for, not its quorum
        store.commit_block(block, cert, receipts, [], sync=False)
        tx_ids[height] = [tx.tx_id for tx in txs]
        prev, prev_cert = block, cert
    kv.close()
    return tx_ids


def check_store(path: str, tx_ids: dict[int, list[bytes]], reported: int, attempt: int) -> int:
    kv = LevelDBKV(path, create=False)
    try:
        store = BlockStore(kv)
        store.check_integrity()
        base = store.base
        assert base >= reported, f"kill {attempt}: the child reported base {reported}, the store says {base}"
        assert store.height == BLOCKS
        for prefix in (schema.BLOCK, schema.HEADER, schema.CERT, schema.RECEIPTS):
            heights = [schema.decode_height(k[1:]) for k, _ in kv.iterate(prefix=prefix)]
            assert heights == list(range(max(base, 1), BLOCKS + 1)), f"kill {attempt}: {prefix!r} is torn at {base}"
        held = {tx_id for h in range(max(base, 1), BLOCKS + 1) for tx_id in tx_ids[h]}
        assert {k[1:] for k, _ in kv.iterate(prefix=schema.TX_INDEX)} == held, f"kill {attempt}: tx index torn"
        assert len(list(kv.iterate(prefix=schema.BLOCK_HASH))) == BLOCKS - max(base, 1) + 1
        return base
    finally:
        kv.close()


def test_sigkill_during_pruning_leaves_a_store_whose_base_is_consistent(tmp_path):
    path = str(tmp_path / "db")
    tx_ids = build(path)
    rng = random.Random(16)
    reported, done, kills = 0, False, 0
    while not done:
        child = subprocess.Popen([sys.executable, "-m", "tests.prune_child", path, str(TARGET), str(BATCH_BLOCKS)],
                                 cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        first = child.stdout.readline().split()
        assert first and first[0] == "ready", f"child failed to start: {first}"
        if kills < MAX_KILLS:
            time.sleep(rng.uniform(0.02, 0.12))
            child.send_signal(signal.SIGKILL)
            kills += 1
        out, _ = child.communicate(timeout=60)
        lines = [line for line in out.splitlines(keepends=True) if line.endswith("\n")]
        bases = [int(line.split()[1]) for line in lines if line.startswith("pruned ")]
        if bases:
            reported = max(reported, bases[-1])
        done = any(line.startswith("done") for line in lines)
        base = check_store(path, tx_ids, reported, kills)
        done = done or base == TARGET
    assert check_store(path, tx_ids, TARGET, kills) == TARGET
    assert kills >= 3  # the backlog was long enough that the kills landed mid-prune
