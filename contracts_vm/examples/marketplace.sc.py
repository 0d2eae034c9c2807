"""Marketplace orders with escrow: an example contract of about 300 lines.

Each order moves through a table of states; money sits in the escrow ledger
(contract "ledger", which this contract may lock and release because it is
installed with the "escrow" capability). Deadlines are block heights. A timeout is
applied by whoever calls poke(). State changes before money moves.
"""

LEDGER = "ledger"
BPS = 10000
MAX_FEE_BPS = 2000
MAX_LINES = 20

PLACED = 1
ACCEPTED = 2
REJECTED = 3
CANCELLED = 4
SHIPPED = 5
DELIVERED = 6
COMPLETED = 7
DISPUTED = 8
RESOLVED = 9


class Terms(Record):
    accept_blocks: int
    ship_blocks: int
    deliver_blocks: int
    confirm_blocks: int
    fee_bps: int
    arbiter: bytes


class Order(Record):
    buyer: bytes
    merchant: bytes
    carrier: bytes
    price: int
    state: int
    placed_at: int
    deadline: int
    tracking: bytes
    proof: bytes
    refunded: int
    terms_hash: bytes


admin: bytes
platform: bytes
order_count: int
orders: Map[bytes, Order]
terms: Map[bytes, Terms]
by_buyer: Map[tuple[bytes, int], bytes]
by_merchant: Map[tuple[bytes, int], bytes]
buyer_count: Map[bytes, int]
merchant_count: Map[bytes, int]
merchants: Map[bytes, bool]
fees_collected: int


@public
def init(admin: bytes, platform: bytes) -> None:
    require(self.admin == b"", "already initialised")
    self.admin = admin
    self.platform = platform


@public
def register_merchant(merchant: bytes) -> None:
    require(ctx.sender == self.admin, "only the admin registers merchants")
    self.merchants[merchant] = True
    emit(MerchantRegistered, merchant=merchant)


def _order_id(buyer: bytes, n: int) -> bytes:
    return sha256(b"order/" + buyer + int_to_bytes(n))


def _load(order_id: bytes) -> Order:
    require(order_id in self.orders, "unknown order")
    return self.orders[order_id]


def _hash_terms(t: Terms) -> bytes:
    return sha256(int_to_bytes(t.accept_blocks) + int_to_bytes(t.ship_blocks) + int_to_bytes(t.deliver_blocks)
                  + int_to_bytes(t.confirm_blocks) + int_to_bytes(t.fee_bps) + t.arbiter)


def _check_terms(t: Terms) -> None:
    require(t.accept_blocks > 0 and t.ship_blocks > 0, "deadlines must be positive")
    require(t.deliver_blocks > 0 and t.confirm_blocks > 0, "deadlines must be positive")
    require(t.fee_bps >= 0 and t.fee_bps <= MAX_FEE_BPS, "fee out of range")
    require(len(t.arbiter) == 32, "arbiter must be a 32-byte key")


@public
def place(merchant: bytes, carrier: bytes, prices: list[int], t: Terms) -> bytes:
    require(self.merchants.get(merchant, False), "merchant is not registered")
    require(merchant != ctx.sender, "a merchant cannot buy from itself")
    require(len(prices) > 0 and len(prices) <= MAX_LINES, "an order has 1..20 lines")
    _check_terms(t)
    total = 0
    for p in prices:
        require(p > 0, "line prices must be positive")
        total += p
    n = self.buyer_count.get(ctx.sender, 0)
    order_id = _order_id(ctx.sender, n)
    require(order_id not in self.orders, "order id collision")
    th = _hash_terms(t)
    self.orders[order_id] = Order(buyer=ctx.sender, merchant=merchant, carrier=carrier, price=total,
                                  state=PLACED, placed_at=ctx.height, deadline=ctx.height + t.accept_blocks,
                                  tracking=b"", proof=b"", refunded=0, terms_hash=th)
    self.terms[order_id] = t
    self.by_buyer[(ctx.sender, n)] = order_id
    self.buyer_count[ctx.sender] = n + 1
    m = self.merchant_count.get(merchant, 0)
    self.by_merchant[(merchant, m)] = order_id
    self.merchant_count[merchant] = m + 1
    self.order_count += 1
    call(LEDGER, "lock", order_id, ctx.sender, total)
    emit(OrderPlaced, order=order_id, buyer=ctx.sender, merchant=merchant, amount=total, terms=th)
    return order_id


