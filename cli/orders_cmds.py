"""`shopchain order ...` and `shopchain case ...`: orders with escrow and after-sales cases.

How it works: one verb per transition of the orders and cases contracts
(docs/commerce.md), with arguments in the users' words: amounts in currency units
("12.50", exact, see cli.output), accounts by key name or 0x key, hashes as text,
@FILE or 0x-hex. ``order place`` fetches the merchant's current terms hash itself,
salts the order's payload commitment, and derives the order's review key from the
buyer's key and that commitment (``review_key_for``), so ``review post`` can later
sign a verified review with nothing stored on the side. An order is a cart of lines
from one merchant (``--line PRODUCT:QTY:UNIT_PRICE[:TERMS]``, repeatable; ``--product``
``--qty`` ``--price`` is the one-line shorthand); TERMS names one of the merchant's
terms sets (``order terms --name``), resolved to its hash here. Cases name the line.
Personal data never goes on chain (cli/delivery.py): ``place --ship-to`` commits
salted fields (``pii_root``) and seals them to the merchant through the node's mailbox,
``accept`` seals the label fields to the carrier, ``ship --tracking`` commits the number
salted and seals it to the buyer; ``order details|disclose|verify-disclosure``
(cli/privacy_cmds.py) read them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from cli import delivery
from cli.currency_cmds import currency
from cli.output import (EXIT_TX_FAILED, EXIT_USAGE, CliError, format_amount, format_percent, parse_amount,
                        parse_commitment, parse_percent)
from cli.signer import Query, Tx, id_transition, query_command, tx_command
from cli.timefmt import chain_now, format_when, format_duration, format_time, parse_duration
from ledger.crypto import SigningKey, sha256
from ledger.privacy import DELIVERY_FIELDS, commit_tracking, label_hash, label_payload

#: Domain tag of review keys derived from a buyer's key.
REVIEW_KEY_DOMAIN = b"shopchain/review-key/v1|"
#: Domain tag of the salted commitment to an order's off-chain details.
PAYLOAD_DOMAIN = b"shopchain/order-payload/v1|"
#: Most orders `order list` shows.
MAX_LIST = 200
#: Case states in which no deadline runs any more.
CASE_DONE = ("REFUNDED", "CLOSED", "ESCALATED")
CASE_KINDS = {"refund-only": "REFUND_ONLY", "not-received": "NOT_RECEIVED", "return": "RETURN_REFUND"}
#: Most lines one order may hold (orders.sc.py MAX_ORDER_LINES).
MAX_ORDER_LINES = 32
#: The line a whole-order (not-received) case names.
ALL_LINES = -1

order_id_argument = click.argument("order_id", type=click.IntRange(1), metavar="ORDER")
case_id_argument = click.argument("case_id", type=click.IntRange(1), metavar="CASE")


def review_key_for(buyer: SigningKey, payload_hash: bytes) -> SigningKey:
    """The per-order review key: derived from the buyer's seed and the order's payload hash."""
    return SigningKey(sha256(REVIEW_KEY_DOMAIN + buyer.seed + payload_hash))


def get_order(q: Query, order_id: int) -> dict:
    found = q.view("orders", "get_order", order_id)
    if found is None:
        count = q.view("orders", "order_count")
        raise CliError(f"no order {order_id} on this chain (orders go from 1 to {count})",
                       hint="check the order id; `shopchain order list --buyer NAME` lists a buyer's orders")
    return found


#: The deadline that governs each state of an order (docs/commerce.md): only it is shown.
STATE_DEADLINES = {"PLACED": [("accept by", "accept_by")], "ACCEPTED": [("ship by", "ship_by")],
                   "PARTIALLY_SHIPPED": [("deliver by", "deliver_by")], "SHIPPED": [("deliver by", "deliver_by")],
                   "DELIVERED": [("auto-confirm at", "confirm_by")],
                   "COMPLETED": [("returns close at", "close_after")],
                   "DISPUTED": [("ruling due by", "dispute_deadline")]}
#: When each step happened (shown once it did).
ORDER_TIMES = [("placed", "placed_at"), ("delivered", "delivered_at"), ("completed", "completed_at")]


def terms_text(t: dict) -> str:
    return (f"accept within {format_duration(t['accept_seconds'])}, handling {format_duration(t['handling_seconds'])}, "
            f"transit {format_duration(t['transit_seconds'])}, auto-confirm after "
            f"{format_duration(t['auto_confirm_seconds'])}, returns {format_duration(t['return_seconds'])}, "
            f"restocking {format_percent(t['restock_bps'])}, warranty {format_duration(t['warranty_seconds'])}")


def order_text(o: dict, now: int, q: Query) -> str:
    """The order as a person reads it; times in the viewer's zone, time left from the chain's ``now``,
    amounts in the order's currency."""
    money = currency(q, o.get("currency") or None).show
    lines = [f"order {o['id']}: {o['state']}" + (f" (was {o['prev_state']})" if o["prev_state"] else ""),
             f"  buyer     {q.label(o['buyer'])}", f"  merchant  {q.label(o['merchant'])}",
             f"  price {money(o['price'])}  discount {money(o['discount'])}  "
             f"paid {money(o['amount'])}  refunded {money(o['refunded'])}  "
             f"fee {format_percent(o['fee_bps'])}"
             + (f"  points {o['points']} of {o['points_program']} paid {money(o['points_value'])}" if o.get("points") else ""),
             f"  carrier   {q.label(o['carrier']) if o['carrier'] != '0x' else '-'}",
             f"  lines     {len(o['lines'])}"]
    for i, ln in enumerate(o["lines"]):
        lines.append(f"    {i}: {ln['product']}  {ln['quantity']} x {money(ln['unit_price'])}  "
                     f"paid {money(ln['amount'])}  refunded {money(ln['refunded'])}  "
                     f"returned {ln['returned']}  terms {str(ln['terms_hash'])[:18]}..")
    for label, name in ORDER_TIMES:
        if o[name]:
            lines.append(f"  {label:<17} {format_time(o[name])}")
    for label, name in STATE_DEADLINES.get(o["state"], []):
        if o[name]:
            lines.append(f"  {label:<17} {format_when(o[name], now)}")
    lines.append(f"  order terms (strictest of the lines'): {terms_text(o['terms'])}")
    if o["open_case"]:
        lines.append(f"  open case {o['open_case']}")
    return "\n".join(lines)


