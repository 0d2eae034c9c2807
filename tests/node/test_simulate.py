"""``chain_simulate`` through the route table, on a lone validator's real node core.

The node core (mempool admission, the executor with fees, block building and commit)
runs in-process on a simulated clock; its chain is served the way a node serves it
(node.reads.NodeReads -> the route table -> the JSON-RPC dispatcher), so each test
drives the method exactly as a client's request would, and then checks that nothing
moved: state root, the stored keys, the account's nonce, the mempool and its refusal
counters. A simulation followed by the real submit must give the receipt the block gives.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from ledger.hexfmt import to_hex
from ledger.types import MAX_TX_BYTES, TxBody
from node.core.simulate import MAX_SIMULATED_AHEAD, Simulation, check_ahead
from node.reads import NodeReads
from node.rpc.jsonrpc import CHAIN_ERROR, INVALID_PARAMS, LIMIT_EXCEEDED, CallContext
from node.rpc.methods import make_routes
from node.rpc.server import RpcLimits, RpcServer
from tests.node.test_node_core import make_core, propose_next
from tests.sim.corenode import account_key

GAS = 200_000
BUYER, OTHER = account_key("buyer-1"), account_key("buyer-2")


def served_core():
    """A lone validator's core (``make_core``) and the node reads an RPC server answers from."""
    core, host, kv, clock = make_core()

    async def submit(raw: bytes):
        return core.submit(raw, 0.0)

    reads = NodeReads(core.genesis, "node0", core.chain, core.mempool, core.replica, lambda: [],
                      lambda: None, submit, now_ms=lambda: clock[0])
    return core, host, kv, clock, reads


class Node:
    """A lone validator's core and the RPC surface over it."""

    def __init__(self, limits: RpcLimits = RpcLimits()) -> None:
        self.core, self.host, self.kv, self.clock, self.reads = served_core()
        core = self.core
        self.server = RpcServer(make_routes(self.reads), limits)
        self.chain_id = core.genesis.chain_id

    def raw(self, key, contract: str, method: str, *args, nonce: int | None = None, gas: int = GAS) -> bytes:
        n = self.core.chain.nonce(key.public_key) if nonce is None else nonce
        return TxBody(self.chain_id, key.public_key, n, contract, method, list(args), gas).sign(key).encode()

    def rpc(self, method: str, *params) -> dict:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        return json.loads(asyncio.run(self.server.dispatcher.handle(body, CallContext("http"))))

    def simulate(self, tx) -> dict:
        reply = self.rpc("chain_simulate", to_hex(tx) if isinstance(tx, bytes) else tx)
        assert "error" not in reply, reply["error"]
        return reply["result"]

    def refused(self, tx) -> dict:
        reply = self.rpc("chain_simulate", to_hex(tx) if isinstance(tx, bytes) else tx)
        assert "error" in reply, reply
        return reply["error"]

    def fingerprint(self) -> tuple:
        """Everything a simulation must leave alone."""
        core = self.core
        return (core.chain.state.root, core.chain.height, sorted(core.kv.iterate()),
                core.chain.nonce(BUYER.public_key), len(core.mempool), dict(core.mempool.refusals))


@pytest.fixture()
def node() -> Node:
    return Node()


def test_a_failing_call_answers_the_contracts_error_and_changes_nothing(node):
    before = node.fingerprint()
    result = node.simulate(node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 10**14))
    assert result["status"] == "failed" and result["simulated"] is True and result["signed"] is True
    assert result["error_name"] == "RequireFailed"
    assert "insufficient balance" in result["error_message"] and result["error"].startswith(result["error_name"])
    assert result["gas_used"] > 0 and result["fee"] > 0   # what the block would charge
    assert result["height"] == 1 and result["timestamp_ms"] == node.core.chain.next_timestamp(node.clock[0])
    assert node.fingerprint() == before


def test_a_simulation_then_the_real_submit_give_the_same_receipt(node):
    raw = node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 125)
    simulated = node.simulate(raw)
    assert simulated["status"] == "ok" and simulated["error"] is None
    assert node.rpc("chain_sendRawTransaction", to_hex(raw))["result"] == simulated["tx_id"]
    propose_next(node.core, node.host, node.clock, list(node.core.mempool.pending_txs()))
    committed = node.rpc("chain_getReceipt", simulated["tx_id"])["result"]
    for field in ("tx_id", "status", "gas_used", "fee", "return_value", "error", "events"):
        assert committed[field] == simulated[field], field
    assert committed["height"] == simulated["height"] == 1


def test_an_unsigned_call_is_checked_and_run_like_the_signed_transaction(node):
    signed = node.simulate(node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 125))
    call = {"sender": to_hex(BUYER.public_key), "contract": "ledger", "method": "transfer",
            "args": [to_hex(OTHER.public_key), 125], "gas_limit": GAS}
    unsigned = node.simulate(call)
    assert unsigned["signed"] is False
    for field in ("tx_id", "status", "gas_used", "fee", "events"):
        assert unsigned[field] == signed[field], field
    # With a transaction pending, the default nonce is the next one and the pending one is replayed first.
    node.core.submit(node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 10**6 - 1), 0.0)
    balance = node.rpc("chain_call", "ledger", "balance_of", [to_hex(BUYER.public_key)], "latest")["result"]["result"]
    drained = node.simulate({**call, "args": [to_hex(OTHER.public_key), balance - 10**6 + 2]})
    assert drained["pending_replayed"] == 1 and drained["status"] == "failed"
    assert "insufficient balance" in drained["error_message"]
    assert node.simulate(call)["status"] == "ok" and len(node.core.mempool) == 1
    # The system pseudo-contract has no ABI: its own signature converts the JSON arguments.
    fees = node.simulate({"sender": to_hex(BUYER.public_key), "contract": "system", "method": "set_fees",
                          "args": [1, 1, to_hex(OTHER.public_key)], "gas_limit": GAS})
    assert fees["error_name"] == "PermissionDenied" and "the fee schedule is governed" in fees["error_message"]


