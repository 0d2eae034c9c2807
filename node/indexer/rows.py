"""The index's rows of one committed block: what both SQL sinks store, computed once.

How it works: ``block_rows(block, receipts)`` turns a block and its receipts into plain
tuples for the tables of node/indexer/schema.py (blocks, tx_results, events, attributes,
order_lines). Every value is already in its stored form (text, integer or NULL) so the
SQLite and the PostgreSQL sink write exactly the same rows and an identical-rows test
can compare them cell by cell: bytes become 0x-hex, contract values become their JSON
view (node.rpc.views.value_to_json: integers beyond 2^53 as decimal strings), JSON
copies are compact with sorted keys, and NUL characters (which PostgreSQL text refuses)
are replaced. An event's data dict is flattened one level into attributes, like
CometBFT's psql sink; nested values keep their JSON text. ``order_lines`` is the one
commerce-specific table: an order's products are only in its ``place`` arguments (the
OrderPlaced event carries the line count), and per-product after-sales analytics need them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ledger.types import Block, Receipt
from node.rpc.views import hx, value_to_json

#: Order placement methods whose first argument list holds the cart lines.
PLACE_METHODS = ("place", "place_in")
#: Fields of one cart line as the orders contract takes it: [product, quantity, unit_price, terms_hash].
CART_LINE_FIELDS = 4
#: Longest attribute value stored, in UTF-8 bytes: attributes.value is indexed, and PostgreSQL's btree
#: refuses entries above ~2.7 kB. A longer value is stored as NULL (the event's data JSON keeps it whole).
MAX_ATTRIBUTE_BYTES = 1024


def text(value: str | None) -> str | None:
    """Text as both databases can store it (PostgreSQL text cannot hold NUL)."""
    return None if value is None else value.replace("\x00", "\ufffd")


def to_json(value: Any) -> str:
    """The stored JSON copy of a contract value: compact, keys sorted, the same bytes from every sink."""
    return json_text(value_to_json(value))


def json_text(view: Any) -> str:
    """``to_json`` of a value already in its JSON view."""
    return text(json.dumps(view, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def attribute_text(value: Any) -> str | None:
    """One attribute's stored value, from its JSON view: text as is, integers in decimal,
    booleans as true/false, lists and maps as JSON; None above MAX_ATTRIBUTE_BYTES.
    Filters compare with the same form (and skip values too long to be stored)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    out = text(value) if isinstance(value, str) else json_text(value)
    return out if len(out.encode("utf-8")) <= MAX_ATTRIBUTE_BYTES else None


@dataclass
class Rows:
    """The rows of one or more blocks, table by table, in primary-key order."""

    blocks: list[tuple] = field(default_factory=list)
    tx_results: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    attributes: list[tuple] = field(default_factory=list)
    order_lines: list[tuple] = field(default_factory=list)

    def extend(self, other: "Rows") -> None:
        for name in TABLE_ORDER:
            getattr(self, name).extend(getattr(other, name))

    def count(self) -> int:
        return sum(len(getattr(self, name)) for name in TABLE_ORDER)


#: The tables rows are written to, in this order (parents first).
TABLE_ORDER = ("blocks", "tx_results", "events", "attributes", "order_lines")


def block_rows(block: Block, receipts: list[Receipt]) -> Rows:
    """Rows of one committed block; ``receipts`` are its receipts in transaction order."""
    if len(receipts) != len(block.txs):
        raise ValueError(f"block {block.height}: expected one receipt per transaction ({len(block.txs)}), "
                         f"found {len(receipts)}")
    h = block.header
    out = Rows()
    out.blocks.append((block.height, hx(block.block_hash), h.timestamp_ms, hx(h.proposer), h.view, len(block.txs),
                       hx(h.state_root), hx(h.prev_hash)))
    for index, (tx, receipt) in enumerate(zip(block.txs, receipts)):
        body = tx.body
        if receipt.tx_id != tx.tx_id:
            raise ValueError(f"block {block.height} transaction {index}: receipt is for {hx(receipt.tx_id)}, "
                             f"expected {hx(tx.tx_id)}")
        tx_id = hx(tx.tx_id)
        out.tx_results.append((block.height, index, tx_id, hx(body.sender), body.nonce, text(body.contract),
                               text(body.method), to_json(body.args), 1 if receipt.status == 0 else 0, receipt.status,
                               body.gas_limit, receipt.gas_used, receipt.fee, text(receipt.error),
                               to_json(receipt.return_value)))
        placed = None
        for event_index, event in enumerate(receipt.events):
            data = value_to_json(event.data)
            out.events.append((block.height, index, event_index, tx_id, text(event.contract), text(event.name),
                               json_text(data)))
            if isinstance(data, dict):
                for k in sorted(data):
                    out.attributes.append((block.height, index, event_index, text(k), attribute_text(data[k])))
            if event.contract == "orders" and event.name == "OrderPlaced" and isinstance(data, dict):
                placed = data
        if placed is not None and receipt.status == 0 and body.contract == "orders" and body.method in PLACE_METHODS:
            out.order_lines.extend(_order_lines(block.height, placed, body.args))
    return out


def _order_lines(height: int, placed: dict, args: list) -> list[tuple]:
    """(order_id, line, height, merchant, product, quantity, unit_price, price) of a placed cart."""
    cart = args[1] if len(args) > 1 and isinstance(args[1], list) else []
    rows = []
    for line, raw in enumerate(cart):
        if not isinstance(raw, list) or len(raw) != CART_LINE_FIELDS:
            continue  # the contract refused such a cart; a placed order never has one
        product, quantity, unit_price = raw[0], raw[1], raw[2]
        if not isinstance(product, bytes) or type(quantity) is not int or type(unit_price) is not int:
            continue
        rows.append((placed.get("order"), line, height, placed.get("merchant"), hx(product), quantity, unit_price,
                     quantity * unit_price))
    return rows