@public
def accept(order_id: bytes) -> None:
    o = _load(order_id)
    require(ctx.sender == o.merchant, "only the merchant accepts")
    require(o.state == PLACED, "order is not awaiting acceptance")
    require(ctx.height <= o.deadline, "acceptance deadline passed")
    t = self.terms[order_id]
    o.state = ACCEPTED
    o.deadline = ctx.height + t.ship_blocks
    self.orders[order_id] = o
    emit(OrderAccepted, order=order_id, ship_by=o.deadline)


@public
def reject(order_id: bytes) -> None:
    o = _load(order_id)
    require(ctx.sender == o.merchant, "only the merchant rejects")
    require(o.state == PLACED, "order is not awaiting acceptance")
    _refund_all(order_id, o, REJECTED, "rejected")
    emit(OrderRejected, order=order_id)


@public
def cancel(order_id: bytes) -> None:
    o = _load(order_id)
    late = ctx.height > o.deadline
    if o.state == PLACED:
        require(ctx.sender == o.buyer or late, "only the buyer cancels before the deadline")
    elif o.state == ACCEPTED:
        require(late, "an accepted order is cancelled only after the ship-by deadline")
    else:
        revert("order cannot be cancelled in this state")
    _refund_all(order_id, o, CANCELLED, "cancelled")
    emit(OrderCancelled, order=order_id, reason="late" if late else "buyer")


def _refund_all(order_id: bytes, o: Order, new_state: int, cause: str) -> None:
    amount = o.price - o.refunded
    o.state = new_state
    o.refunded = o.price
    self.orders[order_id] = o
    if amount > 0:
        call(LEDGER, "release", order_id, o.buyer, amount, cause)


@public
def ship(order_id: bytes, tracking_commitment: bytes) -> None:
    o = _load(order_id)
    require(ctx.sender == o.merchant or ctx.sender == o.carrier, "only the merchant or carrier ships")
    require(o.state == ACCEPTED, "order is not accepted")
    require(len(tracking_commitment) == 32, "tracking commitment is a 32-byte hash")
    t = self.terms[order_id]
    o.state = SHIPPED
    o.tracking = tracking_commitment
    o.deadline = ctx.height + t.deliver_blocks
    self.orders[order_id] = o
    emit(Shipped, order=order_id, deliver_by=o.deadline)


@public
def deliver(order_id: bytes, proof: bytes) -> None:
    o = _load(order_id)
    require(ctx.sender == o.carrier, "only the named carrier posts delivery")
    require(o.state == SHIPPED, "order is not shipped")
    t = self.terms[order_id]
    o.state = DELIVERED
    o.proof = proof
    o.deadline = ctx.height + t.confirm_blocks
    self.orders[order_id] = o
    emit(Delivered, order=order_id, confirm_by=o.deadline)


@public
def confirm(order_id: bytes) -> None:
    o = _load(order_id)
    require(o.state == DELIVERED, "order is not delivered")
    auto = ctx.height > o.deadline
    require(ctx.sender == o.buyer or auto, "only the buyer confirms before the deadline")
    _complete(order_id, o)
    emit(ReceiptConfirmed, order=order_id, auto=auto)


def _split(amount: int, fee_bps: int) -> list[int]:
    fee = amount * fee_bps // BPS
    return [amount - fee, fee]


