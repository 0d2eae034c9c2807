"""Typed calls for what buyers say and earn: ring-signed reviews and loyalty points, vouchers, referrals.

How it works: as in node.commerce_orders, each function checks its typed inputs and
returns a ``ContractCall`` (node.commerce_calls) for ``Commerce.send`` / ``Commerce.read``;
argument order and limits are those of contracts_vm/system/reviews.sc.py and
loyalty.sc.py. A review is a linkable ring signature by the per-order review key (whose
hash the buyer committed when placing the order) over ``review_message``:
``publish_review`` and ``amend_review`` sign it here, so no application re-derives the
bytes, and the chain id is part of the message, so a review signed for one chain is void
on another. The chain learns that one of the ring's buyers wrote it, never which; send
it from a relayer account, since the buyer's own would name the reviewer.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from contracts_vm.system import review_message
from ledger import ring
from ledger.crypto import SigningKey, sha256
from ledger.errors import ValidationError
from node.commerce_calls import (BPS, ContractCall, as_bytes, as_int, as_ints, bytes32, choice, decode_as, flag, integer,
                                 nothing, order_id, record_or_none, some_bytes, text, view, write)

#: Review scores: five dimensions (overall, quality, description, delivery, service), each 1..5.
SCORE_COUNT = 5
#: Orders in a review's ring (ledger/ring.py bounds it; one order would name its buyer).
MIN_RING_SIZE, MAX_RING_SIZE = 2, 16


class VoucherKind(str, enum.Enum):
    FIXED = "FIXED"
    BPS = "BPS"


@dataclass(frozen=True)
class Review:
    id: int
    key_image: bytes
    line: int
    merchant: bytes
    product: bytes
    ring: list[int]
    scores: list[int]
    content_hash: bytes
    disputed: bool
    incentivised: bool
    version: int
    prior: int
    superseded: bool
    hidden: bool
    reply_hash: bytes
    height: int


@dataclass(frozen=True)
class Rating:
    """Exact sums over live, visible reviews: ``sums[i] / count`` is the mean of score i."""

    count: int
    sums: list[int]

    def means(self) -> list[float]:
        return [s / self.count for s in self.sums] if self.count else [0.0] * len(self.sums)


@dataclass(frozen=True)
class Program:
    issuer: bytes
    rate_bps: int
    expiry_seconds: int
    point_value: int
    max_pay_bps: int
    minted: int
    redeemed: int
    expired: int
    clawed: int


@dataclass(frozen=True)
class Referrer:
    """A referral campaign PLATFORM approved: rate, budget, cap per (referrer, buyer), paid so far."""

    commission_bps: int
    budget: int
    pair_cap: int
    paid: int
    active: bool


@dataclass(frozen=True)
class Voucher:
    issuer: bytes
    code_hash: bytes
    kind: VoucherKind
    value: int
    min_spend: int
    valid_from: int
    valid_to: int
    max_redemptions: int
    per_buyer: int
    redemptions: int


# ---- reviews -----------------------------------------------------------------------

def _scores(scores: Sequence[int]) -> list[int]:
    if isinstance(scores, (str, bytes)) or not isinstance(scores, Sequence) or len(scores) != SCORE_COUNT:
        raise ValidationError(f"expected {SCORE_COUNT} scores (overall, quality, description, delivery, service), "
                              f"found {scores!r:.60}")
    return [integer(s, f"scores[{i}]", 1, 5) for i, s in enumerate(scores)]


def announce_review_key(order: int, review_key: bytes) -> ContractCall[None]:
    """reviews.announce_key, by anyone: the order's review public key (sha256 of it was committed at placement)."""
    return write("reviews", "announce_key", order_id(order), bytes32(review_key, "review_key"), decode=nothing)


