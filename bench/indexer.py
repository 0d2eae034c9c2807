"""The in-node indexer's lag at a sustained load, and what indexing costs the chain.

How this works: a devnet genesis is created in a temporary directory and its first
node's chain (node.core.chain.Chain over LevelDB, synced commits as a validator
writes them) commits blocks of pre-signed ``ledger.transfer`` transactions, each
certified by three validator keys, in the main thread, as the node's event loop would;
the in-node indexer (node.indexer.runner.IndexerThread over the block store, exactly
as node/service.py wires it) runs on its thread and is notified after each commit.
Just before each commit the lag is sampled: committed blocks not yet in the index.
Two loads: ``paced`` offers ``--rate`` transactions a second in blocks of
``--txs-per-block`` (the devnet's sustained load: one block per ``txs/rate`` seconds),
``flat-out`` commits as fast as the chain can execute (the worst case). Baselines from
the same run: the same load with a no-op sink (the pipeline without SQL) for the lag,
and the same load with no indexer at all for the commit rate, so the cost of indexing
to consensus shows as a ratio. A last line times a catch-up of the whole chain into a
fresh SQLite index (the restart case) against reading the same blocks from the store.
The machine's load average is printed first, since other work shares the cores.

``--devnet SECONDS`` measures the same on a real 4-validator devnet (processes, PBFT,
synced commits, the in-node indexer as configured by default): a generator thread
offers ``--rate`` signed transfers a second from ``DEVNET_SENDERS`` funded accounts as
JSON-RPC batches, and every ``SAMPLE_S`` each node's /metrics is read for
``shopchain_indexer_lag_blocks``. Its lag lines take the run's commit rate (blocks/s)
as their baseline, so their ratio is the lag in seconds; the committed transaction
rate is compared with the same devnet and load with ``[indexer] enabled = false``.

    python -m bench.indexer [--blocks N] [--txs-per-block N] [--rate TX_PER_S] [--db URL] [--devnet SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import threading
import time
import urllib.request

from bench.common import emit, progress, result
from devnet import launcher
from devnet.genesis import create_devnet
from devnet.launcher import free_base_port
from ledger.storage.leveldb import LevelDBKV
from ledger.types import PHASE_COMMIT, CommitCertificate, TxBody, Vote
from node.core.chain import Chain
from node.indexer.runner import IN_NODE_BATCH_BLOCKS, Indexer, IndexerThread, StoreSource
from node.indexer.sink import open_sink
from node.ops.config import load_config
from node.ops.home import read_key_file

BENCH = "indexer"
#: Blocks committed per measured run (each run is a fresh chain).
DEFAULT_BLOCKS = 300
#: Transactions per block of the sustained load.
DEFAULT_TXS_PER_BLOCK = 20
#: Offered transactions per second of the paced load (the devnet's sustained order of magnitude).
DEFAULT_RATE = 200
#: Longest the bench waits for an indexer to drain after the last block, in seconds.
DRAIN_TIMEOUT_S = 120.0
#: Funded accounts the devnet load is sent from (each pinned to one node, so its nonces arrive in order).
DEVNET_SENDERS = 16
#: How often the devnet load generator sends what is due, and how often /metrics is sampled, in seconds.
TICK_S, SAMPLE_S = 0.1, 0.1
#: Most transactions in one JSON-RPC batch of the generator (the node's default batch limit is 100).
MAX_SUBMIT_BATCH = 100


class NullSink:
    """A sink that stores nothing: the indexer pipeline (store reads, batching) without SQL."""

    dialect = "none"

    def __init__(self) -> None:
        self.height = 0

    def open(self, chain_id: str) -> int:
        return self.height

    def indexed_height(self) -> int:
        return self.height

    def write(self, batch) -> int:
        self.height = batch[-1][0].height
        return self.height

    def close(self) -> None:
        pass


def percentile(values: list[int], share: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(share * len(ordered)))]) if ordered else 0.0


def run(root: str, blocks: int, txs_per_block: int, interval_s: float, sink_kind: str | None,
        db_url: str | None = None) -> dict:
    """Commit ``blocks`` blocks (one per ``interval_s`` at most) with the indexer ``sink_kind``
    ("sqlite", "null", "url" or None for none); returns lags, commit rate and the index's height."""
    layout = create_devnet(root, validators=4, seed="bench-indexer")
    home = layout.node_homes[0]
    node_keys = [read_key_file(os.path.join(h, "node_key.json")) for h in layout.node_homes]
    buyer = read_key_file(os.path.join(layout.keys_dir, "buyer-1.json"))
    merchant = read_key_file(os.path.join(layout.keys_dir, "merchant-acme.json"))
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    chain = Chain(kv, layout.genesis, sync=True)
    signed = [TxBody(chain.chain_id, buyer.public_key, n, "ledger", "transfer", [merchant.public_key, 1 + n % 97],
                     1_000_000).sign(buyer) for n in range(blocks * txs_per_block)]
    thread = None
    if sink_kind is not None:
        sink = {"null": NullSink, "sqlite": lambda: open_sink(f"sqlite:///{home}/index.sqlite"),
                "url": lambda: open_sink(db_url)}[sink_kind]()
        indexer = Indexer(sink, StoreSource(chain.blocks, chain.chain_id), IN_NODE_BATCH_BLOCKS)  # type: ignore[arg-type]
        thread = IndexerThread(indexer)
        thread.start()
    lags: list[int] = []
    cert = None
    start = time.perf_counter()
    try:
        for height in range(1, blocks + 1):
            due = start + (height - 1) * interval_s
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            txs = signed[(height - 1) * txs_per_block:height * txs_per_block]
            block = chain.build_block(0, height, chain.head_hash(), cert, node_keys[0].public_key, txs,
                                      now_ms=layout.genesis.genesis_time_ms + 1_000 * height)
            cert = CommitCertificate.from_votes([Vote.create(k, chain.chain_id, PHASE_COMMIT, 0, height,
                                                             block.block_hash) for k in node_keys[:3]])
            if thread is not None:
                lags.append(chain.height - (thread.indexer.height or 0))
            outcome = chain.commit(block, cert)
            if thread is not None:
                thread.notify(block, outcome.receipts)
        elapsed = time.perf_counter() - start
        indexed = None
        if thread is not None:
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while (thread.indexer.height or 0) < blocks and time.monotonic() < deadline:
                time.sleep(0.01)
            indexed = thread.indexer.height
    finally:
        if thread is not None:
            thread.stop()
        kv.close()
    return {"lags": lags, "blocks_per_s": blocks / elapsed, "indexed": indexed, "home": home,
            "chain_id": layout.genesis.chain_id}


