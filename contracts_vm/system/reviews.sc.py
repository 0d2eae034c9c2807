"""Verified reviews signed by a per-order review key.

When placing an order the buyer commits sha256(review public key). A review names the
order and line, five scores 1..5, the hash of its off-chain text and whether it was
rewarded, and carries an ed25519 signature by that key over a domain-separated
message (``review_message`` in contracts_vm/system/__init__.py builds the same bytes
for clients). Anyone may relay it, so the buyer's account need not appear. Eligible:
the order is COMPLETED, RESOLVED or CLOSED and the review window is open. Reviews are
never edited: one amendment is a new record linked to the prior one. The platform
hides and unhides with a reason hash; the merchant replies once. Per-merchant and
per-product aggregates count only live, visible reviews.
"""

GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
#: Domain tag of the review signature (a signature is valid for reviews on one chain only).
REVIEW_DOMAIN = b"shopchain/review/v1|"
#: Score dimensions: overall, quality, description, delivery, service.
SCORE_COUNT = 5


class Review(Record):
    id: int
    order: int
    line: int
    merchant: bytes
    product: bytes
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
    review_key: bytes


class Rating(Record):
    count: int
    sums: list[int]


sealed: bool
review_window_seconds: int
next_id: int
reviews: Map[int, Review]
live: Map[tuple[int, int], int]
merchant_ratings: Map[bytes, Rating]
product_ratings: Map[bytes, Rating]


@public
def configure(review_window_seconds: int) -> None:
    """Genesis sets this once (before seal); afterwards only governance changes it (gov_configure)."""
    require(ctx.sender == GENESIS_SENDER, "only genesis may configure; later changes are governance proposals")
    require(not self.sealed, "genesis is sealed")
    _apply_settings(review_window_seconds)


@public
@requires("governance")
def gov_configure(changes: dict) -> None:
    """Settings changed by a passed governance proposal: named keys, the others keep their values."""
    for k in changes:
        require(k in ["review_window_seconds"], "unknown reviews setting " + k + "; expected review_window_seconds")
    _apply_settings(changes.get("review_window_seconds", self.review_window_seconds))
    emit(SettingsChanged, changes=changes)


def _apply_settings(review_window_seconds) -> None:
    require(review_window_seconds >= 3600 and review_window_seconds <= 316224000,
            "the review window must be 3600..316224000 seconds (an hour to 3660 days), found " + str(review_window_seconds))
    self.review_window_seconds = review_window_seconds


@public
def seal() -> None:
    require(ctx.sender == GENESIS_SENDER and not self.sealed, "only genesis may seal")
    self.sealed = True


def message(order_id, line, scores, content_hash, incentivised, version) -> bytes:
    m = REVIEW_DOMAIN + ctx.chain_id.encode() + b"|" + str(order_id).encode() + b"|" + str(line).encode()
    for s in scores:
        m = m + b"|" + str(s).encode()
    flag = b"0"
    if incentivised:
        flag = b"1"
    return m + b"|" + content_hash + b"|" + flag + b"|" + str(version).encode()


def _check_scores(scores) -> None:
    require(len(scores) == SCORE_COUNT, "expected 5 scores, found " + str(len(scores)))
    for s in scores:
        require(s >= 1 and s <= 5, "scores are 1..5, found " + str(s))


def _rating_add(r, scores, sign) -> Rating:
    r.count += sign
    for i in range(SCORE_COUNT):
        r.sums[i] = r.sums[i] + sign * scores[i]
    return r


def _count(rv, sign) -> None:
    empty = Rating(count=0, sums=[0, 0, 0, 0, 0])
    self.merchant_ratings[rv.merchant] = _rating_add(self.merchant_ratings.get(rv.merchant, empty), rv.scores, sign)
    empty2 = Rating(count=0, sums=[0, 0, 0, 0, 0])
    self.product_ratings[rv.product] = _rating_add(self.product_ratings.get(rv.product, empty2), rv.scores, sign)


