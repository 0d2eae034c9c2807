"""`shopchain review ...`: reviews that name no order and no buyer, sent by a relayer.

How it works: a review is signed with the order's per-order review key
(cli.orders_cmds.review_key_for, derived from the buyer's key and the order's payload
commitment) by a linkable ring signature (ledger/ring.py) over a ring of orders of the
same merchant, so the chain learns that one of the ring's buyers wrote it, not which,
and a second review by the same key is recognised by its key image. The transaction
is sent by a relayer (--relayer, any registered account but the buyer's, e.g. a relay
key the platform runs); the buyer's --key only derives the review key and never signs
a transaction of a review. ``review enroll`` announces an order's review key (from the
buyer's account: that says nothing the order does not), which lets the order join
rings: its own and other buyers'.

``choose_ring`` pages the reviews contract's ``reviewable_orders`` view (announced key,
reviewable state, inside the review window) from the newest order down, keeps the
candidates that can share a ring with the reviewer's order (another buyer, not the
relayer, the same dispute history, a line with the reviewed line's index, one order per
buyer: the contract's rules) and draws the decoys at random with the OS RNG. It
prefers orders whose line is of the same product, so
the review also counts for the product's rating; when too few exist it mixes products
and says the review counts for the merchant only. Fewer candidates than asked give a
smaller ring, with a notice; none is an error, since a ring of one names the order and
so the buyer (the contract refuses rings under two for the same reason).
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

import click

from cli.orders_cmds import get_order, review_key_for
from cli.output import EXIT_USAGE, CliError, parse_commitment
from cli.signer import Query, Tx, query_command, tx_command
from ledger import ring
from ledger.crypto import SigningKey, sha256
from ledger.hexfmt import to_hex

#: Review score dimensions: overall, quality, description, delivery, service.
SCORE_COUNT = 5
#: Most reviews `review list` walks.
MAX_REVIEW_SCAN = 1000
#: Orders a review's ring has by default (at most ledger.ring.MAX_RING_SIZE; 24,000 gas each).
DEFAULT_RING_SIZE = 8
#: Fewest orders in a ring (the reviews contract's MIN_RING_SIZE).
MIN_RING_SIZE = 2
#: Order ids one ``reviewable_orders`` call examines (the view's MAX_SCAN).
SCAN_PAGE = 64
#: Most order ids examined looking for ring members (the newest first).
MAX_RING_SCAN = 2048
#: Most candidate orders read (two views each) before drawing the decoys.
MAX_CANDIDATES = 256


@dataclass
class RingChoice:
    """The ring to sign over: ascending order ids and their review public keys, and what to tell the user."""

    ids: list[int]
    keys: list[bytes]
    same_product: bool
    notes: list[str] = field(default_factory=list)


def _hex_bytes(value: str) -> bytes:
    return bytes.fromhex(value[2:]) if isinstance(value, str) and value.startswith("0x") else b""


def _disputed(order: dict) -> bool:
    return order.get("prev_state", "") != ""


def candidates(q: Query, merchant_hex: str, below: int) -> list[int]:
    """Ids of the merchant's orders that may join a ring now, newest first, from at most MAX_RING_SCAN ids."""
    found: list[int] = []
    scanned = 0
    while below > 1 and scanned < MAX_RING_SCAN and len(found) < MAX_CANDIDATES:
        found += q.view("reviews", "reviewable_orders", merchant_hex, below, SCAN_PAGE)
        below -= SCAN_PAGE
        scanned += SCAN_PAGE
    return found[:MAX_CANDIDATES]


def _line_product(order: dict, line: int) -> str | None:
    lines = order.get("lines", [])
    return lines[line]["product"] if 0 <= line < len(lines) else None


