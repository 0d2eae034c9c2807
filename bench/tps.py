"""End-to-end throughput and latency of a real devnet on this machine.

How this works: a fresh devnet (4, 7 or 10 validator processes, default config, synced
commits) is created in a temporary directory with ``--clients`` extra funded buyer
accounts. Each account is pinned to one node (so its nonces arrive in order) and its
transactions are signed before a step starts, with a gas limit of ``GAS_HEADROOM``
times what one trial transaction of the kind used (as a client estimating gas
would). A step offers ``rate`` transactions a second for ``--seconds``: every
``TICK_S`` the due transactions go out as JSON-RPC batches of
``chain_sendRawTransaction`` over aiohttp, ``CONNECTIONS_PER_NODE`` concurrent
requests per node (open loop: the generator never waits for commits). A
websocket ``newBlocks`` subscription on node 0 timestamps commits, so latency is
submit-to-committed as a client of node 0 would see it. CPU per transaction comes
from ``/proc/<pid>/stat`` of every node; the generator's own CPU per transaction, how
busy the whole machine was and the share used by other processes (so figures from a
shared machine say so) come with it. Rates rise until commits fall well behind, then ``--past-saturation`` more steps show
what overload does (admission backpressure should keep throughput near the peak).

The physical ceiling of the same run: strict ed25519 verifications per second on one
core x cores / validators (every validator verifies every transaction once, and all
of them share this machine). Every line is ``{bench, metric, value, unit, baseline,
ratio}``; a PNG chart shows throughput and latency against offered load.

    python -m bench.tps [--validators 4|7|10] [--past-saturation K] [--seconds N] [--kind transfer|order]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import urllib.request

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.chart import BLUE, GREEN, RED, Canvas, line_chart, save_png
from bench.common import emit, per_second, progress, result
from devnet import launcher
from devnet.launcher import free_base_port
from devnet.genesis import create_devnet
from ledger.crypto import SigningKey, sha256, verify_ed25519
from ledger.types import TxBody
from node.client import Client
from node.ops.home import read_key_file
from ledger.hexfmt import to_hex
from contracts_vm.system import DAY

BENCH = "tps"
#: Offered rates (tx/s) tried in order, until commits fall behind.
DEFAULT_RATES = (50, 100, 200, 400, 700, 1000, 1500, 2000)
#: A step whose committed rate is below this share of the offered rate is past saturation.
SATURATION_SHARE = 0.6
#: Steps run past the first saturated one (each at the next listed rate, or 1.5x the last),
#: to show that committed throughput holds and admitted latency stays bounded (no collapse).
PAST_SATURATION_STEPS = 2
#: How often the generator sends what is due.
TICK_S = 0.05
#: JSON-RPC batch size (the node's default [rpc] max_batch is 100).
BATCH = 100
#: Concurrent HTTP requests per node.
CONNECTIONS_PER_NODE = 4
#: Longest wait after a step for its transactions to commit.
DRAIN_LIMIT_S = 30.0
#: Gas limit of each benchmark transaction: this multiple of what a trial one used, as a
#: client that estimates gas would set it. Blocks are capped by the sum of their
#: transactions' gas limits ([consensus] max_block_gas), so a client asking 5,000,000
#: gas for a ~4,000-gas placement caps every block at 40 placements.
GAS_HEADROOM = 4
ORDER_PRICE = 1_000
#: Receipts checked per step (committed is not enough: the transaction must have succeeded).
RECEIPT_SAMPLE = 20
#: Timing runs of the ed25519 ceiling (the best counts).
CEILING_RUNS = 3
#: The node's count of transaction signature verifications (node/ops/metric_defs.py).
VERIFICATIONS_METRIC = "shopchain_tx_signature_verifications"
#: Functions listed per profile summary.
PROFILE_TOP = 12
#: Inclusive frames on more than this share of samples are left out of the summary.
PROFILE_FRAME_SHARE = 0.9


class Bench:
    def __init__(self, root: str, validators: int, clients: int, kind: str) -> None:
        self.kind = kind
        base = free_base_port(2 * validators)
        layout = create_devnet(root, validators, p2p_port=base, rpc_port=base + validators, seed="bench",
                               config_overrides={("log", "level"): "warning"}, extra_buyers=clients)
        self.genesis = layout.genesis
        self.manifest = launcher.up(root, validators, timeout=launcher.UP_TIMEOUT_S)
        self.urls = [n["rpc"] for n in self.manifest["nodes"]]
        self.accounts = [read_key_file(os.path.join(layout.keys_dir, f"client-{i}.json")) for i in range(clients)]
        self.nonces = [0] * clients
        self.keys_dir = layout.keys_dir
        self.merchant = read_key_file(os.path.join(layout.keys_dir, "merchant-acme.json"))
        self.order_args: list | None = None
        self.gas_limit = 0
        self.submitted: dict[str, float] = {}
        self.committed: dict[str, float] = {}
        self.blocks: list[tuple[float, int, int]] = []  # (time, height, tx count)
        self.refused: dict[str, int] = {}

    def stop(self) -> None:
        launcher.down(self.manifest_root, lambda _: None)

    @property
    def manifest_root(self) -> str:
        return os.path.dirname(os.path.dirname(self.manifest["nodes"][0]["home"]))

    # --- transactions --------------------------------------------------------------------

    def prepare(self, gas: int | None = None) -> None:
        """Publish the merchant's terms (orders) and size the gas limit from one trial transaction
        (or use ``gas``: e.g. a flat limit, to see what over-asking does to block sizes)."""
        client = Client(self.urls[0], self.genesis.chain_id)
        if self.kind == "order":
            arbiter = read_key_file(os.path.join(self.keys_dir, "arbiter.json")).public_key
            client.transact(self.merchant, "orders", "set_terms", 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 14 * DAY, 1000, 365 * DAY, arbiter)
            terms = client.call("orders", "terms_hash_of", self.merchant.public_key)
            self.order_args = [self.merchant.public_key, [[sha256(b"sku"), 1, ORDER_PRICE, bytes.fromhex(terms[2:])]],
                               sha256(b"pii"), sha256(b"payload"), sha256(b"review-key"), b"", b"", b""]
        contract, method, args = self._call()
        receipt = client.transact(self.accounts[0], contract, method, *args)
        self.nonces[0] += 1
        self.gas_limit = gas or GAS_HEADROOM * receipt["gas_used"]
        progress(f"a trial {self.kind} used {receipt['gas_used']} gas; every transaction asks for {self.gas_limit}")

    def _call(self) -> tuple[str, str, list]:
        if self.kind == "transfer":
            return "ledger", "transfer", [self.merchant.public_key, 1]
        return "orders", "place", list(self.order_args or [])

    def sign(self, count: int) -> list[tuple[int, str, bytes]]:
        """``count`` transactions round-robin over the accounts: (node, tx id, raw)."""
        out = []
        chain_id = self.genesis.chain_id
        for i in range(count):
            a = i % len(self.accounts)
            key = self.accounts[a]
            contract, method, args = self._call()
            body = TxBody(chain_id, key.public_key, self.nonces[a], contract, method, args, self.gas_limit)
            self.nonces[a] += 1
            out.append((a % len(self.urls), to_hex(body.tx_id), body.sign(key).encode()))
        return out

    # --- one step ----------------------------------------------------------------------------

    async def _post(self, session: aiohttp.ClientSession, sem: asyncio.Semaphore, url: str,
                    batch: list[tuple[int, str, bytes]]) -> None:
        payload = [{"jsonrpc": "2.0", "id": i, "method": "chain_sendRawTransaction", "params": [to_hex(raw)]}
                   for i, (_, _, raw) in enumerate(batch)]
        async with sem:
            sent = time.monotonic()
            for _, tx_id, _ in batch:
                self.submitted[tx_id] = sent
            try:
                async with session.post(url + "/rpc", json=payload) as response:
                    replies = await response.json(content_type=None)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.refused[type(exc).__name__] = self.refused.get(type(exc).__name__, 0) + len(batch)
                return
        for reply in replies if isinstance(replies, list) else [replies]:
            if "error" in reply:
                data = reply["error"].get("data")
                reason = data.get("reason") if isinstance(data, dict) else str(reply["error"].get("code"))
                self.refused[reason] = self.refused.get(reason, 0) + 1

    async def _watch(self, ready: asyncio.Event) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(self.urls[0] + "/ws", max_msg_size=0) as ws:
                await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribe", "params": ["newBlocks"]})
                ready.set()
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        return
                    data = json.loads(message.data)
                    if data.get("method") != "chain_subscription":
                        continue
                    now = time.monotonic()
                    block = data["params"]["result"]
                    self.blocks.append((now, block["height"], block["tx_count"]))
                    for tx_id in block["txs"]:
                        self.committed.setdefault(tx_id, now)

    async def _offer(self, txs: list[tuple[int, str, bytes]], rate: float, seconds: float) -> float:
        """Send ``txs`` at ``rate``; returns how far behind schedule the generator fell (s)."""
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=CONNECTIONS_PER_NODE * len(self.urls))
        sems = [asyncio.Semaphore(CONNECTIONS_PER_NODE) for _ in self.urls]
        tasks = []
        lag = 0.0
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            start = time.monotonic()
            sent = 0
            step = 0
            while sent < len(txs):
                step += 1
                due = min(len(txs), int(rate * step * TICK_S))
                by_node: dict[int, list] = {}
                for tx in txs[sent:due]:
                    by_node.setdefault(tx[0], []).append(tx)
                sent = due
                for node, items in by_node.items():
                    for i in range(0, len(items), BATCH):
                        tasks.append(asyncio.create_task(self._post(session, sems[node], self.urls[node],
                                                                    items[i:i + BATCH])))
                wake = start + step * TICK_S
                lag = max(lag, time.monotonic() - wake)
                await asyncio.sleep(max(0.0, wake - time.monotonic()))
            await asyncio.gather(*tasks)
        return lag

    def verifications(self) -> list[float]:
        """Each node's shopchain_tx_signature_verifications_total (signatures checked so far)."""
        out = []
        for url in self.urls:
            with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
                text = response.read().decode()
            out.append(next((sample.value for family in text_string_to_metric_families(text)
                             if family.name == VERIFICATIONS_METRIC for sample in family.samples), float("nan")))
        return out

    def cpu_split(self) -> list[tuple[float, float]]:
        """(user, system) CPU seconds of every node (system: syscalls, the kernel's TCP and disk work)."""
        ticks = os.sysconf("SC_CLK_TCK")
        out = []
        for node in self.manifest["nodes"]:
            with open(f"/proc/{node['pid']}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) / ticks, int(fields[12]) / ticks))
        return out

    async def step(self, rate: float, seconds: float, profile_dir: str | None = None) -> dict:
        txs = self.sign(int(rate * seconds))
        ids = [t for _, t, _ in txs]
        machine_before, generator_before = machine_cpu_seconds(), time.process_time()
        verified_before = self.verifications()  # a blocking scrape: before the step's clock starts
        split_before = self.cpu_split()
        cpu_before, t0 = [u + k for u, k in split_before], time.monotonic()
        blocks_before = len(self.blocks)
        spies = []
        if profile_dir is not None:
            # node0 is the first primary; node1 shows what a backup spends.
            for i in (0, 1):
                out = os.path.join(profile_dir, f"node{i}-{int(rate)}.txt")
                spies.append((i, out, subprocess.Popen(
                    ["py-spy", "record", "--format", "raw", "--nonblocking", "-d", str(max(1, int(seconds))),
                     "-p", str(self.manifest["nodes"][i]["pid"]), "-o", out],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        lag = await self._offer(txs, rate, seconds)
        offered_s = time.monotonic() - t0
        for i, out, spy in spies:
            await asyncio.get_running_loop().run_in_executor(None, spy.wait)
            progress(summarise_profile(out, f"node{i}"))
        deadline = time.monotonic() + DRAIN_LIMIT_S
        while time.monotonic() < deadline and sum(1 for t in ids if t in self.committed) < len(ids) - sum(self.refused.values()):
            await asyncio.sleep(0.05)
        window_end = t0 + offered_s
        in_window = sum(1 for t in ids if t in self.committed and self.committed[t] <= window_end)
        done = [t for t in ids if t in self.committed]
        elapsed = max(self.committed[t] for t in done) - t0 if done else offered_s
        split_after = self.cpu_split()
        cpu_after = [u + k for u, k in split_after]
        system_cpu = sum(b[1] - a[1] for a, b in zip(split_before, split_after))
        machine_after, generator_after = machine_cpu_seconds(), time.process_time()
        busy = machine_after[0] - machine_before[0]
        wall = machine_after[1] - machine_before[1]
        nodes_cpu = sum(b - a for a, b in zip(cpu_before, cpu_after))
        generator_cpu = generator_after - generator_before
        latencies = sorted((self.committed[t] - self.submitted[t]) * 1000 for t in done if t in self.submitted)
        times = [b[0] for b in self.blocks[blocks_before:]]
        intervals = [(b - a) * 1000 for a, b in zip(times, times[1:])]
        cpu_per_tx = [(b - a) / max(1, len(done)) * 1e6 for a, b in zip(cpu_before, cpu_after)]
        verified_per_tx = [(b - a) / max(1, len(done)) for a, b in zip(verified_before, self.verifications())]

        sample = random.Random(len(done)).sample(done, min(RECEIPT_SAMPLE, len(done)))
        client = Client(self.urls[0], self.genesis.chain_id)
        failed = [r for r in (client.receipt(t) for t in sample) if r["status"] != "ok"]
        if failed:
            progress(f"  {len(failed)} of {len(sample)} sampled receipts failed, e.g. {failed[0]['error']}")

        def pct(q: float) -> float:
            return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] if latencies else float("nan")

        return {"rate": rate, "offered": len(ids), "committed": len(done), "committed_in_window": in_window,
                "tps": len(done) / elapsed if elapsed > 0 else 0.0, "generator_lag_s": lag,
                "p50": pct(50), "p95": pct(95), "p99": pct(99),
                "block_interval_ms": statistics.mean(intervals) if intervals else float("nan"),
                "blocks": len(times), "cpu_us_per_tx": cpu_per_tx, "verified_per_tx": verified_per_tx, "refused": dict(self.refused),
                "generator_us_per_tx": generator_cpu / max(1, len(done)) * 1e6,
                "node_system_share": system_cpu / nodes_cpu if nodes_cpu > 0 else float("nan"),
                "machine_busy_share": busy / wall if wall > 0 else float("nan"),
                "other_cpu_share": max(0.0, busy - nodes_cpu - generator_cpu) / wall if wall > 0 else float("nan"),
                "failed_share": len(failed) / len(sample) if sample else 0.0}


def summarise_profile(path: str, label: str = "node0", top: int = PROFILE_TOP) -> str:
    """The functions a py-spy raw profile spent most samples in: self (leaf) and inclusive."""
    if not os.path.exists(path):
        return f"  no profile at {path} (is py-spy installed? pip install py-spy)"
    leaf: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = [f.split(" (")[0] for f in stack.split(";")]
            total += n
            leaf[frames[-1]] += n
            for name in set(frames):
                inclusive[name] += n
    if not total:
        return f"  empty profile at {path}"

    # Frames on (nearly) every stack are the event loop and the entry point: not informative.
    inclusive = collections.Counter({k: v for k, v in inclusive.items() if v < PROFILE_FRAME_SHARE * total})

    def fmt(counter: collections.Counter) -> str:
        return ", ".join(f"{name} {100 * n / total:.0f}%" for name, n in counter.most_common(top))

    return f"  profile of {label} ({total} samples, {path}):\n    self: {fmt(leaf)}\n    inclusive: {fmt(inclusive)}"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return value


def machine_cpu_seconds() -> tuple[float, float]:
    """(CPU seconds all cores spent busy, seconds all cores existed) from /proc/stat.

    The step reports how busy the machine was and how much of that was neither the
    nodes nor the generator: figures from a shared machine say so themselves.
    """
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return (total - idle) / ticks, total / ticks


def ed25519_ceiling(validators: int) -> tuple[float, float]:
    """(strict ed25519 verifications per second on one core, that x cores / validators)."""
    key = SigningKey.from_label("ceiling")
    message = b"x" * 200  # about a transfer's signed payload
    signature, public = key.sign_raw(message), key.public_key
    assert verify_ed25519(public, message, signature)
    # Best of a few runs: the machine may be shared, and the ceiling is what one core can do.
    per_core = max(per_second(lambda: verify_ed25519(public, message, signature), min_seconds=1.0)
                   for _ in range(CEILING_RUNS))
    return per_core, per_core * (os.cpu_count() or 1) / validators


def draw(steps: list[dict], path: str) -> None:
    canvas = Canvas(1000, 420)
    xs = [float(s["rate"]) for s in steps]
    line_chart(canvas, (70, 30, 480, 370), xs, [([s["tps"] for s in steps], BLUE)], diagonal=True)
    line_chart(canvas, (570, 30, 980, 370), xs, [([s["p50"] for s in steps], GREEN), ([s["p99"] for s in steps], RED)])
    save_png(canvas, path)


async def run(bench: Bench, rates: list[float], seconds: float, profile_dir: str | None,
              past_saturation: int = PAST_SATURATION_STEPS) -> list[dict]:
    ready = asyncio.Event()
    watcher = asyncio.create_task(bench._watch(ready))
    await asyncio.wait_for(ready.wait(), 30)
    steps: list[dict] = []
    rates = list(rates)
    extra = None  # steps left once saturated
    try:
        while rates and extra != 0:
            rate = rates.pop(0)
            progress(f"offering {rate} tx/s for {seconds} s ...")
            step = await bench.step(rate, seconds, profile_dir)
            steps.append(step)
            progress(f"  committed {step['tps']:.0f} tx/s, p50 {step['p50']:.0f} ms, p99 {step['p99']:.0f} ms, "
                     f"blocks {step['blocks']}, cpu/tx {[round(c) for c in step['cpu_us_per_tx']]} us "
                     f"({100 * step['node_system_share']:.0f}% in the kernel), "
                     f"generator {step['generator_us_per_tx']:.0f} us/tx, machine busy "
                     f"{100 * step['machine_busy_share']:.0f}% (other processes {100 * step['other_cpu_share']:.0f}%), "
                     f"lag {step['generator_lag_s']:.2f} s, refused {step['refused']}")
            if extra is not None:
                extra -= 1
            elif step["tps"] < SATURATION_SHARE * rate:
                extra = past_saturation
            if extra and not rates:
                rates.append(rate * 1.5)
    finally:
        watcher.cancel()
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--validators", type=int, choices=(4, 7, 10), default=4)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each offered-rate step")
    parser.add_argument("--kind", choices=("transfer", "order"), default="transfer")
    parser.add_argument("--clients", type=int, default=200, help="funded sender accounts")
    parser.add_argument("--rates", default=",".join(str(r) for r in DEFAULT_RATES), help="offered rates, tx/s")
    parser.add_argument("--past-saturation", type=int, default=PAST_SATURATION_STEPS,
                        help="steps to run past the first saturated one (overload behaviour)")
    parser.add_argument("--profile", action="store_true", help="sample node0 (first primary) and node1 (a backup) with py-spy during every step")
    parser.add_argument("--gas", type=_positive_int, default=None,
                        help=f"gas limit of every transaction (default: {GAS_HEADROOM}x what a trial one used)")
    parser.add_argument("--chart", default=None, help="PNG path (default bench-tps-<kind>-<validators>.png)")
    args = parser.parse_args(argv)
    per_core, ceiling = ed25519_ceiling(args.validators)
    emit(result(BENCH, "ed25519_verify_per_core", per_core, "verifications/s", None))
    emit(result(BENCH, "ceiling_tps", ceiling, "tx/s", None))
    root = tempfile.mkdtemp(prefix="shopchain-bench-")
    progress(f"starting a {args.validators}-validator devnet in {root}")
    bench = Bench(os.path.join(root, "devnet"), args.validators, args.clients, args.kind)
    try:
        bench.prepare(args.gas)
        profile_dir = os.path.join(root, "profiles") if args.profile else None
        if profile_dir:
            os.makedirs(profile_dir)
        steps = asyncio.run(run(bench, [float(r) for r in args.rates.split(",")], args.seconds, profile_dir,
                                args.past_saturation))
    finally:
        bench.stop()
    tag = f"{args.kind}/{args.validators}v"
    for s in steps:
        r = int(s["rate"])
        emit(result(BENCH, f"{tag}/committed_tps@{r}", s["tps"], "tx/s", s["rate"]))
        emit(result(BENCH, f"{tag}/committed_share@{r}", s["committed"] / max(1, s["offered"]), "share", 1.0))
        for q in ("p50", "p95", "p99"):
            emit(result(BENCH, f"{tag}/latency_{q}_ms@{r}", s[q], "ms", None))
        emit(result(BENCH, f"{tag}/block_interval_ms@{r}", s["block_interval_ms"], "ms", None))
        emit(result(BENCH, f"{tag}/cpu_per_tx_per_node_us@{r}", statistics.mean(s["cpu_us_per_tx"]), "us", None))
        emit(result(BENCH, f"{tag}/verifications_per_tx_per_node_max@{r}", max(s["verified_per_tx"]), "verifications", 1.0))
        emit(result(BENCH, f"{tag}/failed_receipt_share@{r}", s["failed_share"], "share", None))
        emit(result(BENCH, f"{tag}/generator_cpu_per_tx_us@{r}", s["generator_us_per_tx"], "us", None))
        emit(result(BENCH, f"{tag}/machine_busy_share@{r}", s["machine_busy_share"], "share", None))
        emit(result(BENCH, f"{tag}/other_processes_cpu_share@{r}", s["other_cpu_share"], "share", None))
        emit(result(BENCH, f"{tag}/node_kernel_cpu_share@{r}", s["node_system_share"], "share", None))
    best = max(steps, key=lambda s: s["tps"])
    emit(result(BENCH, f"{tag}/sustained_tps", best["tps"], "tx/s", ceiling))
    emit(result(BENCH, f"{tag}/latency_p99_ms_at_best", best["p99"], "ms", None))
    beyond = steps[steps.index(best) + 1:]
    if beyond:
        # Overload: what the steps above the peak still commit, against the peak (>= 0.9 is no collapse).
        worst = min(beyond, key=lambda s: s["tps"])
        emit(result(BENCH, f"{tag}/past_peak_tps_min", worst["tps"], "tx/s", best["tps"]))
        emit(result(BENCH, f"{tag}/past_peak_latency_p99_ms_max", max(s["p99"] for s in beyond), "ms", best["p99"]))
    chart = args.chart or f"bench-tps-{args.kind}-{args.validators}.png"
    draw(steps, chart)
    progress(f"chart: {chart} (left: committed tx/s [blue] vs offered, dashed = offered; "
             f"right: latency p50 [green] and p99 [red] in ms vs offered)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