@public
def publish(order_id: int, line: int, scores: list[int], content_hash: bytes, incentivised: bool,
            review_key: bytes, signature: bytes) -> int:
    o = call("orders", "get_order", order_id)
    require(o != None, "no order " + str(order_id))
    require(ctx.sender != o["merchant"], "a merchant cannot review its own order")
    s = o["state"]
    require(s == "COMPLETED" or s == "RESOLVED" or s == "CLOSED", "order is " + s + "; reviews need COMPLETED, RESOLVED or CLOSED")
    base = o["completed_at"]
    if base == 0:
        base = o["placed_at"]
    closes = base + self.review_window_seconds
    require(ctx.timestamp_ms // 1000 <= closes, "the review window closed at unix time " + str(closes))
    require(line >= 0 and line < len(o["lines"]), "order " + str(order_id) + " has no line " + str(line))
    require(not ((order_id, line) in self.live), "this order line already has a live review")
    require(sha256(review_key) == o["review_key_hash"], "review key does not match the order's commitment")
    _check_scores(scores)
    require(len(content_hash) == 32, "content hash is 32 bytes")
    require(ed25519_verify(review_key, message(order_id, line, scores, content_hash, incentivised, 1), signature),
            "bad review signature")
    rid = self.next_id + 1
    self.next_id = rid
    rv = Review(id=rid, order=order_id, line=line, merchant=o["merchant"], product=o["lines"][line]["product"], scores=scores,
                content_hash=content_hash, disputed=o["prev_state"] != "", incentivised=incentivised, version=1,
                prior=0, superseded=False, hidden=False, reply_hash=b"", height=ctx.height, review_key=review_key)
    self.reviews[rid] = rv
    self.live[(order_id, line)] = rid
    _count(rv, 1)
    emit(ReviewPublished, review=rid, order=order_id, line=line, overall=scores[0], content_hash=content_hash)
    return rid


@public
def amend(order_id: int, line: int, scores: list[int], content_hash: bytes, incentivised: bool,
          signature: bytes) -> int:
    prior_id = self.live.get((order_id, line), 0)
    require(prior_id != 0, "no live review to amend")
    prior = self.reviews[prior_id]
    require(prior.version == 1, "a review may be amended once")
    _check_scores(scores)
    require(len(content_hash) == 32, "content hash is 32 bytes")
    require(ed25519_verify(prior.review_key, message(order_id, line, scores, content_hash, incentivised, 2), signature),
            "bad review signature")
    rid = self.next_id + 1
    self.next_id = rid
    if not prior.hidden:
        _count(prior, -1)
    prior.superseded = True
    self.reviews[prior_id] = prior
    rv = Review(id=rid, order=order_id, line=line, merchant=prior.merchant, product=prior.product, scores=scores,
                content_hash=content_hash, disputed=prior.disputed, incentivised=incentivised, version=2,
                prior=prior_id, superseded=False, hidden=False, reply_hash=b"", height=ctx.height,
                review_key=prior.review_key)
    self.reviews[rid] = rv
    self.live[(order_id, line)] = rid
    _count(rv, 1)
    emit(ReviewAmended, review=rid, prior=prior_id, overall=scores[0], content_hash=content_hash)
    return rid


def _live_review(review_id) -> Review:
    rv = self.reviews.get(review_id)
    require(rv != None, "no review " + str(review_id))
    require(not rv.superseded, "review was superseded by an amendment")
    return rv


@public
def hide(review_id: int, reason_hash: bytes) -> None:
    require(call("identity", "has_role", ctx.sender, "PLATFORM"), "only PLATFORM hides reviews")
    rv = _live_review(review_id)
    require(not rv.hidden, "review is already hidden")
    rv.hidden = True
    self.reviews[review_id] = rv
    _count(rv, -1)
    emit(ReviewHidden, review=review_id, reason_hash=reason_hash)


@public
def unhide(review_id: int, reason_hash: bytes) -> None:
    require(call("identity", "has_role", ctx.sender, "PLATFORM"), "only PLATFORM unhides reviews")
    rv = _live_review(review_id)
    require(rv.hidden, "review is not hidden")
    rv.hidden = False
    self.reviews[review_id] = rv
    _count(rv, 1)
    emit(ReviewUnhidden, review=review_id, reason_hash=reason_hash)


@public
def reply(review_id: int, content_hash: bytes) -> None:
    rv = self.reviews.get(review_id)
    require(rv != None, "no review " + str(review_id))
    require(ctx.sender == rv.merchant, "only the reviewed merchant replies")
    require(rv.reply_hash == b"", "the merchant already replied")
    require(len(content_hash) == 32, "content hash is 32 bytes")
    rv.reply_hash = content_hash
    self.reviews[review_id] = rv
    emit(MerchantReplied, review=review_id, content_hash=content_hash)


@view
def get_review(review_id: int) -> any:
    return self.reviews.get(review_id)


@view
def live_review(order_id: int, line: int) -> int:
    return self.live.get((order_id, line), 0)


@view
def merchant_rating(merchant: bytes) -> any:
    return self.merchant_ratings.get(merchant, Rating(count=0, sums=[0, 0, 0, 0, 0]))


@view
def product_rating(product: bytes) -> any:
    return self.product_ratings.get(product, Rating(count=0, sums=[0, 0, 0, 0, 0]))
