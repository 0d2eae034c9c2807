"""NodeCore (node/core/engine.py) driven directly: one validator, an in-memory store that fails."""

from __future__ import annotations

import logging
import random

import pytest

from consensus import PrePrepare
from ledger.crypto import SigningKey
from ledger.types import TxBody
from node.core.engine import NodeCore
from tests.sim.corenode import account_key, genesis_store, sim_genesis
from tests.sim.faultykv import FaultyKV

LABEL = "node-core-test-validator"


class Host:
    """Records what the core hands its runtime; builds a block when asked, as the proposer would."""

    def __init__(self) -> None:
        self.sent: list = []
        self.committed_blocks: list = []
        self.requests: list = []
        self.halts: list[tuple[str, Exception]] = []

    def send(self, to, message) -> None:
        self.sent.append(message)

    def serve(self, peer, from_height, count) -> None:
        pass

    def committed(self, block, cert, outcome) -> None:
        self.committed_blocks.append((block, outcome))

    def asked_to_propose(self, request) -> None:
        self.requests.append(request)

    def on_halt(self, reason: str, cause: Exception) -> None:
        self.halts.append((reason, cause))


def make_core():
    genesis = sim_genesis("node-core-test", (LABEL,))
    kv = FaultyKV(random.Random(3), dict(genesis_store(genesis)))
    host = Host()
    clock = [genesis.genesis_time_ms]
    core = NodeCore(kv, genesis, SigningKey.from_label(LABEL), host, lambda: clock[0])
    return core, host, kv, clock


def propose_next(core: NodeCore, host: Host, clock: list[int], txs=()) -> None:
    for _ in range(200):  # a lone validator is its own primary; ticks until it asks for a block
        if host.requests:
            break
        core.tick(frozenset())
    request = host.requests.pop()
    clock[0] += 1000
    block = core.build_block(request, list(txs), core.chain.next_timestamp(clock[0]))
    if block is not None:
        core.propose(block)


def transfer(core: NodeCore, nonce: int) -> bytes:
    key = account_key("buyer-1")
    body = TxBody(core.genesis.chain_id, key.public_key, nonce, "ledger", "transfer",
                  [account_key("buyer-2").public_key, 5], 50_000)
    return body.sign(key).encode()


def test_a_lone_validator_commits_real_transfers_through_the_ready_loop():
    core, host, kv, clock = make_core()
    tx = core.submit(transfer(core, 0), 0.0)
    propose_next(core, host, clock, [tx])
    assert core.chain.height == 1 and [b.height for b, _ in host.committed_blocks] == [1]
    assert host.committed_blocks[0][1].receipts[0].status == 0 and tx.tx_id not in core.mempool


def test_a_failed_write_of_what_was_signed_halts_before_it_is_sent():
    core, host, kv, clock = make_core()
    kv.fail_writes = 1.0  # the disk fills up just before the PRE-PREPARE's record is written
    propose_next(core, host, clock)
    assert core.halted_reason is not None and "No space left" in core.halted_reason
    assert not [m for m in host.sent if isinstance(m, PrePrepare)]  # nothing unpersisted left the process
    assert core.chain.height == 0 and len(host.halts) == 1
    core.tick(frozenset())  # a halted core takes no more input
    assert len(host.halts) == 1 and core.chain.height == 0


def test_a_damaged_stored_value_halts_the_core_instead_of_becoming_a_receipt(caplog):
    core, host, kv, clock = make_core()
    tx = core.submit(transfer(core, 0), 0.0)
    kv.corrupt_reads = 1.0  # every read from now on comes back with a flipped bit
    with caplog.at_level(logging.ERROR):
        propose_next(core, host, clock, [tx])
    assert core.halted_reason is not None and core.chain.height == 0
    assert not host.committed_blocks and not [m for m in host.sent if isinstance(m, PrePrepare)]


def test_a_submitted_transaction_is_not_acknowledged_when_its_journal_write_fails():
    from ledger.errors import ChainError

    core, host, kv, clock = make_core()
    kv.fail_writes = 1.0
    with pytest.raises(ChainError, match="halted"):
        core.submit(transfer(core, 0), 0.0)
    assert core.halted_reason is not None


def test_production_code_checks_invariants_explicitly_not_with_assert():
    """``python -O`` strips asserts; an invariant worth checking must raise a named error instead."""
    import ast
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[2]
    found = []
    for package in ("ledger", "contracts_vm", "consensus", "p2p", "node", "cli", "devnet"):
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Assert):
                    found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not found, f"assert statements in production code (use an explicit check raising InvariantError): {found}"


def test_an_observer_core_never_signs_even_when_its_key_is_in_the_set():
    """[node] observer: an auditor's node on a validator key still never proposes or votes."""
    from node.core.engine import CoreSettings

    genesis = sim_genesis("node-core-test", (LABEL,))
    kv = FaultyKV(random.Random(3), dict(genesis_store(genesis)))
    host = Host()
    core = NodeCore(kv, genesis, SigningKey.from_label(LABEL), host, lambda: genesis.genesis_time_ms,
                    CoreSettings(observer=True))
    for _ in range(200):
        core.tick(frozenset())
    assert not host.requests and not host.sent and core.replica.counters.get("votes_cast", 0) == 0
    assert core.replica.mode == "normal" and core.replica.view == 0  # nor does it time views out alone
    awake, awake_host, _, _ = make_core()
    for _ in range(200):
        awake.tick(frozenset())
    assert awake_host.requests  # the same key without the flag proposes
