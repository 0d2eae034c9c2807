"""Typed calls for selling: terms, orders with escrow and their transitions, after-sales cases.

How it works: each function checks its typed inputs (node.commerce_calls) and returns
a ``ContractCall`` for ``Commerce.send`` / ``Commerce.read`` (node.client_commerce);
the argument order and the limits are those of contracts_vm/system/orders.sc.py and
cases.sc.py, whose docstrings explain the rules (docs/commerce.md for
the flows). Amounts are integers in minor units, rates in basis points, periods in
seconds of certified block time, and parties are account ids (the key an account was
registered with). Reads decode into dataclasses whose fields are the contract's record
fields, with states as Enums, so ``order.state is OrderState.DELIVERED`` is checked by
the type checker and an unknown state from a newer contract fails loudly.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.crypto import sha256
from ledger.errors import ValidationError
from node.commerce_calls import (BPS, ContractCall, as_bytes, as_int, as_ints, bytes32, bytes32_or_empty,
                                 bytes_or_none, choice, decode_as, integer, nothing, order_id, record_or_none,
                                 some_bytes, text, view, write)

#: Largest order amount in minor units, and the largest quantity of a line (orders.sc.py).
MAX_PRICE = 10 ** 15
MAX_QUANTITY = 1_000_000
#: Most lines in one order (cart) and the longest terms-set name.
MAX_ORDER_LINES = 32
MAX_TERMS_NAME = 32
#: Longest term, and the shortest accept / handling / transit / auto-confirm period, in seconds.
MAX_TERM_SECONDS = 31_622_400
MIN_PERIOD_SECONDS = 3_600
#: The line a whole-parcel (not received) case names.
ALL_LINES = -1


class OrderState(str, enum.Enum):
    PLACED = "PLACED"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    PARTIALLY_SHIPPED = "PARTIALLY_SHIPPED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"
    CLOSED = "CLOSED"
    DISPUTED = "DISPUTED"
    RESOLVED = "RESOLVED"


class CaseKind(str, enum.Enum):
    REFUND_ONLY = "REFUND_ONLY"
    NOT_RECEIVED = "NOT_RECEIVED"
    RETURN_REFUND = "RETURN_REFUND"


class CaseState(str, enum.Enum):
    REQUESTED = "REQUESTED"
    AGREED = "AGREED"
    COUNTERED = "COUNTERED"
    ESCALATED = "ESCALATED"
    RETURN_SHIPPED = "RETURN_SHIPPED"
    RETURN_RECEIVED = "RETURN_RECEIVED"
    REFUNDED = "REFUNDED"
    CLOSED = "CLOSED"


@dataclass(frozen=True)
class Terms:
    """A merchant's terms set: periods in seconds, the restocking fee in bps, the named arbiter.

    Checked as ``orders.set_terms`` checks it; ``terms_hash()`` is the hash the chain
    gives it, so a shop knows the hash its lines must quote before the terms are published.
    """

    accept_seconds: int
    handling_seconds: int
    transit_seconds: int
    auto_confirm_seconds: int
    return_seconds: int
    restock_bps: int
    warranty_seconds: int
    arbiter: bytes

    def __post_init__(self) -> None:
        for name in ("accept_seconds", "handling_seconds", "transit_seconds", "auto_confirm_seconds"):
            integer(getattr(self, name), f"terms {name}", MIN_PERIOD_SECONDS, MAX_TERM_SECONDS)
        for name in ("return_seconds", "warranty_seconds"):
            integer(getattr(self, name), f"terms {name}", 0, MAX_TERM_SECONDS)
        integer(self.restock_bps, "terms restock_bps", 0, BPS)
        object.__setattr__(self, "arbiter", bytes32(self.arbiter, "terms arbiter"))

    def args(self) -> list:
        return [self.accept_seconds, self.handling_seconds, self.transit_seconds, self.auto_confirm_seconds,
                self.return_seconds, self.restock_bps, self.warranty_seconds, self.arbiter]

    def terms_hash(self) -> bytes:
        """orders.compute_terms_hash: what ``set_terms`` returns and order lines quote."""
        b = b"shopchain/terms/v2"
        for n in self.args()[:7]:
            b += b"|" + str(n).encode()
        return sha256(b + b"|" + self.arbiter)


@dataclass(frozen=True)
class OrderItem:
    """One cart line as the buyer sends it: 32-byte product id, quantity, unit price in minor units,
    and the hash of the merchant's terms set it is bought under."""

    product: bytes
    quantity: int
    unit_price: int
    terms_hash: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "product", bytes32(self.product, "order item product"))
        integer(self.quantity, "order item quantity", 1, MAX_QUANTITY)
        integer(self.unit_price, "order item unit_price", 1, MAX_PRICE // self.quantity)
        object.__setattr__(self, "terms_hash", bytes32(self.terms_hash, "order item terms_hash"))

    @property
    def price(self) -> int:
        return self.quantity * self.unit_price

    def arg(self) -> list:
        return [self.product, self.quantity, self.unit_price, self.terms_hash]


@dataclass(frozen=True)
class OrderLine:
    """A line of a placed order: what it was paid (``amount``, after its share of discounts) and refunded."""

    product: bytes
    quantity: int
    unit_price: int
    price: int
    discount: int
    amount: int
    terms_hash: bytes
    refunded: int
    returned: int
    fee_paid: int


@dataclass(frozen=True)
class Order:
    """``orders.get_order``: the order record; times are unix seconds, 0 while not reached."""

    id: int
    buyer: bytes
    merchant: bytes
    lines: list[OrderLine]
    price: int
    discount: int
    amount: int
    state: OrderState
    prev_state: str
    terms: Terms
    fee_bps: int
    holdback_bps: int
    pii_root: bytes
    payload_hash: bytes
    review_key_hash: bytes
    referrer: bytes
    commission_bps: int
    voucher: bytes
    currency: str
    points_program: str
    points: int
    points_value: int
    carrier: bytes
    label_hash: bytes
    tracking: bytes
    pod_hash: bytes
    placed_height: int
    placed_at: int
    accept_by: int
    ship_by: int
    deliver_by: int
    delivered_at: int
    confirm_by: int
    completed_at: int
    close_after: int
    extended: bool
    buyer_cancel: bool
    merchant_cancel: bool
    refunded: int
    fee_paid: int
    open_case: int
    not_received: bool
    arbiter: bytes
    dispute_by: bytes
    dispute_deadline: int
    escalated: bool


@dataclass(frozen=True)
class Case:
    """``cases.get_case``: an after-sales case on one line (``line`` -1: the whole parcel)."""

    id: int
    order: int
    line: int
    quantity: int
    buyer: bytes
    merchant: bytes
    kind: CaseKind
    amount: int
    counter: int
    restock_fee: int
    state: CaseState
    no_reason: bool
    deadline: int
    restock_bps: int
    reason_hash: bytes
    ticket: int


def _amount(value: int, what: str = "amount") -> int:
    return integer(value, what, 1, MAX_PRICE)


# ---- orders: terms and bonds -------------------------------------------------------

def set_terms(terms: Terms) -> ContractCall[bytes]:
    """orders.set_terms: the merchant's default terms set; the receipt's value is its hash."""
    return write("orders", "set_terms", *_terms(terms).args(), decode=as_bytes)


def set_named_terms(name: str, terms: Terms) -> ContractCall[bytes]:
    """orders.set_named_terms: offer (or replace) a named set, so products carry different returns."""
    return write("orders", "set_named_terms", text(name, "terms name", 0, MAX_TERMS_NAME), *_terms(terms).args(),
                 decode=as_bytes)


def withdraw_terms(name: str) -> ContractCall[None]:
    return write("orders", "withdraw_terms", text(name, "terms name", 0, MAX_TERMS_NAME), decode=nothing)


def _terms(terms: Terms) -> Terms:
    if not isinstance(terms, Terms):
        raise ValidationError(f"terms must be a Terms, found {type(terms).__name__}")
    return terms


def deposit_bond(amount: int) -> ContractCall[None]:
    return write("orders", "deposit_bond", _amount(amount), decode=nothing)


def withdraw_bond(amount: int) -> ContractCall[None]:
    return write("orders", "withdraw_bond", _amount(amount), decode=nothing)


def settle_debt(order: int) -> ContractCall[None]:
    return write("orders", "settle_debt", order_id(order), decode=nothing)


# ---- orders: placement and transitions ---------------------------------------------

def place_order(merchant: bytes, items: Sequence[OrderItem], pii_root: bytes, payload_hash: bytes,
                review_key_hash: bytes, referrer: bytes = b"", voucher: bytes = b"", voucher_code: bytes = b"",
                currency: str = "", points_program: str = "", points: int = 0) -> ContractCall[int]:
    """orders.place (orders.place_in with a currency or points): a cart of 1..32 items from one
    merchant; the buyer's payment is locked in escrow. The receipt's value is the new order id.

    ``pii_root``, ``payload_hash`` and ``review_key_hash`` are the 32-byte commitments the
    contract stores instead of personal data (docs/commerce.md, Privacy).
    """
    if isinstance(items, OrderItem) or not isinstance(items, Sequence):
        raise ValidationError(f"items must be a list of OrderItem, found {type(items).__name__}")
    if not 1 <= len(items) <= MAX_ORDER_LINES:
        raise ValidationError(f"an order has 1..{MAX_ORDER_LINES} items, found {len(items)}")
    for i, item in enumerate(items):
        if not isinstance(item, OrderItem):
            raise ValidationError(f"items[{i}] must be an OrderItem, found {type(item).__name__}")
    total = sum(item.price for item in items)
    if total > MAX_PRICE:
        raise ValidationError(f"an order's total must be at most {MAX_PRICE} minor units, found {total}")
    head = [bytes32(merchant, "merchant"), [item.arg() for item in items], bytes32(pii_root, "pii_root"),
            bytes32(payload_hash, "payload_hash"), bytes32(review_key_hash, "review_key_hash"),
            bytes32_or_empty(referrer, "referrer"), bytes32_or_empty(voucher, "voucher"),
            some_bytes(voucher_code, "voucher_code", 256)]
    integer(points, "points", 0)
    text(points_program, "points_program", 0, 64)
    if (points == 0) != (points_program == ""):
        raise ValidationError(f"name the loyalty program together with the points it pays, found program "
                              f"{points_program!r} and {points} points")
    if text(currency, "currency", 0, 16) == "" and points == 0:
        return write("orders", "place", *head, decode=as_int)
    return write("orders", "place_in", *head, currency, points_program, points, decode=as_int)


def accept_order(order: int, carrier: bytes, label_hash: bytes) -> ContractCall[None]:
    """orders.accept, by the merchant: names the carrier and the hash of its sealed label."""
    return write("orders", "accept", order_id(order), bytes32(carrier, "carrier"), bytes32(label_hash, "label_hash"),
                 decode=nothing)


def reject_order(order: int) -> ContractCall[None]:
    """orders.reject, by the merchant: a placed order is declined and refunded in full."""
    return write("orders", "reject", order_id(order), decode=nothing)


def cancel_order(order: int) -> ContractCall[None]:
    """orders.cancel: the buyer before acceptance, both parties after, anyone once a deadline passed."""
    return write("orders", "cancel", order_id(order), decode=nothing)


def ship_order(order: int, tracking: bytes, partial: bool = False) -> ContractCall[None]:
    """orders.ship, by the merchant or the named carrier: a 32-byte tracking commitment."""
    if not isinstance(partial, bool):
        raise ValidationError(f"partial must be True or False, found {partial!r:.40}")
    return write("orders", "ship", order_id(order), bytes32(tracking, "tracking"), partial, decode=nothing)


def deliver_order(order: int, pod_hash: bytes) -> ContractCall[None]:
    """orders.deliver, by the named carrier: the proof-of-delivery hash starts the auto-confirm countdown."""
    return write("orders", "deliver", order_id(order), bytes32(pod_hash, "pod_hash"), decode=nothing)


def confirm_order(order: int) -> ContractCall[None]:
    """orders.confirm, by the buyer: completes the order and pays the merchant (less fee and holdback)."""
    return write("orders", "confirm", order_id(order), decode=nothing)


def extend_confirmation(order: int) -> ContractCall[None]:
    """orders.extend, by the buyer, once: more time before a delivered order auto-confirms."""
    return write("orders", "extend", order_id(order), decode=nothing)


def poke_order(order: int) -> ContractCall[OrderState]:
    """orders.poke, by anyone: applies whichever deadline passed; the value is the new state."""
    return write("orders", "poke", order_id(order), decode=lambda v: decode_as(OrderState, v, "state"))


def dispute_order(order: int, evidence: bytes) -> ContractCall[None]:
    """orders.dispute, by the buyer or merchant: the order's arbiter then rules."""
    return write("orders", "dispute", order_id(order), bytes32(evidence, "evidence"), decode=nothing)


def add_evidence(order: int, evidence: bytes) -> ContractCall[None]:
    return write("orders", "add_evidence", order_id(order), bytes32(evidence, "evidence"), decode=nothing)


def rule_dispute(order: int, to_buyer: int, to_merchant: int, fee: int) -> ContractCall[None]:
    """orders.rule, by the arbiter (PLATFORM once escalated): the parts must sum to the escrow exactly."""
    return write("orders", "rule", order_id(order), integer(to_buyer, "to_buyer", 0, MAX_PRICE),
                 integer(to_merchant, "to_merchant", 0, MAX_PRICE), integer(fee, "fee", 0, MAX_PRICE), decode=nothing)


# ---- orders: views -----------------------------------------------------------------

def get_order(order: int) -> ContractCall[Order | None]:
    return view("orders", "get_order", order_id(order), decode=record_or_none(Order))


def order_count() -> ContractCall[int]:
    """The highest order id so far."""
    return view("orders", "order_count", decode=as_int)


def orders_of_buyer(buyer: bytes, limit: int = 100) -> ContractCall[list[int]]:
    return view("orders", "orders_of_buyer", bytes32(buyer, "buyer"), integer(limit, "limit", 1, 1000), decode=as_ints)


def terms_hash_of(merchant: bytes) -> ContractCall[bytes | None]:
    """The hash of the merchant's default terms set, None if it offers none."""
    return view("orders", "terms_hash_of", bytes32(merchant, "merchant"), decode=bytes_or_none)


def named_terms_hash(merchant: bytes, name: str) -> ContractCall[bytes | None]:
    return view("orders", "named_terms_hash", bytes32(merchant, "merchant"),
                text(name, "terms name", 0, MAX_TERMS_NAME), decode=bytes_or_none)


def get_terms(merchant: bytes) -> ContractCall[Terms | None]:
    return view("orders", "get_terms", bytes32(merchant, "merchant"), decode=record_or_none(Terms))


def get_terms_set(terms_hash: bytes) -> ContractCall[Terms | None]:
    """Any terms set ever published, by hash (what an order line snapshotted)."""
    return view("orders", "get_terms_set", bytes32(terms_hash, "terms_hash"), decode=record_or_none(Terms))


def terms_offered(merchant: bytes) -> ContractCall[dict[str, bytes]]:
    """The merchant's current sets: name -> hash ("" is the default set)."""
    def decode(value: list) -> dict[str, bytes]:
        return {name: as_bytes(h, "terms hash") for name, h in value}
    return view("orders", "terms_offered", bytes32(merchant, "merchant"), decode=decode)


def bond_of(merchant: bytes) -> ContractCall[int]:
    return view("orders", "bond_of", bytes32(merchant, "merchant"), decode=as_int)


def merchant_debt(merchant: bytes) -> ContractCall[int]:
    return view("orders", "merchant_debt", bytes32(merchant, "merchant"), decode=as_int)


# ---- after-sales cases -------------------------------------------------------------

def open_case(order: int, line: int, kind: CaseKind | str, quantity: int, amount: int,
              reason_hash: bytes) -> ContractCall[int]:
    """cases.open, by the buyer; the value is the case id. ``request_refund``, ``request_return``
    and ``report_not_received`` fill in what each kind requires."""
    kind = choice(kind, CaseKind, "case kind")
    integer(line, "line", ALL_LINES, MAX_ORDER_LINES - 1)
    integer(quantity, "quantity", 0, MAX_QUANTITY)
    if kind is CaseKind.NOT_RECEIVED:
        if line != ALL_LINES or quantity != 0:
            raise ValidationError(f"a not-received case is for the whole parcel: line {ALL_LINES} and quantity 0, "
                                  f"found line {line} and quantity {quantity}")
    elif line == ALL_LINES:
        raise ValidationError(f"a {kind.value} case names one order line (0..{MAX_ORDER_LINES - 1}), found {line}")
    elif kind is CaseKind.REFUND_ONLY and quantity != 0:
        raise ValidationError(f"a refund-only case returns no units, found quantity {quantity}")
    elif kind is CaseKind.RETURN_REFUND and quantity < 1:
        raise ValidationError(f"a return names the units that go back (at least 1), found quantity {quantity}")
    return write("cases", "open", order_id(order), line, kind.value, quantity, _amount(amount),
                 bytes32(reason_hash, "reason_hash"), decode=as_int)


def request_refund(order: int, line: int, amount: int, reason_hash: bytes) -> ContractCall[int]:
    """A refund without a return (in full before shipment, partial after)."""
    return open_case(order, line, CaseKind.REFUND_ONLY, 0, amount, reason_hash)


def request_return(order: int, line: int, quantity: int, amount: int, reason_hash: bytes) -> ContractCall[int]:
    """Send ``quantity`` units of a line back for ``amount``, inside the line's return window."""
    return open_case(order, line, CaseKind.RETURN_REFUND, quantity, amount, reason_hash)


def report_not_received(order: int, amount: int, reason_hash: bytes) -> ContractCall[int]:
    """After deliver-by: claim the whole remaining ``amount`` of a parcel that never came."""
    return open_case(order, ALL_LINES, CaseKind.NOT_RECEIVED, 0, amount, reason_hash)


def _case_id(case: int) -> int:
    return integer(case, "case_id", 1)


def reply_case(case: int, agree: bool, counter: int = 0) -> ContractCall[None]:
    """cases.reply, by the merchant: agree, or counter-offer ``counter`` (1..amount-1)."""
    if not isinstance(agree, bool):
        raise ValidationError(f"agree must be True or False, found {agree!r:.40}")
    integer(counter, "counter", 0, MAX_PRICE)
    if not agree and counter < 1:
        raise ValidationError(f"a counter-offer is at least 1 minor unit, found {counter}")
    return write("cases", "reply", _case_id(case), agree, counter, decode=nothing)


def accept_counter(case: int) -> ContractCall[None]:
    return write("cases", "accept_counter", _case_id(case), decode=nothing)


def escalate_case(case: int) -> ContractCall[None]:
    return write("cases", "escalate", _case_id(case), decode=nothing)


def withdraw_case(case: int) -> ContractCall[None]:
    return write("cases", "withdraw", _case_id(case), decode=nothing)


def return_shipped(case: int, tracking: bytes) -> ContractCall[None]:
    """By the buyer, once the merchant agreed to the return."""
    return write("cases", "return_shipped", _case_id(case), bytes32(tracking, "tracking"), decode=nothing)


def return_received(case: int) -> ContractCall[None]:
    return write("cases", "return_received", _case_id(case), decode=nothing)


def refund_return(case: int, restock_fee: int = 0) -> ContractCall[None]:
    """By the merchant: refund a received return, less a restocking fee within the line's terms."""
    return write("cases", "refund_return", _case_id(case), integer(restock_fee, "restock_fee", 0, MAX_PRICE),
                 decode=nothing)


def poke_case(case: int) -> ContractCall[CaseState]:
    return write("cases", "poke", _case_id(case), decode=lambda v: decode_as(CaseState, v, "state"))


def get_case(case: int) -> ContractCall[Case | None]:
    return view("cases", "get_case", _case_id(case), decode=record_or_none(Case))


def case_count() -> ContractCall[int]:
    return view("cases", "case_count", decode=as_int)


#: The public names (tests/node/test_client_commerce.py checks that every helper, record and Enum is here).
__all__ = ["ALL_LINES", "Case", "CaseKind", "CaseState", "MAX_ORDER_LINES", "MAX_PRICE", "MAX_QUANTITY", "MAX_TERMS_NAME",
           "MAX_TERM_SECONDS", "MIN_PERIOD_SECONDS", "Order", "OrderItem", "OrderLine", "OrderState", "Terms",
           "accept_counter", "accept_order", "add_evidence", "bond_of", "cancel_order", "case_count",
           "confirm_order", "deliver_order", "deposit_bond", "dispute_order", "escalate_case",
           "extend_confirmation", "get_case", "get_order", "get_terms", "get_terms_set", "merchant_debt",
           "named_terms_hash", "open_case", "order_count", "orders_of_buyer", "place_order", "poke_case",
           "poke_order", "refund_return", "reject_order", "reply_case", "report_not_received", "request_refund",
           "request_return", "return_received", "return_shipped", "rule_dispute", "set_named_terms", "set_terms",
           "settle_debt", "ship_order", "terms_hash_of", "terms_offered", "withdraw_bond", "withdraw_case",
           "withdraw_terms"]
