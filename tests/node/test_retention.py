"""Block retention on a real chain: the retain height, pruning per commit, and a pruned home's
reads, RPC answers, catch-up serving, verification and snapshots."""

from __future__ import annotations

import asyncio
import json
import os
from types import SimpleNamespace

import pytest

from ledger.errors import ChainError
from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV
from ledger.types import PHASE_COMMIT, CommitCertificate, TxBody, Vote
from ledger.validator_set import ValidatorSchedule
from node.catchup import REASON_BEYOND_HEAD, CatchupServer
from node.core.chain import Chain
from node.core.retention import MIN_RETAIN_BLOCKS, BlockRetention
from node.ops.config import ConfigError, load_config, parse_config
from node.ops.home import init_home, read_key_file
from node.ops.snapshot import export_snapshot, import_snapshot
from node.ops.verify import verify_home, verify_store
from node.rpc.jsonrpc import CallContext
from node.rpc.methods import HEIGHT_PRUNED, NOT_FOUND, make_routes
from node.rpc.server import RpcServer
from node.statesync.serve import SnapshotServer
from p2p.limits import TransportLimits
from tests.helpers import devnet_home_with_blocks

BLOCKS = 30
KEEP = 8


def keep(blocks: int, interval: int = 0) -> BlockRetention:
    return BlockRetention(blocks, interval, min_retain_blocks=1)


# --- the retain height --------------------------------------------------------------------

def test_retain_height_keeps_the_newest_blocks_and_the_snapshots_newcomers_fetch():
    assert BlockRetention().retain_height(10_000) == 0  # archive
    assert keep(100).retain_height(50) == 0 and keep(100).retain_height(100) == 1
    assert keep(100).retain_height(1_000) == 901
    # Snapshots every 100: at head 1,050 the latest is 1,000, the one a newcomer may still fetch is 900.
    assert keep(10, 100).retain_height(1_050) == 900
    assert keep(10, 100).retain_height(199) == 0  # only one snapshot yet: it and everything after it stay
    assert keep(500, 100).retain_height(1_050) == 551  # retention above the snapshot floor wins


def test_retain_blocks_below_the_catch_up_minimum_is_refused(tmp_path):
    with pytest.raises(ChainError, match=f"at least {MIN_RETAIN_BLOCKS}"):
        BlockRetention(MIN_RETAIN_BLOCKS - 1)
    with pytest.raises(ConfigError, match=r"\[storage\] retain_blocks: expected 0 \(keep every block\) or at least"):
        parse_config(str(tmp_path), {"storage": {"retain_blocks": 10}})
    cfg = parse_config(str(tmp_path), {"storage": {"retain_blocks": MIN_RETAIN_BLOCKS}})
    assert cfg.get("storage", "retain_blocks") == MIN_RETAIN_BLOCKS
    assert parse_config(str(tmp_path), {}).get("storage", "retain_blocks") == 0


# --- a pruned home ------------------------------------------------------------------------

class Grower:
    """Certified blocks of transfers committed on one chain (as devnet_home_with_blocks builds them)."""

    def __init__(self, layout, chain: Chain) -> None:
        self.layout, self.chain = layout, chain
        self.node_keys = [read_key_file(os.path.join(h, "node_key.json")) for h in layout.node_homes]
        self.buyer = read_key_file(os.path.join(layout.keys_dir, "buyer-1.json"))
        self.merchant = read_key_file(os.path.join(layout.keys_dir, "merchant-acme.json"))

    def grow(self, count: int, txs: int = 2) -> list[bytes]:
        chain, ids = self.chain, []
        cert = chain.head_certificate()
        for _ in range(count):
            height, nonce = chain.height + 1, chain.nonce(self.buyer.public_key)
            batch = [TxBody(chain.chain_id, self.buyer.public_key, nonce + i, "ledger", "transfer",
                            [self.merchant.public_key, 5], 1_000_000).sign(self.buyer) for i in range(txs)]
            block = chain.build_block(0, height, chain.head_hash(), cert, self.node_keys[0].public_key, batch,
                                      now_ms=self.layout.genesis.genesis_time_ms + 1_000 * height)
            cert = CommitCertificate.from_votes([Vote.create(k, chain.chain_id, PHASE_COMMIT, 0, height,
                                                             block.block_hash) for k in self.node_keys[:3]])
            chain.commit(block, cert)
            ids += [tx.tx_id for tx in batch]
        return ids


