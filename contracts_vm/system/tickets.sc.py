"""Support tickets with SLA deadlines, escalation and links to cases and claims.

A ticket is opened by an order's buyer (handled by its merchant) or by a unit's owner
(handled by the unit's brand). OPEN -> ASSIGNED (the handler, or a service centre it
names) <-> WAITING_CUSTOMER -> RESOLVED -> CLOSED (the owner at once, or anyone once
the close period passed without a reopen). Deadlines for the first response and for
resolution are fixed at opening, in unix seconds of certified block time; once one is
missed anyone may escalate to PLATFORM, which emits SlaBreached and lets PLATFORM
resolve. Only ids, states, deadlines and
message hashes are stored: messages travel off chain, encrypted to the parties. A
ticket links to an after-sales case or a warranty claim, both ways.
"""

GENESIS_SENDER = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
#: Longest any ticket period may be (90 days, in seconds).
MAX_SECONDS = 7776000


class Ticket(Record):
    id: int
    owner: bytes
    handler: bytes
    assignee: bytes
    order: int
    unit: bytes
    state: str
    responded: bool
    first_response_by: int
    resolve_by: int
    close_after: int
    escalated: bool
    case: int
    claim: int


sealed: bool
first_response_seconds: int
resolution_seconds: int
close_seconds: int
next_id: int
tickets: Map[int, Ticket]


@public
def configure(first_response_seconds: int, resolution_seconds: int, close_seconds: int) -> None:
    """Genesis sets these once (before seal); afterwards only governance changes them (gov_configure)."""
    require(ctx.sender == GENESIS_SENDER, "only genesis may configure; later changes are governance proposals")
    require(not self.sealed, "genesis is sealed")
    _apply_settings(first_response_seconds, resolution_seconds, close_seconds)


@public
@requires("governance")
def gov_configure(changes: dict) -> None:
    """Settings changed by a passed governance proposal: named keys, the others keep their values."""
    for k in changes:
        require(k in ["first_response_seconds", "resolution_seconds", "close_seconds"],
                "unknown tickets setting " + k + "; expected one of first_response_seconds, resolution_seconds, close_seconds")
    first_response_seconds = changes.get("first_response_seconds", self.first_response_seconds)
    resolution_seconds = changes.get("resolution_seconds", self.resolution_seconds)
    close_seconds = changes.get("close_seconds", self.close_seconds)
    _apply_settings(first_response_seconds, resolution_seconds, close_seconds)
    emit(SettingsChanged, changes=changes)


def _apply_settings(first_response_seconds, resolution_seconds, close_seconds) -> None:
    for d in [first_response_seconds, resolution_seconds, close_seconds]:
        require(d >= 60 and d <= MAX_SECONDS, "ticket periods must be 60..7776000 seconds (a minute to 90 days), found " + str(d))
    self.first_response_seconds = first_response_seconds
    self.resolution_seconds = resolution_seconds
    self.close_seconds = close_seconds


def _now() -> int:
    """The block's certified time in unix seconds: what every SLA deadline is compared with."""
    return ctx.timestamp_ms // 1000


@public
def seal() -> None:
    require(ctx.sender == GENESIS_SENDER and not self.sealed, "only genesis may seal")
    self.sealed = True


def _load(ticket_id) -> Ticket:
    t = self.tickets.get(ticket_id)
    require(t != None, "no ticket " + str(ticket_id))
    return t


def _is_platform(who) -> bool:
    return call("identity", "has_role", who, "PLATFORM")


def _active_sender() -> None:
    require(call("identity", "is_active", ctx.sender), "sender is not an active registered account")


def _may_handle(t, who) -> bool:
    if who == t.handler or (t.assignee != b"" and who == t.assignee):
        return True
    return t.escalated and _is_platform(who)


@public
def open(order_id: int, unit: bytes, message_hash: bytes) -> int:
    """Open about an order (unit empty) or about a unit (order 0)."""
    _active_sender()
    require(len(message_hash) == 32, "message hash is 32 bytes")
    handler = b""
    if order_id != 0:
        require(unit == b"", "a ticket is about an order or a unit, not both")
        o = call("orders", "get_order", order_id)
        require(o != None, "no order " + str(order_id))
        require(ctx.sender == o["buyer"], "only the order's buyer opens a ticket about it")
        handler = o["merchant"]
    else:
        p = call("warranty", "get_passport", unit)
        require(p != None, "no passport for this unit")
        require(p["activated"] and ctx.sender == p["owner"], "only the unit's owner opens a ticket about it")
        handler = p["brand"]
    tid = self.next_id + 1
    self.next_id = tid
    now = _now()
    self.tickets[tid] = Ticket(id=tid, owner=ctx.sender, handler=handler, assignee=b"", order=order_id, unit=unit,
                               state="OPEN", responded=False,
                               first_response_by=now + self.first_response_seconds,
                               resolve_by=now + self.resolution_seconds, close_after=0, escalated=False,
                               case=0, claim=0)
    emit(TicketOpened, ticket=tid, order=order_id, unit=unit, message_hash=message_hash)
    return tid


