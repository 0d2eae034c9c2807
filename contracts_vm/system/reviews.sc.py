"""Verified reviews that do not say which order, or which buyer, they come from.

When placing an order the buyer commits sha256(review public key) of a per-order key;
``announce_key`` later publishes that key (anyone may send it: the contract checks it
against the commitment, and it says nothing the order does not already say), which
makes the order a possible member of rings. A review names a *ring* of 2..16
reviewable orders of one merchant (ascending ids) whose keys were announced, and
carries a linkable ring signature (LSAG, ledger/ring.py, through the ``ring_verify``
host) by the key of one of them: the contract learns that a verified buyer of one of
these orders wrote it, never which. The key image, the same for every signature by
one key, is the review's pseudonym: one live review per (key image, line), so one per
order line, and an amendment is signed by the same key over the same ring (a second
ring would narrow the signer down to the intersection). The signature covers ``message`` (``review_message`` in
contracts_vm/system/__init__.py builds the same bytes for clients): chain id, ring,
line, scores, content hash, incentive flag and version, so the relayer that submits the
transaction can change none of them. The sender is a relayer, never a buyer of a ring
order (its account would name the reviewer).

Every ring order must be COMPLETED, RESOLVED or CLOSED inside its review window, of the
same merchant, bought by distinct buyers none of whom is the merchant, hold the line
reviewed, and share whether it went through a dispute (the review's ``disputed`` flag,
which must not single out one member). The review counts for the ring's product when
every member's line is of the same product, else for the merchant only; ratings are
exact sums over live, visible reviews. The platform hides and unhides with a reason
hash; the merchant replies once. Pre-1.0 replacement of the single-key publish, which
named the order.
"""

GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
#: Domain tag of the review signature (a signature is valid for reviews on one chain only).
REVIEW_DOMAIN = b"shopchain/review/v2|"
#: Score dimensions: overall, quality, description, delivery, service.
SCORE_COUNT = 5
#: Fewest orders in a ring: a ring of one names its order, and the order names the buyer.
MIN_RING_SIZE = 2
#: Most orders in a ring (ledger/ring.py MAX_RING_SIZE): ring_verify costs 24,000 gas a member.
MAX_RING_SIZE = 16
#: A review may be amended once (version 2 supersedes version 1).
MAX_VERSION = 2
#: Most order ids ``reviewable_orders`` examines in one call (each is a call to orders).
MAX_SCAN = 64


class Review(Record):
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


class Rating(Record):
    count: int
    sums: list[int]


sealed: bool
review_window_seconds: int
next_id: int
reviews: Map[int, Review]
live: Map[tuple[bytes, int], int]
review_keys: Map[int, bytes]
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


def message(ring, line, scores, content_hash, incentivised, version) -> bytes:
    m = REVIEW_DOMAIN + ctx.chain_id.encode() + b"|"
    for oid in ring:
        m = m + str(oid).encode() + b","
    m = m + b"|" + str(line).encode()
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
    if rv.product != b"":
        empty2 = Rating(count=0, sums=[0, 0, 0, 0, 0])
        self.product_ratings[rv.product] = _rating_add(self.product_ratings.get(rv.product, empty2), rv.scores, sign)


def _line_product(o, line) -> bytes:
    """The product of the order's line ``line`` (orders are carts), b"" when it has no such line."""
    if line < 0 or line >= len(o["lines"]):
        return b""
    return o["lines"][line]["product"]


def _reviewable(o) -> str:
    """Why order ``o`` cannot be in a review's ring now, "" when it can."""
    s = o["state"]
    if not (s == "COMPLETED" or s == "RESOLVED" or s == "CLOSED"):
        return "is " + s + "; reviews need COMPLETED, RESOLVED or CLOSED"
    if o["buyer"] == o["merchant"]:
        return "was bought by its own merchant, who cannot review it"
    base = o["completed_at"]
    if base == 0:
        base = o["placed_at"]
    closes = base + self.review_window_seconds
    if ctx.timestamp_ms // 1000 > closes:
        return "is past its review window, which closed at unix time " + str(closes)
    return ""


def _relayer_check(buyers) -> None:
    require(not (ctx.sender in buyers) and not (ctx.origin in buyers),
            "the sender bought one of the ring's orders: a review sent from a buyer's own account names the "
            "reviewer; send it through a relayer (any other registered account)")


@public
def announce_key(order_id: int, review_key: bytes) -> None:
    """Publish an order's review public key (the pre-image of its commitment) so it can join rings."""
    o = call("orders", "get_order", order_id)
    require(o != None, "no order " + str(order_id))
    require(not (order_id in self.review_keys), "order " + str(order_id) + " already announced its review key")
    require(len(review_key) == 32 and sha256(review_key) == o["review_key_hash"],
            "review key does not match order " + str(order_id) + "'s commitment sha256(review key)")
    self.review_keys[order_id] = review_key
    emit(ReviewKeyAnnounced, order=order_id)


def _ring_keys(ring) -> list[bytes]:
    out = []
    for oid in ring:
        k = self.review_keys.get(oid, b"")
        require(k != b"", "ring order " + str(oid) + " has not announced its review key (reviews.announce_key)")
        out.append(k)
    return out


