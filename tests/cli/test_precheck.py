"""``Tx.send``'s decisions around chain_simulate, against a recording fake node (no network).

What is submitted, and when: a simulation that fails refuses before anything is sent; a
node without chain_simulate, or one that would admit the transaction but cannot simulate
it (too many pending ones before it, its work budget spent), is sent to as before unless
it is a dry run; ``--no-precheck`` never asks; ``--dry-run`` never submits. The devnet
stories in tests/integration/test_cli_simulate.py drive the same paths end to end.
"""

from __future__ import annotations

import pytest

from cli.output import EXIT_NODE, EXIT_TX_FAILED, CliError
from cli.signer import Tx
from ledger.crypto import SigningKey
from node.client import RpcFailure

OK = {"tx_id": "0x01", "status": "ok", "gas_used": 900, "fee": 3, "return_value": None, "error": None,
      "events": [], "height": 8, "pending_replayed": 0}
FAILED = {**OK, "status": "failed", "error": "RequireFailed: order is COMPLETED, expected DELIVERED or SHIPPED"}


class FakeNode:
    """The client calls Tx.send makes, recorded; ``answer`` is what chain_simulate does."""

    def __init__(self, answer) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def account(self, key: bytes) -> dict:
        return {"nonce": 4, "pending_txs": 1}

    def build(self, key, contract, method, args, gas, nonce) -> bytes:
        self.calls.append(f"build nonce={nonce}")
        return b"raw"

    def simulate(self, raw: bytes) -> dict:
        self.calls.append("simulate")
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def send_raw(self, raw: bytes) -> str:
        self.calls.append("send_raw")
        return "0x01"

    def wait(self, tx_id: str, timeout: float) -> dict:
        return {**OK, "tx_id": tx_id}


def tx_for(node: FakeNode, **options) -> Tx:
    return Tx("http://fake", "/nonexistent", True, _client=node, _signer=SigningKey.generate(), **options)  # type: ignore[arg-type]


def test_a_failing_simulation_refuses_before_anything_is_sent():
    node = FakeNode(FAILED)
    with pytest.raises(CliError) as info:
        tx_for(node).send("orders", "confirm", 7)
    assert info.value.exit_code == EXIT_TX_FAILED and "order is COMPLETED" in info.value.message
    assert "--no-precheck" in (info.value.hint or "")
    assert node.calls == ["build nonce=5", "simulate"]


def test_a_direct_deploy_refusal_points_to_governance():
    node = FakeNode({**FAILED, "error": "PermissionDenied: contract deploys and upgrades are governed"})
    with pytest.raises(CliError) as info:
        tx_for(node).send("system", "deploy", b"payload")
    assert "shopchain gov propose code" in (info.value.hint or "") and "send_raw" not in node.calls


@pytest.mark.parametrize("answer", [RpcFailure(-32601, "Method not found"),
                                    RpcFailure(-32005, "chain_simulate used its call work budget", {}),
                                    RpcFailure(-32000, "nonce 90 is 70 past", {"reason": "nonce_too_far"})])
def test_a_node_that_cannot_simulate_is_sent_to_as_before(answer):
    node = FakeNode(answer)
    assert tx_for(node).send("ledger", "transfer", b"k", 1)["status"] == "ok"
    assert node.calls == ["build nonce=5", "simulate", "send_raw"]


def test_an_admission_refusal_is_said_as_what_the_node_would_do():
    node = FakeNode(RpcFailure(-32000, "sender 0xab has no account", {"reason": "unregistered_sender"}))
    with pytest.raises(CliError) as info:
        tx_for(node).send("ledger", "transfer", b"k", 1)
    assert info.value.exit_code == EXIT_TX_FAILED and "nothing was sent" in info.value.message
    assert "not a registered account" in (info.value.hint or "") and "send_raw" not in node.calls


def test_no_precheck_never_asks_and_dry_run_never_submits():
    node = FakeNode(FAILED)
    assert tx_for(node, precheck=False).send("orders", "confirm", 7)["status"] == "ok"
    assert node.calls == ["build nonce=5", "send_raw"]
    node = FakeNode(OK)
    shown = tx_for(node, dry_run=True).send("ledger", "transfer", b"k", 1)
    assert shown["dry_run"] is True and shown["nonce"] == 5 and node.calls == ["build nonce=5", "simulate"]
    node = FakeNode(FAILED)
    with pytest.raises(CliError, match="dry run: orders.confirm would fail") as info:
        tx_for(node, dry_run=True).send("orders", "confirm", 7)
    assert info.value.exit_code == EXIT_TX_FAILED and "send_raw" not in node.calls
    with pytest.raises(CliError) as info:
        tx_for(FakeNode(RpcFailure(-32601, "Method not found")), dry_run=True).send("orders", "confirm", 7)
    assert info.value.exit_code == EXIT_NODE and "cannot simulate" in info.value.message