def _complete(order_id: bytes, o: Order) -> None:
    t = self.terms[order_id]
    remaining = o.price - o.refunded
    o.state = COMPLETED
    self.orders[order_id] = o
    parts = _split(remaining, t.fee_bps)
    if parts[1] > 0:
        self.fees_collected += parts[1]
        call(LEDGER, "release", order_id, self.platform, parts[1], "fee")
    if parts[0] > 0:
        call(LEDGER, "release", order_id, o.merchant, parts[0], "payout")


@public
def dispute(order_id: bytes, evidence: bytes) -> None:
    o = _load(order_id)
    require(ctx.sender == o.buyer or ctx.sender == o.merchant, "only a party opens a dispute")
    require(o.state == ACCEPTED or o.state == SHIPPED or o.state == DELIVERED, "order cannot be disputed now")
    o.state = DISPUTED
    o.deadline = ctx.height + 1000
    self.orders[order_id] = o
    emit(DisputeOpened, order=order_id, by=ctx.sender, evidence=evidence)


@public
def rule(order_id: bytes, to_buyer: int, to_merchant: int) -> None:
    o = _load(order_id)
    t = self.terms[order_id]
    require(o.state == DISPUTED, "order is not disputed")
    require(ctx.sender == t.arbiter, "only the arbiter rules")
    remaining = o.price - o.refunded
    require(to_buyer >= 0 and to_merchant >= 0, "amounts must not be negative")
    require(to_buyer + to_merchant <= remaining, "ruling exceeds the escrow")
    fee = remaining - to_buyer - to_merchant
    o.state = RESOLVED
    o.refunded += to_buyer
    self.orders[order_id] = o
    if to_buyer > 0:
        call(LEDGER, "release", order_id, o.buyer, to_buyer, "ruling")
    if to_merchant > 0:
        call(LEDGER, "release", order_id, o.merchant, to_merchant, "ruling")
    if fee > 0:
        self.fees_collected += fee
        call(LEDGER, "release", order_id, self.platform, fee, "fee")
    emit(Ruling, order=order_id, buyer=to_buyer, merchant=to_merchant, fee=fee)


@public
def poke(order_id: bytes) -> int:
    o = _load(order_id)
    if ctx.height <= o.deadline:
        return o.state
    if o.state == PLACED or o.state == ACCEPTED:
        _refund_all(order_id, o, CANCELLED, "timeout")
        emit(OrderCancelled, order=order_id, reason="late")
    elif o.state == DELIVERED:
        _complete(order_id, o)
        emit(ReceiptConfirmed, order=order_id, auto=True)
    elif o.state == SHIPPED:
        t = self.terms[order_id]
        if ctx.height > o.deadline + t.confirm_blocks:
            _complete(order_id, o)
            emit(ReceiptConfirmed, order=order_id, auto=True)
    return self.orders[order_id].state


@view
def get_order(order_id: bytes) -> Order:
    return _load(order_id)


@view
def orders_of_buyer(buyer: bytes, limit: int) -> list[bytes]:
    out = []
    for key, order_id in self.by_buyer.items((buyer,), limit):
        out.append(order_id)
    return out


@view
def orders_of_merchant(merchant: bytes, limit: int) -> list[bytes]:
    return _ids(merchant, limit)


def _ids(merchant: bytes, limit: int) -> list:
    out = []
    for pair in self.by_merchant.items((merchant,), limit):
        out.append(pair[1])
    return out


@view
def merchant_stats(merchant: bytes) -> dict[str, int]:
    counts = {}
    total = 0
    for pair in self.by_merchant.items((merchant,), 256):
        o = self.orders[pair[1]]
        name = _state_name(o.state)
        counts[name] = counts.get(name, 0) + 1
        total += o.price
    counts["volume"] = total
    return counts


def _state_name(state: int) -> str:
    names = ["", "placed", "accepted", "rejected", "cancelled", "shipped", "delivered", "completed",
             "disputed", "resolved"]
    return names[state]


@view
def stats() -> dict[str, int]:
    return {"orders": self.order_count, "fees": self.fees_collected}