def choose_ring(q: Query, order_id: int, order: dict, line: int, own_key: bytes, excluded: set[str], size: int,
                rng: random.Random | None = None) -> RingChoice:
    """A ring of up to ``size`` orders holding ``order_id``, each with a line ``line`` (the contract
    names one line index for the whole ring); ``excluded`` are 0x account ids whose orders may not
    be decoys (the buyer's own and the relayer's)."""
    product = _line_product(order, line)
    if product is None:
        raise CliError(f"order {order_id} has no line {line} (it has {len(order.get('lines', []))})",
                       hint=f"`shopchain order show {order_id}` lists the lines; pass --line N")
    rng = rng or random.SystemRandom()
    top = int(q.view("orders", "order_count")) + 1
    by_buyer: dict[str, list[tuple[int, dict, bytes]]] = {}
    for oid in candidates(q, order["merchant"], top):
        if oid == order_id:
            continue
        o = q.view("orders", "get_order", oid)
        if o is None or o["buyer"] in excluded or o["buyer"] == order["buyer"] or _disputed(o) != _disputed(order) \
                or _line_product(o, line) is None:
            continue
        key = _hex_bytes(q.view("reviews", "review_key_of", oid))
        if not ring.is_valid_point(key) or key == own_key:
            continue
        by_buyer.setdefault(o["buyer"], []).append((oid, o, key))
    # one order per buyer (a buyer twice adds no one to hide among), drawn at random
    pool = [rng.choice(options) for _, options in sorted(by_buyer.items())]
    if not pool:
        raise CliError(f"anonymity set too small: no other order of this merchant from another buyer can share a ring "
                       f"with order {order_id} yet (reviewable, inside the review window, review key announced, "
                       f"the same dispute history); a ring of one would name your order and so your account",
                       hint="wait until more of the merchant's orders complete and their buyers run "
                            "`shopchain review enroll`, then post again (your review window is still open)")
    wanted = size - 1
    same = [c for c in pool if _line_product(c[1], line) == product]
    notes: list[str] = []
    chosen = rng.sample(same if len(same) >= min(wanted, len(pool)) else pool, min(wanted, len(pool)))
    same_product = all(_line_product(c[1], line) == product for c in chosen)
    if not same_product:
        notes.append(f"only {len(same)} other order(s) of this product can join the ring, so it mixes products: "
                     "the review counts for the merchant's rating, not the product's")
    if len(chosen) < wanted:
        notes.append(f"only {len(chosen) + 1} orders can form the ring (asked for {size}): the review hides among "
                     f"{len(chosen) + 1} buyers")
    members = sorted([(order_id, own_key)] + [(oid, key) for oid, _, key in chosen])
    return RingChoice([m[0] for m in members], [m[1] for m in members], same_product, notes)


def ring_sign(review_seed: bytes, keys: list[bytes], message: bytes) -> tuple[bytes, bytes]:
    """(key image, ring signature) of the review key with this seed over ``message``."""
    return ring.sign(ring.secret_scalar(review_seed), keys, message)


def key_image_of(review_seed: bytes) -> bytes:
    """The review key's pseudonym on chain: the same for every review it signs."""
    return ring.key_image(ring.secret_scalar(review_seed))


def ring_keys(q: Query, ids: list[int]) -> list[bytes]:
    """The announced review keys of the ring ``ids`` (as the contract reads them)."""
    keys = [_hex_bytes(q.view("reviews", "review_key_of", oid)) for oid in ids]
    missing = [oid for oid, k in zip(ids, keys) if not k]
    if missing:
        raise CliError(f"ring order(s) {missing} have no announced review key on this chain")
    return keys


# --- verbs ------------------------------------------------------------------------------

def parse_scores(text: str) -> list[int]:
    try:
        scores = [int(s) for s in text.split(",")]
    except ValueError:
        scores = []
    if len(scores) != SCORE_COUNT or not all(1 <= s <= 5 for s in scores):
        raise CliError(f"--scores {text!r}: expected {SCORE_COUNT} comma-separated scores 1..5 "
                       f"(overall, quality, description, delivery, service), e.g. 5,4,5,5,4")
    return scores


def _review_key(tx: Tx, order_id: int) -> tuple[dict, SigningKey]:
    """(the order, its review key) for the buyer signing as --key; refuses another account's order."""
    o = get_order(tx, order_id)
    rk = review_key_for(tx.signer, bytes.fromhex(o["payload_hash"][2:]))
    if to_hex(sha256(rk.public_key)) != o["review_key_hash"]:
        raise CliError(f"the signing key is not the buyer of order {order_id} (its review key does not match "
                       f"the order's commitment)", hint="sign with the buyer's key: --key BUYER")
    return o, rk


def _relay(tx: Tx, relayer: str | None, order: dict) -> Tx:
    """A copy of ``tx`` that signs with the relayer's key; refuses the buyer's own account."""
    if not relayer:
        raise CliError("a review needs a relayer: the account that sends it must not be yours, or the "
                       "transaction's sender would name you as the reviewer", EXIT_USAGE,
                       hint="add --relayer KEY (any registered account but the buyer's, e.g. the platform's "
                            "relay key; env SHOPCHAIN_RELAYER)")
    key = tx.load_key(relayer, "--relayer")
    relayed = dataclasses.replace(tx, key_name=None, key_file=None, _signer=key)
    if to_hex(relayed.signer_account()) == order["buyer"]:
        raise CliError("refusing to post a review from the buyer's own account: the transaction's sender is on chain "
                       "and would link the review to you, whatever the ring hides", EXIT_USAGE,
                       hint="pass another registered account's key as --relayer (e.g. the platform's relay key)")
    return relayed


@click.group()
def review() -> None:
    """Verified-buyer reviews that name no order or buyer: enroll, post, amend, show, list, reply."""


