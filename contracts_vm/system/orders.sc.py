"""Orders with escrow: carts of lines from one merchant, deadlines in seconds of block time.

An order is a cart from ONE merchant (one escrow, one carrier, one parcel): up to
MAX_ORDER_LINES lines, each [product, quantity, unit_price, terms_hash]. A merchant may
offer several named terms sets (``set_named_terms``; ``set_terms`` is the default set,
named ""), so lines carry different return windows, restocking fees and warranties.
Terms are content-addressed: ``terms_archive[hash]`` is the snapshot a line names and
never changes. The parcel's own deadlines (accept, handling, transit, auto-confirm)
and the arbiter come from the order terms: the strictest of its lines' sets (shortest
accept, handling and transit, longest auto-confirm and return window) with the first
line's arbiter, since one parcel must keep every promise made for anything in it.
Money is exact per line: a voucher's discount on the total is split over the lines in
proportion to their prices by largest remainder (ties to the lower line), so the
lines' paid amounts sum to the order amount; refunds name a line and never exceed what
it was paid (order-level refunds - cancellations, not-received, rulings - are split
over the lines' remainders the same way); at completion the fee and the holdback are
computed per line on what the line kept and summed.

Every deadline is a unix time in seconds, compared with the certified block timestamp
(``ctx.timestamp_ms // 1000``): block heights say nothing about time, since idle blocks
come every second and busy ones back to back. Terms and settings are durations in
seconds. Each line names the hash of its terms set, so the terms cannot change under
the buyer, and the order snapshots the platform's fee and holdback rates, so later
setting changes never touch open orders. The buyer's
payment is locked in the ledger escrow "o<id>" when the order is placed. Every
transition writes the new state before any money moves. On COMPLETED the merchant is
paid the net amount minus the platform fee minus a holdback; the holdback stays in
escrow until CLOSED to fund returns. Refunds beyond the escrow draw on the merchant's
bond ("b<merchant hex>"); a shortfall becomes merchant debt, which blocks new orders
until settled. A referral's commission rate is fixed at placement and paid at close,
within the caps the loyalty contract keeps. Timeouts happen when anyone calls poke().
Only hashes and commitments of personal data are stored. ``place_in`` prices an order in
another currency of the ledger (its escrow then moves through the ledger's ``*_in``
calls, and the base-currency bond does not back it) and lets the merchant's own loyalty
points pay part of it, split over the lines like a voucher's discount.
"""

GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
#: Basis points in a whole.
BPS = 10000
#: Seconds in a day (terms are usually whole days or hours).
DAY = 86400
#: Longest any term or period may be (366 days, in seconds); keeps deadlines far from int overflow.
MAX_TERM_SECONDS = 31622400
#: Largest order amount in minor units (10^15).
MAX_PRICE = 1000000000000000
#: Largest quantity of one order line.
MAX_QUANTITY = 1000000
#: Hashes and commitments are 32 bytes.
HASH_BYTES = 32
#: Most lines one order (cart) may hold; a 32-line order record stays well under the 16 KiB value limit.
MAX_ORDER_LINES = 32
#: Most named terms sets a merchant may offer at once.
MAX_TERMS_SETS = 16
#: Longest name of a terms set (characters).
MAX_TERMS_NAME = 32
#: Below this bound a*b cannot overflow a signed 64-bit int when b <= this too (2^31).
SMALL = 2147483648
#: Digit base of the overflow-free mul-div (2^11: r*BASE + a*digit stays below 2^62 for values below 2^50).
MULDIV_BASE = 2048
#: The line index a whole-order case (not received) names.
ALL_LINES = -1


class Terms(Record):
    accept_seconds: int
    handling_seconds: int
    transit_seconds: int
    auto_confirm_seconds: int
    return_seconds: int
    restock_bps: int
    warranty_seconds: int
    arbiter: bytes


class Line(Record):
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


class Order(Record):
    id: int
    buyer: bytes
    merchant: bytes
    lines: list[Line]
    price: int
    discount: int
    amount: int
    state: str
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


sealed: bool
fee_bps: int
holdback_bps: int
arbiter_seconds: int
extend_seconds: int
fee_account: bytes
next_id: int
orders: Map[int, Order]
bonds: Map[bytes, int]
debt: Map[bytes, int]
order_debt: Map[int, int]
by_buyer: Map[tuple[bytes, int], bool]
by_merchant: Map[tuple[bytes, int], bool]
#: Order id -> its currency code, only for orders priced in another currency than the base one
#: (base orders keep the ledger's base calls and cost no extra read or write).
order_currency: Map[int, str]
#: Every terms set ever published, by its hash (content-addressed, so a snapshot never changes).
terms_archive: Map[bytes, Terms]
#: (merchant, terms hash) -> name of the set it is offered as, for the sets offered now.
offered: Map[tuple[bytes, bytes], str]
#: (merchant, name) -> hash of the set offered under that name.
terms_names: Map[tuple[bytes, str], bytes]
#: How many named sets each merchant offers (at most MAX_TERMS_SETS).
terms_count: Map[bytes, int]


# ---- helpers ---------------------------------------------------------------------

def _has_role(who, role) -> bool:
    return call("identity", "has_role", who, role)


def _registered(who) -> None:
    require(call("identity", "is_active", who), "sender is not an active registered account")


def _load(order_id) -> Order:
    o = self.orders.get(order_id)
    require(o != None, "no order " + str(order_id))
    return o


