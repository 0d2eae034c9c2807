"""Ledger benchmarks: strict signatures, encoding, authenticated state, block commits.

Run: ``python -m bench.ledger [--state-keys N] [--skip-state]``. Baselines, measured in
the same run: raw libsodium verification; raw plyvel synced batches of the same bytes;
an unauthenticated LevelDB write of the same state write-set (from bench.state_bench).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import plyvel
from nacl import bindings as sodium

from bench.common import emit, per_second, progress, result
from ledger.crypto import SigningKey, verify_ed25519
from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV
from ledger.types import PHASE_COMMIT, ZERO_HASH, Block, BlockHeader, CommitCertificate, Receipt, SignedTx, TxBody, Vote
from ledger.types import compute_receipts_root, compute_tx_root, validator_set_hash

CHAIN = "bench-chain"
BLOCKS_TO_COMMIT = 200
TXS_PER_BLOCK = 100


def bench_signatures() -> list[dict]:
    key = SigningKey.from_label("bench")
    message = os.urandom(200)
    signature = key.sign_raw(message)
    public = key.public_key
    ours = per_second(lambda: verify_ed25519(public, message, signature))
    raw = per_second(lambda: sodium.crypto_sign_open(signature + message, public))
    return [result("ledger", "strict_verify_per_s", ours, "verifications/s", raw)]


def sample_tx(key: SigningKey, nonce: int) -> SignedTx:
    args = [os.urandom(32), 12_345, "order-ref", {"qty": 2, "sku": "SKU-1"}]
    return TxBody(CHAIN, key.public_key, nonce, "orders", "place", args, 200_000).sign(key)


def bench_encoding() -> list[dict]:
    tx = sample_tx(SigningKey.from_label("bench"), 1)
    raw = tx.encode()
    ours = per_second(lambda: SignedTx.decode(tx.encode()))
    import msgpack  # baseline: plain msgpack with no canonical checks

    lst = tx.to_list()
    plain = per_second(lambda: msgpack.unpackb(msgpack.packb(lst, use_bin_type=True), raw=False))
    return [result("ledger", "tx_encode_decode_per_s", ours, "txs/s", plain),
            result("ledger", "tx_encoded_bytes", len(raw), "bytes", None)]


def make_chain(count: int) -> list[tuple[Block, CommitCertificate, list[Receipt]]]:
    keys = [SigningKey.from_label(f"v{i}") for i in range(4)]
    sender = SigningKey.from_label("sender")
    chain = []
    prev_hash, prev_cert = ZERO_HASH, None
    nonce = 0
    for height in range(1, count + 1):
        txs = []
        for _ in range(TXS_PER_BLOCK):
            txs.append(sample_tx(sender, nonce))
            nonce += 1
        receipts = [Receipt(tx.tx_id, 0, 1000, None, None, []) for tx in txs]
        header = BlockHeader(CHAIN, height, prev_hash, height * 1000, keys[0].public_key, 0, compute_tx_root(txs),
                             compute_receipts_root(receipts), os.urandom(32),
                             validator_set_hash([k.public_key for k in keys]),
                             ZERO_HASH if prev_cert is None else prev_cert.cert_hash)
        block = Block(header, tuple(txs), prev_cert)
        cert = CommitCertificate.from_votes([Vote.create(k, CHAIN, PHASE_COMMIT, 0, height, block.block_hash) for k in keys[:3]])
        chain.append((block, cert, receipts))
        prev_hash, prev_cert = block.block_hash, cert
    return chain


def bench_block_commit(workdir: str) -> list[dict]:
    progress(f"building {BLOCKS_TO_COMMIT} blocks of {TXS_PER_BLOCK} txs")
    chain = make_chain(BLOCKS_TO_COMMIT)
    kv = LevelDBKV(os.path.join(workdir, "blocks"))
    store = BlockStore(kv)
    store.init_genesis(b"\x01" * 32, [], ZERO_HASH)
    batches = [BlockStore.block_batch(b, c, r) for b, c, r in chain]
    start = time.perf_counter()
    for block, cert, receipts in chain:
        store.commit_block(block, cert, receipts, [])
    ours = BLOCKS_TO_COMMIT / (time.perf_counter() - start)
    kv.close()
    # Baseline: the same key/value bytes written as raw plyvel synced batches.
    db = plyvel.DB(os.path.join(workdir, "raw"), create_if_missing=True)
    start = time.perf_counter()
    for batch in batches:
        with db.write_batch(transaction=True, sync=True) as wb:
            for key, value in batch:
                wb.put(key, value)
    raw = BLOCKS_TO_COMMIT / (time.perf_counter() - start)
    db.close()
    return [result("ledger", "block_commit_synced_per_s", ours, "blocks/s", raw),
            result("ledger", "block_commit_txs_per_s", ours * TXS_PER_BLOCK, "txs/s", raw * TXS_PER_BLOCK)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-keys", type=int, default=1_000_000, help="size of the state for the commit benchmark")
    parser.add_argument("--write-set", type=int, default=4000)
    parser.add_argument("--skip-state", action="store_true", help="skip the (slow to build) state benchmark")
    args = parser.parse_args()
    for line in bench_signatures() + bench_encoding():
        emit(line)
    workdir = tempfile.mkdtemp(prefix="shopchain-bench-")
    try:
        for line in bench_block_commit(workdir):
            emit(line)
        if not args.skip_state:
            from bench.state_bench import run_state_commit

            for line in run_state_commit(args.state_keys, args.write_set, os.path.join(workdir, "state")):
                emit(line)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