relayer_option = click.option("--relayer", envvar="SHOPCHAIN_RELAYER", default=None,
                              help="Key (keystore name or key file) of the account that sends the review, never "
                                   "the buyer's (env SHOPCHAIN_RELAYER).")


@review.command("enroll")
@click.argument("order_ids", nargs=-1, type=click.IntRange(1), metavar="ORDER...")
@tx_command
def review_enroll(order_ids: tuple[int, ...], tx: Tx) -> None:
    """Buyer: announce the review keys of ORDERs so they can join review rings (yours and others').

    Enroll when an order completes, not just before reviewing: a key announced right
    before a review would point at its order.
    """
    if not order_ids:
        raise CliError("name at least one ORDER to enroll", EXIT_USAGE)
    for order_id in order_ids:
        _, rk = _review_key(tx, order_id)
        if tx.view("reviews", "review_key_of", order_id) == to_hex(rk.public_key):
            tx.emit({"order": order_id, "enrolled": True}, f"order {order_id} is already enrolled")
            continue
        tx.send("reviews", "announce_key", order_id, rk.public_key,
                describe=lambda r, oid=order_id: f"order {oid} enrolled: its review key can join rings")


@review.command("post")
@click.argument("order_id", type=click.IntRange(1), metavar="ORDER")
@click.option("--scores", required=True, help="Five scores 1..5: overall,quality,description,delivery,service.")
@click.option("--text", required=True, help="The review text (or @FILE); only its hash goes on chain.")
@click.option("--incentivised", is_flag=True, help="The buyer was rewarded for this review.")
@click.option("--line", default=0, show_default=True, type=click.IntRange(0), help="The order line reviewed.")
@click.option("--ring-size", default=DEFAULT_RING_SIZE, show_default=True, type=click.IntRange(MIN_RING_SIZE, 16),
              help="Orders the review hides among (2..16; 24,000 gas each).")
@relayer_option
@tx_command
def review_post(order_id: int, scores: str, text: str, incentivised: bool, line: int, ring_size: int,
                relayer: str | None, tx: Tx) -> None:
    """Buyer (--key): review ORDER, hidden in a ring of the merchant's orders, sent by --relayer."""
    from contracts_vm.system import review_message

    values = parse_scores(scores)
    content = parse_commitment(text, "--text")
    order, rk = _review_key(tx, order_id)
    if tx.view("reviews", "review_key_of", order_id) != to_hex(rk.public_key):
        raise CliError(f"order {order_id} is not enrolled: its review key was never announced, so it can join no ring",
                       hint=f"run `shopchain review enroll {order_id} --key BUYER` now and post later: announcing "
                            "the key just before the review would show which ring order is yours")
    relayed = _relay(tx, relayer, order)
    excluded = {order["buyer"], to_hex(relayed.signer_account())}
    choice = choose_ring(tx, order_id, order, line, rk.public_key, excluded, ring_size)
    chain_id = tx.client.status()["chain_id"]
    image, signature = ring_sign(rk.seed, choice.keys, review_message(chain_id, choice.ids, line, values, content,
                                                                      incentivised, 1))
    for note in choice.notes:
        click.echo(f"note: {note}", err=True)
    relayed.send("reviews", "publish", choice.ids, line, values, content, incentivised, image, signature,
                 describe=lambda r: f"review {r['return_value']} posted, hidden among {len(choice.ids)} orders "
                                    f"of the merchant")


@review.command("amend")
@click.argument("order_id", type=click.IntRange(1), metavar="ORDER")
@click.option("--scores", required=True, help="Five scores 1..5.")
@click.option("--text", required=True, help="The amended text (or @FILE).")
@click.option("--incentivised", is_flag=True)
@click.option("--line", default=0, show_default=True, type=click.IntRange(0))
@relayer_option
@tx_command
def review_amend(order_id: int, scores: str, text: str, incentivised: bool, line: int, relayer: str | None,
                 tx: Tx) -> None:
    """Buyer (--key): amend your review of ORDER once, over the same ring, sent by --relayer."""
    from contracts_vm.system import review_message

    values = parse_scores(scores)
    content = parse_commitment(text, "--text")
    order, rk = _review_key(tx, order_id)
    image = key_image_of(rk.seed)
    prior_id = tx.view("reviews", "live_review", image, line)
    if not prior_id:
        raise CliError(f"no live review of line {line} of order {order_id} to amend",
                       hint=f"post one first: shopchain review post {order_id} --relayer KEY")
    prior = tx.view("reviews", "get_review", prior_id)
    relayed = _relay(tx, relayer, order)
    chain_id = tx.client.status()["chain_id"]
    _, signature = ring_sign(rk.seed, ring_keys(tx, prior["ring"]),
                             review_message(chain_id, prior["ring"], line, values, content, incentivised,
                                            prior["version"] + 1))
    relayed.send("reviews", "amend", image, line, values, content, incentivised, signature,
                 describe=lambda r: f"review {prior_id} amended (review {r['return_value']})")


