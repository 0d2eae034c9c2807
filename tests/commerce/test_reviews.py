"""Reviews signed by a ring of verified orders, relayed by an account that bought none of them."""

from __future__ import annotations

import pytest

from contracts_vm.system import review_message
from ledger import ring
from ledger.crypto import SigningKey, sha256
from tests.commerce_harness import DEFAULT_ACCOUNTS, Chain, h
from tests.ring_reviews import amend_args, publish_args

BUYERS = ["buyer1", "buyer2", "buyer3", "buyer4", "buyer5"]
SCORES = [5, 4, 5, 5, 4]
RELAYER = "auditor"
REVIEW_FIELDS = {"id", "key_image", "line", "merchant", "product", "ring", "scores", "content_hash", "disputed",
                 "incentivised", "version", "prior", "superseded", "hidden", "reply_hash", "height"}


def chain() -> Chain:
    c = Chain({**DEFAULT_ACCOUNTS, "buyer4": ["BUYER"], "buyer5": ["BUYER"]})
    c.publish_terms()
    c.publish_terms("merchant2")
    return c


def completed(c: Chain, buyers: list[str], merchant: str = "merchant1", product: bytes = h("tent"),
              announce: bool = True) -> dict[int, SigningKey]:
    """One COMPLETED order per buyer, each with its own review key (announced unless told)."""
    out = {}
    for b in buyers:
        rk = SigningKey.from_label(f"rk-{b}-{merchant}-{c.view('orders', 'order_count')}")
        oid = c.to_delivered(b, merchant, review_key_hash=sha256(rk.public_key), product=product)
        c.ok(b, "orders", "confirm", oid)
        if announce:
            c.ok(b, "reviews", "announce_key", oid, rk.public_key)
        out[oid] = rk
    return out


def pubs(keys: dict[int, SigningKey]) -> dict[int, bytes]:
    return {oid: k.public_key for oid, k in keys.items()}


def test_a_ring_review_counts_exactly_and_names_neither_order_nor_buyer():
    c = chain()
    keys = completed(c, BUYERS[:3])
    mine = sorted(keys)[1]                       # buyer2's order
    c.events.clear()
    args = publish_args(keys[mine], pubs(keys), 0, SCORES, h("great tent"))
    rid = c.ok(RELAYER, "reviews", "publish", *args)
    rv = c.view("reviews", "get_review", rid)
    assert set(rv) == REVIEW_FIELDS                                  # no order, no review key, no sender
    assert rv["ring"] == sorted(keys) and rv["key_image"] == ring.key_image(ring.secret_scalar(keys[mine].seed))
    assert (rv["merchant"], rv["product"], rv["disputed"]) == (c.keys["merchant1"], h("tent"), False)
    assert c.view("reviews", "merchant_rating", c.keys["merchant1"]) == {"count": 1, "sums": SCORES}
    assert c.view("reviews", "product_rating", h("tent")) == {"count": 1, "sums": SCORES}
    assert c.view("reviews", "live_review", rv["key_image"], 0) == rid
    # nothing of the review singles out buyer2 or its order beyond the ring: no account id
    # of any ring buyer in the arguments, the record or the events, and no order id field
    published = repr((args, rv, c.events))
    for b in BUYERS[:3]:
        assert repr(c.keys[b]) not in published and c.keys[b].hex() not in published
    assert [e[1] for e in c.events] == ["ReviewPublished"]
    assert set(c.events[0][2]) == {"review", "key_image", "line", "overall", "content_hash"}


def test_a_buyer_of_a_ring_order_cannot_send_the_review_itself():
    c = chain()
    keys = completed(c, BUYERS[:3])
    args = publish_args(keys[sorted(keys)[0]], pubs(keys), 0, SCORES, h("t"))
    for b in BUYERS[:3]:   # the reviewer, and the other ring buyers (either would name the ring's members)
        assert c.err(b, "reviews", "publish", *args).message.startswith(
            "the sender bought one of the ring's orders: a review sent from a buyer's own account names the reviewer")
    c.ok("buyer4", "reviews", "publish", *args)   # any other registered account relays


