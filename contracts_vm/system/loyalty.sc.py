"""Loyalty points (lots with expiry, oldest first) and vouchers.

Points belong to (program, account) and are not transferable. A program's ISSUER
awards points for one of its own orders once that order is CLOSED (so returns do not
churn points): paid x rate are minted and the share refunded is clawed back at once.
Each award is a lot with an expiry time (unix seconds of certified block time, as are
voucher windows); redemption consumes the oldest lots first; ``expire`` sweeps lapsed lots;
``clawback`` takes back points in proportion to refunds recorded after the award.
Supply identity (checked by the tests): minted = redeemed + expired + clawed back +
what the lots still hold. Vouchers are redeemed atomically inside orders.place
(capability "loyalty"): a code hash (or bearer), fixed or bps value, minimum spend,
validity window, maximum redemptions and a per-buyer limit; a full refund of the
order restores a voucher that is still valid. Referrals: PLATFORM approves a referrer
with a commission rate, a budget and a cap per (referrer, buyer); orders fixes the
rate at placement (referral_rate) and asks claim_commission at close how much of
the price minus refunds to pay, so paid <= cap and budget always.
"""

BPS = 10000
#: Most lots one redemption or sweep walks (bounded work per call).
MAX_LOTS_PER_CALL = 64
#: Most a point may be worth, in minor units of the order's price.
MAX_POINT_VALUE = 1000000
#: Longest points expiry (3660 days, in seconds).
MAX_EXPIRY_SECONDS = 316224000


class Program(Record):
    issuer: bytes
    rate_bps: int
    expiry_seconds: int
    point_value: int
    max_pay_bps: int
    minted: int
    redeemed: int
    expired: int
    clawed: int


class Lot(Record):
    remaining: int
    expires: int
    order: int


class Award(Record):
    points: int
    refunded: int
    amount: int


class Referrer(Record):
    commission_bps: int
    budget: int
    pair_cap: int
    paid: int
    active: bool


class Voucher(Record):
    issuer: bytes
    code_hash: bytes
    kind: str
    value: int
    min_spend: int
    valid_from: int
    valid_to: int
    max_redemptions: int
    per_buyer: int
    redemptions: int


programs: Map[str, Program]
lots: Map[tuple[str, bytes, int], Lot]
next_lot: Map[tuple[str, bytes], int]
head: Map[tuple[str, bytes], int]
awards: Map[tuple[str, int], Award]
vouchers: Map[bytes, Voucher]
buyer_uses: Map[tuple[bytes, bytes], int]
#: (program, order) -> points that paid part of the order (restored on a full refund).
order_points: Map[tuple[str, int], int]
voucher_orders: Map[tuple[bytes, int], bool]
referrers: Map[bytes, Referrer]
pair_paid: Map[tuple[bytes, bytes], int]


def _now() -> int:
    """The block's certified time in unix seconds: expiries and voucher windows use it."""
    return ctx.timestamp_ms // 1000


def _program(pid) -> Program:
    p = self.programs.get(pid)
    require(p != None, "no loyalty program " + pid)
    return p


@public
def create_program(program_id: str, rate_bps: int, expiry_seconds: int) -> None:
    """Points of an award expire ``expiry_seconds`` of block time after it."""
    require(call("identity", "has_role", ctx.sender, "ISSUER"), "only an ISSUER creates a program")
    require(len(program_id) >= 1 and len(program_id) <= 64, "program id is 1..64 chars")
    require(not (program_id in self.programs), "program exists: " + program_id)
    require(rate_bps >= 0 and rate_bps <= BPS, "rate must be 0..10000 bps")
    require(expiry_seconds >= 3600 and expiry_seconds <= MAX_EXPIRY_SECONDS,
            "expiry must be 3600..316224000 seconds (an hour to 3660 days), found " + str(expiry_seconds))
    self.programs[program_id] = Program(issuer=ctx.sender, rate_bps=rate_bps, expiry_seconds=expiry_seconds,
                                        point_value=0, max_pay_bps=0, minted=0, redeemed=0, expired=0, clawed=0)


