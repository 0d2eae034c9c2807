"""A node with ``[storage] retain_states``: pruned at open, proofs at kept heights, refusals below them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil

import pytest

from ledger import encoding
from ledger.state_proof import verify_proof
from ledger.storage import schema
from ledger.storage.kv import MemoryKV
from ledger.storage.leveldb import LevelDBKV
from node.core.chain import Chain
from node.ops.config import load_config
from node.ops.verify import verify_store
from node.rpc.jsonrpc import CallContext
from node.rpc.methods import HEIGHT_PRUNED
from node.service import Node
from node.statesync.fetch import StateFetcher
from node.statesync.serve import SnapshotServer
from node.statesync.wire import verify_offer
from tests.helpers import walk_state
from p2p.limits import TransportLimits
from tests.helpers import devnet_home_with_blocks

BLOCKS = 12
INTERVAL = 5


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """An archive home with BLOCKS certified blocks (built once, copied per test)."""
    return devnet_home_with_blocks(str(tmp_path_factory.mktemp("prune") / "d"), "prune-node", BLOCKS, lambda h: 2,
                                   sync=False)


@pytest.fixture
def home(pristine, tmp_path):
    layout, source = pristine
    copy = str(tmp_path / "node")
    shutil.copytree(source, copy)
    return layout, copy


def rpc(node, method: str, params: list) -> dict:  # type: ignore[no-untyped-def]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    return json.loads(asyncio.run(node.rpc.dispatcher.handle(body, CallContext("http"))))


def set_config(home: str, section_key_values: dict[str, int]) -> None:
    path = os.path.join(home, "config.toml")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for name, value in section_key_values.items():
        text, count = re.subn(rf"(?m)^{name} = .*$", f"{name} = {value}", text)
        assert count == 1, name
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def node_count(home: str) -> int:
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    try:
        return sum(1 for _ in kv.iterate(prefix=schema.STATE_NODE_PREFIX))
    finally:
        kv.close()


def test_an_archive_store_opened_with_a_window_is_pruned_and_refuses_below_it(home) -> None:
    _layout, home = home
    archived = node_count(home)
    # Keep 3 states; snapshots every 4 heights keep 8 and 12 (the two latest), so the window starts at 8.
    set_config(home, {"retain_states": 3, "snapshot_interval": 4})
    node = Node(home)
    try:
        assert node.chain.state_pruner.pruned_below == 8
        key = next(node.kv.iterate(prefix=schema.STATE_VALUE_PREFIX))[0][len(schema.STATE_VALUE_PREFIX):]
        for height in (8, 10, BLOCKS):
            answer = rpc(node, "chain_getProof", ["0x" + key.hex(), height])["result"]
            value = None if answer["value"] is None else bytes.fromhex(answer["value"][2:])
            proof = encoding.decode(bytes.fromhex(answer["proof"][2:]))
            assert verify_proof(bytes.fromhex(answer["state_root"][2:]), key, value, proof)
        refused = rpc(node, "chain_getProof", ["0x" + key.hex(), 7])
        assert "result" not in refused
        assert refused["error"]["message"].startswith(
            "state at height 7 is pruned: this node keeps states from height 8 (retain_states = 3)")
        assert refused["error"]["code"] == HEIGHT_PRUNED and refused["error"]["data"]["oldest_state_height"] == 8
        assert rpc(node, "chain_getBlock", [7])["result"]["header"]["height"] == 7  # blocks are another matter
    finally:
        node.kv.close()
    assert node_count(home) < archived


def test_a_pruning_node_keeps_its_two_latest_snapshots_and_a_newcomer_fetches_one(home) -> None:
    layout, home = home
    genesis = layout.genesis
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    try:
        chain = Chain(kv, genesis, sync=False, retain_states=1, snapshot_interval=INTERVAL)
        assert chain.state_pruner.pruned_below == 5  # the head alone, but snapshots 10 and 5 stay
        for height in (5, 10, BLOCKS):
            walk_state(kv, chain.blocks.get_state_root(height))
        server = SnapshotServer(TransportLimits(), kv, chain.blocks, chain.schedule, INTERVAL, clock=lambda: 0.0)
        offer, refused = server.offer(b"\x01" * 32)
        assert refused == "" and offer.height == 10
        mem = MemoryKV()
        fetcher = StateFetcher(mem, genesis)
        fetcher.begin(verify_offer(offer, genesis))
        for _ in range(1000):
            if fetcher.done:
                break
            for peer, request in fetcher.requests([b"\x01" * 32], 0.0):
                answer, refused = server.answer_nodes(peer, request.hashes)
                assert refused == "" and fetcher.on_nodes(peer, answer) == ""
        fetcher.finish()
        newcomer = Chain(mem, genesis, sync=False, retain_states=1)  # serves no snapshots: keeps the head only
        for height in range(11, BLOCKS + 1):
            newcomer.commit(chain.blocks.get_block(height), chain.blocks.get_certificate(height))
        assert newcomer.state.root == chain.state.root and newcomer.state_pruner.pruned_below == BLOCKS
        newcomer.state.check_flat_table()
        # Its base state (10) is pruned: verify starts from the oldest whole state (the head here), proves
        # that block from genesis and checks its state, and says which height it started from.
        report = verify_store(mem, genesis)
        assert report.ok, report.problem
        assert report.replayed_from == BLOCKS and report.checked == 0 and report.state_entries > 0
        assert report.checks[0] == f"validator-set chain from genesis to the base {BLOCKS}"
        # Without the snapshot floor the window is the head alone, and a snapshot below it is not offered.
        bare = Chain(kv, genesis, sync=False, retain_states=1)
        assert bare.state_pruner.pruned_below == BLOCKS
        offer, refused = server.offer(b"\x02" * 32)
        assert refused == "" and offer.height == 0
        walk_state(kv, bare.state.root)
        bare.state.check_flat_table()
    finally:
        kv.close()