def _escrow_key(order_id) -> str:
    return "o" + str(order_id)


def _bond_key(merchant) -> str:
    return "b" + merchant.hex()


def _escrow(order_id) -> int:
    code = self.order_currency.get(order_id, "")
    if code == "":
        return call("ledger", "escrow_of", ctx.contract, _escrow_key(order_id))
    return call("ledger", "escrow_in", code, ctx.contract, _escrow_key(order_id))


def _pay(order_id, to, amount, cause) -> None:
    if amount > 0:
        code = self.order_currency.get(order_id, "")
        if code == "":
            call("ledger", "release", _escrow_key(order_id), to, amount, cause)
        else:
            call("ledger", "release_in", code, _escrow_key(order_id), to, amount, cause)


def _lock(order_id, frm, amount) -> None:
    code = self.order_currency.get(order_id, "")
    if code == "":
        call("ledger", "lock", _escrow_key(order_id), frm, amount)
    else:
        call("ledger", "lock_in", code, _escrow_key(order_id), frm, amount)


def _restore_payments(o) -> None:
    """A full refund gives back what paid besides money: the voucher (if still valid) and points."""
    if o.refunded != o.amount:
        return
    if o.voucher != b"":
        call("loyalty", "restore_voucher", o.voucher, o.buyer, o.id)
    if o.points > 0:
        call("loyalty", "restore_points", o.points_program, o.buyer, o.id)


def _now() -> int:
    """The block's certified time in unix seconds: what every deadline is compared with."""
    return ctx.timestamp_ms // 1000


def _when(t) -> str:
    return "unix time " + str(t)


def _is_hash(h) -> bool:
    return len(h) == HASH_BYTES





def compute_terms_hash(t) -> bytes:
    b = b"shopchain/terms/v2"
    for n in [t.accept_seconds, t.handling_seconds, t.transit_seconds, t.auto_confirm_seconds, t.return_seconds,
              t.restock_bps, t.warranty_seconds]:
        b = b + b"|" + str(n).encode()
    return sha256(b + b"|" + t.arbiter)


# ---- settings, terms, bonds -------------------------------------------------------

@public
def configure(fee_bps: int, holdback_bps: int, arbiter_seconds: int, extend_seconds: int, fee_account: bytes) -> None:
    """Genesis sets these once (before seal); afterwards only governance changes them (gov_configure)."""
    require(ctx.sender == GENESIS_SENDER, "only genesis may configure; later changes are governance proposals")
    require(not self.sealed, "genesis is sealed")
    _apply_settings(fee_bps, holdback_bps, arbiter_seconds, extend_seconds, fee_account)


@public
@requires("governance")
def gov_configure(changes: dict) -> None:
    """Settings changed by a passed governance proposal: named keys, the others keep their values."""
    for k in changes:
        require(k in ["fee_bps", "holdback_bps", "arbiter_seconds", "extend_seconds", "fee_account"],
                "unknown orders setting " + k + "; expected one of fee_bps, holdback_bps, arbiter_seconds, extend_seconds, fee_account")
    fee_bps = changes.get("fee_bps", self.fee_bps)
    holdback_bps = changes.get("holdback_bps", self.holdback_bps)
    arbiter_seconds = changes.get("arbiter_seconds", self.arbiter_seconds)
    extend_seconds = changes.get("extend_seconds", self.extend_seconds)
    fee_account = changes.get("fee_account", self.fee_account)
    _apply_settings(fee_bps, holdback_bps, arbiter_seconds, extend_seconds, fee_account)
    emit(SettingsChanged, changes=changes)


def _apply_settings(fee_bps, holdback_bps, arbiter_seconds, extend_seconds, fee_account) -> None:
    require(fee_bps >= 0 and holdback_bps >= 0 and fee_bps + holdback_bps <= BPS, "fee + holdback must be 0..10000 bps")
    require(arbiter_seconds >= 60 and arbiter_seconds <= MAX_TERM_SECONDS,
            "arbiter_seconds must be 60..31622400 (a minute to 366 days), found " + str(arbiter_seconds))
    require(extend_seconds >= 0 and extend_seconds <= MAX_TERM_SECONDS,
            "extend_seconds must be 0..31622400 (up to 366 days), found " + str(extend_seconds))
    require(len(fee_account) == 32, "fee account must be a 32-byte key")
    self.fee_bps = fee_bps
    self.holdback_bps = holdback_bps
    self.arbiter_seconds = arbiter_seconds
    self.extend_seconds = extend_seconds
    self.fee_account = fee_account


@public
def seal() -> None:
    require(ctx.sender == GENESIS_SENDER and not self.sealed, "only genesis may seal")
    self.sealed = True


@public
def set_terms(accept_seconds: int, handling_seconds: int, transit_seconds: int, auto_confirm_seconds: int,
              return_seconds: int, restock_bps: int, warranty_seconds: int, arbiter: bytes) -> bytes:
    """The merchant's default terms set (named ""); durations in seconds of block time (the CLI takes 2d, 12h, 90m)."""
    return _publish_terms("", accept_seconds, handling_seconds, transit_seconds, auto_confirm_seconds, return_seconds,
                          restock_bps, warranty_seconds, arbiter)