@public
def set_point_value(program_id: str, point_value: int, max_pay_bps: int) -> None:
    """The issuer lets points pay: each is worth ``point_value`` minor units of the price, and
    points pay at most ``max_pay_bps`` of an order (0 stops points paying for new orders)."""
    p = _program(program_id)
    require(ctx.sender == p.issuer, "only the program's issuer sets what its points are worth")
    require(point_value >= 0 and point_value <= MAX_POINT_VALUE, "a point is worth 0..1000000 minor units, found "
            + str(point_value))
    require(max_pay_bps >= 0 and max_pay_bps <= BPS, "points pay 0..10000 bps of an order, found " + str(max_pay_bps))
    p.point_value = point_value
    p.max_pay_bps = max_pay_bps
    self.programs[program_id] = p
    emit(PointValueSet, program=program_id, point_value=point_value, max_pay_bps=max_pay_bps)


@public
def award(program_id: str, order_id: int) -> int:
    p = _program(program_id)
    require(ctx.sender == p.issuer, "only the program's issuer awards points")
    o = call("orders", "get_order", order_id)
    require(o != None, "no order " + str(order_id))
    require(o["state"] == "CLOSED", "points are awarded when the order is CLOSED, it is " + o["state"])
    require(o["merchant"] == p.issuer, "the order is not from this program's merchant")
    require(not ((program_id, order_id) in self.awards), "order already awarded")
    full = o["amount"] * p.rate_bps // BPS
    points = full * (o["amount"] - o["refunded"]) // o["amount"]
    self.awards[(program_id, order_id)] = Award(points=points, refunded=o["refunded"], amount=o["amount"])
    p.minted += full
    p.clawed += full - points
    self.programs[program_id] = p
    if points > 0:
        who = o["buyer"]
        n = self.next_lot.get((program_id, who), 0)
        self.next_lot[(program_id, who)] = n + 1
        self.lots[(program_id, who, n)] = Lot(remaining=points, expires=_now() + p.expiry_seconds,
                                             order=order_id)
    if full > points:
        emit(PointsClawedBack, program=program_id, order=order_id, points=full - points)
    emit(PointsAwarded, program=program_id, order=order_id, points=points)
    return points


def _take(pid, who, wanted, only_expired, only_live) -> int:
    """Consume up to ``wanted`` points from the oldest lots; returns what was taken."""
    taken = 0
    start = self.head.get((pid, who), 0)
    end = self.next_lot.get((pid, who), 0)
    first_nonempty = -1
    steps = 0
    i = start
    while i < end and steps < MAX_LOTS_PER_CALL and taken < wanted:
        lot = self.lots.get((pid, who, i))
        steps += 1
        if lot != None and lot.remaining > 0:
            lapsed = _now() > lot.expires
            if (only_expired and lapsed) or (only_live and not lapsed) or (not only_expired and not only_live):
                t = min(lot.remaining, wanted - taken)
                lot.remaining -= t
                taken += t
                self.lots[(pid, who, i)] = lot
            if lot.remaining > 0 and first_nonempty < 0:
                first_nonempty = i
        i += 1
    if first_nonempty < 0:
        first_nonempty = i
    if first_nonempty > start:
        self.head[(pid, who)] = first_nonempty
    return taken


@public
def redeem(program_id: str, points: int) -> None:
    p = _program(program_id)
    require(points > 0, "redeem a positive number of points")
    got = _take(program_id, ctx.sender, points, False, True)
    require(got == points, "only " + str(got) + " unexpired points available, redeeming " + str(points))
    p.redeemed += points
    self.programs[program_id] = p
    emit(PointsRedeemed, program=program_id, account=ctx.sender, points=points)


@public
def expire(program_id: str, account: bytes) -> int:
    p = _program(program_id)
    got = _take(program_id, account, 9000000000000000000, True, False)
    p.expired += got
    self.programs[program_id] = p
    emit(PointsExpired, program=program_id, account=account, points=got)
    return got


@public
def clawback(program_id: str, order_id: int) -> int:
    """Anyone may claw back points in proportion to refunds made after the award."""
    p = _program(program_id)
    a = self.awards.get((program_id, order_id))
    require(a != None, "order was not awarded")
    o = call("orders", "get_order", order_id)
    require(o["refunded"] > a.refunded, "no refund since the award")
    base = a.amount - a.refunded
    keep = a.points * (a.amount - o["refunded"]) // base
    owed = a.points - keep
    got = _take(program_id, o["buyer"], owed, False, False)
    a.points = keep
    a.refunded = o["refunded"]
    self.awards[(program_id, order_id)] = a
    p.clawed += got
    self.programs[program_id] = p
    emit(PointsClawedBack, program=program_id, order=order_id, points=got)
    return got