@pytest.fixture(scope="module")
def pruned(tmp_path_factory):
    """A devnet home with BLOCKS blocks of which the newest KEEP are held; the store is closed."""
    root = str(tmp_path_factory.mktemp("retention") / "devnet")
    layout, home = devnet_home_with_blocks(root, "retention-test", 1, lambda h: 1, sync=False)
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    chain = Chain(kv, layout.genesis, sync=False, retention=keep(KEEP))
    first_ids = Grower(layout, chain).grow(BLOCKS - 1)
    assert chain.blocks.base == BLOCKS - KEEP + 1
    kv.close()
    return layout, home, first_ids


def open_chain(layout, home, retention=BlockRetention()) -> Chain:
    return Chain(LevelDBKV(load_config(home).path("node", "data_dir")), layout.genesis, sync=False,
                 retention=retention)


def test_each_commit_prunes_to_the_retain_height_and_the_store_reopens(pruned):
    layout, home, _ = pruned
    chain = open_chain(layout, home)  # the open check passes on the pruned store
    try:
        base = BLOCKS - KEEP + 1
        assert (chain.height, chain.blocks.base) == (BLOCKS, base)
        assert chain.blocks.get_block(base - 1) is None and chain.blocks.get_block(base).height == base
        assert chain.blocks.get_set_proof(base - 1) is None  # no set change below: nothing kept
    finally:
        chain.kv.close()


def test_turning_retention_on_drains_a_backlog_a_bounded_batch_per_commit(tmp_path, monkeypatch):
    from ledger.storage import pruning

    monkeypatch.setattr(pruning, "PRUNE_BATCH_BLOCKS", 4)
    layout, home = devnet_home_with_blocks(str(tmp_path / "d"), "retention-backlog", 20, lambda h: 1, sync=False)
    chain = open_chain(layout, home, keep(3))
    try:
        grower = Grower(layout, chain)
        bases = []
        for _ in range(6):
            grower.grow(1, txs=1)
            bases.append(chain.blocks.base)
        assert bases == [5, 9, 13, 17, 21, 24]  # 4 a commit until it reaches head - 3 + 1
    finally:
        chain.kv.close()


def test_blocks_a_reader_still_needs_are_not_pruned(tmp_path):
    """The node's SQL indexer sets the floor to its next height: a lagging indexer keeps its blocks."""
    layout, home = devnet_home_with_blocks(str(tmp_path / "d"), "retention-floor", 4, lambda h: 1, sync=False)
    chain = open_chain(layout, home, keep(3))
    indexed = [6]
    chain.prune_floor = lambda: indexed[0] + 1
    try:
        grower = Grower(layout, chain)
        grower.grow(12, txs=1)
        assert chain.blocks.base == 7  # would be head - 3 + 1 = 14 without the floor
        indexed[0] = 20
        grower.grow(1, txs=1)
        assert chain.blocks.base == chain.height - 3 + 1
    finally:
        chain.kv.close()


def test_a_pruned_home_verifies_offline_from_its_base(pruned):
    _layout, home, _ = pruned
    report = verify_home(home)
    assert report.ok, report.problem
    assert (report.base, report.checked, report.head) == (BLOCKS - KEEP + 1, KEEP - 1, BLOCKS)
    assert any("base" in check for check in report.checks)