def test_admission_refusals_and_malformed_input_are_clear_errors(node):
    before = node.fingerprint()
    stranger = account_key("nobody-at-all")
    error = node.refused(node.raw(stranger, "ledger", "transfer", OTHER.public_key, 1))
    assert error["code"] == CHAIN_ERROR and error["data"]["reason"] == "unregistered_sender"
    forged = bytearray(node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1))
    forged[-1] ^= 1
    assert node.refused(bytes(forged))["data"]["reason"] == "bad_signature"
    assert node.refused(node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1, gas=10**9))["data"]["reason"] \
        == "gas_too_high"
    big = node.refused("0x" + "00" * (MAX_TX_BYTES + 1))
    assert big["code"] == LIMIT_EXCEEDED and big["data"] == {"limit": "max_tx_bytes", "max": MAX_TX_BYTES,
                                                             "found": MAX_TX_BYTES + 1}
    garbled = node.refused("0x1234")
    assert garbled["code"] == CHAIN_ERROR and garbled["data"]["reason"] == "malformed"
    not_hex = node.refused("hello")
    assert not_hex["code"] == INVALID_PARAMS and "expected 0x-hex" in not_hex["message"]
    assert "found an odd number of digits" in node.refused("0x123")["message"]
    missing = node.refused({"sender": to_hex(BUYER.public_key), "contract": "ledger", "method": "transfer"})
    assert missing["code"] == INVALID_PARAMS and "found no gas_limit" in missing["message"]
    typo = node.refused({"sender": to_hex(BUYER.public_key), "contract": "ledger", "method": "transfer",
                         "gas_limit": GAS, "argz": []})
    assert "found unknown argz" in typo["message"] and "sender, contract, method, args" in typo["message"]
    wrong_type = node.refused({"sender": to_hex(BUYER.public_key), "contract": "ledger", "method": "transfer",
                               "args": ["bob", 1], "gas_limit": GAS})
    assert wrong_type["code"] == INVALID_PARAMS and "expected 0x-hex bytes" in wrong_type["message"]
    assert "found int" in node.refused(7)["message"]
    assert node.fingerprint() == before


def test_a_nonce_ahead_needs_the_pending_ones_in_between(node):
    gap = node.refused(node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1, nonce=3))
    assert gap["data"]["reason"] == "nonce_gap" and "simulate with nonce 0" in gap["message"]
    too_low = node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1)
    node.core.submit(too_low, 0.0)
    propose_next(node.core, node.host, node.clock, list(node.core.mempool.pending_txs()))
    assert node.refused(too_low)["data"]["reason"] in ("nonce_too_low", "duplicate")
    with pytest.raises(Exception, match="at most 64 pending"):
        check_ahead(MAX_SIMULATED_AHEAD + 1, 0, lambda start, stop: [])


def test_a_block_committed_between_steps_marks_the_simulation_stale(node):
    chain = node.core.chain
    pending = node.core.submit(node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1), 0.0)
    later = node.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1, nonce=1)
    simulation = node.reads.simulation(later)
    assert simulation.ahead == [pending]
    steps = simulation.steps()
    next(steps)                       # the pending one replayed on the overlay
    assert not simulation.stale
    propose_next(node.core, node.host, node.clock, [pending])
    assert simulation.stale and chain.height == 1
    fresh = Simulation(chain.state, simulation.tx, [], chain.height + 1, chain.next_timestamp(node.clock[0])).run()
    assert fresh.receipt.status == 0 and fresh.height == 2


def test_replays_run_in_slices_that_yield_and_stop_at_the_work_budget():
    # A slice shorter than any execution: the handler yields to the event loop after every replay.
    sliced = Node(RpcLimits(work_slice_seconds=1e-9))
    for nonce in range(3):
        sliced.core.submit(sliced.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1, nonce=nonce), 0.0)
    yields = sliced.server.dispatcher.work_stats.yields
    result = sliced.simulate(sliced.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1, nonce=3))
    assert result["status"] == "ok" and result["pending_replayed"] == 3
    assert sliced.server.dispatcher.work_stats.yields >= yields + 3
    # A call budget smaller than one execution: the answer says how far it got and what to do.
    tight = Node(RpcLimits(call_work_budget_seconds=1e-9))
    for nonce in range(2):
        tight.core.submit(tight.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1, nonce=nonce), 0.0)
    error = tight.refused(tight.raw(BUYER, "ledger", "transfer", OTHER.public_key, 1, nonce=2))
    assert error["code"] == LIMIT_EXCEEDED and error["data"]["limit"] == "call_work_budget_ms"
    assert "after replaying 1 of the sender's 2 pending transactions" in error["message"]