# ---- vouchers ------------------------------------------------------------------------

@public
def create_voucher(voucher_id: bytes, code_hash: bytes, kind: str, value: int, min_spend: int, valid_from: int,
                   valid_to: int, max_redemptions: int, per_buyer: int) -> None:
    require(call("identity", "has_role", ctx.sender, "ISSUER") and call("identity", "has_role", ctx.sender, "MERCHANT"),
            "vouchers are issued by a merchant holding ISSUER")
    require(len(voucher_id) == 32 and (len(code_hash) == 0 or len(code_hash) == 32), "ids and code hashes are 32 bytes")
    require(not (voucher_id in self.vouchers), "voucher exists")
    require(kind == "FIXED" or (kind == "BPS" and value <= BPS), "kind is FIXED, or BPS with value <= 10000")
    require(value > 0 and min_spend >= 0 and valid_to >= valid_from, "value positive, window ordered")
    require(max_redemptions >= 1 and per_buyer >= 1, "limits must be at least one")
    self.vouchers[voucher_id] = Voucher(issuer=ctx.sender, code_hash=code_hash, kind=kind, value=value,
                                        min_spend=min_spend, valid_from=valid_from, valid_to=valid_to,
                                        max_redemptions=max_redemptions, per_buyer=per_buyer, redemptions=0)
    emit(VoucherCreated, voucher=voucher_id, max_redemptions=max_redemptions)


@public
@requires("loyalty")
def pay_with_points(program_id: str, points: int, buyer: bytes, merchant: bytes, price: int, order_id: int) -> int:
    """Orders, at placement: the buyer pays part of ``price`` with its oldest live points of the
    merchant's own program; returns the part paid (points x point value), which the merchant forgoes."""
    p = _program(program_id)
    require(p.issuer == merchant, "program " + program_id + " is not this merchant's; its points pay only its orders")
    require(p.point_value > 0 and p.max_pay_bps > 0, "points of program " + program_id + " do not pay for orders")
    require(points > 0, "pay with a positive number of points, found " + str(points))
    value = points * p.point_value
    most = price * p.max_pay_bps // BPS
    require(value <= most, str(points) + " points are worth " + str(value) + "; points pay at most " + str(most)
            + " of this order (" + str(p.max_pay_bps) + " bps)")
    got = _take(program_id, buyer, points, False, True)
    require(got == points, "only " + str(got) + " unexpired points available, paying with " + str(points))
    p.redeemed += points
    self.programs[program_id] = p
    self.order_points[(program_id, order_id)] = points
    emit(PointsPaid, program=program_id, order=order_id, account=buyer, points=points, value=value)
    return value


@public
@requires("loyalty")
def restore_points(program_id: str, buyer: bytes, order_id: int) -> int:
    """Orders, on a full refund: the points that paid come back as a new lot (a fresh expiry)."""
    p = _program(program_id)
    points = self.order_points.get((program_id, order_id), 0)
    if points == 0:
        return 0
    del self.order_points[(program_id, order_id)]
    n = self.next_lot.get((program_id, buyer), 0)
    self.next_lot[(program_id, buyer)] = n + 1
    self.lots[(program_id, buyer, n)] = Lot(remaining=points, expires=_now() + p.expiry_seconds, order=order_id)
    p.redeemed -= points
    self.programs[program_id] = p
    emit(PointsRestored, program=program_id, order=order_id, account=buyer, points=points)
    return points


@public
@requires("loyalty")
def redeem_voucher(voucher_id: bytes, code: bytes, buyer: bytes, merchant: bytes, price: int, order_id: int) -> int:
    v = self.vouchers.get(voucher_id)
    require(v != None, "unknown voucher")
    require(_now() >= v.valid_from and _now() <= v.valid_to,
            "voucher is valid from unix time " + str(v.valid_from) + " to " + str(v.valid_to) + ", the block time is " + str(_now()))
    if v.code_hash != b"":
        require(sha256(code) == v.code_hash, "voucher code does not match")
    require(merchant == v.issuer, "voucher is not valid for this merchant")
    require(price >= v.min_spend, "order is below the voucher's minimum spend of " + str(v.min_spend))
    require(v.redemptions < v.max_redemptions, "voucher fully redeemed")
    used = self.buyer_uses.get((voucher_id, buyer), 0)
    require(used < v.per_buyer, "buyer already used this voucher " + str(used) + " times")
    discount = v.value
    if v.kind == "BPS":
        discount = price * v.value // BPS
    discount = min(discount, price - 1)
    v.redemptions += 1
    self.vouchers[voucher_id] = v
    self.buyer_uses[(voucher_id, buyer)] = used + 1
    self.voucher_orders[(voucher_id, order_id)] = True
    emit(VoucherRedeemed, voucher=voucher_id, order=order_id, discount=discount)
    return discount