def test_one_live_review_per_order_line_whatever_the_ring():
    c = chain()
    keys = completed(c, BUYERS[:4])
    ids = sorted(keys)
    c.ok(RELAYER, "reviews", "publish", *publish_args(keys[ids[0]], pubs({i: keys[i] for i in ids[:3]}), 0, SCORES, h("a")))
    # the same key in another ring has the same key image: refused
    again = publish_args(keys[ids[0]], pubs({i: keys[i] for i in (ids[0], ids[3])}), 0, SCORES, h("b"))
    assert c.err(RELAYER, "reviews", "publish", *again).message == \
        "this review key already has a live review of line 0; amend it instead"
    # another member of the first ring still reviews its own order
    c.ok(RELAYER, "reviews", "publish", *publish_args(keys[ids[1]], pubs({i: keys[i] for i in ids[:3]}), 0, SCORES, h("c")))
    assert c.view("reviews", "merchant_rating", c.keys["merchant1"])["count"] == 2
    line1 = publish_args(keys[ids[2]], pubs(keys), 1, SCORES, h("d"))
    assert c.err(RELAYER, "reviews", "publish", *line1).message == f"ring order {ids[0]} has no line 1"
    negative = publish_args(keys[ids[2]], pubs(keys), -1, SCORES, h("d"))
    assert c.err(RELAYER, "reviews", "publish", *negative).message == "order lines are numbered from 0, found line -1"


def test_an_amendment_supersedes_by_key_image_once_and_ratings_follow():
    c = chain()
    keys = completed(c, BUYERS[:3], product=h("stove"))
    ids = sorted(keys)
    rid = c.ok(RELAYER, "reviews", "publish", *publish_args(keys[ids[2]], pubs(keys), 0, SCORES, h("great")))
    prior = c.view("reviews", "get_review", rid)
    new = [2, 2, 3, 1, 2]
    # another ring member cannot amend it: its signature is not by the key behind this image
    forged = amend_args(keys[ids[0]], {**prior, "key_image": ring.key_image(ring.secret_scalar(keys[ids[0]].seed))},
                        pubs(keys), new, h("broke"))
    forged[0] = prior["key_image"]
    assert c.err(RELAYER, "reviews", "amend", *forged).message.startswith("bad review signature")
    assert c.err("buyer3", "reviews", "amend", *amend_args(keys[ids[2]], prior, pubs(keys), new, h("broke"))) \
        .message.startswith("the sender bought one of the ring's orders")
    rid2 = c.ok(RELAYER, "reviews", "amend", *amend_args(keys[ids[2]], prior, pubs(keys), new, h("broke")))
    second = c.view("reviews", "get_review", rid2)
    assert (second["prior"], second["version"], second["ring"]) == (rid, 2, ids)
    assert c.view("reviews", "get_review", rid)["superseded"] and \
        c.view("reviews", "get_review", rid)["content_hash"] == h("great")      # never edited in place
    assert c.view("reviews", "live_review", prior["key_image"], 0) == rid2
    assert c.view("reviews", "merchant_rating", c.keys["merchant1"]) == {"count": 1, "sums": new}
    assert c.view("reviews", "product_rating", h("stove")) == {"count": 1, "sums": new}
    assert c.err(RELAYER, "reviews", "amend", *amend_args(keys[ids[2]], second, pubs(keys), SCORES, h("x"))) \
        .message == "a review may be amended once"
    assert c.err(RELAYER, "reviews", "amend", ring.key_image(ring.secret_scalar(keys[ids[1]].seed)), 0, SCORES,
                 h("x"), False, b"").message == "no live review of line 0 by this review key to amend"
    c.ok("merchant1", "reviews", "reply", rid2, h("sorry"))
    c.ok("platform", "reviews", "hide", rid2, h("abuse"))
    assert c.view("reviews", "merchant_rating", c.keys["merchant1"]) == {"count": 0, "sums": [0] * 5}
    c.ok("platform", "reviews", "unhide", rid2, h("appeal upheld"))
    assert c.view("reviews", "product_rating", h("stove")) == {"count": 1, "sums": new}


def test_the_relayer_cannot_change_what_was_signed():
    c = chain()
    keys = completed(c, BUYERS[:3])
    ids, line, scores, content, incentivised, image, sig = publish_args(keys[sorted(keys)[0]], pubs(keys), 0, SCORES,
                                                                        h("t"))
    tampered = [
        (ids, line, [5, 5, 5, 5, 5], content, incentivised, image, sig),
        (ids, line, scores, h("other text"), incentivised, image, sig),
        (ids, line, scores, content, True, image, sig),
        (ids[:2], line, scores, content, incentivised, image, sig),
        (ids, line, scores, content, incentivised, image, sig[:-1] + bytes([sig[-1] ^ 1])),
    ]
    for args in tampered:
        assert c.err(RELAYER, "reviews", "publish", *args).message.startswith("bad review signature")


