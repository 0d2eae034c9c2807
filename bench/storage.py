"""Storage honesty benchmarks: what the open check, checked reads and flat-state checks cost.

Run: ``python -m bench.storage [--blocks N] [--txs-per-block T] [--state-keys K]``.
Prints JSON lines ``{"bench","metric","value","unit","baseline","ratio"}``; every
baseline is measured in the same run on the same keys:

* ``open_check_seconds``: ``BlockStore.check_integrity`` (the whole header chain
  from the header index, hash index and state roots; the newest blocks read whole)
  against a raw plyvel iteration of the same header-index and state-root keys;
* ``open_check_no_crc_seconds``: the same check with LevelDB CRC verification off,
  against the check with it on (what the CRCs add to an open);
* ``open_check_building_header_index_seconds``: the first open of a store written
  before the header index (every block read and checked, the index written) against
  the opens after it;
* ``block_read_us``: ``BlockStore.get_block`` (hash index + tx root checked) of random
  heights against a raw ``get`` plus ``Block.decode`` of the same heights;
* ``raw_get_crc_us``: plyvel ``get`` of random block keys with ``verify_checksums``
  against the same gets without (a fresh DB handle each, so the block cache is cold);
* ``flat_check_seconds``: ``StateStore.check_flat_table`` (what ``node verify`` adds)
  against a raw iteration of the flat table;
* ``verified_state_read_us``: ``StateStore.get_verified`` against ``StateStore.get``.

Blocks are synthetic but shaped like real ones (signed transfers, certificates): the
same transactions repeat in every block, which costs the check nothing less.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time

import plyvel

from bench.common import emit, progress, result
from ledger.crypto import SigningKey
from ledger.state import StateStore
from ledger.storage import schema
from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV
from ledger.types import (
    ZERO_HASH,
    Block,
    BlockHeader,
    CommitCertificate,
    Receipt,
    TxBody,
    compute_receipts_root,
    compute_tx_root,
)

CHAIN = "bench-chain"
#: Blocks written per batch while building the store (unsynced: building is not measured).
BUILD_BATCH_BLOCKS = 1_000
#: Random reads per read benchmark.
READS = 2_000
#: Timed runs per figure; the fastest is reported.
REPEATS = 3


def build_blocks(kv: LevelDBKV, count: int, txs_per_block: int) -> None:
    """Write ``count`` linked blocks with certificates and receipts, as commits would."""
    sender = SigningKey.from_label("bench-sender")
    txs = tuple(TxBody(CHAIN, sender.public_key, n, "ledger", "transfer", [os.urandom(32), 100 + n], 1_000_000)
                .sign(sender) for n in range(txs_per_block))
    receipts = [Receipt(tx.tx_id, 0, 21_000, None, None, []) for tx in txs]
    tx_root, receipts_root = compute_tx_root(txs), compute_receipts_root(receipts)
    proposer = SigningKey.from_label("bench-v0").public_key
    store = BlockStore(kv)
    store.init_genesis(b"\x01" * 32, [], ZERO_HASH)
    prev_hash, prev_cert = ZERO_HASH, None
    batch: list[tuple[bytes, bytes | None]] = []
    for height in range(1, count + 1):
        header = BlockHeader(CHAIN, height, prev_hash, height * 1000, proposer, 0, tx_root, receipts_root,
                             height.to_bytes(32, "big"), b"\x02" * 32,
                             ZERO_HASH if prev_cert is None else prev_cert.cert_hash)
        block = Block(header, txs, prev_cert)
        # Signature-less certificates: reads check a certificate is for its block, not its votes.
        cert = CommitCertificate(height, 0, block.block_hash, ())
        batch.extend(kv_op for kv_op in BlockStore.block_batch(block, cert, receipts)
                     if not kv_op[0].startswith(schema.TX_INDEX))
        prev_hash, prev_cert = block.block_hash, cert
        if height % BUILD_BATCH_BLOCKS == 0 or height == count:
            kv.write(batch, sync=False)
            batch = []
            progress(f"  {height:,} blocks written")


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(fn) -> float:  # type: ignore[no-untyped-def]
    """The fastest of REPEATS timed runs: the machine is shared, the minimum is the cost."""
    return min(timed(fn) for _ in range(REPEATS))


def raw_iteration(path: str, head: int) -> None:
    """The baseline: iterate the same header-index and state-root keys with plain plyvel, checking nothing."""
    db = plyvel.DB(path)
    try:
        for _key, _value in db.iterator(start=schema.header_key(1), stop=schema.header_key(head + 1)):
            pass
        for _key, _value in db.iterator(start=schema.state_root_key(1), stop=schema.state_root_key(head + 1)):
            pass
    finally:
        db.close()


def open_check(path: str, verify_checksums: bool = True) -> None:
    kv = LevelDBKV(path, create=False, verify_checksums=verify_checksums)
    try:
        BlockStore(kv).check_integrity()
    finally:
        kv.close()


def drop_header_index(path: str, head: int) -> None:
    """Make the store look as if written before the header index existed."""
    kv = LevelDBKV(path, create=False)
    try:
        for start in range(1, head + 1, BUILD_BATCH_BLOCKS):
            stop = min(head, start + BUILD_BATCH_BLOCKS - 1) + 1
            kv.write([(schema.header_key(h), None) for h in range(start, stop)], sync=False)
    finally:
        kv.close()


def bench_open_check(path: str, blocks: int, txs_per_block: int) -> list[dict]:
    raw_iteration(path, blocks)  # warm the page cache once, so every figure below sees the same cache
    raw = best_of(lambda: raw_iteration(path, blocks))
    checked = best_of(lambda: open_check(path, True))
    no_crc = best_of(lambda: open_check(path, False))
    size = sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))
    drop_header_index(path, blocks)
    first = timed(lambda: open_check(path, True))  # builds the index: reads every block once
    again = best_of(lambda: open_check(path, True))
    return [result("storage", "open_check_seconds", checked, f"s for {blocks} blocks of {txs_per_block} txs", raw),
            result("storage", "open_check_no_crc_seconds", no_crc, "s", checked),
            result("storage", "open_check_building_header_index_seconds", first, "s (once, older store)", again),
            result("storage", "store_bytes", size, "bytes", None)]


def bench_block_reads(path: str, blocks: int) -> list[dict]:
    heights = [random.Random(7).randrange(1, blocks + 1) for _ in range(READS)]
    kv = LevelDBKV(path, create=False)
    try:
        store = BlockStore(kv)
        for h in heights[:READS // 10]:
            store.get_block(h)
        ours = best_of(lambda: [store.get_block(h) for h in heights]) / READS
        base = best_of(lambda: [Block.decode(kv.get(schema.block_key(h))) for h in heights]) / READS
    finally:
        kv.close()

    def cold_gets(verify: bool) -> float:
        db = plyvel.DB(path, lru_cache_size=8 * 1024 * 1024)
        try:
            keys = [schema.block_key(h) for h in heights]
            return timed(lambda: [db.get(k, verify_checksums=verify) for k in keys]) / READS
        finally:
            db.close()

    crc, no_crc = float("inf"), float("inf")
    for _ in range(REPEATS):  # alternated, so neither side always gets the warmer page cache
        no_crc, crc = min(no_crc, cold_gets(False)), min(crc, cold_gets(True))
    return [result("storage", "block_read_us", ours * 1e6, "us/read", base * 1e6),
            result("storage", "raw_get_crc_us", crc * 1e6, "us/read", no_crc * 1e6)]


def bench_state(path: str, keys: int) -> list[dict]:
    kv = LevelDBKV(path)
    state = StateStore(kv)
    rng = random.Random(11)
    for start in range(0, keys, 50_000):
        overlay = state.overlay()
        for n in range(start, min(keys, start + 50_000)):
            overlay.put(b"ledger/balance/" + rng.randbytes(20), rng.randbytes(40))
        state.apply(overlay.commit(), sync=False)
        progress(f"  {min(keys, start + 50_000):,} state keys written")
    root = state.root
    sample = [key[len(schema.STATE_VALUE_PREFIX):] for key, _ in kv.iterate(prefix=schema.STATE_VALUE_PREFIX)]
    probes = [rng.choice(sample) for _ in range(READS)]
    try:
        fresh = StateStore(kv, root)
        raw = best_of(lambda: sum(1 for _ in kv.iterate(prefix=schema.STATE_VALUE_PREFIX)))
        checked = best_of(fresh.check_flat_table)  # also fills the node cache, as a running node's is
        for key in probes:  # warm both paths (LevelDB cache, node cache) before timing either
            fresh.get_verified(key)
        plain = timed(lambda: [fresh.get(k) for k in probes]) / READS
        verified = timed(lambda: [fresh.get_verified(k) for k in probes]) / READS
    finally:
        kv.close()
    return [result("storage", "flat_check_seconds", checked, f"s for {keys} state entries", raw),
            result("storage", "verified_state_read_us", verified * 1e6, "us/read", plain * 1e6)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=100_000)
    parser.add_argument("--txs-per-block", type=int, default=4)
    parser.add_argument("--state-keys", type=int, default=100_000)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="shopchain-bench-storage-")
    try:
        blocks_path = os.path.join(workdir, "blocks")
        progress(f"building {args.blocks:,} blocks of {args.txs_per_block} txs")
        kv = LevelDBKV(blocks_path)
        build_blocks(kv, args.blocks, args.txs_per_block)
        kv.close()
        lines = bench_open_check(blocks_path, args.blocks, args.txs_per_block)
        lines += bench_block_reads(blocks_path, args.blocks)
        for line in lines:
            emit(line)
        progress(f"building a state of {args.state_keys:,} keys")
        for line in bench_state(os.path.join(workdir, "state"), args.state_keys):
            emit(line)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
