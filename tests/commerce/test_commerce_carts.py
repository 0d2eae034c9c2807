"""Carts: orders of several lines, each with its own terms, paid, refunded, returned and activated per line.

The stories drive one cart through a voucher, a partial return of one line, a partial
refund of another, completion and warranty activation per line (reviews per line:
tests/commerce/test_reviews.py), and check
every minor unit where it ends up: the voucher split by largest remainder, fee and
holdback computed per line and summed, the escrow at each step, conservation (E1).
The splitting rules are also checked against an exact Python model (fractions) at
amounts large enough to take the contract's overflow-free mul-div path.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from ledger.crypto import SigningKey, sha256
from tests.commerce_harness import DAY, Chain, h

VOUCHER = h("cart-voucher")
TENT, PEGS, LAMP = h("tent"), h("pegs"), h("lamp")


def largest_remainder(amount: int, weights: list[int]) -> list[int]:
    """The documented split: floor shares, then one unit each to the largest remainders, ties to the lower index."""
    total = sum(weights)
    if amount == total:
        return list(weights)
    exact = [Fraction(amount * w, total) for w in weights]
    parts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:amount - sum(parts)]:
        parts[i] += 1
    return parts


def cart_chain() -> tuple[Chain, dict[str, bytes]]:
    """merchant1 offers three sets: its default, 'gadgets' (long returns and warranty) and 'final' (no returns)."""
    c = Chain()
    sets = {"default": c.publish_terms(),
            "gadgets": c.publish_terms_named("gadgets", accept_days=1, return_days=30, restock_bps=500,
                                             warranty_days=366, auto_confirm_days=9),
            "final": c.publish_terms_named("final", return_days=0, warranty_days=0)}
    return c, sets


def three_line_cart(c: Chain, sets: dict[str, bytes], voucher: bool = True) -> int:
    if voucher:
        c.ok("merchant1", "loyalty", "create_voucher", VOUCHER, b"", "FIXED", 1_001, 1_000, 0, c.after(1_000), 5, 5)
    oid = c.place(lines=[(TENT, 1, 12_000, sets["default"]), (PEGS, 3, 1_000, sets["final"]),
                         (LAMP, 2, 2_500, sets["gadgets"])],
                  voucher=VOUCHER if voucher else b"", review_key_hash=sha256(review_key().public_key))
    assert isinstance(oid, int), oid
    return oid


def review_key() -> SigningKey:
    return SigningKey.from_label("cart-review-key")


def deliver(c: Chain, oid: int) -> None:
    c.ok("merchant1", "orders", "accept", oid, c.keys["carrier1"], h("label"))
    c.ok("carrier1", "orders", "ship", oid, h("track"), False)
    c.ok("carrier1", "orders", "deliver", oid, h("pod"))


def test_a_three_line_cart_from_voucher_to_close_is_exact_per_line():
    c, sets = cart_chain()
    start = {n: c.balance(n) for n in ("buyer1", "merchant1", "platform")}
    oid = three_line_cart(c, sets)
    o = c.order(oid)
    # The voucher's 1,001 is split 600.6 / 150.15 / 250.25 -> floors 600, 150, 250 and the unit left to line 0.
    assert [ln["discount"] for ln in o["lines"]] == [601, 150, 250] == largest_remainder(1_001, [12_000, 3_000, 5_000])
    assert [ln["amount"] for ln in o["lines"]] == [11_399, 2_850, 4_750]
    assert (o["price"], o["discount"], o["amount"]) == (20_000, 1_001, 18_999) and c.escrow(oid) == 18_999
    # The parcel keeps every line's promise: gadgets' one-day accept, the longest auto-confirm and return window.
    assert o["accept_by"] == c.now + DAY
    assert (o["terms"]["auto_confirm_seconds"], o["terms"]["return_seconds"]) == (9 * DAY, 30 * DAY)
    deliver(c, oid)

    # Line 1 ("final") takes no returns; line 2 returns one lamp of two, worth half the line.
    assert c.err("buyer1", "cases", "open", oid, 1, "RETURN_REFUND", 1, 500, h("r")).message.startswith(
        "the return window closed")
    assert c.err("buyer1", "cases", "open", oid, 2, "RETURN_REFUND", 1, 2_376, h("r")).message == (
        "return refund for 1 of line 2 must be 1..2375")
    assert c.err("buyer1", "cases", "open", oid, 2, "RETURN_REFUND", 3, 100, h("r")).message.startswith(
        "line 2 has 2 units that can go back")
    cid = c.ok("buyer1", "cases", "open", oid, 2, "RETURN_REFUND", 1, 2_375, h("wrong colour"))
    assert c.view("cases", "get_case", cid)["restock_bps"] == 500          # the line's own terms
    c.ok("merchant1", "cases", "reply", cid, True, 0)
    c.ok("buyer1", "cases", "return_shipped", cid, h("rt"))
    c.ok("merchant1", "cases", "return_received", cid)
    assert c.err("merchant1", "cases", "refund_return", cid, 119).message == "restocking fee must be 0..118 under the terms"
    c.ok("merchant1", "cases", "refund_return", cid, 118)
    # Line 0 gets a partial refund for a scratch (no return).
    assert c.err("buyer1", "cases", "open", oid, 0, "REFUND_ONLY", 0, 11_399, h("x")).message.startswith(
        "after shipment only a partial refund of line 0")
    cid2 = c.ok("buyer1", "cases", "open", oid, 0, "REFUND_ONLY", 0, 1_000, h("scratch"))
    c.ok("merchant1", "cases", "reply", cid2, True, 0)
    o = c.order(oid)
    assert [(ln["refunded"], ln["returned"]) for ln in o["lines"]] == [(1_000, 0), (0, 0), (2_257, 1)]
    assert o["refunded"] == 3_257 and c.escrow(oid) == 18_999 - 3_257

    c.ok("buyer1", "orders", "confirm", oid)
    o = c.order(oid)
    nets = [ln["amount"] - ln["refunded"] for ln in o["lines"]]
    fees = [n * o["fee_bps"] // 10_000 for n in nets]
    holdbacks = [n * o["holdback_bps"] // 10_000 for n in nets]
    assert [ln["fee_paid"] for ln in o["lines"]] == fees and o["fee_paid"] == sum(fees)
    assert c.escrow(oid) == sum(holdbacks)
    payout = sum(nets) - sum(fees) - sum(holdbacks)
    assert c.balance("merchant1") == start["merchant1"] + payout
    assert c.balance("platform") == start["platform"] + sum(fees)

    # Warranty per line: product, units kept and the line's warranty period.
    units = {name: h("unit-" + name) for name in ("lamp-a", "lamp-b", "tent", "pegs")}
    for name, product in (("lamp-a", LAMP), ("lamp-b", LAMP), ("tent", TENT), ("pegs", PEGS)):
        c.ok("merchant1", "warranty", "register_unit", units[name], product)
    c.ok("buyer1", "warranty", "activate", units["lamp-a"], oid, 2)
    assert c.err("buyer1", "warranty", "activate", units["lamp-b"], oid, 2).message == (
        f"line 2 of order {oid} covers 1 units and every one is already activated")   # the other lamp went back
    assert c.err("buyer1", "warranty", "activate", units["lamp-b"], oid, 0).message == (
        f"line 0 of order {oid} is for another product")
    assert c.err("buyer1", "warranty", "activate", units["tent"], oid, 3).message == (
        f"order {oid} has lines 0..2, found 3")
    c.ok("carrier2", "warranty", "activate", units["tent"], oid, 0)
    c.ok("buyer1", "warranty", "activate", units["pegs"], oid, 1)
    ends = {n: c.view("warranty", "get_passport", units[n])["warranty_end"] for n in ("lamp-a", "tent", "pegs")}
    assert ends == {"lamp-a": o["delivered_at"] + 366 * DAY, "tent": o["delivered_at"] + 365 * DAY,
                    "pegs": o["delivered_at"]}
    assert c.view("warranty", "get_passport", units["lamp-a"])["line"] == 2

    # Reviews per line of carts (ring-signed, relayed): tests/commerce/test_reviews.py

    # The holdback stays until the longest line's return window (30 days from delivery) has passed.
    c.advance(c.days(29))
    assert c.err("carrier2", "orders", "poke", oid).message.startswith("no deadline")
    c.advance(c.days(2))
    c.ok("carrier2", "orders", "poke", oid)
    assert c.order(oid)["state"] == "CLOSED" and c.escrow(oid) == 0
    assert c.balance("merchant1") == start["merchant1"] + sum(nets) - sum(fees)
    assert c.balance("buyer1") == start["buyer1"] - 18_999 + 3_257
    c.supply_check()


def test_lines_quote_only_terms_the_merchant_offers_now():
    c, sets = cart_chain()
    assert c.place(lines=[(TENT, 1, 100), (PEGS, 1, 100, h("made-up terms"))]).message == (
        "line 1: terms hash " + h("made-up terms").hex() + " is not one of the merchant's current terms")
    assert c.place(lines=[(TENT, 1, 100, sets["gadgets"])], merchant="merchant2").message.startswith(
        "line 0: terms hash")                                      # another merchant's set
    replaced = c.publish_terms_named("gadgets", return_days=60)
    assert replaced != sets["gadgets"]
    assert isinstance(c.place(lines=[(TENT, 1, 100, replaced)]), int)
    assert c.place(lines=[(TENT, 1, 100, sets["gadgets"])]).message.startswith("line 0: terms hash")
    assert c.err("merchant1", "orders", "set_named_terms", "copy", 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 14 * DAY,
                 1000, 365 * DAY, c.keys["arbiter"]).message == "these terms are already offered as ''"
    assert c.view("orders", "terms_offered", c.keys["merchant1"]) == [["", sets["default"]], ["final", sets["final"]],
                                                                      ["gadgets", replaced]]
    c.ok("merchant1", "orders", "withdraw_terms", "final")
    assert c.place(lines=[(PEGS, 1, 100, sets["final"])]).message.startswith("line 0: terms hash")
    assert c.view("orders", "get_terms_set", sets["final"])["return_seconds"] == 0   # the snapshot stays
    assert c.err("merchant1", "orders", "withdraw_terms", "final").message == (
        "no terms set named 'final' is offered by this account")


def test_line_count_and_line_amounts_are_bounded():
    c, sets = cart_chain()
    assert c.place(lines=[]).message == "an order has 1..32 lines, found 0"
    big = [(h(f"p{i}"), 1 + i % 4, 3 + i, sets["default"] if i % 2 else sets["gadgets"]) for i in range(33)]
    assert c.place(lines=big).message == "an order has 1..32 lines, found 33"
    oid = c.place(lines=big[:32])
    assert len(c.order(oid)["lines"]) == 32
    assert c.place(lines=[(TENT, 2, 10**15 // 2 + 1)]).message.startswith(
        "line 0: quantity x unit price must be 1..10^15 minor units")
    assert c.place(lines=[(TENT, 0, 5)]).message == "line 0: quantity must be 1..1000000, found 0"
    assert c.place(lines=[(TENT, 1, 5), (b"short", 1, 5)]).message == "line 1: product id and terms hash are 32 bytes"
    c.ok("buyer1", "orders", "cancel", oid)
    assert all(ln["refunded"] == ln["amount"] for ln in c.order(oid)["lines"])
    c.supply_check()


def test_a_cancelled_cart_refunds_every_line_and_restores_the_voucher():
    c, sets = cart_chain()
    before = c.balance("buyer1")
    oid = three_line_cart(c, sets)
    c.ok("buyer1", "orders", "cancel", oid)
    o = c.order(oid)
    assert [ln["refunded"] for ln in o["lines"]] == [ln["amount"] for ln in o["lines"]]
    assert c.balance("buyer1") == before and c.escrow(oid) == 0
    assert c.view("loyalty", "voucher_uses", VOUCHER, c.keys["buyer1"]) == 0


def test_a_line_refunded_in_full_before_shipment_covers_no_warranty():
    c, sets = cart_chain()
    oid = three_line_cart(c, sets, voucher=False)
    cid = c.ok("buyer1", "cases", "open", oid, 2, "REFUND_ONLY", 0, 5_000, h("do not send the lamps"))
    c.ok("merchant1", "cases", "reply", cid, True, 0)
    o = c.order(oid)
    assert o["state"] == "PLACED" and o["lines"][2]["refunded"] == 5_000 and o["refunded"] == 5_000
    deliver(c, oid)
    c.ok("buyer1", "orders", "confirm", oid)
    c.ok("merchant1", "warranty", "register_unit", h("lamp-x"), LAMP)
    assert c.err("buyer1", "warranty", "activate", h("lamp-x"), oid, 2).message == (
        f"line 2 of order {oid} covers no units: every one was returned or the line was refunded in full")
    assert c.order(oid)["lines"][2]["fee_paid"] == 0            # nothing kept, no fee


def test_not_received_covers_the_whole_parcel_split_over_the_lines():
    c, sets = cart_chain()
    oid = three_line_cart(c, sets, voucher=False)
    c.ok("merchant1", "orders", "accept", oid, c.keys["carrier1"], h("label"))
    c.ok("carrier1", "orders", "ship", oid, h("track"), False)
    c.advance(c.days(6))
    assert c.err("buyer1", "cases", "open", oid, 0, "NOT_RECEIVED", 0, 20_000, h("r")).message == (
        "a not-received case is for the whole parcel: line -1, found 0")
    cid = c.ok("buyer1", "cases", "open", oid, -1, "NOT_RECEIVED", 0, 20_000, h("where"))
    c.ok("merchant1", "cases", "reply", cid, True, 0)
    o = c.order(oid)
    assert o["state"] == "CANCELLED" and [ln["refunded"] for ln in o["lines"]] == [12_000, 3_000, 5_000]


def test_a_ruling_is_split_over_what_each_line_still_holds():
    c, sets = cart_chain()
    oid = three_line_cart(c, sets, voucher=False)
    deliver(c, oid)
    cid = c.ok("buyer1", "cases", "open", oid, 1, "REFUND_ONLY", 0, 999, h("dent"))
    c.ok("merchant1", "cases", "reply", cid, True, 0)
    c.ok("buyer1", "orders", "dispute", oid, h("broken"))
    held = c.escrow(oid)
    c.ok("arbiter", "orders", "rule", oid, 7_001, held - 7_001, 0)
    o = c.order(oid)
    expected = largest_remainder(7_001, [12_000, 3_000 - 999, 5_000])
    assert [ln["refunded"] for ln in o["lines"]] == [expected[0], 999 + expected[1], expected[2]]
    assert o["refunded"] == 7_001 + 999 and c.escrow(oid) == 0
    c.supply_check()


@pytest.mark.parametrize("weights, to_buyer", [
    ([10**14 * 3 + 7, 10**14 * 2 + 1, 999_999_999_999, 5], 10**14 * 4 + 123_456_789),
    ([2**40 + 3, 2**41 - 1, 2**39 + 17], 2**41 + 2**39 - 5),
    ([1, 1, 1], 2),
])
def test_splits_are_exact_at_amounts_that_overflow_naive_products(weights, to_buyer):
    """A ruling on a huge cart uses the overflow-free mul-div; the parts match the exact model to the unit."""
    c, sets = cart_chain()
    c.ok("treasury", "ledger", "mint", c.keys["buyer1"], sum(weights))
    oid = c.place(lines=[(h(f"p{i}"), 1, w, sets["default"]) for i, w in enumerate(weights)])
    assert isinstance(oid, int), oid
    c.ok("merchant1", "orders", "accept", oid, c.keys["carrier1"], h("label"))
    c.ok("buyer1", "orders", "dispute", oid, h("ev"))
    held = c.escrow(oid)
    c.ok("arbiter", "orders", "rule", oid, to_buyer, held - to_buyer, 0)
    parts = [ln["refunded"] for ln in c.order(oid)["lines"]]
    assert parts == largest_remainder(to_buyer, weights) and sum(parts) == to_buyer
    c.supply_check()
