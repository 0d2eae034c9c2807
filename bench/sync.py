"""How long a new node takes to reach the tip of an N-block chain: state sync against sync from genesis.

Run: ``python -m bench.sync [--blocks N] [--txs-per-block T] [--interval I] [--behind B] [--no-fsync]``.
Prints JSON lines ``{"bench","metric","value","unit","baseline","ratio"}``; the
baseline of each is measured in the same run, on the same chain:

* ``reach_tip_seconds``: a new node with an empty store reaching the tip. By state
  sync: prove the peer's offer from genesis, fetch every trie node of the snapshot
  state in chunks (each answer built by ``SnapshotServer`` and checked by
  ``StateFetcher``, both through the wire encoding), prove it complete and write the
  base, then block-sync the blocks after the snapshot. Baseline: block sync from
  genesis, every block read as served, decoded, its certificate checked against the
  validator sets and executed and committed on the new node's store.
* ``state_sync_fetch_seconds`` (the trie fetch alone) against the same baseline, and
  the number of trie nodes and bytes fetched (no baseline).

The chain is built in-process with the node's own ``Chain`` (real execution, real
certificates of 3 of 4 validators, LevelDB stores on disk), so it is cheap to make:
each block holds ``T`` transactions that register a new product unit (a warranty
passport), so the state grows with the chain (``N x T`` passports) as a real chain's does. The snapshot is at the latest multiple of ``I``
at least ``B`` blocks below the tip (with the defaults, 99,000 of 100,000: the newcomer
block-syncs the last 1,000, a whole interval, which is the worst case of a newcomer
arriving just before the peers' next snapshot point). No network is involved on either side: both
figures leave out the same transport costs (p2p budgets would add a cap of
``serve_bytes_per_second`` per peer to state sync; block sync is capped too).
Commits are fsynced like a node's (``[storage] sync = true``) unless ``--no-fsync``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time

from bench.common import emit, progress, result
from devnet.genesis import create_devnet
from ledger.storage.leveldb import LevelDBKV
from ledger.types import PHASE_COMMIT, Block, CommitCertificate, TxBody, Vote
from ledger.validator_set import check_header_sets
from node.core.chain import Chain
from node.ops.home import read_key_file
from node.statesync.fetch import StateFetcher
from node.statesync.serve import SnapshotServer
from node.statesync.wire import decode_message, verify_offer
from p2p.limits import TransportLimits

BENCH = "sync"
#: Peers the newcomer fetches from (all backed by the same store here).
PEERS = [bytes([i]) * 32 for i in range(1, 5)]
#: Every this many blocks a buyer transfers the merchant what its next registrations cost in fees.
TOP_UP_EVERY_BLOCKS = 5_000
TOP_UP_AMOUNT = 2_000_000
#: Serving budget of the in-process peers: unlimited, so the figure is the node's own work.
UNLIMITED = TransportLimits(serve_bytes_per_second=float(1 << 40), serve_byte_burst=float(1 << 40))


def build_chain(root: str, blocks: int, txs_per_block: int, snapshot_at: int, sync: bool):
    """A devnet genesis and a LevelDB store holding ``blocks`` certified blocks; returns
    (genesis, kv, chain, offer bytes taken at ``snapshot_at``)."""
    layout = create_devnet(os.path.join(root, "devnet"), validators=4, seed="bench-sync")
    node_keys = [read_key_file(os.path.join(h, "node_key.json")) for h in layout.node_homes]
    merchant = read_key_file(os.path.join(layout.keys_dir, "merchant-acme.json"))
    buyer = read_key_file(os.path.join(layout.keys_dir, "buyer-1.json"))  # tops up the merchant's fees
    product = hashlib.sha256(b"bench-sync product").digest()
    kv = LevelDBKV(os.path.join(root, "source"))
    chain = Chain(kv, layout.genesis, sync=False)
    cert, nonce, offer = None, 0, None
    started = time.monotonic()
    for height in range(1, blocks + 1):
        txs = []
        if height % TOP_UP_EVERY_BLOCKS == 1:
            txs.append(TxBody(chain.chain_id, buyer.public_key, height // TOP_UP_EVERY_BLOCKS, "ledger", "transfer",
                              [merchant.public_key, TOP_UP_AMOUNT * txs_per_block], 1_000_000).sign(buyer))
        for _ in range(txs_per_block):
            unit = hashlib.sha256(b"bench-sync unit %d" % nonce).digest()
            txs.append(TxBody(chain.chain_id, merchant.public_key, nonce, "warranty", "register_unit", [unit, product],
                              1_000_000).sign(merchant))
            nonce += 1
        block = chain.build_block(0, height, chain.head_hash(), cert, node_keys[0].public_key, txs,
                                  now_ms=layout.genesis.genesis_time_ms + 1_000 * height)
        cert = CommitCertificate.from_votes([Vote.create(k, chain.chain_id, PHASE_COMMIT, 0, height, block.block_hash)
                                             for k in node_keys[:3]])
        outcome = chain.commit(block, cert)
        if any(r.status != 0 for r in outcome.receipts):
            raise SystemExit(f"a transaction of block {height} failed: {outcome.receipts}; the bench is broken")
        if height == snapshot_at:
            server = SnapshotServer(UNLIMITED, kv, chain.blocks, chain.schedule, interval=snapshot_at)
            offer = server.offer(PEERS[0])[0].encode()
        if height % 10_000 == 0:
            progress(f"built {height}/{blocks} blocks in {time.monotonic() - started:.0f} s")
    return layout.genesis, kv, chain, offer


def block_sync(newcomer: Chain, source: Chain, upto: int) -> None:
    """Catch up ``newcomer`` from its head to ``upto`` as the node does: stored bytes, decode, certificate, execute."""
    for height in range(newcomer.height + 1, upto + 1):
        raw_block, raw_cert = source.blocks.get_stored_pair(height)
        block, cert = Block.decode(raw_block), CommitCertificate.decode(raw_cert)
        check_header_sets(block.header, cert, newcomer.schedule(), newcomer.chain_id)
        newcomer.commit(block, cert)


def sync_from_genesis(root: str, genesis, source: Chain, sync: bool) -> float:
    kv = LevelDBKV(os.path.join(root, "from-genesis"))
    try:
        started = time.monotonic()
        newcomer = Chain(kv, genesis, sync=sync)
        block_sync(newcomer, source, source.height)
        elapsed = time.monotonic() - started
        if newcomer.state.root != source.state.root:
            raise SystemExit("sync from genesis reached another state root: the bench is broken")
        return elapsed
    finally:
        kv.close()


def state_sync(root: str, genesis, source: Chain, offer_bytes: bytes, sync: bool) -> tuple[float, float, StateFetcher]:
    kv = LevelDBKV(os.path.join(root, "state-sync"))
    try:
        started = time.monotonic()
        server = SnapshotServer(UNLIMITED, source.kv, source.blocks, source.schedule)
        fetcher = StateFetcher(kv, genesis)
        fetcher.begin(verify_offer(decode_message(offer_bytes), genesis))
        while not fetcher.done:
            for peer, request in fetcher.requests(PEERS, time.monotonic()):
                answer, _ = server.answer_nodes(peer, decode_message(request.encode()).hashes)
                reason = fetcher.on_nodes(peer, decode_message(answer.encode()))
                if reason:
                    raise SystemExit(f"an honest answer was refused ({reason}): the bench is broken")
        fetched = time.monotonic() - started
        fetcher.finish()
        newcomer = Chain(kv, genesis, sync=sync)
        block_sync(newcomer, source, source.height)
        elapsed = time.monotonic() - started
        if newcomer.state.root != source.state.root:
            raise SystemExit("state sync reached another state root: the bench is broken")
        return elapsed, fetched, fetcher
    finally:
        kv.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=100_000, help="chain length N (default 100000)")
    parser.add_argument("--txs-per-block", type=int, default=1, help="new warranty passports registered per block")
    parser.add_argument("--interval", type=int, default=1_000, help="snapshot interval of the serving peer")
    parser.add_argument("--behind", type=int, default=500, help="blocks the tip is past the snapshot point")
    parser.add_argument("--no-fsync", action="store_true", help="do not fsync the newcomers' commits")
    args = parser.parse_args(argv)
    sync = not args.no_fsync
    snapshot_at = max(1, ((args.blocks - args.behind) // args.interval) * args.interval)
    root = tempfile.mkdtemp(prefix="bench-sync-")
    try:
        progress(f"building a {args.blocks}-block chain ({args.txs_per_block} tx/block), snapshot at {snapshot_at}")
        genesis, kv, source, offer = build_chain(root, args.blocks, args.txs_per_block, snapshot_at, sync)
        progress("syncing from genesis")
        baseline = sync_from_genesis(root, genesis, source, sync)
        progress(f"from genesis: {baseline:.1f} s; state syncing")
        total, fetched, fetcher = state_sync(root, genesis, source, offer, sync)
        tag = f"{args.blocks}_blocks"
        emit(result(BENCH, f"reach_tip_seconds_{tag}_state_sync_vs_genesis", total, "s", baseline))
        emit(result(BENCH, f"state_sync_fetch_seconds_{tag}", fetched, "s", baseline))
        emit(result(BENCH, f"state_sync_trie_nodes_{tag}", fetcher.stats.nodes, "nodes", None))
        emit(result(BENCH, f"state_sync_trie_bytes_{tag}", fetcher.stats.bytes, "bytes", None))
        emit(result(BENCH, f"state_sync_blocks_after_snapshot_{tag}", args.blocks - snapshot_at, "blocks", None))
        kv.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
