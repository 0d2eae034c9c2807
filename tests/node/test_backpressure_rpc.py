"""Backpressure as a client meets it: a busy node refuses over JSON-RPC with a retry hint.

A real node (not started: no sockets) from a devnet home, as in test_admission_abi.
Its pool is made busy the way saturation makes it (transactions pending that take
longer than ``[mempool] max_queue_ms`` to commit at the recent commit rate, with the
floor lowered so that a handful of transactions are enough), and a new
``chain_sendRawTransaction`` must answer a ChainError whose data carries
``reason: busy`` and ``retry_after_ms``, counted in the refusal metric, while the
transaction already pending stays pending and a copy of it is still recognised.
"""

from __future__ import annotations

import dataclasses

from node.core import backpressure
from tests.node.test_admission_abi import node, refusals_metric, send  # noqa: F401  (module fixture)


def test_a_busy_node_answers_busy_with_retry_after_and_keeps_what_it_acknowledged(node, monkeypatch):
    buyer, merchant = node.test_keys["buyer-1"], node.test_keys["merchant-acme"]
    nonce = node.core.chain.account_nonce(node.core.chain.signer(buyer.public_key).account or buyer.public_key)
    first, error = send(node, buyer, "ledger", "transfer", [merchant.public_key, 1], nonce=nonce)
    assert error is None and first is not None
    monkeypatch.setattr(backpressure, "MIN_BUSY_PENDING", 1)
    # One transaction a second lately, and a 100 ms bound: the one pending is 1 s of work.
    node.core.mempool.drain.committed(1_000, 1)
    node.core.mempool.drain.committed(2_000, 1)
    monkeypatch.setattr(node.core.mempool, "limits", dataclasses.replace(node.core.mempool.limits, max_queue_ms=100))
    result, error = send(node, buyer, "ledger", "transfer", [merchant.public_key, 2], nonce=nonce + 1)
    assert result is None and error["code"] == -32000
    assert error["data"] == {"type": "MempoolError", "reason": "busy", "retry_after_ms": 900}
    assert "the node is busy" in error["message"] and "retry after 900 ms" in error["message"]
    assert refusals_metric(node, "busy") == 1
    # The acknowledged transaction is still pending, and a client re-sending it is told so.
    assert bytes.fromhex(first[2:]) in node.core.mempool
    result, error = send(node, buyer, "ledger", "transfer", [merchant.public_key, 1], nonce=nonce)
    assert result is None and error["data"]["reason"] == "duplicate"