def publish_review(chain_id: str, review_key: SigningKey, ring_keys: Mapping[int, bytes], line: int,
                   scores: Sequence[int], content_hash: bytes, incentivised: bool = False) -> ContractCall[int]:
    """reviews.publish, signed by one order's review key over a ring of 2..16 orders (order id -> its
    announced review key, the signer's own among them); send it from a relayer, not the buyer's
    account. The value is the review id; the chain learns that one of the ring's buyers wrote it, never which."""
    if not isinstance(review_key, SigningKey):
        raise ValidationError(f"review_key must be the order's review SigningKey, found {type(review_key).__name__}")
    ids = sorted(order_id(o, "ring order id") for o in ring_keys)
    if not MIN_RING_SIZE <= len(ids) <= MAX_RING_SIZE:
        raise ValidationError(f"a review's ring has {MIN_RING_SIZE}..{MAX_RING_SIZE} orders, found {len(ids)}")
    keys = [bytes32(ring_keys[o], f"review key of ring order {o}") for o in ids]
    if review_key.public_key not in keys:
        raise ValidationError("the review key is not one of the ring's keys: the signer's own order must be in the ring")
    line, values, content = integer(line, "line", 0, 31), _scores(scores), bytes32(content_hash, "content_hash")
    message = review_message(text(chain_id, "chain_id", 1), ids, line, values, content, flag(incentivised, "incentivised"), 1)
    image, signature = ring.sign(ring.secret_scalar(review_key.seed), keys, message)
    return write("reviews", "publish", ids, line, values, content, incentivised, image, signature, decode=as_int)


def amend_review(chain_id: str, review_key: SigningKey, prior: Review, ring_keys: Mapping[int, bytes],
                 scores: Sequence[int], content_hash: bytes, incentivised: bool = False) -> ContractCall[int]:
    """reviews.amend, once: signed by the same key over the prior review's ring; the value is the new id."""
    keys = [bytes32(ring_keys[o], f"review key of ring order {o}") for o in prior.ring]
    values, content = _scores(scores), bytes32(content_hash, "content_hash")
    message = review_message(text(chain_id, "chain_id", 1), prior.ring, prior.line, values, content,
                             flag(incentivised, "incentivised"), prior.version + 1)
    image, signature = ring.sign(ring.secret_scalar(review_key.seed), keys, message)
    if image != prior.key_image:
        raise ValidationError("amending with another key than the one that signed the review")
    return write("reviews", "amend", image, prior.line, values, content, incentivised, signature, decode=as_int)


def reply_to_review(review: int, content_hash: bytes) -> ContractCall[None]:
    return write("reviews", "reply", integer(review, "review_id", 1), bytes32(content_hash, "content_hash"),
                 decode=nothing)


def hide_review(review: int, reason_hash: bytes) -> ContractCall[None]:
    return write("reviews", "hide", integer(review, "review_id", 1), bytes32(reason_hash, "reason_hash"), decode=nothing)


def unhide_review(review: int, reason_hash: bytes) -> ContractCall[None]:
    return write("reviews", "unhide", integer(review, "review_id", 1), bytes32(reason_hash, "reason_hash"),
                 decode=nothing)


def get_review(review: int) -> ContractCall[Review | None]:
    return view("reviews", "get_review", integer(review, "review_id", 1), decode=record_or_none(Review))


def live_review(key_image: bytes, line: int) -> ContractCall[int | None]:
    """The id of the live review of ``line`` by the key with this image, None if none."""
    return view("reviews", "live_review", bytes32(key_image, "key_image"), integer(line, "line", 0, 31),
                decode=lambda v: as_int(v) or None)


def review_key_of(order: int) -> ContractCall[bytes | None]:
    return view("reviews", "review_key_of", order_id(order), decode=lambda v: as_bytes(v) or None)


def reviewable_orders(merchant: bytes, below: int, scan: int = 64) -> ContractCall[list[int]]:
    return view("reviews", "reviewable_orders", bytes32(merchant, "merchant"), integer(below, "below", 1),
                integer(scan, "scan", 1, 64), decode=as_ints)


def merchant_rating(merchant: bytes) -> ContractCall[Rating]:
    return view("reviews", "merchant_rating", bytes32(merchant, "merchant"), decode=lambda v: decode_as(Rating, v, "rating"))


def product_rating(product: bytes) -> ContractCall[Rating]:
    return view("reviews", "product_rating", bytes32(product, "product"), decode=lambda v: decode_as(Rating, v, "rating"))


# ---- loyalty -----------------------------------------------------------------------

def _program(program: str) -> str:
    return text(program, "program_id", 1, 64)


def create_program(program: str, rate_bps: int, expiry_seconds: int) -> ContractCall[None]:
    """loyalty.create_program, by an ISSUER: points = paid x rate, awarded once an order closes."""
    return write("loyalty", "create_program", _program(program), integer(rate_bps, "rate_bps", 0, BPS),
                 integer(expiry_seconds, "expiry_seconds", 3600, 316_224_000), decode=nothing)


def set_point_value(program: str, point_value: int, max_pay_bps: int) -> ContractCall[None]:
    return write("loyalty", "set_point_value", _program(program), integer(point_value, "point_value", 0, 1_000_000),
                 integer(max_pay_bps, "max_pay_bps", 0, BPS), decode=nothing)