@public
def assign(ticket_id: int, assignee: bytes) -> None:
    _active_sender()
    t = _load(ticket_id)
    require(_may_handle(t, ctx.sender), "only the ticket's handler assigns it")
    require(t.state == "OPEN" or t.state == "ASSIGNED", "ticket is " + t.state + ", expected OPEN or ASSIGNED")
    require(assignee == t.handler or call("identity", "has_role", assignee, "SERVICE_CENTER")
            or _is_platform(assignee), "assignee must be the handler, a SERVICE_CENTER or PLATFORM")
    t.assignee = assignee
    t.responded = True
    t.state = "ASSIGNED"
    self.tickets[ticket_id] = t
    emit(TicketAssigned, ticket=ticket_id, assignee=assignee)


@public
def post_message(ticket_id: int, message_hash: bytes) -> None:
    _active_sender()
    t = _load(ticket_id)
    require(len(message_hash) == 32, "message hash is 32 bytes")
    require(t.state != "CLOSED", "ticket is closed")
    if ctx.sender == t.owner:
        if t.state == "WAITING_CUSTOMER":
            t.state = "ASSIGNED"
    else:
        require(_may_handle(t, ctx.sender), "only the ticket's parties post messages")
        t.responded = True
    self.tickets[ticket_id] = t
    emit(TicketMessage, ticket=ticket_id, message_hash=message_hash)


@public
def wait_customer(ticket_id: int) -> None:
    _active_sender()
    t = _load(ticket_id)
    require(_may_handle(t, ctx.sender), "only the handler waits on the customer")
    require(t.state == "ASSIGNED", "ticket is " + t.state + ", expected ASSIGNED")
    t.state = "WAITING_CUSTOMER"
    t.responded = True
    self.tickets[ticket_id] = t
    emit(TicketWaiting, ticket=ticket_id)


@public
def resolve(ticket_id: int, resolution_hash: bytes) -> None:
    _active_sender()
    t = _load(ticket_id)
    require(_may_handle(t, ctx.sender), "only the handler (or PLATFORM after escalation) resolves")
    require(t.state in ["OPEN", "ASSIGNED", "WAITING_CUSTOMER"], "ticket is " + t.state + ", which cannot be resolved")
    t.state = "RESOLVED"
    t.responded = True
    t.close_after = _now() + self.close_seconds
    self.tickets[ticket_id] = t
    emit(TicketResolved, ticket=ticket_id, resolution_hash=resolution_hash)


@public
def reopen(ticket_id: int) -> None:
    _active_sender()
    t = _load(ticket_id)
    require(ctx.sender == t.owner, "only the owner reopens")
    require(t.state == "RESOLVED" and _now() <= t.close_after, "only a RESOLVED ticket within its close period reopens")
    t.state = "ASSIGNED"
    t.resolve_by = max(t.resolve_by, _now() + self.resolution_seconds)
    self.tickets[ticket_id] = t
    emit(TicketReopened, ticket=ticket_id)


@public
def close(ticket_id: int) -> None:
    t = _load(ticket_id)
    require(t.state == "RESOLVED", "ticket is " + t.state + ", expected RESOLVED")
    if ctx.sender != t.owner:
        require(call("identity", "is_active", ctx.sender), "sender is not an active account")
        require(_now() > t.close_after, "anyone may close only after unix time " + str(t.close_after))
    t.state = "CLOSED"
    self.tickets[ticket_id] = t
    emit(TicketClosed, ticket=ticket_id)


@public
def escalate(ticket_id: int) -> None:
    """Anyone: once the first-response or resolution deadline is missed, hand the ticket to PLATFORM."""
    t = _load(ticket_id)
    require(call("identity", "is_active", ctx.sender), "sender is not an active account")
    require(not t.escalated, "ticket already escalated")
    require(t.state != "RESOLVED" and t.state != "CLOSED", "ticket is " + t.state)
    breach = ""
    if not t.responded and _now() > t.first_response_by:
        breach = "first_response"
    elif _now() > t.resolve_by:
        breach = "resolution"
    require(breach != "", "no SLA deadline has been missed")
    t.escalated = True
    self.tickets[ticket_id] = t
    emit(SlaBreached, ticket=ticket_id, deadline=breach)


@public
def link_case(ticket_id: int, case_id: int) -> None:
    _active_sender()
    t = _load(ticket_id)
    require(ctx.sender == t.owner, "only the owner links a case")
    require(t.case == 0, "ticket already linked to case " + str(t.case))
    c = call("cases", "get_case", case_id)
    require(c != None and c["order"] == t.order, "the case is not about this ticket's order")
    t.case = case_id
    self.tickets[ticket_id] = t
    call("cases", "link_ticket", case_id, ticket_id, t.owner)
    emit(TicketLinked, ticket=ticket_id, case=case_id, claim=0)


@public
def link_claim(ticket_id: int, claim_id: int) -> None:
    _active_sender()
    t = _load(ticket_id)
    require(ctx.sender == t.owner, "only the owner links a claim")
    require(t.claim == 0, "ticket already linked to claim " + str(t.claim))
    c = call("warranty", "get_claim", claim_id)
    require(c != None and c["unit"] == t.unit, "the claim is not about this ticket's unit")
    t.claim = claim_id
    self.tickets[ticket_id] = t
    call("warranty", "link_ticket", claim_id, ticket_id, t.owner)
    emit(TicketLinked, ticket=ticket_id, case=0, claim=claim_id)


@view
def get_ticket(ticket_id: int) -> any:
    return self.tickets.get(ticket_id)