def _text_bytes(text: str | None) -> bytes:
    return b"" if text is None else text.encode("utf-8")


# --- order ------------------------------------------------------------------------------

@click.group()
def order() -> None:
    """Orders with escrow: place, accept, ship, deliver, confirm, cancel, dispute."""


@order.command("terms")
@click.option("--arbiter", required=True, help="Account with the ARBITER role that rules disputes.")
@click.option("--accept", "accept_in", default="2d", show_default=True, help="Time to accept an order (e.g. 12h, 2d).")
@click.option("--handling", default="3d", show_default=True, help="Time from acceptance to shipping.")
@click.option("--transit", default="7d", show_default=True, help="Time from shipping to delivery.")
@click.option("--auto-confirm", default="7d", show_default=True,
              help="Time after delivery until receipt is confirmed automatically.")
@click.option("--returns", default="14d", show_default=True,
              help="Return window from delivery (0d: no returns without a reason).")
@click.option("--restocking", default="0%", show_default=True, help="Largest restocking fee on returns, e.g. 10%.")
@click.option("--warranty", default="365d", show_default=True, help="Warranty from delivery (0d: none).")
@click.option("--name", default=None, help="Publish a named terms set (cart lines quote it as :NAME) instead of the default.")
@tx_command
def order_terms(arbiter: str, accept_in: str, handling: str, transit: str, auto_confirm: str, returns: str,
                restocking: str, warranty: str, name: str | None, tx: Tx) -> None:
    """Publish this merchant's terms (buyers' orders quote their hash); periods are durations of block time."""
    restock_bps = parse_percent(restocking, "--restocking")
    if name is not None and (":" in name or not name or len(name) > 32):
        raise CliError(f"--name {name!r}: terms names are 1..32 characters without ':' (cart lines quote them "
                       f"after the last ':' of --line PRODUCT:QTY:UNIT_PRICE:NAME)")
    at_least_hour = {"minimum": 3600}
    periods = [parse_duration(accept_in, "--accept", **at_least_hour), parse_duration(handling, "--handling", **at_least_hour),
               parse_duration(transit, "--transit", **at_least_hour),
               parse_duration(auto_confirm, "--auto-confirm", **at_least_hour), parse_duration(returns, "--returns")]
    method, named = ("set_terms", []) if name is None else ("set_named_terms", [name])
    tx.send("orders", method, *named, *periods, restock_bps, parse_duration(warranty, "--warranty"),
            tx.account(arbiter, "--arbiter"), describe=lambda r: f"terms published, hash {r['return_value']}")