def test_ring_members_must_be_eligible():
    c = chain()
    keys = completed(c, BUYERS[:3])
    ids = sorted(keys)
    rk = SigningKey.from_label("rk-delivered")
    delivered = c.to_delivered("buyer4", review_key_hash=sha256(rk.public_key), product=h("tent"))
    c.ok("buyer4", "reviews", "announce_key", delivered, rk.public_key)
    other_shop = completed(c, ["buyer5"], merchant="merchant2")
    same_buyer = completed(c, ["buyer1"])
    silent = completed(c, ["buyer5"], announce=False)

    def refusal(ring_keys: dict[int, SigningKey], signer: int) -> str:
        return c.err(RELAYER, "reviews", "publish", *publish_args(ring_keys[signer], pubs(ring_keys), 0, SCORES,
                                                                   h("t"))).message

    assert refusal({**keys, delivered: rk}, ids[0]) == \
        f"ring order {delivered} is DELIVERED; reviews need COMPLETED, RESOLVED or CLOSED"
    assert refusal({ids[0]: keys[ids[0]], **other_shop}, ids[0]).startswith("ring orders must share one merchant")
    assert refusal({ids[0]: keys[ids[0]], **same_buyer}, ids[0]).startswith("ring orders must have distinct buyers")
    (quiet,) = silent
    assert refusal({ids[0]: keys[ids[0]], **silent}, ids[0]) == \
        f"ring order {quiet} has not announced its review key (reviews.announce_key)"
    assert refusal({ids[0]: keys[ids[0]]}, ids[0]) == "a review's ring has 2..16 orders, found 1"
    unsorted = publish_args(keys[ids[0]], pubs(keys), 0, SCORES, h("t"))
    unsorted[0] = unsorted[0][::-1]
    assert c.err(RELAYER, "reviews", "publish", *unsorted).message.startswith(
        "ring orders must be distinct and in ascending order")
    c.advance(c.days(91))
    assert refusal(keys, ids[0]).startswith(f"ring order {ids[0]} is past its review window")


def test_ring_size_upper_bound():
    c = Chain({**DEFAULT_ACCOUNTS, **{f"b{i}": ["BUYER"] for i in range(17)}})
    c.publish_terms()
    keys = completed(c, [f"b{i}" for i in range(17)])
    ids = sorted(keys)
    assert c.err(RELAYER, "reviews", "publish", ids, 0, SCORES, h("t"), False, bytes(32), bytes(32 * 18)).message \
        == "a review's ring has 2..16 orders, found 17"
    full = {i: keys[i] for i in ids[:16]}
    rid = c.ok(RELAYER, "reviews", "publish", *publish_args(keys[ids[15]], pubs(full), 0, SCORES, h("t")))
    assert len(c.view("reviews", "get_review", rid)["ring"]) == 16
    gas = [g for (ct, m, g) in c.gas_log if (ct, m) == ("reviews", "publish")][-1]
    assert 16 * 24_000 < gas < 10_000_000


def test_disputed_and_undisputed_orders_do_not_mix_and_the_flag_is_exact():
    c = chain()
    keys = completed(c, BUYERS[:2])
    disputed = {}
    for b in BUYERS[2:4]:
        rk = SigningKey.from_label(f"rk-disputed-{b}")
        oid = c.place(b, review_key_hash=sha256(rk.public_key), product=h("tent"))
        c.ok("merchant1", "orders", "accept", oid, c.keys["carrier1"], h("label"))
        c.ok(b, "orders", "dispute", oid, h("evidence"))
        c.ok("arbiter", "orders", "rule", oid, 5_000, 5_000, 0)
        c.ok(b, "reviews", "announce_key", oid, rk.public_key)
        disputed[oid] = rk
    mixed = {sorted(keys)[0]: keys[sorted(keys)[0]], **disputed}
    assert c.err(RELAYER, "reviews", "publish", *publish_args(keys[sorted(keys)[0]], pubs(mixed), 0, SCORES, h("t"))) \
        .message.startswith("ring orders must all have been disputed or all not")
    rid = c.ok(RELAYER, "reviews", "publish", *publish_args(disputed[sorted(disputed)[0]], pubs(disputed), 0, SCORES,
                                                             h("t")))
    assert c.view("reviews", "get_review", rid)["disputed"] is True


def test_a_ring_of_mixed_products_counts_for_the_merchant_only():
    c = chain()
    keys = {**completed(c, ["buyer1"], product=h("tent")), **completed(c, ["buyer2"], product=h("stove"))}
    rid = c.ok(RELAYER, "reviews", "publish", *publish_args(keys[sorted(keys)[0]], pubs(keys), 0, SCORES, h("t")))
    assert c.view("reviews", "get_review", rid)["product"] == b""
    assert c.view("reviews", "merchant_rating", c.keys["merchant1"])["count"] == 1
    assert c.view("reviews", "product_rating", h("tent"))["count"] == 0
    assert c.view("reviews", "product_rating", h("stove"))["count"] == 0


