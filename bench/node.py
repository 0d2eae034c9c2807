"""Node benchmark: a 4-validator devnet on this machine under increasing offered load.

Run: ``python -m bench.node [--validators 4] [--rates 100,200,400,800] [--seconds 5]``.
For each offered rate, pre-signed ledger transfers are submitted round-robin to all
nodes in JSON-RPC batches; a websocket subscription to new blocks timestamps each
commit. Printed per rate (JSON lines): committed tx/s (baseline: the offered rate, so
ratio = the share of the offered load the network sustained), latency p50/p95/p99 from
submit to commit notification, and the mean block interval.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time

import aiohttp

from bench.common import emit, progress, result
from devnet import launcher
from devnet.launcher import free_base_port
from devnet.genesis import create_devnet
from ledger.types import TxBody
from node.home import read_key_file

SENDERS = ("buyer-1", "buyer-2", "buyer-3", "merchant-acme", "merchant-globex")
#: Transactions per JSON-RPC batch sent by the load generator.
SUBMIT_BATCH = 50
#: Time allowed after the offered window for the last transactions to commit.
DRAIN_S = 10.0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Run:
    def __init__(self, root: str, validators: int) -> None:
        base = free_base_port(2 * validators)
        self.layout = create_devnet(root, validators, p2p_port=base, rpc_port=base + validators, seed="bench",
                                    config_overrides={("log", "level"): "warning",
                                                      ("mempool", "max_per_sender"): 20_000,
                                                      ("mempool", "nonce_window"): 20_000,
                                                      ("mempool", "max_txs"): 200_000})
        self.manifest = launcher.up(root, validators, timeout=120)
        self.urls = [n["rpc"] for n in self.manifest["nodes"]]
        self.keys = [read_key_file(os.path.join(self.layout.keys_dir, f"{n}.json")) for n in SENDERS]
        self.nonces = {k.public_key: 0 for k in self.keys}
        self.to = read_key_file(os.path.join(self.layout.keys_dir, "issuer.json")).public_key

    def presign(self, count: int) -> list[tuple[str, str]]:
        """(tx id, raw hex) for ``count`` transfers spread over the senders, nonces in order."""
        txs = []
        for i in range(count):
            key = self.keys[i % len(self.keys)]
            nonce = self.nonces[key.public_key]
            self.nonces[key.public_key] = nonce + 1
            tx = TxBody(self.layout.genesis.chain_id, key.public_key, nonce, "ledger", "transfer", [self.to, 1],
                        100_000).sign(key)
            txs.append(("0x" + tx.tx_id.hex(), "0x" + tx.encode().hex()))
        return txs

    async def offer(self, rate: int, seconds: float) -> dict:
        txs = self.presign(int(rate * seconds))
        submitted: dict[str, float] = {}
        committed: dict[str, float] = {}
        block_times: list[float] = []
        refused = 0
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(self.urls[0].replace("http", "ws") + "/ws", max_msg_size=0)
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribe", "params": ["newBlocks"]})

            async def listen() -> None:
                async for message in ws:
                    data = json.loads(message.data)
                    if data.get("method") == "chain_subscription":
                        now = time.monotonic()
                        block_times.append(now)
                        for tx_id in data["params"]["result"]["txs"]:
                            committed.setdefault(tx_id, now)

            listener = asyncio.create_task(listen())
            start = time.monotonic()
            batches = [txs[i:i + SUBMIT_BATCH] for i in range(0, len(txs), SUBMIT_BATCH)]
            for index, batch in enumerate(batches):
                due = start + index * SUBMIT_BATCH / rate
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                body = [{"jsonrpc": "2.0", "id": j, "method": "chain_sendRawTransaction", "params": [raw]}
                        for j, (_, raw) in enumerate(batch)]
                url = self.urls[index % len(self.urls)] + "/rpc"
                sent_at = time.monotonic()
                async with session.post(url, json=body) as response:
                    replies = await response.json()
                for reply in replies:
                    tx_id = batch[reply["id"]][0]
                    if "result" in reply:
                        submitted[tx_id] = sent_at
                    else:
                        refused += 1
            offered_s = time.monotonic() - start
            deadline = time.monotonic() + DRAIN_S
            while time.monotonic() < deadline and not all(t in committed for t in submitted):
                await asyncio.sleep(0.05)
            listener.cancel()
            await ws.close()
        latencies = [committed[t] - s for t, s in submitted.items() if t in committed]
        done = [committed[t] for t in submitted if t in committed]
        span = max(offered_s, (max(done) - start) if done else 0.0) or float("nan")
        intervals = [b - a for a, b in zip(block_times, block_times[1:])]
        return {"offered": rate, "offered_s": offered_s, "submitted": len(submitted), "refused": refused,
                "committed": len(done), "tps": len(done) / span, "latencies": latencies,
                "block_interval": statistics.mean(intervals) if intervals else float("nan")}

    def stop(self) -> None:
        launcher.down(self.layout.root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--validators", type=int, default=4)
    parser.add_argument("--rates", default="100,200,400,800")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="shopchain-bench-node-")
    run = Run(os.path.join(root, "devnet"), args.validators)
    try:
        for rate in [int(r) for r in args.rates.split(",")]:
            progress(f"offering {rate} tx/s for {args.seconds} s")
            r = asyncio.run(run.offer(rate, args.seconds))
            tag = f"{args.validators}v_{rate}"
            emit(result("node", f"committed_tps_at_{tag}", r["tps"], "tx/s", rate))
            for p in (50, 95, 99):
                emit(result("node", f"latency_p{p}_at_{tag}", percentile(r["latencies"], p) * 1000, "ms", None))
            emit(result("node", f"block_interval_at_{tag}", r["block_interval"] * 1000, "ms", None))
            if r["refused"] or r["committed"] < r["submitted"]:
                progress(f"  refused {r['refused']}, uncommitted {r['submitted'] - r['committed']}")
    finally:
        run.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