@order.command("place")
@click.option("--merchant", required=True, help="The seller (key name, key file or 0x key).")
@click.option("--line", "cart", multiple=True, metavar="PRODUCT:QTY:UNIT_PRICE[:TERMS]",
              help="A cart line (repeat, up to 32): product (0x hash or text), quantity, unit price, and optionally "
                   "the name (or 0x hash) of the merchant's terms set for it.")
@click.option("--product", default=None, help="One-line shorthand: product id (0x hash, or text such as a SKU, hashed).")
@click.option("--qty", "quantity", default=1, show_default=True, type=click.IntRange(1, 1_000_000),
              help="One-line shorthand: quantity.")
@click.option("--price", default=None, help="One-line shorthand: total price in currency units, e.g. 12.50.")
@click.option("--details", default=None, help="Order details (text or @FILE), committed by hash only.")
@click.option("--ship-to", "ship_to", multiple=True, metavar="FIELD=VALUE",
              help="A delivery field (repeatable): name, street, postcode, city, country, phone, email. Committed "
                   "salted on chain, sealed to the merchant off chain.")
@click.option("--referrer", default=None, help="Account that referred this order (approved referrer).")
@click.option("--voucher", default=None, help="Voucher id (0x hash or the text it was created with).")
@click.option("--voucher-code", default=None, help="The voucher's code, if it has one.")
@click.option("--currency", "code", default=None, metavar="CODE",
              help="Price and pay in this currency (default: the base currency; see `shopchain currency list`).")
@click.option("--points", default=None, metavar="PROGRAM:N",
              help="Pay part of the order with N points of the merchant's loyalty program PROGRAM.")
@tx_command
def order_place(merchant: str, cart: tuple[str, ...], product: str | None, quantity: int, price: str | None,
                details: str | None, ship_to: tuple[str, ...], referrer: str | None, voucher: str | None,
                voucher_code: str | None, code: str | None, points: str | None, tx: Tx) -> None:
    """Place an order (a cart from one merchant): the total is locked in escrow until delivery is confirmed."""
    program, count = _parse_points(points)
    if code is None:
        parsed = parse_cart(cart, product, quantity, price)    # before any network use
        money = None
    else:
        money = currency(tx, code)
        parsed = parse_cart(cart, product, quantity, price, money.parse)
    fields = delivery.parse_ship_to(ship_to)
    merchant_key = tx.account(merchant, "--merchant")
    hashes = {terms: _terms_hash(tx, merchant, merchant_key, terms) for terms in dict.fromkeys(t for *_, t in parsed)}
    lines = [[prod, n, unit, hashes[terms]] for prod, n, unit, terms in parsed]
    price_minor = sum(n * unit for _, n, unit, _ in parsed)
    referrer_key = tx.account(referrer, "--referrer") if referrer else b""
    voucher_id = parse_commitment(voucher, "--voucher") if voucher else b""
    salt = os.urandom(32)
    details_hash = parse_commitment(details, "--details") if details else b""
    payload_hash = sha256(PAYLOAD_DOMAIN + salt + details_hash)
    commitment, merchant_enc = None, b""
    if fields:
        if not tx.wait:
            raise CliError("--ship-to needs the order id to address the sealed details, so it cannot be --no-wait")
        merchant_enc = delivery.registered_enc_key(tx, merchant_key, "merchant")  # refuse before anything is sent
        commitment = delivery.buyer_commitment(tx, fields, payload_hash)
        if not tx.dry_run:
            delivery.save_record(tx, payload_hash, commitment)
    pii_root = commitment.root if commitment else sha256(b"shopchain/no-pii|" + salt)
    review_key = review_key_for(tx.signer, payload_hash)
    args = [merchant_key, lines, pii_root, payload_hash, sha256(review_key.public_key), referrer_key, voucher_id,
            _text_bytes(voucher_code)]
    shown = money.show(price_minor) if money else format_amount(price_minor)
    if money is not None or count:
        method, args = "place_in", args + [money.code if money else "", program, count]
    else:
        method = "place"
    receipt = tx.send("orders", method, *args,
                      describe=lambda r: f"order {r['return_value']} placed: {shown}"
                                         + (f" less {count} points" if count else "") + ", paid into escrow")
    if commitment is not None and not tx.dry_run:
        delivery.post_sealed(tx, merchant_key, "merchant", receipt["return_value"], "delivery",
                             commitment.to_payload(), merchant_enc)


