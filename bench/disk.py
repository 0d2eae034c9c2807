"""Bytes on disk per transaction under a steady-state order workload: archive vs pruning.

Run: ``python -m bench.disk [--txs 10000,100000] [--retain-blocks N] [--retain-states N]
[--snapshot-interval I] [--orders-per-block K]``; ``--txs 10000,100000,1000000`` adds the million-transaction
point (an hour or more on the shared 2-core VM).

How this works: each mode builds its own chain in-process with the node's own ``Chain``
on a LevelDB store in a temporary directory (real execution, real certificates of 3 of
the devnet's 4 validators, commits unsynced as the figure is about bytes, not time).
Every block carries a pipeline of orders through their whole life: ``K`` placements by
a fixed set of buyers, and the acceptances (merchant), shipments and deliveries
(carrier), confirmations (buyer) and closes (``poke`` by the treasury once the return
window, 0 s here, has passed) of the ``K`` orders placed 1, 2, 3, 4 and 5 blocks
before; plus ``K`` transfers between the same buyers and one transfer from the
treasury (which collects every fee) back to the carrier, so every balance and nonce
is a key rewritten over and over. Blocks are one second apart in block time.

After each checkpoint of ``--txs`` the store is compacted (``LevelDBKV.compact``: so
deleted and overwritten entries leave the table files) and the bytes of every file in
its directory are summed. Lines (``{bench, metric, value, unit, baseline, ratio}``;
baseline = the archive node at the same point in the same run):

* ``bytes_on_disk@<txs>`` and ``bytes_per_tx@<txs>`` for the archive node (no
  baseline) and the pruning node (baseline = archive);
* ``marginal_bytes_per_tx@<a>-<b>``: the growth between two checkpoints over the
  transactions between them: flat disk means this falls to what grows anyway;
* ``namespace_bytes@<txs>[<namespace>]`` at the last checkpoint: key + value bytes per
  schema namespace (blocks, state nodes, flat state, ...), which says what is left.

What grows anyway, even when every block and old state is pruned: one order record
per order (the orders contract keeps ``orders[id]`` after it closes, with its lines
and hashes) and its zeroed escrow entry, the state-trie nodes that index them, and
the per-height state-root index (``S<height>``, 41 bytes a block, the state layer's).

``--retain-states`` (``[storage] retain_states``, state pruning) is passed to ``Chain``
(with the snapshot interval, whose states it keeps) only if the installed code accepts
it; otherwise the line's mode says ``retain_states=unsupported`` and only blocks are
pruned.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import tempfile
import time

from bench.common import emit, progress, result
from contracts_vm.system import DAY
from devnet.genesis import create_devnet
from ledger.crypto import sha256
from ledger.storage import schema
from ledger.storage.leveldb import LevelDBKV
from ledger.types import PHASE_COMMIT, STATUS_OK, CommitCertificate, TxBody, Vote
from node.core.chain import Chain
from node.core.retention import BlockRetention
from node.ops.home import read_key_file
from node.statesync.wire import SNAPSHOT_INTERVAL

BENCH = "disk"
#: Default checkpoints (cumulative transactions) at which the store is compacted and measured.
DEFAULT_CHECKPOINTS = (10_000, 100_000)
#: Largest checkpoint accepted (the million-transaction run is the intended maximum).
MAX_TXS = 10_000_000
#: Orders started per block; a block then holds 7 x this + 1 transactions in steady state.
DEFAULT_ORDERS_PER_BLOCK = 20
MAX_ORDERS_PER_BLOCK = 250  # 7 x 250 + 1 stays under the node's 2,000-transaction block cap
#: Buyers placing orders and sending each other transfers (a fixed set: their keys are rewritten).
BUYERS = 24
#: Blocks kept by the pruning node: far below the node's floor (node.core.retention.MIN_RETAIN_BLOCKS),
#: which this bench lowers, so a 10k-transaction chain shows pruning at all.
DEFAULT_RETAIN_BLOCKS = 100
DEFAULT_RETAIN_STATES = 100
ORDER_PRICE = 1_000
GAS_LIMIT = 1_000_000
#: Block time step: deadlines (an hour to accept, ship, deliver) never pass inside the pipeline.
BLOCK_STEP_MS = 1_000
#: The lifecycle after placement, one stage per block: (contract method, who sends it).
STAGES = ("accept", "ship", "deliver", "confirm", "poke")


def supports_retain_states() -> bool:
    """Whether the installed Chain prunes state ([storage] retain_states, another part of issue 16)."""
    return "retain_states" in inspect.signature(Chain.__init__).parameters


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))


class Workload:
    """The steady-state order pipeline on one chain (see the module docstring)."""

    def __init__(self, root: str, retain_blocks: int, retain_states: int, orders_per_block: int,
                 snapshot_interval: int = SNAPSHOT_INTERVAL) -> None:
        layout = create_devnet(os.path.join(root, "devnet"), validators=4, seed="bench-disk", extra_buyers=BUYERS)
        self.genesis = layout.genesis
        self.node_keys = [read_key_file(os.path.join(h, "node_key.json")) for h in layout.node_homes]
        keys = lambda name: read_key_file(os.path.join(layout.keys_dir, f"{name}.json"))  # noqa: E731
        self.buyers = [keys(f"client-{i}") for i in range(BUYERS)]
        self.merchants = [keys("merchant-acme"), keys("merchant-globex")]
        self.carrier, self.treasury = keys("carrier"), keys("treasury")
        self.arbiter = keys("arbiter").public_key
        self.path = os.path.join(root, "data")
        self.kv = LevelDBKV(self.path)
        kwargs: dict = {}
        if retain_blocks:
            kwargs["retention"] = BlockRetention(retain_blocks, snapshot_interval, min_retain_blocks=1)
        if retain_states and supports_retain_states():
            kwargs["retain_states"] = retain_states
            if "snapshot_interval" in inspect.signature(Chain.__init__).parameters:
                kwargs["snapshot_interval"] = snapshot_interval  # the states newcomers fetch are kept too
        self.chain = Chain(self.kv, self.genesis, sync=False, **kwargs)
        self.k = orders_per_block
        self.nonces: dict[bytes, int] = {}
        self.cert: CommitCertificate | None = None
        self.txs = 0
        self.cohorts: list[list[tuple[int, int, int]]] = []  # per block: (order id, buyer, merchant) placed there
        self.carrier_fees = 0  # what the carrier paid in the last block: the treasury pays it back
        self.terms: list[bytes] = []
        self.sequence = 0

    def _tx(self, key, contract: str, method: str, args: list):
        nonce = self.nonces.get(key.public_key, 0)
        self.nonces[key.public_key] = nonce + 1
        return TxBody(self.chain.chain_id, key.public_key, nonce, contract, method, args, GAS_LIMIT).sign(key)

    def commit(self, txs: list) -> list:
        chain = self.chain
        height = chain.height + 1
        block = chain.build_block(0, height, chain.head_hash(), self.cert, self.node_keys[0].public_key, txs,
                                  now_ms=self.genesis.genesis_time_ms + BLOCK_STEP_MS * height)
        self.cert = CommitCertificate.from_votes([Vote.create(k, chain.chain_id, PHASE_COMMIT, 0, height,
                                                              block.block_hash) for k in self.node_keys[:3]])
        receipts = chain.commit(block, self.cert).receipts
        for tx, receipt in zip(txs, receipts):
            if receipt.status != STATUS_OK:
                raise RuntimeError(f"block {height}: {tx.body.contract}.{tx.body.method} failed: {receipt.error}")
        self.txs += len(txs)
        return receipts

    def prepare(self) -> None:
        """Each merchant publishes its default terms (return window 0: an order closes a block after it completes)."""
        txs = [self._tx(m, "orders", "set_terms", [3600, 3600, 3600, 3600, 0, 0, 365 * DAY, self.arbiter])
               for m in self.merchants]
        self.terms = [r.return_value for r in self.commit(txs)]

    def step(self) -> None:
        """One block of the pipeline: K placements, the next stage of each earlier cohort, K + 1 transfers."""
        txs, placed = [], []
        for _ in range(self.k):
            b = self.sequence % BUYERS
            m = self.sequence % len(self.merchants)
            self.sequence += 1
            merchant = self.merchants[m]
            txs.append(self._tx(self.buyers[b], "orders", "place", [
                merchant.public_key, [[sha256(b"sku-%d" % m), 1, ORDER_PRICE, self.terms[m]]],
                sha256(b"pii-%d" % self.sequence), sha256(b"payload-%d" % self.sequence), sha256(b"rk-%d" % b),
                b"", b"", b""]))
            placed.append((b, m))
        for age, stage in enumerate(STAGES, start=1):
            if len(self.cohorts) < age:
                continue
            for order_id, b, m in self.cohorts[-age]:
                if stage == "accept":
                    txs.append(self._tx(self.merchants[m], "orders", "accept", [order_id, self.carrier.public_key,
                                                                       sha256(b"label-%d" % order_id)]))
                elif stage == "ship":
                    txs.append(self._tx(self.carrier, "orders", "ship", [order_id, sha256(b"t-%d" % order_id), False]))
                elif stage == "deliver":
                    txs.append(self._tx(self.carrier, "orders", "deliver", [order_id, sha256(b"p-%d" % order_id)]))
                elif stage == "confirm":
                    txs.append(self._tx(self.buyers[b], "orders", "confirm", [order_id]))
                else:
                    txs.append(self._tx(self.treasury, "orders", "poke", [order_id]))
        for i in range(self.k):
            src, dst = (self.sequence + i) % BUYERS, (self.sequence + i + 1) % BUYERS
            txs.append(self._tx(self.buyers[src], "ledger", "transfer", [self.buyers[dst].public_key, 1]))
        # The treasury collects every fee; it funds the carrier's next shipments and deliveries.
        txs.append(self._tx(self.treasury, "ledger", "transfer", [self.carrier.public_key, self.carrier_fees + 1]))
        receipts = self.commit(txs)
        self.carrier_fees = sum(r.fee for tx, r in zip(txs, receipts) if tx.body.sender == self.carrier.public_key)
        ids = [receipts[i].return_value for i in range(self.k)]
        self.cohorts.append([(order_id, b, m) for order_id, (b, m) in zip(ids, placed)])
        del self.cohorts[:-len(STAGES)]

    def measure(self) -> int:
        self.kv.compact()
        return dir_bytes(self.path)

    def namespaces(self) -> dict[str, int]:
        """Key + value bytes per schema namespace (one pass over the store)."""
        names = {getattr(schema, n): n for n in ("META", "BLOCK", "BLOCK_HASH", "HEADER", "CERT", "RECEIPTS",
                                                 "TX_INDEX", "STATE_NODE_PREFIX", "STATE_VALUE_PREFIX", "STATE_ROOT",
                                                 "SET_PROOF")}
        sizes: dict[str, int] = {}
        for key, value in self.kv.iterate():
            name = names.get(key[:1], "other")
            sizes[name] = sizes.get(name, 0) + len(key) + len(value)
        return sizes


def run_mode(root: str, checkpoints: list[int], retain_blocks: int, retain_states: int, k: int,
             snapshot_interval: int = SNAPSHOT_INTERVAL) -> dict:
    """{txs: bytes} at each checkpoint, plus the namespace sizes at the last one."""
    work = Workload(root, retain_blocks, retain_states, k, snapshot_interval)
    try:
        work.prepare()
        sizes: dict[int, int] = {}
        started = time.monotonic()
        for target in checkpoints:
            while work.txs < target:
                work.step()
            sizes[target] = work.measure()
            progress(f"  {work.txs} txs, {work.chain.height} blocks (base {work.chain.blocks.base}): "
                     f"{sizes[target]:,} bytes on disk, {time.monotonic() - started:.0f} s")
        return {"sizes": sizes, "txs": {t: t for t in checkpoints}, "namespaces": work.namespaces()}
    finally:
        work.kv.close()


def _checkpoints(text: str) -> list[int]:
    try:
        values = sorted({int(v.replace("_", "")) for v in text.split(",") if v.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated transaction counts, found {text!r}") from None
    if not values or values[0] < 1 or values[-1] > MAX_TXS:
        raise argparse.ArgumentTypeError(f"expected counts in 1..{MAX_TXS}, found {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.disk", description=__doc__.split("\n")[0])
    parser.add_argument("--txs", type=_checkpoints, default=list(DEFAULT_CHECKPOINTS),
                        help="checkpoints in transactions, comma-separated (default 10000,100000)")
    parser.add_argument("--retain-blocks", type=int, default=DEFAULT_RETAIN_BLOCKS)
    parser.add_argument("--retain-states", type=int, default=DEFAULT_RETAIN_STATES)
    parser.add_argument("--orders-per-block", type=int, default=DEFAULT_ORDERS_PER_BLOCK)
    parser.add_argument("--snapshot-interval", type=int, default=SNAPSHOT_INTERVAL,
                        help="[statesync] snapshot_interval: blocks from the second-latest snapshot are kept")
    args = parser.parse_args(argv)
    if not 1 <= args.orders_per_block <= MAX_ORDERS_PER_BLOCK:
        parser.error(f"--orders-per-block: expected 1..{MAX_ORDERS_PER_BLOCK}, found {args.orders_per_block}")
    if args.retain_blocks < 1 or args.retain_states < 0 or args.snapshot_interval < 1:
        parser.error("--retain-blocks and --snapshot-interval: expected at least 1; --retain-states: expected "
                     "0 or more")
    states = args.retain_states if supports_retain_states() else "unsupported"
    mode = f"retain_blocks={args.retain_blocks},retain_states={states},snapshot_interval={args.snapshot_interval}"
    root = tempfile.mkdtemp(prefix="bench-disk-")
    try:
        progress("archive node (keeps every block and state):")
        archive = run_mode(os.path.join(root, "archive"), args.txs, 0, 0, args.orders_per_block)
        progress(f"pruning node ({mode}):")
        pruned = run_mode(os.path.join(root, "pruned"), args.txs, args.retain_blocks, args.retain_states,
                          args.orders_per_block, args.snapshot_interval)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for label, run, base in (("archive", archive, None), (mode, pruned, archive)):
        for txs in args.txs:
            size = run["sizes"][txs]
            emit(result(BENCH, f"bytes_on_disk@{txs}[{label}]", size, "bytes",
                        None if base is None else base["sizes"][txs]))
            emit(result(BENCH, f"bytes_per_tx@{txs}[{label}]", size / txs, "bytes/tx",
                        None if base is None else base["sizes"][txs] / txs))
        for a, b in zip(args.txs, args.txs[1:]):
            grown = (run["sizes"][b] - run["sizes"][a]) / (b - a)
            emit(result(BENCH, f"marginal_bytes_per_tx@{a}-{b}[{label}]", grown, "bytes/tx",
                        None if base is None else (base["sizes"][b] - base["sizes"][a]) / (b - a)))
    last = args.txs[-1]
    for name in sorted(set(archive["namespaces"]) | set(pruned["namespaces"])):
        emit(result(BENCH, f"namespace_bytes@{last}[{mode}][{name}]", pruned["namespaces"].get(name, 0), "bytes",
                    archive["namespaces"].get(name, 0) or None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
