"""A commerce chain as committed blocks: the harness's calls recorded as transactions.

How it works: ``RecordingChain`` is tests/commerce_harness.py's Chain whose every call
(through ``call``, so ``ok``/``err`` and the shortcuts too) is also recorded as a
transaction with the receipt the executor would write (status, gas, return value,
error, the events the contracts really emitted). ``blocks()`` then lays the records
out as consecutive blocks (one per harness height, empty ones in between) with real
headers (tx and receipts roots, the previous hash), which is all the indexer reads.
``story()`` plays the after-sales scenario the view tests check.
"""

from __future__ import annotations

from typing import Any

from ledger.crypto import SigningKey
from ledger.types import (STATUS_FAILED, STATUS_OK, ZERO_HASH, Block, BlockHeader, Event, Receipt, SignedTx, TxBody,
                          compute_receipts_root, compute_tx_root, validator_set_hash)
from tests.commerce_harness import CALL_GAS, DAY, Chain, h

CHAIN_ID = "commerce-test"
PROPOSER = SigningKey.from_label("validator-0").public_key
PRICE = 10_000
MODEL_A, MODEL_B = h("model-A"), h("model-B")
PRODUCT_1, PRODUCT_2 = h("product-1"), h("product-2")


class RecordingChain(Chain):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.records: list[tuple[int, int, SignedTx, Receipt]] = []
        self._nonces: dict[bytes, int] = {}

    def call(self, who: str | bytes, contract: str, method: str, *args: Any) -> Any:
        events_before, gas_before = len(self.events), len(self.gas_log)
        out = super().call(who, contract, method, *args)
        if len(self.gas_log) == gas_before:
            return out  # refused before execution (a rotated-out key): never a transaction
        sender = self.sender(who)
        nonce = self._nonces.get(sender, 0)
        self._nonces[sender] = nonce + 1
        tx = SignedTx(TxBody(CHAIN_ID, sender, nonce, contract, method, list(args), CALL_GAS), b"\x00" * 64)
        failed = type(out).__name__ == "Err"
        events = [Event(c, n, d) for c, n, d in self.events[events_before:]]
        receipt = Receipt(tx.tx_id, STATUS_FAILED if failed else STATUS_OK, self.gas_log[-1][2],
                          None if failed else out, f"{out.name}: {out.message}" if failed else None, events)
        self.records.append((self.height, self.time_ms, tx, receipt))
        return out

    def blocks(self) -> list[tuple[Block, list[Receipt]]]:
        """Every height from 1 to the current one as a block (records at their heights)."""
        by_height: dict[int, list] = {}
        times: dict[int, int] = {}
        for height, time_ms, tx, receipt in self.records:
            by_height.setdefault(height, []).append((tx, receipt))
            times[height] = time_ms
        out: list[tuple[Block, list[Receipt]]] = []
        prev: Block | None = None
        last_time = self.genesis.genesis_time_ms
        for height in range(1, self.height + 1):
            entries = by_height.get(height, [])
            txs = tuple(tx for tx, _ in entries)
            receipts = [r for _, r in entries]
            last_time = times.get(height, last_time + 1)
            header = BlockHeader(CHAIN_ID, height, ZERO_HASH if prev is None else prev.block_hash, last_time, PROPOSER,
                                 0, compute_tx_root(txs), compute_receipts_root(receipts), ZERO_HASH,
                                 validator_set_hash([PROPOSER]), ZERO_HASH)
            prev = Block(header, txs, None)
            out.append((prev, receipts))
        return out


def story() -> tuple[RecordingChain, dict]:
    """The after-sales scenario; returns the chain and the ids the view tests name."""
    c = RecordingChain()
    c.publish_terms("merchant1")
    c.publish_terms("merchant2")
    ids: dict = {}
    c.advance()
    # A: two units of product 1 from merchant1, delivered on time; one unit returned and refunded (10% restocking)
    a = ids["returned"] = c.to_delivered("buyer1", "merchant1", 2 * PRICE, product=PRODUCT_1, quantity=2)
    c.advance()
    case = ids["return_case"] = c.ok("buyer1", "cases", "open", a, 0, "RETURN_REFUND", 1, PRICE, h("too big"))
    c.ok("merchant1", "cases", "reply", case, True, 0)
    c.advance()
    c.ok("buyer1", "cases", "return_shipped", case, h("return-track"))
    c.advance(2)
    c.ok("merchant1", "cases", "return_received", case)
    c.ok("merchant1", "cases", "refund_return", case, 1_000)
    ids["return_opened_to_refunded_s"] = 3 * DAY // 10  # three default-paced blocks
    # B: product 2 from merchant1, accepted, shipped two days after its ship-by (handling is 3 days)
    c.advance()
    b = ids["late"] = c.place("buyer2", "merchant1", PRICE, product=PRODUCT_2)
    c.ok("merchant1", "orders", "accept", b, c.keys["carrier1"], h("label"))
    c.advance(c.days(5))
    c.ok("carrier1", "orders", "ship", b, h("track-b"), False)
    ids["ship_late_s"] = 2 * DAY
    # C: product 1 from merchant2, rejected (a full refund, no case)
    c.advance()
    cc = ids["rejected"] = c.place("buyer3", "merchant2", PRICE, product=PRODUCT_1)
    c.ok("merchant2", "orders", "reject", cc)
    # D: one unit of model A from merchant1, completed; its unit has its warranty activated and a claim accepted
    c.ok("merchant1", "warranty", "register_unit", h("unit-A1"), MODEL_A)
    c.ok("merchant1", "warranty", "register_unit", h("unit-A2"), MODEL_A)
    c.ok("merchant1", "warranty", "register_unit", h("unit-B1"), MODEL_B)
    d = ids["completed"] = c.to_delivered("buyer1", "merchant1", PRICE, product=MODEL_A)
    c.ok("buyer1", "orders", "confirm", d)
    c.ok("buyer1", "warranty", "activate", h("unit-A1"), d, 0)
    c.advance()
    claim = ids["claim"] = c.ok("buyer1", "warranty", "open_claim", h("unit-A1"), h("screen flickers"))
    c.ok("merchant1", "warranty", "decide_claim", claim, True)
    # E: a support ticket on order D nobody answers within the first-response SLA
    ticket = ids["ticket"] = c.ok("buyer1", "tickets", "open", d, b"", h("where is my invoice"))
    c.advance(c.days(1) + 1)
    c.ok("buyer2", "tickets", "escalate", ticket)
    # a failed call is a transaction too (its receipt says why)
    c.err("buyer2", "orders", "confirm", d)
    c.advance()
    return c, ids