def _parse_points(text: str | None) -> tuple[str, int]:
    """--points PROGRAM:N -> (program, N); ("", 0) without it."""
    if text is None:
        return "", 0
    program, sep, n = text.rpartition(":")
    if not sep or not program or not n.isdigit() or int(n) < 1:
        raise CliError(f"--points {text!r}: expected PROGRAM:N with N a positive number of points, e.g. acme-rewards:500",
                       EXIT_USAGE)
    return program, int(n)


def _parse_line(text: str) -> tuple[str, str, str, str | None]:
    """PRODUCT:QTY:UNIT_PRICE[:TERMS] -> parts; the product may itself contain colons (acme:tent-2p)."""
    parts = text.split(":")
    if len(parts) >= 4 and parts[-3].isdigit() and parts[-2].replace(".", "", 1).isdigit():
        return ":".join(parts[:-3]), parts[-3], parts[-2], parts[-1]
    if len(parts) >= 3 and parts[-2].isdigit() and parts[-1].replace(".", "", 1).isdigit():
        return ":".join(parts[:-2]), parts[-2], parts[-1], None
    raise CliError(f"--line {text!r}: expected PRODUCT:QTY:UNIT_PRICE[:TERMS], e.g. acme:tent-2p:2:12.50 or "
                   f"acme:tent-2p:2:12.50:gadgets")


def _terms_hash(tx: Tx, merchant: str, merchant_key: bytes, name: str | None) -> bytes:
    """The hash of the merchant's terms set ``name`` (None: its default set), or a 0x hash as given."""
    if name is not None and name.startswith("0x"):
        return parse_commitment(name, "--line TERMS")
    found = tx.view("orders", "terms_hash_of" if name is None else "named_terms_hash", merchant_key,
                    *([] if name is None else [name]))
    if not found or found == "0x":
        what = "default terms" if name is None else f"a terms set named {name!r}"
        raise CliError(f"merchant {merchant} has not published {what}, so it cannot take such orders",
                       hint="the merchant publishes them with `shopchain order terms --arbiter NAME"
                            + ("" if name is None else f" --name {name}") + " --key MERCHANT`")
    return bytes.fromhex(found[2:])