def catch_up(home: str, chain_id: str, blocks: int) -> tuple[float, float]:
    """Blocks per second: a fresh SQLite index of the whole store, and reading the same blocks only."""
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    try:
        from ledger.storage.blockstore import BlockStore

        store = BlockStore(kv)
        t0 = time.perf_counter()
        Indexer(NullSink(), StoreSource(store, chain_id)).catch_up()  # type: ignore[arg-type]
        read_rate = blocks / (time.perf_counter() - t0)
        sink = open_sink(f"sqlite:///{home}/catchup.sqlite")
        t0 = time.perf_counter()
        Indexer(sink, StoreSource(store, chain_id)).catch_up()
        index_rate = blocks / (time.perf_counter() - t0)
        sink.close()
    finally:
        kv.close()
    return index_rate, read_rate


def _post(url: str, body: object) -> object:
    request = urllib.request.Request(url + "/rpc", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _metric(text: str, name: str) -> int | None:
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    return None if found is None else int(float(found.group(1)))


def devnet_run(root: str, seconds: float, rate: float, indexer: bool) -> dict:
    """A 4-validator devnet under ``rate`` transfers a second for ``seconds``: lag samples and commit rates."""
    base = free_base_port(8)
    layout = create_devnet(root, 4, p2p_port=base, rpc_port=base + 4, seed="bench-indexer",
                           extra_buyers=DEVNET_SENDERS, config_overrides={("indexer", "enabled"): indexer})
    merchant = read_key_file(os.path.join(layout.keys_dir, "merchant-acme.json")).public_key
    senders = [read_key_file(os.path.join(layout.keys_dir, f"client-{i}.json")) for i in range(DEVNET_SENDERS)]
    total = int(rate * seconds)
    raws = [[] for _ in range(4)]
    for n in range(total):
        key = senders[n % DEVNET_SENDERS]
        body = TxBody(layout.genesis.chain_id, key.public_key, n // DEVNET_SENDERS, "ledger", "transfer",
                      [merchant, 1], 1_000_000)
        raws[(n % DEVNET_SENDERS) % 4].append("0x" + body.sign(key).encode().hex())
    manifest = launcher.up(root, 4)
    urls = [node["rpc"] for node in manifest["nodes"]]
    lags: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_S):
            for url in urls:
                try:
                    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
                        lag = _metric(response.read().decode(), "shopchain_indexer_lag_blocks")
                except OSError:
                    continue
                if lag is not None:
                    lags.append(lag)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        start_height = _post(urls[0], {"jsonrpc": "2.0", "id": 0, "method": "chain_status"})["result"]["height"]  # type: ignore[index]
        sampler.start()
        t0 = time.perf_counter()
        sent = [0, 0, 0, 0]
        while True:
            due = min(total, int((time.perf_counter() - t0) * rate))
            for i, url in enumerate(urls):
                want = (due * len(raws[i])) // total if total else 0
                while sent[i] < want:
                    chunk = raws[i][sent[i]:min(want, sent[i] + MAX_SUBMIT_BATCH)]
                    _post(url, [{"jsonrpc": "2.0", "id": k, "method": "chain_sendRawTransaction", "params": [raw]}
                                for k, raw in enumerate(chunk)])
                    sent[i] += len(chunk)
            if due >= total:
                break
            time.sleep(TICK_S)
        elapsed = time.perf_counter() - t0
        end_height = _post(urls[0], {"jsonrpc": "2.0", "id": 0, "method": "chain_status"})["result"]["height"]  # type: ignore[index]
        stop.set()
        sampler.join(5)
        heights = list(range(start_height + 1, end_height + 1))
        txs = 0
        for i in range(0, len(heights), MAX_SUBMIT_BATCH):
            replies = _post(urls[0], [{"jsonrpc": "2.0", "id": h, "method": "chain_getBlock", "params": [h]}
                                      for h in heights[i:i + MAX_SUBMIT_BATCH]])
            txs += sum(r["result"]["tx_count"] for r in replies)  # type: ignore[union-attr, index]
    finally:
        stop.set()
        launcher.down(root)
    return {"lags": lags, "blocks_per_s": len(heights) / elapsed, "tx_per_s": txs / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=DEFAULT_BLOCKS)
    parser.add_argument("--txs-per-block", type=int, default=DEFAULT_TXS_PER_BLOCK)
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="offered tx/s of the paced load")
    parser.add_argument("--db", default=None, help="also measure this index URL (e.g. postgresql://...)")
    parser.add_argument("--devnet", type=float, default=0.0, metavar="SECONDS",
                        help="measure on a real 4-validator devnet for this long (and skip the in-process runs)")
    args = parser.parse_args()
    load1, load5, _ = os.getloadavg()
    progress(f"load average {load1:.2f} {load5:.2f} on {os.cpu_count()} cores")
    emit(result(BENCH, "machine_load_avg_1m", load1, "load", None))
    if args.devnet:
        with tempfile.TemporaryDirectory(prefix="bench-indexer-devnet-") as root:
            progress(f"devnet, indexer on: {args.rate:.0f} tx/s for {args.devnet:.0f} s")
            on = devnet_run(os.path.join(root, "on"), args.devnet, args.rate, True)
            progress("devnet, indexer off")
            off = devnet_run(os.path.join(root, "off"), args.devnet, args.rate, False)
        for share, tag in ((0.5, "p50"), (0.99, "p99")):
            emit(result(BENCH, f"devnet_lag_{tag}", percentile(on["lags"], share), "blocks", on["blocks_per_s"]))
        emit(result(BENCH, "devnet_lag_max", max(on["lags"], default=0), "blocks", on["blocks_per_s"]))
        emit(result(BENCH, "devnet_lag_samples", len(on["lags"]), "samples", None))
        emit(result(BENCH, "devnet_committed_tx_rate", on["tx_per_s"], "tx/s", off["tx_per_s"]))
        emit(result(BENCH, "devnet_block_rate", on["blocks_per_s"], "blocks/s", off["blocks_per_s"]))
        return
    interval = args.txs_per_block / args.rate
    sinks = ["sqlite"] + (["url"] if args.db else [])
    for label, pace in (("paced", interval), ("flat_out", 0.0)):
        with tempfile.TemporaryDirectory(prefix="bench-indexer-") as root:
            progress(f"{label}: no indexer")
            bare = run(os.path.join(root, "none"), args.blocks, args.txs_per_block, pace, None)
            progress(f"{label}: no-op sink")
            null = run(os.path.join(root, "null"), args.blocks, args.txs_per_block, pace, "null")
            for kind in sinks:
                progress(f"{label}: {kind} sink")
                measured = run(os.path.join(root, kind), args.blocks, args.txs_per_block, pace, kind, args.db)
                name = "sqlite" if kind == "sqlite" else "db"
                assert measured["indexed"] == args.blocks, f"the {name} index stopped at {measured['indexed']}"
                for share, tag in ((0.5, "p50"), (0.99, "p99")):
                    emit(result(BENCH, f"{label}_{name}_lag_{tag}", percentile(measured["lags"], share), "blocks",
                                percentile(null["lags"], share)))
                emit(result(BENCH, f"{label}_{name}_lag_max", max(measured["lags"]), "blocks", max(null["lags"])))
                emit(result(BENCH, f"{label}_{name}_commit_rate", measured["blocks_per_s"], "blocks/s",
                            bare["blocks_per_s"]))
            if label == "flat_out":
                index_rate, read_rate = catch_up(bare["home"], bare["chain_id"], args.blocks)
                emit(result(BENCH, "catch_up_sqlite", index_rate, "blocks/s", read_rate))
                emit(result(BENCH, "catch_up_sqlite_tx", index_rate * args.txs_per_block, "tx/s",
                            read_rate * args.txs_per_block))


if __name__ == "__main__":
    main()
