"""Provenance: append-only EPCIS-style events with custody continuity.

An event records its type (OBJECT, AGGREGATION, TRANSFORMATION, TRANSACTION,
ASSOCIATION), action (ADD, OBSERVE, DELETE), what (unit hashes or a lot hash), the
business step and disposition, a business location id (never a home address), the
related order, the event time and height, a hash of the full off-chain document and
optionally the id of the event it corrects (corrections are new events). Merchants
(manufacturers) and carriers post. Custody: a "shipping" event names the next
custodian; a "receiving" event is accepted only from that custodian. When the named
carrier of an order posts "shipping" or "delivering" for it, this contract drives the
order (capability "carrier_feed" on orders.carrier_event); a carrier's events towards
the merchant of an order with an open return case drive the return instead
(cases.carrier_return).
"""

#: Most item hashes in one event.
MAX_WHAT = 64


class Event(Record):
    id: int
    kind: str
    action: str
    what: list[bytes]
    biz_step: str
    disposition: str
    location: bytes
    order: int
    event_time_ms: int
    height: int
    data_hash: bytes
    corrects: int
    poster: bytes
    destination: bytes


next_id: int
events: Map[int, Event]
custodian: Map[bytes, bytes]
in_transit: Map[bytes, bytes]
by_item: Map[tuple[bytes, int], bool]


@public
def post(kind: str, action: str, what: list[bytes], biz_step: str, disposition: str, location: bytes, order_id: int,
         event_time_ms: int, data_hash: bytes, corrects: int, destination: bytes) -> int:
    who = ctx.sender
    is_carrier = call("identity", "has_role", who, "CARRIER")
    require(is_carrier or call("identity", "has_role", who, "MERCHANT"), "only merchants and carriers post provenance")
    require(kind in ["OBJECT", "AGGREGATION", "TRANSFORMATION", "TRANSACTION", "ASSOCIATION"], "unknown event type " + kind)
    require(action in ["ADD", "OBSERVE", "DELETE"], "action is ADD, OBSERVE or DELETE")
    require(len(what) >= 1 and len(what) <= MAX_WHAT, "an event names 1..64 items")
    require(len(location) == 32 and len(data_hash) == 32, "location id and data hash are 32 bytes")
    require(corrects >= 0 and corrects <= self.next_id, "corrects names an earlier event or 0")
    eid = self.next_id + 1
    self.next_id = eid
    for item in what:
        require(len(item) == 32, "items are 32-byte hashes")
        holder = self.custodian.get(item, b"")
        if biz_step == "shipping":
            require(holder == b"" or holder == who, "only the current custodian ships an item")
            require(len(destination) == 32, "a shipping event names the next custodian")
            self.custodian[item] = who
            self.in_transit[item] = destination
        elif biz_step == "receiving":
            require(self.in_transit.get(item, b"") == who, "receiving must follow a shipping event to this custodian")
            self.custodian[item] = who
            del self.in_transit[item]
        elif biz_step == "delivering":
            require(holder == who, "only the current custodian delivers an item")
            require(len(destination) == 32, "a delivery names the receiving party")
            self.custodian[item] = destination
        self.by_item[(item, eid)] = True
    self.events[eid] = Event(id=eid, kind=kind, action=action, what=what, biz_step=biz_step, disposition=disposition,
                             location=location, order=order_id, event_time_ms=event_time_ms, height=ctx.height,
                             data_hash=data_hash, corrects=corrects, poster=who, destination=destination)
    emit(ProvenanceEvent, event=eid, biz_step=biz_step, order=order_id, data_hash=data_hash, corrects=corrects)
    if order_id != 0 and is_carrier and (biz_step == "shipping" or biz_step == "delivering"):
        _drive(order_id, who, biz_step, data_hash, destination)
    return eid


def _drive(order_id, carrier, step, data_hash, destination) -> None:
    """A carrier's event moves the order forward, or a return back to the merchant."""
    o = call("orders", "get_order", order_id)
    require(o != None, "no order " + str(order_id))
    if destination == o["merchant"] and o["open_case"] != 0:
        call("cases", "carrier_return", o["open_case"], carrier, step, data_hash)
    elif step == "shipping" and o["state"] == "ACCEPTED":
        call("orders", "carrier_event", order_id, carrier, "shipping", data_hash)
    elif step == "delivering" and o["state"] == "SHIPPED":
        call("orders", "carrier_event", order_id, carrier, "delivering", data_hash)


@view
def get_event(event_id: int) -> any:
    return self.events.get(event_id)


@view
def custodian_of(item: bytes) -> bytes:
    return self.custodian.get(item, b"")


@view
def events_of(item: bytes, limit: int) -> list[int]:
    out = []
    for k in self.by_item.keys((item,), limit):
        out.append(k[1])
    return out
