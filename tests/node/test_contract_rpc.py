"""chain_getContract: a contract's ABI and code hash at a height, checkable against a state proof."""

from __future__ import annotations

import asyncio
import hashlib
import json
from types import SimpleNamespace

import pytest

from ledger.storage.leveldb import LevelDBKV
from node.core.chain import Chain
from node.ops.config import load_config
from node.rpc.jsonrpc import INVALID_PARAMS, CallContext
from node.rpc.methods import NOT_FOUND, make_routes
from node.rpc.server import RpcServer
from tests.helpers import devnet_home_with_blocks


def call(server: RpcServer, method: str, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    reply = json.loads(asyncio.run(server.dispatcher.handle(body, CallContext("http"))))
    return reply.get("result"), reply.get("error")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    layout, home = devnet_home_with_blocks(str(tmp_path_factory.mktemp("contract") / "devnet"), "contract-rpc", 3,
                                           lambda h: 1, sync=False)
    chain = Chain(LevelDBKV(load_config(home).path("node", "data_dir")), layout.genesis, sync=False)
    view = SimpleNamespace(blocks=chain.blocks, genesis=layout.genesis, mempool={},
                           state_proof=lambda key, root: (chain.state.get_at(root, key), chain.state.prove(key, root)))
    yield RpcServer(make_routes(view))  # type: ignore[arg-type]
    chain.kv.close()


def test_the_abi_and_code_hash_at_a_height_match_the_proven_code(server):
    answer, error = call(server, "chain_getContract", "ledger")
    assert error is None and answer["height"] == 3 and answer["contract"] == "ledger"
    names = {m["name"]: m for m in answer["abi"]["methods"]}
    assert names["transfer"]["args"] == [["to", "bytes"], ["amount", "int"]] and names["transfer"]["kind"] == "public"
    assert ["balances", ["bytes"], "int"] in answer["abi"]["storage"]
    proof, _ = call(server, "chain_getProof", answer["state_key"], answer["height"])
    code = bytes.fromhex(proof["value"][2:])
    assert "0x" + hashlib.sha256(code).hexdigest() == answer["code_hash"] and len(code) == answer["code_bytes"]
    assert call(server, "chain_getContract", "ledger", 1)[0]["code_hash"] == answer["code_hash"]  # not upgraded


def test_unknown_contracts_and_bad_names_are_refused_clearly(server):
    _, error = call(server, "chain_getContract", "nosuch")
    assert error["code"] == NOT_FOUND and "no contract named 'nosuch' is installed at height 3" in error["message"]
    _, error = call(server, "chain_getContract", "Bad Name")
    assert error["code"] == INVALID_PARAMS and "contract" in error["message"]
    _, error = call(server, "chain_getContract", "ledger", 99)
    assert error["code"] == NOT_FOUND and "not committed yet" in error["message"]
