"""After-sales cases: refund only, not received, return and refund, with silence rules.

A case belongs to one order and names one of its lines (one open case per order; the
order contract records it, which also stops auto-completion and closing while it is
open): a refund or a return is for a line, bounded by what that line was paid, and a
return names how many of its units go back, whose value bounds the refund asked; the
return window and the restocking fee come from that line's terms. A not-received case
names ALL_LINES (-1): the parcel never came, so the whole remainder is claimed and
orders splits it over the lines. States:
REQUESTED -> AGREED | COUNTERED | ESCALATED; AGREED (return) -> RETURN_SHIPPED ->
RETURN_RECEIVED -> REFUNDED | ESCALATED; CLOSED when withdrawn or abandoned. Money
only moves through orders.case_refund, which enforces E3 (refunds never exceed what
was paid) and draws on escrow, then bond, then records merchant debt. Silence: a
merchant who does not reply in time is deemed to agree inside the no-reason window
(a return within the window, or a refund before shipment), otherwise the case
escalates to the order's dispute; a merchant who does not refund a received return in
time refunds in full. Deadlines are unix seconds compared with the certified block time
(``ctx.timestamp_ms // 1000``); the periods are settings in seconds.
"""

GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
BPS = 10000
#: The line a whole-order (not received) case names.
ALL_LINES = -1
#: Longest any case period may be configured to (90 days, in seconds).
MAX_CASE_SECONDS = 7776000


class Case(Record):
    id: int
    order: int
    line: int
    quantity: int
    buyer: bytes
    merchant: bytes
    kind: str
    amount: int
    counter: int
    restock_fee: int
    state: str
    no_reason: bool
    deadline: int
    restock_bps: int
    reason_hash: bytes
    ticket: int


sealed: bool
reply_seconds: int
return_ship_seconds: int
return_transit_seconds: int
refund_seconds: int
next_id: int
cases: Map[int, Case]


@public
def configure(reply_seconds: int, return_ship_seconds: int, return_transit_seconds: int, refund_seconds: int) -> None:
    """Genesis sets these once (before seal); afterwards only governance changes them (gov_configure)."""
    require(ctx.sender == GENESIS_SENDER, "only genesis may configure; later changes are governance proposals")
    require(not self.sealed, "genesis is sealed")
    _apply_settings(reply_seconds, return_ship_seconds, return_transit_seconds, refund_seconds)


@public
@requires("governance")
def gov_configure(changes: dict) -> None:
    """Settings changed by a passed governance proposal: named keys, the others keep their values."""
    for k in changes:
        require(k in ["reply_seconds", "return_ship_seconds", "return_transit_seconds", "refund_seconds"],
                "unknown cases setting " + k + "; expected one of reply_seconds, return_ship_seconds, return_transit_seconds, refund_seconds")
    reply_seconds = changes.get("reply_seconds", self.reply_seconds)
    return_ship_seconds = changes.get("return_ship_seconds", self.return_ship_seconds)
    return_transit_seconds = changes.get("return_transit_seconds", self.return_transit_seconds)
    refund_seconds = changes.get("refund_seconds", self.refund_seconds)
    _apply_settings(reply_seconds, return_ship_seconds, return_transit_seconds, refund_seconds)
    emit(SettingsChanged, changes=changes)


def _apply_settings(reply_seconds, return_ship_seconds, return_transit_seconds, refund_seconds) -> None:
    for d in [reply_seconds, return_ship_seconds, return_transit_seconds, refund_seconds]:
        require(d >= 60 and d <= MAX_CASE_SECONDS, "case periods must be 60..7776000 seconds (a minute to 90 days), found " + str(d))
    self.reply_seconds = reply_seconds
    self.return_ship_seconds = return_ship_seconds
    self.return_transit_seconds = return_transit_seconds
    self.refund_seconds = refund_seconds


@public
def seal() -> None:
    require(ctx.sender == GENESIS_SENDER and not self.sealed, "only genesis may seal")
    self.sealed = True


def _load(case_id) -> Case:
    c = self.cases.get(case_id)
    require(c != None, "no case " + str(case_id))
    return c