@public
def publish(ring: list[int], line: int, scores: list[int], content_hash: bytes, incentivised: bool,
            key_image: bytes, signature: bytes) -> int:
    n = len(ring)
    require(n >= MIN_RING_SIZE and n <= MAX_RING_SIZE,
            "a review's ring has " + str(MIN_RING_SIZE) + ".." + str(MAX_RING_SIZE) + " orders, found " + str(n))
    ring_keys = _ring_keys(ring)
    require(line >= 0, "order lines are numbered from 0, found line " + str(line))
    require(not ((key_image, line) in self.live), "this review key already has a live review of line " + str(line)
            + "; amend it instead")
    _check_scores(scores)
    require(len(content_hash) == 32, "content hash is 32 bytes, found " + str(len(content_hash)))
    merchant = b""
    product = b""
    disputed = False
    buyers = []
    prev = 0
    for i in range(n):
        oid = ring[i]
        require(oid > prev, "ring orders must be distinct and in ascending order; found " + str(oid) + " after "
                + str(prev))
        prev = oid
        o = call("orders", "get_order", oid)
        require(o != None, "no order " + str(oid))
        why = _reviewable(o)
        require(why == "", "ring order " + str(oid) + " " + why)
        require(not (o["buyer"] in buyers), "ring orders must have distinct buyers; order " + str(oid)
                + " repeats one (it would add no one to hide among)")
        buyers.append(o["buyer"])
        p = _line_product(o, line)
        require(p != b"", "ring order " + str(oid) + " has no line " + str(line))
        if i == 0:
            merchant = o["merchant"]
            product = p
            disputed = o["prev_state"] != ""
        else:
            require(o["merchant"] == merchant, "ring orders must share one merchant; order " + str(oid) + " is another's")
            require((o["prev_state"] != "") == disputed,
                    "ring orders must all have been disputed or all not (the review's disputed flag would single one "
                    "out); order " + str(oid) + " differs")
            if p != product:
                product = b""
    _relayer_check(buyers)
    require(ring_verify(ring_keys, key_image, message(ring, line, scores, content_hash, incentivised, 1), signature),
            "bad review signature: not a ring signature by one of the ring's review keys over this review")
    rid = self.next_id + 1
    self.next_id = rid
    rv = Review(id=rid, key_image=key_image, line=line, merchant=merchant, product=product, ring=ring,
                scores=scores, content_hash=content_hash, disputed=disputed,
                incentivised=incentivised, version=1, prior=0, superseded=False, hidden=False, reply_hash=b"",
                height=ctx.height)
    self.reviews[rid] = rv
    self.live[(key_image, line)] = rid
    _count(rv, 1)
    emit(ReviewPublished, review=rid, key_image=key_image, line=line, overall=scores[0], content_hash=content_hash)
    return rid


@public
def amend(key_image: bytes, line: int, scores: list[int], content_hash: bytes, incentivised: bool,
          signature: bytes) -> int:
    prior_id = self.live.get((key_image, line), 0)
    require(prior_id != 0, "no live review of line " + str(line) + " by this review key to amend")
    prior = self.reviews[prior_id]
    require(prior.version < MAX_VERSION, "a review may be amended once")
    _check_scores(scores)
    require(len(content_hash) == 32, "content hash is 32 bytes, found " + str(len(content_hash)))
    buyers = []
    for oid in prior.ring:
        buyers.append(call("orders", "get_order", oid)["buyer"])
    _relayer_check(buyers)
    next_version = prior.version + 1
    require(ring_verify(_ring_keys(prior.ring), key_image, message(prior.ring, line, scores, content_hash, incentivised,
                                                            next_version), signature),
            "bad review signature: not a ring signature by the review's key over this amendment")
    rid = self.next_id + 1
    self.next_id = rid
    if not prior.hidden:
        _count(prior, -1)
    prior.superseded = True
    self.reviews[prior_id] = prior
    rv = Review(id=rid, key_image=key_image, line=line, merchant=prior.merchant, product=prior.product,
                ring=prior.ring, scores=scores, content_hash=content_hash,
                disputed=prior.disputed, incentivised=incentivised, version=next_version, prior=prior_id,
                superseded=False, hidden=False, reply_hash=b"", height=ctx.height)
    self.reviews[rid] = rv
    self.live[(key_image, line)] = rid
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
def live_review(key_image: bytes, line: int) -> int:
    return self.live.get((key_image, line), 0)


@view
def review_key_of(order_id: int) -> bytes:
    return self.review_keys.get(order_id, b"")


@view
def reviewable_orders(merchant: bytes, below: int, scan: int) -> list[int]:
    """Ids under ``below``, newest first, of ``merchant``'s orders that may be in a ring now
    (announced key, reviewable state, inside the window),
    among the ``scan`` (1..64) ids examined: clients page down with ``below`` = the last id examined."""
    require(scan >= 1 and scan <= MAX_SCAN, "scan is 1.." + str(MAX_SCAN) + ", found " + str(scan))
    out = []
    oid = below - 1
    stop = max(0, below - 1 - scan)
    while oid > stop:
        o = call("orders", "get_order", oid)
        if o != None and o["merchant"] == merchant and oid in self.review_keys and _reviewable(o) == "":
            out.append(oid)
        oid -= 1
    return out


@view
def merchant_rating(merchant: bytes) -> any:
    return self.merchant_ratings.get(merchant, Rating(count=0, sums=[0, 0, 0, 0, 0]))


@view
def product_rating(product: bytes) -> any:
    return self.product_ratings.get(product, Rating(count=0, sums=[0, 0, 0, 0, 0]))