def parse_cart(cart: tuple[str, ...], product: str | None, quantity: int, price: str | None,
               amount: Callable[[str, str], int] = parse_amount) -> list[tuple[bytes, int, int, str | None]]:
    """``order place``'s lines as (product id, quantity, unit price, terms name or None for the default set),
    from --line ... or the one-line shorthand (whose --price is the total of --qty units); ``amount``
    parses prices in the order's currency (the base currency's decimals by default)."""
    if cart and (product is not None or price is not None):
        raise CliError("give either --line (repeatable) or --product/--qty/--price, not both")
    if not cart:
        if product is None or price is None:
            raise CliError("give the cart as --line PRODUCT:QTY:UNIT_PRICE[:TERMS] (repeatable), "
                           "or one line as --product and --price")
        total = amount(price, "--price")
        if total % quantity:
            raise CliError(f"--price {price} is the total of --qty {quantity} units and does not divide evenly",
                           hint=f"give the unit price instead: --line PRODUCT:{quantity}:UNIT_PRICE")
        return [(parse_commitment(product, "--product"), quantity, total // quantity, None)]
    if len(cart) > MAX_ORDER_LINES:
        raise CliError(f"an order holds at most {MAX_ORDER_LINES} lines, found {len(cart)}",
                       hint="split the cart into several orders")
    lines = []
    for text in cart:
        prod, qty, unit, terms = _parse_line(text)
        n = int(qty)
        if not 1 <= n <= 1_000_000:
            raise CliError(f"--line {text!r}: quantity must be 1..1000000, found {n}")
        lines.append((parse_commitment(prod, "--line PRODUCT"), n, amount(unit, "--line UNIT_PRICE"), terms))
    return lines


# Verbs that take just the order id: (name, method, help, what the success line says).
for _name, _method, _doc, _done in [
    ("reject", "reject", "Merchant: reject a PLACED order (full refund to the buyer).", "rejected and refunded"),
    ("cancel", "cancel", "Cancel: the buyer before acceptance; both parties (each calls it) before shipping.", "cancel recorded"),
    ("confirm", "confirm", "Buyer: confirm receipt, which pays the merchant (minus fee and holdback).", "confirmed: merchant paid"),
    ("extend", "extend", "Buyer: extend the auto-confirm countdown once.", "countdown extended"),
    ("poke", "poke", "Anyone: apply whichever deadline of the order has passed.", "deadline applied"),
    ("settle-debt", "settle_debt", "Merchant: pay the debt a refund left on this order.", "debt settled"),
]:
    id_transition(order, _name, "orders", _method, order_id_argument, "order", _doc, _done)


@order.command("accept")
@order_id_argument
@click.option("--carrier", required=True, help="The carrier account that will ship it.")
@click.option("--label-field", "label_fields", multiple=True, type=click.Choice(DELIVERY_FIELDS),
              help="Also put this field on the carrier's label (repeatable; default name, street, postcode, city, "
                   "country: phone and email only when listed).")
@click.option("--label", default=None, help="0x hash of a label made elsewhere, for an order with no sealed "
                                            "delivery details (nothing is sealed then).")
@tx_command
def order_accept(order_id: int, carrier: str, label_fields: tuple[str, ...], label: str | None, tx: Tx) -> None:
    """Merchant: accept a PLACED order, name the carrier and seal the label fields to it."""
    if label is not None and not label.startswith("0x"):
        raise CliError("--label takes a 0x hash only (text would go on chain as a guessable hash)",
                       hint="leave --label out: the label is built from the buyer's sealed details")
    carrier_key = tx.account(carrier, "--carrier")
    if label is not None:
        tx.send("orders", "accept", order_id, carrier_key, parse_commitment(label, "--label"),
                describe=lambda r: f"order {order_id} accepted")
        return
    order = get_order(tx, order_id)
    if tx.signer_account().hex() != order["merchant"][2:]:
        raise CliError(f"not sent: only the order's merchant accepts order {order_id}; it is "
                       f"{tx.label(order['merchant'])}", EXIT_TX_FAILED, hint="sign with the merchant's key (--key NAME)")
    label_list, carrier_enc = delivery.carrier_label(tx, order, carrier_key, label_fields)
    tx.send("orders", "accept", order_id, carrier_key, label_hash(label_list),
            describe=lambda r: f"order {order_id} accepted")
    if not tx.dry_run:
        delivery.post_sealed(tx, carrier_key, "carrier", order_id, "label", label_payload(label_list), carrier_enc)


@order.command("ship")
@order_id_argument
@click.option("--tracking", required=True, help="Tracking number (committed salted, the salt sealed to the buyer) "
                                               "or a 0x commitment made elsewhere.")
@click.option("--partial", is_flag=True, help="Only part of the order left.")
@tx_command
def order_ship(order_id: int, tracking: str, partial: bool, tx: Tx) -> None:
    """Merchant or named carrier: mark the order shipped; the buyer reads the number with `order details`."""
    if tracking.startswith("0x"):
        tx.send("orders", "ship", order_id, parse_commitment(tracking, "--tracking"), partial,
                describe=lambda r: f"order {order_id} {'partially ' if partial else ''}shipped")
        return
    buyer = bytes.fromhex(get_order(tx, order_id)["buyer"][2:])
    buyer_enc = delivery.registered_enc_key(tx, buyer, "buyer")
    commitment = commit_tracking(tracking)
    tx.send("orders", "ship", order_id, commitment.root, partial,
            describe=lambda r: f"order {order_id} {'partially ' if partial else ''}shipped")
    if not tx.dry_run:
        delivery.post_sealed(tx, buyer, "buyer", order_id, "tracking", commitment.to_payload(), buyer_enc)


@order.command("deliver")
@order_id_argument
@click.option("--proof", required=True, help="Proof of delivery (text, @FILE photo/signature, or 0x hash).")
@tx_command
def order_deliver(order_id: int, proof: str, tx: Tx) -> None:
    """Named carrier: record delivery (starts the auto-confirm countdown)."""
    tx.send("orders", "deliver", order_id, tx.commit_text(proof, "--proof"),
            describe=lambda r: f"order {order_id} delivered")


@order.command("dispute")
@order_id_argument
@click.option("--evidence", required=True, help="Evidence (text, @FILE or 0x hash).")
@tx_command
def order_dispute(order_id: int, evidence: str, tx: Tx) -> None:
    """Buyer or merchant: open a dispute for the order's arbiter."""
    tx.send("orders", "dispute", order_id, tx.commit_text(evidence, "--evidence"),
            describe=lambda r: f"order {order_id} disputed")


@order.command("evidence")
@order_id_argument
@click.option("--evidence", required=True, help="Evidence (text, @FILE or 0x hash).")
@tx_command
def order_evidence(order_id: int, evidence: str, tx: Tx) -> None:
    """Parties or arbiter: add evidence to a dispute."""
    tx.send("orders", "add_evidence", order_id, tx.commit_text(evidence, "--evidence"),
            describe=lambda r: f"evidence added to order {order_id}")


@order.command("rule")
@order_id_argument
@click.option("--to-buyer", required=True, help="Amount refunded to the buyer, e.g. 10.00.")
@click.option("--to-merchant", required=True, help="Amount paid to the merchant.")
@click.option("--fee", default="0", show_default=True, help="Arbiter's fee.")
@tx_command
def order_rule(order_id: int, to_buyer: str, to_merchant: str, fee: str, tx: Tx) -> None:
    """Arbiter (or PLATFORM after escalation): split the escrow; the parts must sum to it."""
    parts = [parse_amount(to_buyer, "--to-buyer", allow_zero=True),
             parse_amount(to_merchant, "--to-merchant", allow_zero=True), parse_amount(fee, "--fee", allow_zero=True)]
    tx.send("orders", "rule", order_id, *parts, describe=lambda r: f"order {order_id} resolved")


@order.command("bond")
@click.argument("action", type=click.Choice(["deposit", "withdraw"]))
@click.argument("amount")
@tx_command
def order_bond(action: str, amount: str, tx: Tx) -> None:
    """Merchant: deposit or withdraw AMOUNT of bond (backs refunds beyond escrow)."""
    minor = parse_amount(amount, "AMOUNT")
    tx.send("orders", f"{action}_bond", minor, describe=lambda r: f"bond {action}: {format_amount(minor)}")


@order.command("show")
@order_id_argument
@query_command
def order_show(order_id: int, q: Query) -> None:
    """Show an order: state, amounts, parties, deadlines and terms."""
    found = get_order(q, order_id)
    now = chain_now(q.client.status()) if not q.as_json else 0
    q.emit(found, lambda o: order_text(o, now, q))


@order.command("list")
@click.option("--buyer", required=True, help="Whose orders (key name, key file or 0x key).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_LIST))
@query_command
def order_list(buyer: str, limit: int, q: Query) -> None:
    """List a buyer's orders with their state and amount."""
    ids = q.view("orders", "orders_of_buyer", q.account(buyer, "--buyer"), limit)
    rows = [get_order(q, oid) for oid in ids]
    summary = [{"id": o["id"], "state": o["state"], "amount": o["amount"], "merchant": o["merchant"]} for o in rows]
    q.emit(summary, lambda rs: "\n".join(f"{r['id']:>6}  {r['state']:<18} {format_amount(r['amount']):>14}  "
                                         f"{q.label(r['merchant'])}" for r in rs) or "no orders")


# --- case ------------------------------------------------------------------------------

@click.group()
def case() -> None:
    """After-sales cases: refund only, not received, return and refund."""


@case.command("open")
@order_id_argument
@click.option("--kind", required=True, type=click.Choice(sorted(CASE_KINDS)), help="What the buyer asks for.")
@click.option("--amount", required=True, help="Refund asked, in currency units.")
@click.option("--reason", required=True, help="Reason (text, @FILE or 0x hash).")
@click.option("--line", "line", default=None, type=click.IntRange(0, MAX_ORDER_LINES - 1),
              help="The order line (0, 1, ... as `order show` lists them); needed when the order has several.")
@click.option("--quantity", default=None, type=click.IntRange(1, 1_000_000),
              help="Units sent back (returns only; default 1).")
@tx_command
def case_open(order_id: int, kind: str, amount: str, reason: str, line: int | None, quantity: int | None,
              tx: Tx) -> None:
    """Buyer: open a case on a line of ORDER (a not-received case covers the whole parcel)."""
    minor = parse_amount(amount, "--amount")
    kind_name = CASE_KINDS[kind]
    if quantity is not None and kind_name != "RETURN_REFUND":
        raise CliError(f"--quantity is for returns: a {kind} case sends no units back")
    if kind_name == "NOT_RECEIVED":
        if line is not None:
            raise CliError("a not-received case is for the whole parcel; leave out --line")
        line = ALL_LINES
    elif line is None:
        count = len(get_order(tx, order_id)["lines"])
        if count > 1:
            raise CliError(f"order {order_id} has {count} lines; say which with --line 0..{count - 1}",
                           hint=f"`shopchain order show {order_id}` lists them")
        line = 0
    units = (quantity or 1) if kind_name == "RETURN_REFUND" else 0
    tx.send("cases", "open", order_id, line, kind_name, units, minor, tx.commit_text(reason, "--reason"),
            describe=lambda r: f"case {r['return_value']} opened on order {order_id}"
                               + ("" if line == ALL_LINES else f" line {line}"))


@case.command("reply")
@case_id_argument
@click.option("--agree", is_flag=True, help="Agree to the buyer's request.")
@click.option("--counter", default=None, help="Counter-offer amount instead, in currency units.")
@tx_command
def case_reply(case_id: int, agree: bool, counter: str | None, tx: Tx) -> None:
    """Merchant: agree, or make a counter-offer."""
    if agree == (counter is not None):
        raise CliError("give exactly one of --agree or --counter AMOUNT")
    tx.send("cases", "reply", case_id, agree, 0 if agree else parse_amount(counter, "--counter"),
            describe=lambda r: f"case {case_id} {'agreed' if agree else 'countered'}")


# Verbs that take just the case id: (name, method, help).
for _name, _method, _doc in [
    ("accept-counter", "accept_counter", "Buyer: accept the merchant's counter-offer."),
    ("escalate", "escalate", "Buyer or merchant: escalate the case to the order's dispute."),
    ("withdraw", "withdraw", "Buyer: withdraw the case."),
    ("return-received", "return_received", "Merchant: confirm the returned parcel arrived."),
    ("poke", "poke", "Anyone: apply whichever deadline of the case has passed."),
]:
    id_transition(case, _name, "cases", _method, case_id_argument, "case", _doc)


@case.command("return-shipped")
@case_id_argument
@click.option("--tracking", required=True, help="Return tracking number (text, hashed) or 0x commitment.")
@tx_command
def case_return_shipped(case_id: int, tracking: str, tx: Tx) -> None:
    """Buyer: the return is on its way."""
    tx.send("cases", "return_shipped", case_id, tx.commit_text(tracking, "--tracking"),
            describe=lambda r: f"case {case_id}: return shipped")


@case.command("refund")
@case_id_argument
@click.option("--restocking-fee", default="0", show_default=True, help="Fee kept, in currency units (within terms).")
@tx_command
def case_refund(case_id: int, restocking_fee: str, tx: Tx) -> None:
    """Merchant: refund a received return, minus a restocking fee."""
    tx.send("cases", "refund_return", case_id, parse_amount(restocking_fee, "--restocking-fee", allow_zero=True),
            describe=lambda r: f"case {case_id} refunded")


@case.command("show")
@case_id_argument
@query_command
def case_show(case_id: int, q: Query) -> None:
    """Show a case."""
    found = q.view("cases", "get_case", case_id)
    if found is None:
        raise CliError(f"no case {case_id}", hint="check the id (`shopchain order show ORDER` names its open case)")
    now = chain_now(q.client.status()) if not q.as_json else 0
    open_case = found["state"] not in CASE_DONE
    q.emit(found, lambda c: f"case {c['id']} on order {c['order']}"
                            + ("" if c["line"] == ALL_LINES else f" line {c['line']}")
                            + (f" ({c['quantity']} units back)" if c["quantity"] else "")
                            + f": {c['kind']} {c['state']}\n"
                            f"  amount {format_amount(c['amount'])}  counter {format_amount(c['counter'])}  "
                            f"restocking fee {format_amount(c['restock_fee'])}\n"
                            f"  buyer {q.label(c['buyer'])}  merchant {q.label(c['merchant'])}"
                            + (f"\n  next deadline {format_when(c['deadline'], now)}" if open_case else ""))


def all_groups() -> list[Any]:
    return [order, case]