def _save(c, state) -> None:
    c.state = state
    self.cases[c.id] = c


def _now() -> int:
    """The block's certified time in unix seconds: what every deadline is compared with."""
    return ctx.timestamp_ms // 1000


def _in(n) -> int:
    return _now() + n


def _active_sender() -> None:
    require(call("identity", "is_active", ctx.sender), "sender is not an active registered account")


@public
def open(order_id: int, line: int, kind: str, quantity: int, amount: int, reason_hash: bytes) -> int:
    """``line``: the order line (ALL_LINES for NOT_RECEIVED); ``quantity``: units returned (RETURN_REFUND only)."""
    _active_sender()
    o = call("orders", "get_order", order_id)
    require(o != None, "no order " + str(order_id))
    require(ctx.sender == o["buyer"], "only the order's buyer opens a case")
    require(o["open_case"] == 0, "order " + str(order_id) + " already has an open case")
    require(len(reason_hash) == 32, "reason hash is 32 bytes")
    s = o["state"]
    h = _now()
    no_reason = False
    restock_bps = 0
    if kind == "NOT_RECEIVED":
        require(line == ALL_LINES, "a not-received case is for the whole parcel: line -1, found " + str(line))
        require(quantity == 0, "a not-received case returns no units, found quantity " + str(quantity))
        remaining = o["amount"] - o["refunded"]
        require(s == "SHIPPED" or s == "PARTIALLY_SHIPPED", "order is " + s + ", expected SHIPPED")
        require(h > o["deliver_by"], "not-received cases open after the deliver-by time, unix " + str(o["deliver_by"]))
        require(amount == remaining, "a not-received case claims the whole remaining " + str(remaining))
    else:
        lines = o["lines"]
        require(line >= 0 and line < len(lines), "order " + str(order_id) + " has lines 0.." + str(len(lines) - 1)
                + ", found " + str(line))
        ln = lines[line]
        remaining = ln["amount"] - ln["refunded"]
        if kind == "REFUND_ONLY":
            require(quantity == 0, "a refund-only case returns no units, found quantity " + str(quantity))
            if s == "PLACED" or s == "ACCEPTED":
                require(amount >= 1 and amount <= remaining, "refund on line " + str(line) + " must be 1.." + str(remaining))
                no_reason = True
            else:
                require(s in ["PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED", "COMPLETED"],
                        "order is " + s + "; no refund case is possible")
                require(amount >= 1 and amount < remaining,
                        "after shipment only a partial refund of line " + str(line) + ", 1.." + str(remaining - 1))
        else:
            require(kind == "RETURN_REFUND", "case kinds are REFUND_ONLY, NOT_RECEIVED, RETURN_REFUND; found " + kind)
            restock_bps = _check_return(o, line, quantity, amount)
            no_reason = True
    cid = self.next_id + 1
    self.next_id = cid
    self.cases[cid] = Case(id=cid, order=order_id, line=line, quantity=quantity, buyer=o["buyer"],
                           merchant=o["merchant"], kind=kind, amount=amount, counter=0, restock_fee=0,
                           state="REQUESTED", no_reason=no_reason, deadline=h + self.reply_seconds,
                           restock_bps=restock_bps, reason_hash=reason_hash, ticket=0)
    call("orders", "case_opened", order_id, cid, kind == "NOT_RECEIVED")
    emit(CaseOpened, case=cid, order=order_id, line=line, kind=kind, quantity=quantity, amount=amount)
    return cid


def _check_return(o, line, quantity, amount) -> int:
    """A return of ``quantity`` units of ``line`` asking ``amount``: inside the line's return window, units not
    yet returned, at most what they were paid. Returns the line's largest restocking fee in bps."""
    s = o["state"]
    ln = o["lines"][line]
    require(s == "DELIVERED" or s == "COMPLETED", "order is " + s + "; returns are opened after delivery")
    t = call("orders", "get_terms_set", ln["terms_hash"])
    window_end = o["delivered_at"] + t["return_seconds"]
    if s == "COMPLETED":
        window_end = max(window_end, o["completed_at"])
    require(t["return_seconds"] > 0 and _now() <= window_end,
            "the return window closed at unix time " + str(window_end) + " for line " + str(line))
    left = ln["quantity"] - ln["returned"]
    require(quantity >= 1 and quantity <= left, "line " + str(line) + " has " + str(left)
            + " units that can go back, found quantity " + str(quantity))
    worth = min(ln["amount"] - ln["refunded"], _units_value(ln, quantity))
    require(amount >= 1 and amount <= worth, "return refund for " + str(quantity) + " of line " + str(line)
            + " must be 1.." + str(worth))
    return t["restock_bps"]