def award_points(program: str, order: int) -> ContractCall[int]:
    return write("loyalty", "award", _program(program), order_id(order), decode=as_int)


def redeem_points(program: str, points: int) -> ContractCall[None]:
    return write("loyalty", "redeem", _program(program), integer(points, "points", 1), decode=nothing)


def expire_points(program: str, account: bytes) -> ContractCall[int]:
    return write("loyalty", "expire", _program(program), bytes32(account, "account"), decode=as_int)


def clawback_points(program: str, order: int) -> ContractCall[int]:
    return write("loyalty", "clawback", _program(program), order_id(order), decode=as_int)


def create_voucher(voucher: bytes, code: bytes | None, kind: VoucherKind | str, value: int, min_spend: int,
                   valid_from: int, valid_to: int, max_redemptions: int = 1, per_buyer: int = 1) -> ContractCall[None]:
    """loyalty.create_voucher; ``code`` None makes a bearer voucher, else the chain keeps sha256(code)."""
    kind = choice(kind, VoucherKind, "voucher kind")
    integer(value, "value", 1, BPS if kind is VoucherKind.BPS else 10 ** 15)
    integer(valid_from, "valid_from", 0)
    integer(valid_to, "valid_to", valid_from)
    return write("loyalty", "create_voucher", bytes32(voucher, "voucher"), b"" if code is None else sha256(some_bytes(code, "voucher code", 256)),
                 kind.value, value, integer(min_spend, "min_spend", 0), valid_from, valid_to,
                 integer(max_redemptions, "max_redemptions", 1), integer(per_buyer, "per_buyer", 1), decode=nothing)


def approve_referrer(referrer: bytes, commission_bps: int, budget: int, pair_cap: int) -> ContractCall[None]:
    return write("loyalty", "approve_referrer", bytes32(referrer, "referrer"),
                 integer(commission_bps, "commission_bps", 0, BPS), integer(budget, "budget", 0),
                 integer(pair_cap, "pair_cap", 0), decode=nothing)


def suspend_referrer(referrer: bytes) -> ContractCall[None]:
    return write("loyalty", "suspend_referrer", bytes32(referrer, "referrer"), decode=nothing)


def points_balance(program: str, account: bytes) -> ContractCall[int]:
    """Unexpired points of ``account`` in ``program``."""
    return view("loyalty", "balance_of", _program(program), bytes32(account, "account"), decode=as_int)


def held_in_lots(program: str, account: bytes) -> ContractCall[int]:
    """Every point of ``account`` still in a lot, expired or not (``points_balance`` counts the live ones)."""
    return view("loyalty", "held_in_lots", _program(program), bytes32(account, "account"), decode=as_int)


def referral_rate(referrer: bytes) -> ContractCall[int]:
    """An approved referrer's commission in bps (the view fails for one not approved or suspended)."""
    return view("loyalty", "referral_rate", bytes32(referrer, "referrer"), decode=as_int)


def referrer_of(referrer: bytes) -> ContractCall[Referrer | None]:
    return view("loyalty", "referrer_of", bytes32(referrer, "referrer"), decode=record_or_none(Referrer))


def get_program(program: str) -> ContractCall[Program | None]:
    return view("loyalty", "get_program", _program(program), decode=record_or_none(Program))


def get_voucher(voucher: bytes) -> ContractCall[Voucher | None]:
    return view("loyalty", "get_voucher", bytes32(voucher, "voucher"), decode=record_or_none(Voucher))


def voucher_uses(voucher: bytes, buyer: bytes) -> ContractCall[int]:
    return view("loyalty", "voucher_uses", bytes32(voucher, "voucher"), bytes32(buyer, "buyer"), decode=as_int)


#: The public names (tests/node/test_client_commerce.py checks that every helper, record and Enum is here).
__all__ = ["MAX_RING_SIZE", "MIN_RING_SIZE", "Program", "Rating", "Referrer", "Review", "SCORE_COUNT", "Voucher",
           "VoucherKind", "amend_review", "announce_review_key", "approve_referrer", "award_points",
           "clawback_points", "create_program", "create_voucher", "expire_points", "get_program", "get_review",
           "get_voucher", "held_in_lots", "hide_review", "live_review", "merchant_rating", "points_balance",
           "product_rating", "publish_review", "redeem_points", "referral_rate", "referrer_of", "reply_to_review",
           "review_key_of", "reviewable_orders", "set_point_value", "suspend_referrer", "unhide_review",
           "voucher_uses"]
