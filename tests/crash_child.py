"""Child process for the crash-consistency test: commits blocks until it is killed.

It prints ``ready`` once the store is open, then ``committed <height>`` after each
``commit_block`` returns: a line printed is a commit the parent may count on.
"""

from __future__ import annotations

import sys

from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV
from tests.helpers import VALIDATOR_KEYS, certify, make_block, make_tx

GENESIS_HASH = b"\x42" * 32


def main(path: str) -> None:
    kv = LevelDBKV(path)
    store = BlockStore(kv)
    store.init_genesis(GENESIS_HASH, [(b"Vgenesis", b"1")], b"\x00" * 32)
    head = store.height
    prev = store.get_block(head) if head else None
    prev_cert = store.get_certificate(head) if head else None
    print("ready", head, flush=True)
    height = head
    while True:
        height += 1
        txs = [make_tx(VALIDATOR_KEYS[height % 4], height * 1000 + i) for i in range(20)]
        block, receipts = make_block(height, prev, prev_cert, txs)
        cert = certify(block)
        # A state write-set big enough that a torn write would be visible.
        state_ops = [(b"V%08d-%04d" % (height, i), b"x" * 200) for i in range(50)]
        store.commit_block(block, cert, receipts, state_ops)
        sys.stdout.write(f"committed {height}\n")
        sys.stdout.flush()
        prev, prev_cert = block, cert


if __name__ == "__main__":
    main(sys.argv[1])