@public
def set_named_terms(name: str, accept_seconds: int, handling_seconds: int, transit_seconds: int,
                    auto_confirm_seconds: int, return_seconds: int, restock_bps: int, warranty_seconds: int,
                    arbiter: bytes) -> bytes:
    """Offer (or replace) a named terms set, so different products carry different returns and warranties."""
    require(len(name) <= MAX_TERMS_NAME, "terms names are at most 32 characters, found " + str(len(name)))
    return _publish_terms(name, accept_seconds, handling_seconds, transit_seconds, auto_confirm_seconds, return_seconds,
                          restock_bps, warranty_seconds, arbiter)


@public
def withdraw_terms(name: str) -> None:
    """Stop offering a terms set: new lines cannot quote it; orders that snapshotted it keep it."""
    old = self.terms_names.get((ctx.sender, name), b"")
    require(old != b"", "no terms set named '" + name + "' is offered by this account")
    del self.terms_names[(ctx.sender, name)]
    del self.offered[(ctx.sender, old)]
    self.terms_count[ctx.sender] = self.terms_count.get(ctx.sender, 0) - 1
    emit(TermsWithdrawn, merchant=ctx.sender, name=name, terms_hash=old)


def _publish_terms(name, accept_seconds, handling_seconds, transit_seconds, auto_confirm_seconds, return_seconds,
                   restock_bps, warranty_seconds, arbiter) -> bytes:
    require(_has_role(ctx.sender, "MERCHANT"), "only a MERCHANT publishes terms")
    for d in [accept_seconds, handling_seconds, transit_seconds, auto_confirm_seconds, return_seconds, warranty_seconds]:
        require(d >= 0 and d <= MAX_TERM_SECONDS, "terms are 0..31622400 seconds (366 days), found " + str(d))
    for d in [accept_seconds, handling_seconds, transit_seconds, auto_confirm_seconds]:
        require(d >= 3600, "accept, handling, transit and auto-confirm periods must be at least an hour (3600 s), found " + str(d))
    require(restock_bps >= 0 and restock_bps <= BPS, "restocking fee must be 0..10000 bps")
    require(_has_role(arbiter, "ARBITER"), "the named arbiter must hold the ARBITER role")
    require(arbiter != ctx.sender, "a merchant cannot arbitrate its own orders")
    t = Terms(accept_seconds=accept_seconds, handling_seconds=handling_seconds, transit_seconds=transit_seconds,
              auto_confirm_seconds=auto_confirm_seconds, return_seconds=return_seconds, restock_bps=restock_bps,
              warranty_seconds=warranty_seconds, arbiter=arbiter)
    h = compute_terms_hash(t)
    m = ctx.sender
    if (m, h) in self.offered:
        other = self.offered[(m, h)]
        require(other == name, "these terms are already offered as '" + other + "'")
    old = self.terms_names.get((m, name), b"")
    if old == b"":
        count = self.terms_count.get(m, 0)
        require(count < MAX_TERMS_SETS, "a merchant offers at most 16 terms sets; withdraw one first")
        self.terms_count[m] = count + 1
    elif old != h:
        del self.offered[(m, old)]
    self.terms_archive[h] = t
    self.offered[(m, h)] = name
    self.terms_names[(m, name)] = h
    emit(TermsPublished, merchant=m, name=name, terms_hash=h)
    return h


@public
def deposit_bond(amount: int) -> None:
    require(_has_role(ctx.sender, "MERCHANT"), "only a MERCHANT deposits a bond")
    require(amount > 0, "bond deposit must be positive")
    self.bonds[ctx.sender] = self.bonds.get(ctx.sender, 0) + amount
    call("ledger", "lock", _bond_key(ctx.sender), ctx.sender, amount)
    emit(BondDeposited, merchant=ctx.sender, amount=amount)


@public
def withdraw_bond(amount: int) -> None:
    held = self.bonds.get(ctx.sender, 0)
    require(amount > 0 and amount <= held, "bond holds " + str(held) + ", cannot withdraw " + str(amount))
    require(self.debt.get(ctx.sender, 0) == 0, "merchant has unpaid debt")
    self.bonds[ctx.sender] = held - amount
    call("ledger", "release", _bond_key(ctx.sender), ctx.sender, amount, "bond")
    emit(BondWithdrawn, merchant=ctx.sender, amount=amount)


@public
def settle_debt(order_id: int) -> None:
    """The merchant pays what a refund could not draw from escrow or bond to the order's buyer."""
    _registered(ctx.sender)
    o = _load(order_id)
    owed = self.order_debt.get(order_id, 0)
    require(owed > 0, "order " + str(order_id) + " has no debt")
    require(ctx.sender == o.merchant, "only the order's merchant settles its debt")
    del self.order_debt[order_id]
    self.debt[o.merchant] = self.debt[o.merchant] - owed
    _lock(order_id, o.merchant, owed)
    _pay(order_id, o.buyer, owed, "debt")
    emit(DebtSettled, order=order_id, merchant=o.merchant, amount=owed)


# ---- placement ---------------------------------------------------------------------

@public
def place(merchant: bytes, lines: list[list[any]], pii_root: bytes, payload_hash: bytes, review_key_hash: bytes,
          referrer: bytes, voucher: bytes, voucher_code: bytes) -> int:
    """A cart from one merchant: ``lines`` is 1..MAX_ORDER_LINES of [product, quantity, unit_price, terms_hash],
    priced and paid in the base currency."""
    return _place(merchant, lines, pii_root, payload_hash, review_key_hash, referrer, voucher, voucher_code, "", "", 0)