@review.command("reply")
@click.argument("review_id", type=click.IntRange(1), metavar="REVIEW")
@click.option("--text", required=True, help="The reply (or @FILE).")
@tx_command
def review_reply(review_id: int, text: str, tx: Tx) -> None:
    """Merchant: reply once to REVIEW."""
    tx.send("reviews", "reply", review_id, parse_commitment(text, "--text"),
            describe=lambda r: f"replied to review {review_id}")


@review.command("hide")
@click.argument("review_id", type=click.IntRange(1), metavar="REVIEW")
@click.option("--reason", required=True, help="Why (text, @FILE or 0x hash).")
@click.option("--unhide", is_flag=True, help="Show it again instead.")
@tx_command
def review_hide(review_id: int, reason: str, unhide: bool, tx: Tx) -> None:
    """PLATFORM: hide (or --unhide) REVIEW with a reason."""
    tx.send("reviews", "unhide" if unhide else "hide", review_id, parse_commitment(reason, "--reason"),
            describe=lambda r: f"review {review_id} {'shown' if unhide else 'hidden'}")


def _rating(r: dict | None) -> str:
    if not r or not r["count"]:
        return "no reviews"
    avg = [s / r["count"] for s in r["sums"]]
    return f"{r['count']} review(s), overall {avg[0]:.2f} (quality {avg[1]:.2f}, description {avg[2]:.2f}, " \
           f"delivery {avg[3]:.2f}, service {avg[4]:.2f})"


def _review_line(v: dict) -> str:
    """One review in words: no order id (a review names a ring of them, never its own)."""
    return (f"{v['id']:>5}  line {v['line']}  scores {','.join(map(str, v['scores']))}  v{v['version']}  "
            f"ring of {len(v['ring'])}  by {v['key_image'][:12]}…{'  HIDDEN' if v['hidden'] else ''}"
            f"{'  incentivised' if v['incentivised'] else ''}{'  disputed order' if v['disputed'] else ''}"
            f"{'  replied' if v['reply_hash'] != '0x' else ''}  text {v['content_hash'][:18]}…")


@review.command("show")
@click.argument("review_id", type=click.IntRange(1), metavar="REVIEW")
@query_command
def review_show(review_id: int, q: Query) -> None:
    """Show REVIEW: scores, ring size, pseudonym (key image), merchant and product, flags."""
    rv = q.view("reviews", "get_review", review_id)
    if rv is None:
        raise CliError(f"no review {review_id}", hint="`shopchain review list` lists the live ones")
    q.emit(rv, lambda v: f"{_review_line(v)}\n  merchant {q.label(v['merchant'])}  product "
                         f"{v['product'] if v['product'] != '0x' else '- (mixed-product ring: merchant rating only)'}"
                         f"\n  prior {v['prior'] or '-'}  {'superseded' if v['superseded'] else 'live'}  height "
                         f"{v['height']}")


@review.command("list")
@click.option("--merchant", default=None, help="Only this merchant's reviews (and its rating).")
@click.option("--product", default=None, help="Only this product's reviews (and its rating).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, MAX_REVIEW_SCAN))
@query_command
def review_list(merchant: str | None, product: str | None, limit: int, q: Query) -> None:
    """List live reviews (newest versions), optionally for one merchant or product."""
    merchant_key = to_hex(q.account(merchant, "--merchant")) if merchant else None
    product_id = to_hex(parse_commitment(product, "--product")) if product else None
    rows: list[dict] = []
    for rid in range(1, MAX_REVIEW_SCAN + 1):
        rv = q.view("reviews", "get_review", rid)
        if rv is None or len(rows) >= limit:
            break
        if rv["superseded"] or (merchant_key and rv["merchant"] != merchant_key) or \
                (product_id and rv["product"] != product_id):
            continue
        rows.append(rv)
    result: dict[str, Any] = {"reviews": rows}
    if merchant_key:
        result["merchant_rating"] = q.view("reviews", "merchant_rating", merchant_key)
    if product_id:
        result["product_rating"] = q.view("reviews", "product_rating", product_id)

    def text(r: dict) -> str:
        lines = [_review_line(v) for v in r["reviews"]] or ["no reviews"]
        if "merchant_rating" in r:
            lines.append(f"merchant rating: {_rating(r['merchant_rating'])}")
        if "product_rating" in r:
            lines.append(f"product rating: {_rating(r['product_rating'])}")
        return "\n".join(lines)

    q.emit(result, text)