def test_a_pruned_home_exports_and_imports_and_the_copy_verifies(pruned, tmp_path):
    layout, home, _ = pruned
    out = str(tmp_path / "pruned.snap")
    header = export_snapshot(home, out)
    new_home = str(tmp_path / "copy")
    from ledger.crypto import SigningKey

    init_home(new_home, layout.genesis, SigningKey.generate())
    assert import_snapshot(new_home, out).height == header.height == BLOCKS
    report = verify_home(new_home)
    assert report.ok and report.base == BLOCKS - KEEP + 1


# --- RPC answers of a pruned node -----------------------------------------------------------

def call(server: RpcServer, method: str, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    reply = json.loads(asyncio.run(server.dispatcher.handle(body, CallContext("http"))))
    return reply.get("result"), reply.get("error")


@pytest.fixture
def rpc(pruned):
    layout, home, first_ids = pruned
    chain = open_chain(layout, home)
    view = SimpleNamespace(blocks=chain.blocks, genesis=layout.genesis, mempool={},
                           state_proof=lambda key, root: (None, []))
    yield RpcServer(make_routes(view)), chain, first_ids  # type: ignore[arg-type]
    chain.kv.close()


def test_old_heights_answer_height_pruned_naming_the_oldest_height(rpc):
    server, _chain, _ = rpc
    base = BLOCKS - KEEP + 1
    for method, params in (("chain_getBlock", [base - 1]), ("chain_getCertificate", [1]),
                           ("chain_getProof", ["0x00", base - 1]), ("chain_getBlock", [0])):
        result, error = call(server, method, *params)
        assert result is None and error["code"] == HEIGHT_PRUNED, (method, error)
        assert error["data"]["oldest_height"] == base
        assert f"the oldest height held is {base}" in error["message"] and "retain_blocks" in error["message"]
    assert call(server, "chain_getBlock", base)[0]["height"] == base
    assert call(server, "chain_getProof", "0x00", base)[0]["height"] == base


def test_a_pruned_transaction_is_not_found_with_the_oldest_height(rpc):
    server, chain, first_ids = rpc
    base = chain.blocks.base
    for method in ("chain_getTransaction", "chain_getReceipt"):
        _, error = call(server, method, "0x" + first_ids[0].hex())
        assert error["code"] == NOT_FOUND  # clients polling for a receipt keep polling on this code
        assert error["data"]["oldest_height"] == base and f"from height {base} on only" in error["message"]
    held = first_ids[-1]
    assert call(server, "chain_getReceipt", "0x" + held.hex())[0]["height"] == BLOCKS


# --- serving peers ------------------------------------------------------------------------

def test_a_peer_asking_below_the_base_is_not_served_and_not_counted_as_misbehaving(pruned):
    layout, home, _ = pruned
    chain = open_chain(layout, home)
    try:
        server = CatchupServer(TransportLimits(), chain.blocks.get_stored_pair, 1 << 20, clock=lambda: 0.0)
        base = chain.blocks.base
        assert server.answer(b"p" * 32, base - 3, 32, chain.height) == (None, "")
        assert server.below_base_requests == 1
        answer, refused = server.answer(b"p" * 32, base, 32, chain.height)
        assert refused == "" and answer is not None
        assert server.answer(b"p" * 32, chain.height + 1, 32, chain.height) == (None, REASON_BEYOND_HEAD)
    finally:
        chain.kv.close()


def test_set_change_proofs_survive_pruning_so_snapshots_prove_the_set_chain(tmp_path):
    """A schedule with a change at height 12: its header 11 and certificate are kept below the base,
    and the state-sync offer (which walks the set chain from genesis) still builds and verifies."""
    from node.statesync.wire import verify_offer

    layout, home = devnet_home_with_blocks(str(tmp_path / "d"), "retention-sets", 1, lambda h: 0, sync=False)
    keys = list(layout.genesis.validator_keys)
    schedule = ValidatorSchedule(((1, tuple(keys)), (12, tuple(keys[1:] + keys[:1]))))
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    try:
        chain = Chain(kv, layout.genesis, sync=False, schedule_of=lambda state: schedule, retention=keep(5, 5))
        grower = Grower(layout, chain)
        grower.node_keys = sorted(grower.node_keys, key=lambda k: keys.index(k.public_key))
        grower.grow(24, txs=0)
        assert chain.blocks.base == 20  # head 25: snapshots at 25 and 20; keep from 20 (not 21)
        kept = BlockStore(kv).get_set_proof(11)
        assert kept is not None and chain.blocks.get_block(11) is None
        server = SnapshotServer(TransportLimits(), kv, chain.blocks, chain.schedule, 5, clock=lambda: 0.0)
        offer, refused = server.offer(b"n" * 32)
        assert refused == "" and offer.height == 25 and [p.from_height for p in offer.set_proofs] == [12]
        assert verify_offer(offer, layout.genesis).height == 25
    finally:
        kv.close()


def _store_copy(pruned, tmp_path):  # type: ignore[no-untyped-def]
    """(layout, an open copy of the pruned home's store) that a test may damage."""
    import shutil

    layout, home, _ = pruned
    copy = str(tmp_path / "store-copy")
    shutil.copytree(load_config(home).path("node", "data_dir"), copy)
    return layout, LevelDBKV(copy, create=False)


def test_verify_store_reports_a_missing_base_block(pruned, tmp_path):
    """A store whose base block was deleted by hand is refused with the base named, not crashed on."""
    from ledger.storage import schema

    layout, kv = _store_copy(pruned, tmp_path)
    try:
        base = BlockStore(kv).base
        kv.write([(schema.receipts_key(base), None)])
        report = verify_store(kv, layout.genesis)
        assert not report.ok and report.bad_height == base and "missing" in report.problem
    finally:
        kv.close()


def test_verify_starts_at_the_oldest_held_state_when_the_bases_state_was_pruned(pruned, tmp_path):
    """State pruning ([storage] retain_states) may remove the state of the oldest held blocks:
    verification then proves and replays from the oldest height whose state is stored."""
    from ledger.storage import schema

    layout, kv = _store_copy(pruned, tmp_path)
    try:
        base = BlockStore(kv).base
        kv.write([(schema.state_node_key(BlockStore(kv).get_state_root(base)), None)])
        report = verify_store(kv, layout.genesis)
        assert report.ok, report.problem
        assert report.checked == BLOCKS - base - 1 and f"base block {base + 1} certificate and receipts" in report.checks
    finally:
        kv.close()


def test_the_disk_benchmark_workload_closes_orders_and_its_pruning_node_holds_fewer_blocks(tmp_path):
    """bench.disk drives real orders through their life (every receipt must succeed) on a store it prunes."""
    from bench.disk import STAGES, Workload

    work = Workload(str(tmp_path / "w"), retain_blocks=3, retain_states=0, orders_per_block=2, snapshot_interval=2)
    try:
        work.prepare()
        for _ in range(len(STAGES) + 4):
            work.step()
        events = [e.name for r in work.chain.blocks.get_receipts(work.chain.height) for e in r.events]
        assert "OrderClosed" in events and "OrderPlaced" in events
        assert work.chain.height == 10 and work.chain.blocks.base == 8  # keep 3, and from snapshot 8 (latest: 10)
        assert work.measure() > 0 and work.namespaces()["BLOCK"] > 0
    finally:
        work.kv.close()


def test_the_cli_says_a_pruned_home_was_verified_from_its_base(pruned):
    from click.testing import CliRunner

    from cli.main import main

    _layout, home, _ = pruned
    result = CliRunner().invoke(main, ["node", "verify", "--home", home])
    assert result.exit_code == 0, result.output
    base = BLOCKS - KEEP + 1
    assert f"prunes old blocks ([storage] retain_blocks) and holds no block below {base}" in result.output
    assert f"re-executed blocks {base + 1}..{BLOCKS}" in result.output
    out = CliRunner().invoke(main, ["node", "verify", "--home", home, "--json"]).stdout
    report = json.loads(out)
    assert report["pruned"] is True and report["base"] == report["replayed_from"] == base