@public
def place_in(merchant: bytes, lines: list[list[any]], pii_root: bytes, payload_hash: bytes, review_key_hash: bytes,
             referrer: bytes, voucher: bytes, voucher_code: bytes, currency: str, points_program: str,
             points: int) -> int:
    """``place``, priced in ``currency`` (a code of the ledger; "" is the base currency), with
    ``points`` of the merchant's own loyalty program ``points_program`` paying part of it (0: none).
    Referrals and vouchers are valued in the base currency, so they come with base-currency orders only."""
    return _place(merchant, lines, pii_root, payload_hash, review_key_hash, referrer, voucher, voucher_code, currency,
                  points_program, points)


def _place(merchant, lines, pii_root, payload_hash, review_key_hash, referrer, voucher, voucher_code, currency,
           points_program, points) -> int:
    buyer = ctx.sender
    base = call("ledger", "currency")["code"]
    if currency == "" or currency == base:
        currency = ""
    else:
        require(call("ledger", "get_currency", currency) != None, "no currency " + currency + " on this chain")
        require(referrer == b"" and voucher == b"", "referrals and vouchers are valued in " + base
                + ", so an order in " + currency + " takes neither")
    require(points >= 0, "points must not be negative, found " + str(points))
    require((points == 0) == (points_program == ""), "name the loyalty program together with the points it pays")
    require(_has_role(buyer, "BUYER"), "only a BUYER places orders")
    require(_has_role(merchant, "MERCHANT"), "seller is not an active MERCHANT")
    require(buyer != merchant, "a merchant cannot buy from itself")
    require(self.debt.get(merchant, 0) == 0, "merchant has unpaid debt and may not take orders")
    require(len(lines) >= 1 and len(lines) <= MAX_ORDER_LINES,
            "an order has 1..32 lines, found " + str(len(lines)))
    require(_is_hash(pii_root) and _is_hash(payload_hash) and _is_hash(review_key_hash),
            "PII root, payload hash and review-key hash are 32 bytes")
    require(self.arbiter_seconds > 0, "order settings are not configured")
    items = []
    prices = []
    sets = []
    total = 0
    for i in range(len(lines)):
        ln = _new_line(i, lines[i])
        t = self.terms_archive.get(ln.terms_hash)
        require(t != None and (merchant, ln.terms_hash) in self.offered,
                "line " + str(i) + ": terms hash " + ln.terms_hash.hex() + " is not one of the merchant's current terms")
        total += ln.price
        require(total <= MAX_PRICE, "order total must be at most 10^15 minor units")
        items.append(ln)
        prices.append(ln.price)
        sets.append(t)
    t = _order_terms(sets)
    commission = 0
    if referrer != b"":
        require(referrer != buyer and referrer != merchant, "a party to the order cannot refer it")
        commission = call("loyalty", "referral_rate", referrer)
    oid = self.next_id + 1
    self.next_id = oid
    discount = 0
    if voucher != b"":
        discount = call("loyalty", "redeem_voucher", voucher, voucher_code, buyer, merchant, total, oid)
    points_value = 0
    if points > 0:
        points_value = call("loyalty", "pay_with_points", points_program, points, buyer, merchant, total - discount, oid)
    amount = total - discount - points_value
    require(amount >= 1, "order total after vouchers and points must be positive")
    shares = _alloc(discount + points_value, prices)
    for i in range(len(items)):
        items[i].discount = shares[i]
        items[i].amount = items[i].price - shares[i]
    now = _now()
    self.orders[oid] = Order(id=oid, buyer=buyer, merchant=merchant, lines=items,
                             price=total, discount=discount, amount=amount, state="PLACED", prev_state="",
                             terms=t, fee_bps=self.fee_bps, holdback_bps=self.holdback_bps,
                             pii_root=pii_root, payload_hash=payload_hash,
                             review_key_hash=review_key_hash, referrer=referrer, commission_bps=commission,
                             voucher=voucher, currency=currency if currency != "" else base,
                             points_program=points_program, points=points, points_value=points_value,
                             carrier=b"", label_hash=b"", tracking=b"", pod_hash=b"",
                             placed_height=ctx.height, placed_at=now, accept_by=now + t.accept_seconds, ship_by=0, deliver_by=0,
                             delivered_at=0, confirm_by=0, completed_at=0, close_after=0, extended=False,
                             buyer_cancel=False, merchant_cancel=False, refunded=0, fee_paid=0, open_case=0,
                             not_received=False, arbiter=t.arbiter, dispute_by=b"", dispute_deadline=0,
                             escalated=False)
    self.by_buyer[(buyer, oid)] = True
    self.by_merchant[(merchant, oid)] = True
    if currency != "":
        self.order_currency[oid] = currency
    _lock(oid, buyer, amount)
    emit(OrderPlaced, order=oid, merchant=merchant, amount=amount, lines=len(items), currency=currency if currency != "" else base)
    return oid


def _new_line(i, raw) -> Line:
    """One cart line as the buyer sent it, checked: [product, quantity, unit_price, terms_hash]."""
    where = "line " + str(i) + ": "
    require(len(raw) == 4, where + "expected [product, quantity, unit_price, terms_hash], found " + str(len(raw)) + " items")
    product = raw[0]
    quantity = raw[1]
    unit_price = raw[2]
    terms_hash = raw[3]
    require(_is_hash(product) and _is_hash(terms_hash), where + "product id and terms hash are 32 bytes")
    require(quantity >= 1 and quantity <= MAX_QUANTITY, where + "quantity must be 1..1000000, found " + str(quantity))
    require(unit_price >= 1 and unit_price <= MAX_PRICE // quantity,
            where + "quantity x unit price must be 1..10^15 minor units, found unit price " + str(unit_price))
    price = quantity * unit_price
    return Line(product=product, quantity=quantity, unit_price=unit_price, price=price, discount=0, amount=price,
                terms_hash=terms_hash, refunded=0, returned=0, fee_paid=0)