@public
@requires("loyalty")
def restore_voucher(voucher_id: bytes, buyer: bytes, order_id: int) -> None:
    v = self.vouchers.get(voucher_id)
    if v == None or not self.voucher_orders.get((voucher_id, order_id), False):
        return
    if _now() > v.valid_to:
        return
    self.voucher_orders[(voucher_id, order_id)] = False
    v.redemptions -= 1
    self.vouchers[voucher_id] = v
    self.buyer_uses[(voucher_id, buyer)] = self.buyer_uses[(voucher_id, buyer)] - 1
    emit(VoucherRestored, voucher=voucher_id, order=order_id)


# ---- referrals -----------------------------------------------------------------------

@public
def approve_referrer(referrer: bytes, commission_bps: int, budget: int, pair_cap: int) -> None:
    """PLATFORM approves a referral campaign: rate, total budget, cap per (referrer, buyer)."""
    require(call("identity", "has_role", ctx.sender, "PLATFORM"), "only PLATFORM approves referrers")
    require(call("identity", "is_active", referrer), "referrer is not an active account")
    require(commission_bps >= 0 and commission_bps <= BPS, "commission must be 0..10000 bps")
    require(budget >= 0 and pair_cap >= 0, "budget and pair cap must not be negative")
    paid = 0
    old = self.referrers.get(referrer)
    if old != None:
        paid = old.paid
    self.referrers[referrer] = Referrer(commission_bps=commission_bps, budget=budget, pair_cap=pair_cap,
                                        paid=paid, active=True)
    emit(ReferrerApproved, referrer=referrer, commission_bps=commission_bps, budget=budget)


@public
def suspend_referrer(referrer: bytes) -> None:
    require(call("identity", "has_role", ctx.sender, "PLATFORM"), "only PLATFORM suspends referrers")
    r = self.referrers.get(referrer)
    require(r != None, "unknown referrer")
    r.active = False
    self.referrers[referrer] = r


@view
def referral_rate(referrer: bytes) -> int:
    r = self.referrers.get(referrer)
    require(r != None and r.active, "referrer is not approved")
    return r.commission_bps


@public
@requires("loyalty")
def claim_commission(referrer: bytes, buyer: bytes, net: int, bps: int, held: int) -> int:
    """The commission an order pays at close: its fixed rate on the net price, within budget, pair cap and escrow."""
    r = self.referrers.get(referrer)
    if r == None:
        return 0
    pair = self.pair_paid.get((referrer, buyer), 0)
    commission = net * bps // BPS
    commission = min(commission, r.budget - r.paid)
    commission = min(commission, r.pair_cap - pair)
    commission = max(0, min(commission, held))
    if commission > 0:
        r.paid += commission
        self.referrers[referrer] = r
        self.pair_paid[(referrer, buyer)] = pair + commission
        emit(CommissionPaid, referrer=referrer, amount=commission)
    return commission


@view
def referrer_of(referrer: bytes) -> any:
    return self.referrers.get(referrer)


# ---- views -------------------------------------------------------------------------

@view
def balance_of(program_id: str, account: bytes) -> int:
    total = 0
    for kv in self.lots.items((program_id, account), 256):
        lot = kv[1]
        if _now() <= lot.expires:
            total += lot.remaining
    return total


@view
def held_in_lots(program_id: str, account: bytes) -> int:
    """Every point still in a lot, expired or not (for the supply identity)."""
    total = 0
    for kv in self.lots.items((program_id, account), 256):
        total += kv[1].remaining
    return total


@view
def get_program(program_id: str) -> any:
    return self.programs.get(program_id)


@view
def get_voucher(voucher_id: bytes) -> any:
    return self.vouchers.get(voucher_id)


@view
def voucher_uses(voucher_id: bytes, buyer: bytes) -> int:
    return self.buyer_uses.get((voucher_id, buyer), 0)