def _units_value(ln, quantity) -> int:
    """What ``quantity`` more units of the line were paid: cumulative floors of amount x units / quantity,
    so returning every unit is worth exactly the line's amount, however the units go back."""
    return _share(ln["amount"], ln["returned"] + quantity, ln["quantity"]) - _share(ln["amount"], ln["returned"], ln["quantity"])


def _share(amount, units, of) -> int:
    """amount * units // of, in two parts so that nothing overflows 64 bits (amount <= 10^15, units <= of <= 10^6)."""
    return (amount // of) * units + (amount % of) * units // of


def _finish(c, state) -> None:
    _save(c, state)
    call("orders", "case_closed", c.order, c.id)


def _refund(c, amount) -> None:
    _finish(c, "REFUNDED")
    if amount > 0:
        call("orders", "case_refund", c.order, c.line, c.quantity, amount)
    emit(CaseRefunded, case=c.id, order=c.order, amount=amount, restock_fee=c.restock_fee)


def _agree(c) -> None:
    if c.kind == "RETURN_REFUND":
        c.deadline = _in(self.return_ship_seconds)
        _save(c, "AGREED")
    else:
        _refund(c, c.amount)


def _escalate(c, by) -> None:
    _save(c, "ESCALATED")
    call("orders", "case_dispute", c.order, by, c.reason_hash)
    emit(CaseEscalated, case=c.id, order=c.order)


@public
def reply(case_id: int, agree: bool, counter: int) -> None:
    _active_sender()
    c = _load(case_id)
    require(ctx.sender == c.merchant, "only the order's merchant replies")
    require(c.state == "REQUESTED", "case is " + c.state + ", expected REQUESTED")
    require(_now() <= c.deadline, "the reply deadline passed at unix time " + str(c.deadline))
    emit(CaseReplied, case=case_id, agree=agree, counter=counter)
    if agree:
        _agree(c)
        return
    require(counter >= 1 and counter < c.amount, "a counter-offer is 1.." + str(c.amount - 1))
    c.counter = counter
    c.deadline = _in(self.reply_seconds)
    _save(c, "COUNTERED")


@public
def accept_counter(case_id: int) -> None:
    _active_sender()
    c = _load(case_id)
    require(ctx.sender == c.buyer, "only the buyer accepts a counter-offer")
    require(c.state == "COUNTERED", "case is " + c.state + ", expected COUNTERED")
    c.amount = c.counter
    _agree(c)


@public
def escalate(case_id: int) -> None:
    _active_sender()
    c = _load(case_id)
    require(ctx.sender == c.buyer or ctx.sender == c.merchant, "only the buyer or the merchant escalates")
    require(c.state in ["REQUESTED", "COUNTERED", "RETURN_SHIPPED", "RETURN_RECEIVED"],
            "case is " + c.state + ", which cannot escalate")
    _escalate(c, ctx.sender)


@public
def withdraw(case_id: int) -> None:
    _active_sender()
    c = _load(case_id)
    require(ctx.sender == c.buyer, "only the buyer withdraws a case")
    require(c.state in ["REQUESTED", "COUNTERED", "AGREED"], "case is " + c.state + ", which cannot be withdrawn")
    _finish(c, "CLOSED")
    emit(CaseClosed, case=case_id, reason="withdrawn")


@public
def return_shipped(case_id: int, tracking: bytes) -> None:
    _active_sender()
    c = _load(case_id)
    require(ctx.sender == c.buyer, "only the buyer ships a return")
    require(c.state == "AGREED" and c.kind == "RETURN_REFUND", "case is " + c.state + ", expected an AGREED return")
    require(len(tracking) == 32, "tracking commitment is 32 bytes")
    c.deadline = _in(self.return_transit_seconds)
    _save(c, "RETURN_SHIPPED")
    emit(ReturnShipped, case=case_id, tracking=tracking)


@public
def return_received(case_id: int) -> None:
    _active_sender()
    c = _load(case_id)
    require(ctx.sender == c.merchant, "only the merchant confirms a returned parcel")
    require(c.state == "RETURN_SHIPPED", "case is " + c.state + ", expected RETURN_SHIPPED")
    c.deadline = _in(self.refund_seconds)
    _save(c, "RETURN_RECEIVED")
    emit(ReturnReceived, case=case_id)


@public
def refund_return(case_id: int, restock_fee: int) -> None:
    _active_sender()
    c = _load(case_id)
    require(ctx.sender == c.merchant, "only the merchant refunds a return")
    require(c.state == "RETURN_RECEIVED", "case is " + c.state + ", expected RETURN_RECEIVED")
    limit = c.amount * c.restock_bps // BPS
    require(restock_fee >= 0 and restock_fee <= limit, "restocking fee must be 0.." + str(limit) + " under the terms")
    c.restock_fee = restock_fee
    _refund(c, c.amount - restock_fee)


@public
def poke(case_id: int) -> str:
    """Apply the silence rules once a deadline has passed; anyone registered may call it."""
    c = _load(case_id)
    require(call("identity", "is_active", ctx.sender), "sender is not an active registered account")
    require(_now() > c.deadline, "the case deadline is unix time " + str(c.deadline) + ", the block time is " + str(_now()))
    s = c.state
    if s == "REQUESTED":
        if c.no_reason:
            _agree(c)
        else:
            _escalate(c, c.buyer)
    elif s == "COUNTERED" or s == "AGREED":
        _finish(c, "CLOSED")
        emit(CaseClosed, case=case_id, reason="buyer_silent")
    elif s == "RETURN_SHIPPED":
        _escalate(c, c.buyer)
    elif s == "RETURN_RECEIVED":
        _refund(c, c.amount)
    else:
        revert("case " + str(case_id) + " is " + s + "; no deadline applies")
    return self.cases[case_id].state


@public
@requires("carrier_feed")
def carrier_return(case_id: int, carrier: bytes, step: str, data_hash: bytes) -> None:
    """Provenance forwards a carrier's event about a returned parcel travelling to the merchant."""
    c = _load(case_id)
    require(c.kind == "RETURN_REFUND", "case " + str(case_id) + " is not a return")
    if step == "shipping":
        require(c.state == "AGREED", "case is " + c.state + ", expected an AGREED return")
        c.deadline = _in(self.return_transit_seconds)
        _save(c, "RETURN_SHIPPED")
        emit(ReturnShipped, case=case_id, tracking=data_hash)
    else:
        require(step == "delivering" and c.state == "RETURN_SHIPPED", "case is " + c.state + ", expected RETURN_SHIPPED")
        c.deadline = _in(self.refund_seconds)
        _save(c, "RETURN_RECEIVED")
        emit(ReturnReceived, case=case_id)


@public
@requires("orders_hook")
def order_resolved(case_id: int) -> None:
    """A ruling ends the order, so whatever case was open on it ends too."""
    c = _load(case_id)
    if c.state != "REFUNDED" and c.state != "CLOSED":
        _save(c, "CLOSED")
        emit(CaseClosed, case=case_id, reason="ruling")


@public
@requires("tickets")
def link_ticket(case_id: int, ticket_id: int, owner: bytes) -> None:
    c = _load(case_id)
    require(owner == c.buyer, "the ticket's owner is not the case's buyer")
    require(c.ticket == 0, "case already linked to ticket " + str(c.ticket))
    c.ticket = ticket_id
    self.cases[case_id] = c


@view
def get_case(case_id: int) -> any:
    return self.cases.get(case_id)


@view
def case_count() -> int:
    return self.next_id