def _order_terms(sets) -> Terms:
    """The parcel's terms: it must keep every line's promise, so the shortest accept, handling and transit
    periods and the longest auto-confirm and return windows; the first line's arbiter rules the one dispute.
    Restocking and warranty always come from each line's own set; here they only summarise (least, longest)."""
    f = sets[0]
    if len(sets) == 1:
        return f
    t = Terms(accept_seconds=f.accept_seconds, handling_seconds=f.handling_seconds, transit_seconds=f.transit_seconds,
              auto_confirm_seconds=f.auto_confirm_seconds, return_seconds=f.return_seconds, restock_bps=f.restock_bps,
              warranty_seconds=f.warranty_seconds, arbiter=f.arbiter)
    for x in sets:
        t.accept_seconds = min(t.accept_seconds, x.accept_seconds)
        t.handling_seconds = min(t.handling_seconds, x.handling_seconds)
        t.transit_seconds = min(t.transit_seconds, x.transit_seconds)
        t.auto_confirm_seconds = max(t.auto_confirm_seconds, x.auto_confirm_seconds)
        t.return_seconds = max(t.return_seconds, x.return_seconds)
        t.restock_bps = min(t.restock_bps, x.restock_bps)
        t.warranty_seconds = max(t.warranty_seconds, x.warranty_seconds)
    return t


# ---- exact splits ------------------------------------------------------------------

