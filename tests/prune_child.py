"""Child process for the pruning crash test: prunes a store's backlog until it is killed.

It prints ``ready <base>`` once the store is open, then ``pruned <base>`` after each
``prune_to`` batch returns (a line printed is a batch the parent may count on), and
``done`` once the base reached the target.
"""

from __future__ import annotations

import sys

from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV


def main(path: str, target: int, batch_blocks: int) -> None:
    kv = LevelDBKV(path, create=False)
    store = BlockStore(kv)
    store.check_integrity()
    print("ready", store.base, flush=True)
    while store.base < target:
        base = store.prune_to(target, max_blocks=batch_blocks, sync=True)
        sys.stdout.write(f"pruned {base}\n")
        sys.stdout.flush()
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
