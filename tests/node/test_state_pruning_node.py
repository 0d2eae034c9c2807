"""A node with ``[storage] retain_states``: pruned at open, proofs at kept heights, refusals below them."""

from __future__ import annotations

import asyncio
import json
import os
import re

from ledger import encoding
from ledger.state_proof import verify_proof
from ledger.storage import schema
from ledger.storage.leveldb import LevelDBKV
from node.ops.config import load_config
from node.rpc.jsonrpc import CallContext
from node.service import Node
from tests.helpers import devnet_home_with_blocks

BLOCKS = 12


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


def test_an_archive_store_opened_with_a_window_is_pruned_and_refuses_below_it(tmp_path) -> None:
    _layout, home = devnet_home_with_blocks(str(tmp_path / "d"), "prune-node", BLOCKS, lambda h: 2, sync=False)
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
        assert refused["error"]["data"]["oldest_state_height"] == 8
        assert rpc(node, "chain_getBlock", [7])["result"]["header"]["height"] == 7  # blocks are another matter
    finally:
        node.kv.close()
    assert node_count(home) < archived