def _muldiv(a, b, c) -> list:
    """[a * b // c, a * b % c] for a, b >= 0 and 0 < c <= 10^15, with no 64-bit overflow:
    long division of a * b in base MULDIV_BASE (r * BASE + a * digit stays below 2^62)."""
    if a < SMALL and b < SMALL:
        return [a * b // c, a * b % c]
    q = (a // c) * b
    a = a % c
    digits = []
    x = b
    while x > 0:                          # b <= 10^15 < 2^55: at most 5 digits
        digits.append(x % MULDIV_BASE)
        x = x // MULDIV_BASE
    r = 0
    for k in range(len(digits) - 1, -1, -1):
        acc = r * MULDIV_BASE + a * digits[k]
        q = q * MULDIV_BASE + acc // c
        r = acc % c
    return [q, r]


def _alloc(amount, weights) -> list:
    """Split ``amount`` over ``weights`` exactly (largest remainder): each part is floor(amount * w / total),
    then the units left go one each to the largest remainders, ties to the lower index. The parts sum to
    ``amount`` and none exceeds its weight (amount <= total), so a zero weight never gets anything."""
    total = 0
    for w in weights:
        total += w
    require(amount >= 0 and amount <= total, "cannot split " + str(amount) + " over lines holding " + str(total))
    if amount == total:
        return weights + []
    parts = []
    if amount == 0:                       # no voucher, a zero ruling: nothing to divide
        for w in weights:
            parts.append(0)
        return parts
    rems = []
    left = amount
    for w in weights:
        qr = _muldiv(amount, w, total)
        parts.append(qr[0])
        rems.append(qr[1])
        left -= qr[0]
    while left > 0:                       # fewer than len(weights) rounds
        best = -1
        for i in range(len(rems)):
            if rems[i] > 0 and (best < 0 or rems[i] > rems[best]):
                best = i
        parts[best] += 1
        rems[best] = 0
        left -= 1
    return parts


def _spread(o, amount) -> list:
    """An order-level refund (cancel, not received, ruling) split over what each line still holds."""
    held = []
    for ln in o.lines:
        held.append(ln.amount - ln.refunded)
    return _alloc(amount, held)


def _on_line(o, line, amount) -> list:
    parts = []
    for i in range(len(o.lines)):
        parts.append(amount if i == line else 0)
    return parts


# ---- refunds (shared by cancellations, cases and rulings) -------------------------

def _book(o, parts) -> int:
    """Record per-line refunds on ``o`` (not yet saved) and return their sum. E3 holds per line and per order."""
    amount = 0
    for i in range(len(parts)):
        a = parts[i]
        ln = o.lines[i]
        require(a >= 0, "refund must not be negative")
        require(ln.refunded + a <= ln.amount, "refund of " + str(a) + " on line " + str(i) + " would exceed the "
                + str(ln.amount - ln.refunded) + " it still holds")
        ln.refunded += a
        o.lines[i] = ln
        amount += a
    require(o.refunded + amount <= o.amount, "refund of " + str(amount) + " would exceed the " + str(o.amount - o.refunded) + " still refundable")
    o.refunded += amount
    return amount


def _refund(o, parts, cause) -> None:
    """Pay the buyer the per-line ``parts``: escrow first, then the merchant bond, then record debt."""
    amount = _book(o, parts)
    self.orders[o.id] = o
    held = _escrow(o.id)
    from_escrow = min(held, amount)
    rest = amount - from_escrow
    bond = 0
    if self.order_currency.get(o.id, "") == "":
        bond = self.bonds.get(o.merchant, 0)    # bonds are in the base currency: they back base orders
    from_bond = min(bond, rest)
    short = rest - from_bond
    if from_bond > 0:
        self.bonds[o.merchant] = bond - from_bond
    if short > 0:
        self.debt[o.merchant] = self.debt.get(o.merchant, 0) + short
        self.order_debt[o.id] = self.order_debt.get(o.id, 0) + short
        emit(MerchantDebt, order=o.id, merchant=o.merchant, amount=short)
    _pay(o.id, o.buyer, from_escrow, cause)
    if from_bond > 0:
        call("ledger", "release", _bond_key(o.merchant), o.buyer, from_bond, cause)
    _restore_payments(o)
    emit(Refunded, order=o.id, amount=amount, cumulative=o.refunded)


def _cancel(o, reason) -> None:
    o.state = "CANCELLED"
    self.orders[o.id] = o
    emit(OrderCancelled, order=o.id, reason=reason)
    _refund(o, _spread(o, o.amount - o.refunded), "refund")


def _complete(o, auto) -> None:
    o.state = "COMPLETED"
    o.completed_at = _now()
    o.close_after = max(o.completed_at, o.delivered_at + o.terms.return_seconds)   # the return window runs from delivery
    fee = 0
    holdback = 0
    for i in range(len(o.lines)):       # per line on what it kept, then summed: exact per line
        ln = o.lines[i]
        net = ln.amount - ln.refunded
        ln.fee_paid = net * o.fee_bps // BPS
        o.lines[i] = ln
        fee += ln.fee_paid
        holdback += net * o.holdback_bps // BPS
    held = _escrow(o.id)
    require(fee + holdback <= held, "escrow of " + str(held) + " cannot cover fee " + str(fee) + " and holdback "
            + str(holdback) + " (refunds before completion always come from escrow)")
    payout = held - fee - holdback
    o.fee_paid = fee
    self.orders[o.id] = o
    emit(ReceiptConfirmed, order=o.id, auto=auto, payout=payout, fee=fee, holdback=holdback)
    _pay(o.id, self.fee_account, fee, "fee")
    _pay(o.id, o.merchant, payout, "payout")


def _close(o) -> None:
    o.state = "CLOSED"
    self.orders[o.id] = o
    held = _escrow(o.id)
    commission = 0
    if o.referrer != b"" and o.commission_bps > 0:
        commission = call("loyalty", "claim_commission", o.referrer, o.buyer, o.amount - o.refunded,
                          o.commission_bps, held)
    emit(OrderClosed, order=o.id, holdback=held, commission=commission)
    _pay(o.id, o.referrer, commission, "commission")
    _pay(o.id, o.merchant, held - commission, "holdback")


# ---- transitions -----------------------------------------------------------------

@public
def accept(order_id: int, carrier: bytes, label_hash: bytes) -> None:
    """``label_hash``: hash of the minimal shipping label sealed to the carrier's X25519 key (off chain)."""
    o = _load(order_id)
    _registered(ctx.sender)
    require(ctx.sender == o.merchant, "only the order's merchant accepts")
    require(o.state == "PLACED", "order is " + o.state + ", expected PLACED")
    require(_now() <= o.accept_by, "accept-by deadline passed at " + _when(o.accept_by))
    require(_has_role(carrier, "CARRIER"), "the named carrier must hold the CARRIER role")
    require(_is_hash(label_hash), "label hash is 32 bytes")
    o.state = "ACCEPTED"
    o.carrier = carrier
    o.label_hash = label_hash
    o.ship_by = _now() + o.terms.handling_seconds
    self.orders[order_id] = o
    emit(OrderAccepted, order=order_id, carrier=carrier, label_hash=label_hash, ship_by=o.ship_by)


@public
def reject(order_id: int) -> None:
    o = _load(order_id)
    _registered(ctx.sender)
    require(ctx.sender == o.merchant, "only the order's merchant rejects")
    require(o.state == "PLACED", "order is " + o.state + ", expected PLACED")
    o.state = "REJECTED"
    self.orders[order_id] = o
    emit(OrderRejected, order=order_id)
    _refund(o, _spread(o, o.amount - o.refunded), "refund")


@public
def cancel(order_id: int) -> None:
    o = _load(order_id)
    _registered(ctx.sender)
    if o.state == "PLACED":
        if ctx.sender == o.buyer:
            _cancel(o, "buyer")
            return
        require(_now() > o.accept_by, "only the buyer may cancel before the accept-by deadline (" + _when(o.accept_by) + ")")
        _cancel(o, "accept_timeout")
        return
    require(o.state == "ACCEPTED", "order is " + o.state + ", only PLACED or ACCEPTED orders are cancelled")
    if _now() > o.ship_by:
        _cancel(o, "ship_timeout")
        return
    require(ctx.sender == o.buyer or ctx.sender == o.merchant,
            "before ship-by an accepted order is cancelled only by both parties")
    if ctx.sender == o.buyer:
        o.buyer_cancel = True
    else:
        o.merchant_cancel = True
    if o.buyer_cancel and o.merchant_cancel:
        _cancel(o, "mutual")
    else:
        self.orders[order_id] = o
        emit(CancelRequested, order=order_id, by_buyer=ctx.sender == o.buyer)


def _ship(o, actor, tracking, partial) -> None:
    require(actor == o.merchant or actor == o.carrier, "only the merchant or the named carrier ships")
    require(o.state == "ACCEPTED" or o.state == "PARTIALLY_SHIPPED",
            "order is " + o.state + ", expected ACCEPTED or PARTIALLY_SHIPPED")
    require(_is_hash(tracking), "tracking commitment is 32 bytes")
    if o.state == "ACCEPTED":
        o.deliver_by = _now() + o.terms.transit_seconds
    o.state = "PARTIALLY_SHIPPED" if partial else "SHIPPED"
    o.tracking = tracking
    self.orders[o.id] = o
    emit(Shipped, order=o.id, partial=partial, tracking=tracking, deliver_by=o.deliver_by)


def _deliver(o, actor, pod_hash) -> None:
    require(o.carrier != b"" and actor == o.carrier, "only the named carrier posts delivery")
    require(o.state == "SHIPPED", "order is " + o.state + ", expected SHIPPED")
    require(_is_hash(pod_hash), "proof-of-delivery hash is 32 bytes")
    o.state = "DELIVERED"
    o.pod_hash = pod_hash
    o.delivered_at = _now()
    o.confirm_by = o.delivered_at + o.terms.auto_confirm_seconds
    self.orders[o.id] = o
    emit(Delivered, order=o.id, pod_hash=pod_hash, confirm_by=o.confirm_by)


@public
def ship(order_id: int, tracking: bytes, partial: bool) -> None:
    _registered(ctx.sender)
    _ship(_load(order_id), ctx.sender, tracking, partial)


@public
def deliver(order_id: int, pod_hash: bytes) -> None:
    _registered(ctx.sender)
    _deliver(_load(order_id), ctx.sender, pod_hash)


@public
@requires("carrier_feed")
def carrier_event(order_id: int, actor: bytes, kind: str, data_hash: bytes) -> None:
    """Provenance forwards a carrier's shipping/delivery event; ``actor`` is its signer."""
    o = _load(order_id)
    if kind == "shipping":
        _ship(o, actor, data_hash, False)
    else:
        require(kind == "delivering", "carrier events are shipping or delivering, found " + kind)
        _deliver(o, actor, data_hash)


@public
def confirm(order_id: int) -> None:
    o = _load(order_id)
    _registered(ctx.sender)
    require(ctx.sender == o.buyer, "only the buyer confirms receipt")
    require(o.state == "DELIVERED" or o.state == "SHIPPED", "order is " + o.state + ", expected DELIVERED or SHIPPED")
    if o.delivered_at == 0:
        o.delivered_at = _now()
    _complete(o, False)


@public
def extend(order_id: int) -> None:
    o = _load(order_id)
    _registered(ctx.sender)
    require(ctx.sender == o.buyer, "only the buyer extends the auto-confirm countdown")
    require(o.state == "DELIVERED", "order is " + o.state + ", expected DELIVERED")
    require(not o.extended, "the countdown was already extended once")
    require(_now() <= o.confirm_by, "the countdown already ran out at " + _when(o.confirm_by))
    o.extended = True
    o.confirm_by = o.confirm_by + self.extend_seconds
    self.orders[order_id] = o
    emit(ConfirmExtended, order=order_id, confirm_by=o.confirm_by)


@public
def poke(order_id: int) -> str:
    """Apply whichever deadline has passed; anyone registered may call it."""
    o = _load(order_id)
    _registered(ctx.sender)
    h = _now()
    s = o.state
    if s == "PLACED" and h > o.accept_by:
        _cancel(o, "accept_timeout")
    elif s == "ACCEPTED" and h > o.ship_by:
        _cancel(o, "ship_timeout")
    elif s == "DELIVERED" and h > o.confirm_by and o.open_case == 0:
        _complete(o, True)
    elif (s == "SHIPPED" or s == "PARTIALLY_SHIPPED") and h > o.deliver_by + o.terms.auto_confirm_seconds and o.open_case == 0 and not o.not_received:
        o.delivered_at = h
        _complete(o, True)
    elif s == "COMPLETED" and h > o.close_after and o.open_case == 0:
        _close(o)
    elif s == "DISPUTED" and h > o.dispute_deadline and not o.escalated:
        o.escalated = True
        o.dispute_deadline = h + self.arbiter_seconds
        self.orders[order_id] = o
        emit(DisputeEscalated, order=order_id, deadline=o.dispute_deadline)
    else:
        revert("no deadline of order " + str(order_id) + " (" + s + ") has passed at " + _when(h))
    return self.orders[order_id].state


# ---- disputes ------------------------------------------------------------------------

def _open_dispute(o, by, evidence) -> None:
    require(o.state in ["ACCEPTED", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED", "COMPLETED"],
            "order is " + o.state + ", disputes are opened between ACCEPTED and COMPLETED")
    require(_is_hash(evidence), "evidence hash is 32 bytes")
    o.prev_state = o.state
    o.state = "DISPUTED"
    o.dispute_by = by
    o.dispute_deadline = _now() + self.arbiter_seconds
    self.orders[o.id] = o
    emit(DisputeOpened, order=o.id, evidence=evidence, deadline=o.dispute_deadline)


@public
def dispute(order_id: int, evidence: bytes) -> None:
    o = _load(order_id)
    _registered(ctx.sender)
    require(ctx.sender == o.buyer or ctx.sender == o.merchant, "only the buyer or the merchant opens a dispute")
    _open_dispute(o, ctx.sender, evidence)


@public
def add_evidence(order_id: int, evidence: bytes) -> None:
    o = _load(order_id)
    _registered(ctx.sender)
    require(o.state == "DISPUTED", "order is " + o.state + ", expected DISPUTED")
    require(ctx.sender == o.buyer or ctx.sender == o.merchant or ctx.sender == o.arbiter,
            "only the parties and the arbiter add evidence")
    require(_is_hash(evidence), "evidence hash is 32 bytes")
    emit(Evidence, order=order_id, evidence=evidence)


@public
def rule(order_id: int, to_buyer: int, to_merchant: int, fee: int) -> None:
    o = _load(order_id)
    require(o.state == "DISPUTED", "order is " + o.state + ", expected DISPUTED")
    if o.escalated:
        require(_has_role(ctx.sender, "PLATFORM"), "the dispute was escalated: only PLATFORM rules")
    else:
        require(ctx.sender == o.arbiter and _has_role(ctx.sender, "ARBITER"), "only the order's arbiter rules")
        require(_now() <= o.dispute_deadline, "the arbiter's deadline passed at " + _when(o.dispute_deadline) + "; the dispute escalates to PLATFORM")
    require(to_buyer >= 0 and to_merchant >= 0 and fee >= 0, "ruling amounts must not be negative")
    held = _escrow(order_id)
    require(to_buyer + to_merchant + fee == held,
            "ruling must sum exactly to the escrow of " + str(held) + ", found " + str(to_buyer + to_merchant + fee))
    require(o.refunded + to_buyer <= o.amount, "ruling would refund more than was paid")
    o.state = "RESOLVED"
    _book(o, _spread(o, to_buyer))
    self.orders[order_id] = o
    emit(Ruling, order=order_id, to_buyer=to_buyer, to_merchant=to_merchant, fee=fee, by=ctx.sender)
    _pay(order_id, o.buyer, to_buyer, "ruling")
    _pay(order_id, o.merchant, to_merchant, "ruling")
    _pay(order_id, ctx.sender, fee, "arbiter_fee")
    _restore_payments(o)
    if o.open_case != 0:
        call("cases", "order_resolved", o.open_case)


# ---- hooks for the after-sales contract ----------------------------------------------

@public
@requires("cases")
def case_opened(order_id: int, case_id: int, not_received: bool) -> None:
    o = _load(order_id)
    require(o.open_case == 0, "order " + str(order_id) + " already has an open case")
    o.open_case = case_id
    o.not_received = not_received
    self.orders[order_id] = o


@public
@requires("cases")
def case_closed(order_id: int, case_id: int) -> None:
    o = _load(order_id)
    require(o.open_case == case_id, "case " + str(case_id) + " is not the open case of the order")
    o.open_case = 0
    o.not_received = False
    self.orders[order_id] = o


@public
@requires("cases")
def case_refund(order_id: int, line: int, quantity: int, amount: int) -> None:
    """Refund ``amount`` on ``line`` with ``quantity`` units returned (ALL_LINES: the whole parcel, split)."""
    o = _load(order_id)
    require(o.state in ["PLACED", "ACCEPTED", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED", "COMPLETED"],
            "order is " + o.state + ", refunds go through the dispute")
    if line == ALL_LINES:
        require(quantity == 0, "a whole-order refund returns no units of a line")
        parts = _spread(o, amount)
    else:
        require(line >= 0 and line < len(o.lines), "order " + str(order_id) + " has no line " + str(line))
        ln = o.lines[line]
        require(quantity >= 0 and ln.returned + quantity <= ln.quantity, "line " + str(line) + " has "
                + str(ln.quantity - ln.returned) + " units not yet returned, found " + str(quantity))
        ln.returned += quantity
        o.lines[line] = ln
        parts = _on_line(o, line, amount)
    if o.refunded + amount == o.amount and o.state != "COMPLETED":
        _cancel(o, "refunded")
        return
    _refund(o, parts, "refund")


@public
@requires("cases")
def case_dispute(order_id: int, by: bytes, evidence: bytes) -> None:
    _open_dispute(_load(order_id), by, evidence)


# ---- views -----------------------------------------------------------------------

@view
def get_order(order_id: int) -> any:
    return self.orders.get(order_id)


@view
def get_terms(merchant: bytes) -> any:
    """The merchant's default terms set (named ""), or None."""
    return self.terms_archive.get(self.terms_names.get((merchant, ""), b""))


@view
def terms_hash_of(merchant: bytes) -> bytes:
    """The hash of the merchant's default terms set, b"" if it offers none."""
    return self.terms_names.get((merchant, ""), b"")


@view
def named_terms_hash(merchant: bytes, name: str) -> bytes:
    """The hash of the set the merchant offers under ``name``, b"" if none."""
    return self.terms_names.get((merchant, name), b"")


@view
def get_terms_set(terms_hash: bytes) -> any:
    """Any terms set ever published, by hash (what an order line snapshotted), or None."""
    return self.terms_archive.get(terms_hash)


@view
def terms_offered(merchant: bytes) -> list:
    """The merchant's current sets as [name, hash] pairs, in name order (at most MAX_TERMS_SETS)."""
    out = []
    for kv in self.terms_names.items((merchant,), MAX_TERMS_SETS):
        out.append([kv[0][1], kv[1]])
    return out


@view
def merchant_debt(merchant: bytes) -> int:
    return self.debt.get(merchant, 0)


@view
def bond_of(merchant: bytes) -> int:
    return self.bonds.get(merchant, 0)


@view
def order_count() -> int:
    return self.next_id


@view
def orders_of_buyer(buyer: bytes, limit: int) -> list[int]:
    out = []
    for k in self.by_buyer.keys((buyer,), limit):
        out.append(k[1])
    return out