def test_announce_key_checks_the_commitment_and_the_view_lists_ring_candidates():
    c = chain()
    keys = completed(c, BUYERS[:3])
    silent = completed(c, ["buyer4"], announce=False)
    (quiet,) = silent
    ids = sorted(keys)
    assert c.err(RELAYER, "reviews", "announce_key", quiet, SigningKey.from_label("wrong").public_key).message == \
        f"review key does not match order {quiet}'s commitment sha256(review key)"
    assert c.err(RELAYER, "reviews", "announce_key", ids[0], keys[ids[0]].public_key).message == \
        f"order {ids[0]} already announced its review key"
    assert c.view("reviews", "review_key_of", ids[0]) == keys[ids[0]].public_key
    assert c.view("reviews", "review_key_of", quiet) == b""
    top = c.view("orders", "order_count") + 1
    assert c.view("reviews", "reviewable_orders", c.keys["merchant1"], top, 64) == ids[::-1]
    assert c.view("reviews", "reviewable_orders", c.keys["merchant2"], top, 64) == []
    assert c.view("reviews", "reviewable_orders", c.keys["merchant1"], ids[1] + 1, 1) == [ids[1]]
    c.ok(RELAYER, "reviews", "announce_key", quiet, silent[quiet].public_key)   # anyone may announce it
    assert quiet in c.view("reviews", "reviewable_orders", c.keys["merchant1"], top, 64)


@pytest.mark.parametrize("size", [2, 8])
def test_every_position_of_the_ring_can_review(size):
    c = Chain({**DEFAULT_ACCOUNTS, **{f"b{i}": ["BUYER"] for i in range(size)}})
    c.publish_terms()
    keys = completed(c, [f"b{i}" for i in range(size)])
    for n, oid in enumerate(sorted(keys)):
        scores = [1 + (n + j) % 5 for j in range(5)]
        c.ok(RELAYER, "reviews", "publish", *publish_args(keys[oid], pubs(keys), 0, scores, h(f"t{n}")))
    rating = c.view("reviews", "merchant_rating", c.keys["merchant1"])
    assert rating == {"count": size, "sums": [sum(1 + (n + j) % 5 for n in range(size)) for j in range(5)]}


def test_review_message_matches_the_contract():
    c = chain()
    keys = completed(c, BUYERS[:2])
    ids = sorted(keys)
    # a signature over the client's bytes with the wrong chain id is refused: the contract builds the same bytes
    args = publish_args(keys[ids[0]], pubs(keys), 0, SCORES, h("t"), chain_id="another-chain")
    assert c.err(RELAYER, "reviews", "publish", *args).message.startswith("bad review signature")
    assert review_message("x", [1, 2], 0, SCORES, h("t"), False, 1).startswith(b"shopchain/review/v2|x|1,2,|0|")


def test_carts_are_reviewed_per_line_and_count_for_each_line_product():
    c = chain()
    tent, pegs, lamp = h("tent"), h("pegs"), h("lamp")
    keys = {}
    for b in BUYERS[:2]:
        rk = SigningKey.from_label(f"rk-cart-{b}")
        oid = c.to_delivered(b, lines=[(tent, 1, 12_000), (pegs, 3, 1_000), (lamp, 2, 2_500)],
                             review_key_hash=sha256(rk.public_key))
        c.ok(b, "orders", "confirm", oid)
        c.ok(b, "reviews", "announce_key", oid, rk.public_key)
        keys[oid] = rk
    short = completed(c, ["buyer3"], product=tent)          # a one-line order
    mine = min(keys)
    for line, scores in ((0, [5, 5, 4, 5, 5]), (2, [2, 3, 2, 4, 3])):
        rid = c.ok(RELAYER, "reviews", "publish", *publish_args(keys[mine], pubs(keys), line, scores, h(f"t{line}")))
        assert c.view("reviews", "get_review", rid)["product"] == (tent, pegs, lamp)[line]
    assert c.err(RELAYER, "reviews", "publish", *publish_args(keys[mine], pubs(keys), 3, SCORES, h("t"))).message \
        == f"ring order {mine} has no line 3"
    assert c.err(RELAYER, "reviews", "publish", *publish_args(keys[mine], pubs(keys), 0, SCORES, h("again"))) \
        .message == "this review key already has a live review of line 0; amend it instead"
    (one,) = short
    with_short = {**pubs(keys), **pubs(short)}
    assert c.err(RELAYER, "reviews", "publish", *publish_args(keys[max(keys)], with_short, 1, SCORES, h("t"))) \
        .message == f"ring order {one} has no line 1"
    assert c.view("reviews", "product_rating", lamp) == {"count": 1, "sums": [2, 3, 2, 4, 3]}
    assert c.view("reviews", "product_rating", tent) == {"count": 1, "sums": [5, 5, 4, 5, 5]}
    assert c.view("reviews", "merchant_rating", c.keys["merchant1"])["count"] == 2
