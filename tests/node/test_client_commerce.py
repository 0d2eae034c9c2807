"""The typed commerce helpers (node.client_commerce): inputs refused before anything is signed,
calls built in the contracts' argument order, answers decoded into typed records, and whole
flows driven through ``Commerce`` / ``AsyncCommerce`` against the real system contracts
in-process (tests/commerce_harness.Chain behind a client double speaking the client's JSON
shapes, so no sockets; tests/integration/test_client_commerce.py drives a real devnet)."""

from __future__ import annotations

import asyncio

import pytest

from ledger.crypto import SigningKey, sha256
from ledger.errors import ValidationError
from node import client_commerce as shop
from node.client import Commerce as ExportedCommerce
from node.client_commerce import (AsyncCommerce, CaseKind, CaseState, ClaimState, Commerce, OrderItem, OrderState,
                                  Remedy, ServiceKind, Terms, TicketState)
from node.client_ops import TxFailed
from node.rpc.views import value_to_json
from tests.commerce_harness import DAY, Chain, Err, h

K = {name: SigningKey.from_label(name) for name in
     ("buyer1", "buyer2", "merchant1", "carrier1", "arbiter", "service1", "auditor", "platform")}


def pk(name: str) -> bytes:
    return K[name].public_key


def terms(**changes) -> Terms:
    base = dict(accept_seconds=2 * DAY, handling_seconds=3 * DAY, transit_seconds=5 * DAY,
                auto_confirm_seconds=7 * DAY, return_seconds=14 * DAY, restock_bps=1000,
                warranty_seconds=365 * DAY, arbiter=pk("arbiter"))
    return Terms(**{**base, **changes})


class HarnessClient:
    """The sync client's ``transact`` / ``call`` / ``status`` over an in-process chain, with the
    JSON shapes the node answers (bytes as 0x-hex); each transaction is one block a second on."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.chain_id = "commerce-test"
        self.sent: list[tuple] = []

    def transact(self, key, contract, method, *args, gas=0, timeout=0.0, idempotency_key=None) -> dict:
        self.sent.append((contract, method, args))
        out = self.chain.call(key.public_key, contract, method, *args)
        self.chain.advance(1, seconds=1)
        tx_id = "0x" + sha256(repr((contract, method, args, len(self.sent))).encode()).hex()
        if isinstance(out, Err):
            raise TxFailed({"tx_id": tx_id, "status": "failed", "error": f"{out.name}: {out.message}"})
        return {"tx_id": tx_id, "status": "ok", "return_value": value_to_json(out), "events": []}

    def call(self, contract, method, *args, height="latest"):
        return value_to_json(self.chain.view(contract, method, *args))

    def status(self) -> dict:
        return {"chain_id": self.chain_id, "height": self.chain.height}


class AsyncHarnessClient:
    def __init__(self, chain: Chain) -> None:
        self.sync = HarnessClient(chain)

    @property
    def chain_id(self):
        return self.sync.chain_id

    async def transact(self, *args, **kwargs) -> dict:
        await asyncio.sleep(0)
        return self.sync.transact(*args, **kwargs)

    async def call(self, *args, **kwargs):
        await asyncio.sleep(0)
        return self.sync.call(*args, **kwargs)

    async def status(self) -> dict:
        return self.sync.status()


# ---- inputs are checked before signing -------------------------------------------------

@pytest.mark.parametrize("make, expected", [
    (lambda: OrderItem(b"\x01" * 31, 1, 100, h("t")), "order item product must be 32 bytes .* found 31 bytes"),
    (lambda: OrderItem(h("p"), -1, 100, h("t")), r"order item quantity must be 1..1000000, found -1"),
    (lambda: OrderItem(h("p"), True, 100, h("t")), "order item quantity must be an integer, found bool"),
    (lambda: OrderItem(h("p"), 2, 10 ** 15, h("t")), r"unit_price must be 1..500000000000000, found 10+"),
    (lambda: OrderItem(h("p"), 1, 100, "deadbeef"), "terms_hash must be bytes .*found str"),
    (lambda: terms(accept_seconds=60), r"terms accept_seconds must be 3600..31622400, found 60"),
    (lambda: terms(restock_bps=10_001), r"restock_bps must be 0..10000, found 10001"),
    (lambda: terms(arbiter=b""), "terms arbiter must be 32 bytes"),
    (lambda: shop.place_order(pk("merchant1"), [], h("a"), h("b"), h("c")), r"an order has 1..32 items, found 0"),
    (lambda: shop.place_order(pk("merchant1"), [OrderItem(h("p"), 1, 5, h("t"))] * 33, h("a"), h("b"), h("c")),
     "found 33"),
    (lambda: shop.place_order(pk("merchant1"), [OrderItem(h("p"), 1_000_000, 10 ** 9, h("t"))] * 2, h("a"), h("b"),
                              h("c")), r"total must be at most 1000000000000000 minor units, found 2000000000000000"),
    (lambda: shop.place_order(pk("merchant1"), [[h("p"), 1, 5, h("t")]], h("a"), h("b"), h("c")),
     "items\\[0\\] must be an OrderItem, found list"),
    (lambda: shop.place_order(pk("merchant1"), [OrderItem(h("p"), 1, 5, h("t"))], h("a"), h("b"), h("c"), points=5),
     "name the loyalty program together with the points"),
    (lambda: shop.open_case(1, 0, "REFUND", 0, 10, h("r")),
     "case kind must be one of REFUND_ONLY, NOT_RECEIVED, RETURN_REFUND, found 'REFUND'"),
    (lambda: shop.open_case(1, 0, CaseKind.NOT_RECEIVED, 0, 10, h("r")), "whole parcel: line -1 and quantity 0"),
    (lambda: shop.request_return(1, 0, 0, 10, h("r")), "at least 1\\), found quantity 0"),
    (lambda: shop.request_refund(1, -1, 10, h("r")), "names one order line"),
    (lambda: shop.reply_case(1, False), "a counter-offer is at least 1 minor unit, found 0"),
    (lambda: shop.accept_order(0, pk("carrier1"), h("l")), r"order_id must be 1..\d+, found 0"),
    (lambda: shop.transfer(pk("buyer1"), 0), r"amount must be 1..\d+, found 0"),
    (lambda: shop.record_service(h("u"), "WASH", h("d")), "service kind must be one of INSPECT"),
    (lambda: shop.record_service(h("u"), ServiceKind.REPAIR, h("d"), amends=1), "only an AMEND record names"),
    (lambda: shop.fulfil_claim(1, "MONEY_BACK", h("r")), "remedy must be one of REPAIR, REPLACE, REFUND"),
    (lambda: shop.offer_transfer(h("u"), b"short", 10), "at least 16 bytes"),
    (lambda: shop.open_ticket(h("m"), order=3, unit=h("u")), "exactly one"),
    (lambda: shop.open_ticket(h("m")), "exactly one"),
    (lambda: shop.post_event("OBJECT", "ADD", [h("i")], "shipping", "in_transit", h("loc"), h("d"), 1),
     "names the next custodian"),
    (lambda: shop.publish_review("c", K["buyer1"], {1: pk("buyer1")}, 0, [5] * 5, h("c")), "found 1"),
    (lambda: shop.publish_review("c", K["buyer1"], {1: pk("buyer1"), 2: pk("buyer2")}, 0, [5, 5, 5, 5, 6], h("c")),
     r"scores\[4\] must be 1..5, found 6"),
    (lambda: shop.publish_review("c", K["auditor"], {1: pk("buyer1"), 2: pk("buyer2")}, 0, [5] * 5, h("c")),
     "not one of the ring's keys"),
])
def test_bad_inputs_are_refused_before_signing_saying_what_was_expected_and_found(make, expected):
    with pytest.raises(ValidationError, match=expected):
        make()


def test_calls_are_built_in_the_contracts_argument_order():
    item = OrderItem(h("sku"), 2, 1_250, h("terms"))
    call = shop.place_order(pk("merchant1"), [item], h("pii"), h("payload"), h("rk"))
    assert (call.contract, call.method, call.view) == ("orders", "place", False)
    assert call.args == (pk("merchant1"), [[h("sku"), 2, 1_250, h("terms")]], h("pii"), h("payload"), h("rk"),
                         b"", b"", b"")
    priced = shop.place_order(pk("merchant1"), [item], h("pii"), h("payload"), h("rk"), currency="EUR")
    assert priced.method == "place_in" and priced.args[-3:] == ("EUR", "", 0)
    assert shop.request_return(7, 1, 2, 500, h("why")).args == (7, 1, "RETURN_REFUND", 2, 500, h("why"))
    assert shop.report_not_received(7, 900, h("why")).args == (7, -1, "NOT_RECEIVED", 0, 900, h("why"))
    assert shop.ship_order(7, "0x" + h("t").hex()).args == (7, h("t"), False)
    assert shop.set_terms(terms()).args == (2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 14 * DAY, 1000, 365 * DAY,
                                            pk("arbiter"))
    assert shop.get_order(3).view and shop.get_order(3).args == (3,)
    assert shop.open_ticket(h("m"), order=4).args == (4, b"", h("m"))
    assert shop.open_ticket(h("m"), unit=h("u")).args == (0, h("u"), h("m"))
    assert shop.offer_transfer(h("u"), b"c" * 16, 99).args == (h("u"), sha256(b"c" * 16), 99)


def test_answers_are_decoded_into_typed_records_and_an_unknown_state_fails_loudly():
    chain = Chain()
    client = HarnessClient(chain)
    commerce = Commerce(client)
    commerce.send(K["merchant1"], shop.set_terms(terms()))
    tid = commerce.read(shop.terms_hash_of(pk("merchant1")))
    placed = commerce.send(K["buyer1"], shop.place_order(pk("merchant1"), [OrderItem(h("sku"), 1, 900, tid)],
                                                          h("pii"), h("pay"), h("rk")))
    record = client.call("orders", "get_order", placed.value)
    record["state"] = "TELEPORTED"
    with pytest.raises(ValidationError, match="unknown OrderState 'TELEPORTED' \\(expected one of PLACED, "):
        shop.get_order(1).decode(record)
    del record["buyer"]
    with pytest.raises(ValidationError, match="record has no field 'buyer'"):
        shop.get_order(1).decode(record)
    assert commerce.read(shop.get_order(99)) is None


def test_a_view_cannot_be_sent_and_a_transaction_cannot_be_read():
    commerce = Commerce(HarnessClient(Chain()))
    with pytest.raises(TypeError, match="is a view"):
        commerce.send(K["buyer1"], shop.get_order(1))
    with pytest.raises(TypeError, match="changes state"):
        commerce.read(shop.confirm_order(1))
    assert ExportedCommerce is Commerce  # node.client exports the facades beside the clients


# ---- whole flows through the facade, against the real contracts --------------------------

def test_an_order_lifecycle_and_a_return_through_the_sync_facade():
    chain = Chain()
    client = HarnessClient(chain)
    c = Commerce(client)
    quoted = terms()
    published = c.send(K["merchant1"], shop.set_terms(quoted))
    assert published.value == quoted.terms_hash() == c.read(shop.terms_hash_of(pk("merchant1")))
    assert c.read(shop.get_terms(pk("merchant1"))) == quoted
    c.send(K["merchant1"], shop.deposit_bond(10_000))  # refunds past the holdback draw on it
    assert c.read(shop.bond_of(pk("merchant1"))) == 10_000
    buyer_before = c.read(shop.balance_of(pk("buyer1")))
    items = [OrderItem(h("boots"), 2, 4_000, quoted.terms_hash()), OrderItem(h("socks"), 3, 500, quoted.terms_hash())]
    oid = c.send(K["buyer1"], shop.place_order(pk("merchant1"), items, h("pii"), h("pay"), h("rk"))).value
    assert isinstance(oid, int) and oid in c.read(shop.orders_of_buyer(pk("buyer1")))
    order = c.read(shop.get_order(oid))
    assert order.state is OrderState.PLACED and order.amount == 9_500 and order.buyer == pk("buyer1")
    assert [(ln.product, ln.quantity, ln.amount) for ln in order.lines] == [(h("boots"), 2, 8_000), (h("socks"), 3, 1_500)]
    assert c.read(shop.escrow_of_order(oid)) == 9_500
    assert c.read(shop.balance_of(pk("buyer1"))) == buyer_before - 9_500

    c.send(K["merchant1"], shop.accept_order(oid, pk("carrier1"), h("label")))
    assert c.read(shop.get_order(oid)).state is OrderState.ACCEPTED
    c.send(K["carrier1"], shop.ship_order(oid, h("tracking")))
    assert c.read(shop.get_order(oid)).state is OrderState.SHIPPED
    c.send(K["carrier1"], shop.deliver_order(oid, h("pod")))
    assert c.read(shop.get_order(oid)).state is OrderState.DELIVERED
    with pytest.raises(TxFailed, match="only the buyer confirms receipt"):
        c.send(K["merchant1"], shop.confirm_order(oid))
    c.send(K["buyer1"], shop.confirm_order(oid))
    order = c.read(shop.get_order(oid))
    assert order.state is OrderState.COMPLETED and order.completed_at > 0

    # A return of one pair of boots: agreed, shipped back, received, refunded less a restocking fee.
    case_id = c.send(K["buyer1"], shop.request_return(oid, 0, 1, 4_000, h("too small"))).value
    case = c.read(shop.get_case(case_id))
    assert (case.kind, case.state, case.quantity, case.restock_bps) == (CaseKind.RETURN_REFUND, CaseState.REQUESTED, 1, 1000)
    c.send(K["merchant1"], shop.reply_case(case_id, True))
    assert c.read(shop.get_case(case_id)).state is CaseState.AGREED
    c.send(K["buyer1"], shop.return_shipped(case_id, h("return-tracking")))
    c.send(K["merchant1"], shop.return_received(case_id))
    before = c.read(shop.balance_of(pk("buyer1")))
    c.send(K["merchant1"], shop.refund_return(case_id, 400))
    assert c.read(shop.get_case(case_id)).state is CaseState.REFUNDED
    assert c.read(shop.balance_of(pk("buyer1"))) == before + 3_600
    order = c.read(shop.get_order(oid))
    assert order.refunded == 3_600 and order.lines[0].returned == 1 and order.open_case == 0
    assert c.read(shop.merchant_debt(pk("merchant1"))) == 0

    # The boots that stayed carry a warranty: activate, claim, decide, fulfil, close; and a service log.
    unit = shop.unit_id("merchant1:BOOT-0001")
    c.send(K["merchant1"], shop.register_unit(unit, h("boots")))
    c.send(K["buyer1"], shop.activate_warranty(unit, oid, 0))
    passport = c.read(shop.get_passport(unit))
    assert passport.owner == pk("buyer1") and passport.activated and c.read(shop.under_warranty(unit))
    claim_id = c.send(K["buyer1"], shop.open_claim(unit, h("sole came off"))).value
    c.send(K["merchant1"], shop.decide_claim(claim_id, True))
    c.send(K["merchant1"], shop.fulfil_claim(claim_id, Remedy.REPAIR, h("resoled")))
    c.send(K["buyer1"], shop.close_claim(claim_id))
    assert c.read(shop.get_claim(claim_id)).state is ClaimState.CLOSED
    seq = c.send(K["merchant1"], shop.record_service(unit, ServiceKind.REPAIR, h("resoled"), under_warranty=True)).value
    fix = c.send(K["merchant1"], shop.record_service(unit, "AMEND", h("resoled, left"), amends=seq)).value
    log = c.read(shop.service_log(unit))
    assert [(r.seq, r.kind, r.amends) for r in log] == [(seq, ServiceKind.REPAIR, 0), (fix, ServiceKind.AMEND, seq)]

    # A support ticket about the order, and a provenance event for the unit.
    tid = c.send(K["buyer1"], shop.open_ticket(h("where is my refund?"), order=oid)).value
    c.send(K["merchant1"], shop.assign_ticket(tid, pk("merchant1")))
    c.send(K["merchant1"], shop.resolve_ticket(tid, h("refunded")))
    c.send(K["buyer1"], shop.close_ticket(tid))
    ticket = c.read(shop.get_ticket(tid))
    assert ticket.state is TicketState.CLOSED and ticket.handler == pk("merchant1")
    eid = c.send(K["merchant1"], shop.post_event("OBJECT", "OBSERVE", [unit], "inspecting", "active", h("site"),
                                                 h("doc"), chain.time_ms)).value
    event = c.read(shop.get_event(eid))
    assert event.what == [unit] and event.poster == pk("merchant1") and c.read(shop.events_of(unit)) == [eid]


def test_loyalty_and_a_ring_signed_review_through_the_async_facade():
    chain = Chain()
    client = AsyncHarnessClient(chain)

    async def flow():
        c = AsyncCommerce(client)
        await c.send(K["merchant1"], shop.set_terms(terms()))
        th = await c.read(shop.terms_hash_of(pk("merchant1")))
        review_keys, orders = {}, []
        for buyer in ("buyer1", "buyer2"):
            rk = SigningKey.from_label("review-key-" + buyer)
            review_keys[buyer] = rk
            oid = (await c.send(K[buyer], shop.place_order(pk("merchant1"), [OrderItem(h("lamp"), 1, 2_000, th)],
                                                            h("pii"), h("pay"), sha256(rk.public_key)))).value
            await c.send(K["merchant1"], shop.accept_order(oid, pk("carrier1"), h("label")))
            await c.send(K["carrier1"], shop.ship_order(oid, h("t")))
            await c.send(K["carrier1"], shop.deliver_order(oid, h("pod")))
            await c.send(K[buyer], shop.confirm_order(oid))
            await c.send(K["auditor"], shop.announce_review_key(oid, rk.public_key))
            orders.append(oid)
        ring_keys = {oid: review_keys[b].public_key for oid, b in zip(orders, ("buyer1", "buyer2"))}
        assert await c.read(shop.review_key_of(orders[0])) == ring_keys[orders[0]]
        call = shop.publish_review(await c.chain_id(), review_keys["buyer2"], ring_keys, 0, [4, 5, 4, 3, 5],
                                   h("great lamp"))
        with pytest.raises(TxFailed, match="relayer"):
            await c.send(K["buyer2"], call)      # from a ring buyer's own account it would name the reviewer
        rid = (await c.send(K["auditor"], call)).value
        review = await c.read(shop.get_review(rid))
        assert review.ring == sorted(orders) and review.scores == [4, 5, 4, 3, 5] and review.version == 1
        rating = await c.read(shop.merchant_rating(pk("merchant1")))
        assert rating.count == 1 and rating.means()[0] == 4.0
        amended = shop.amend_review(await c.chain_id(), review_keys["buyer2"], review, ring_keys, [5] * 5, h("v2"))
        new_id = (await c.send(K["auditor"], amended)).value
        assert (await c.read(shop.get_review(new_id))).prior == rid
        # Points are awarded once an order closes (after its return window).
        await c.send(K["merchant1"], shop.create_program("m1-points", 500, 365 * DAY))
        chain.advance(chain.days(30))
        poked = await c.send(K["auditor"], shop.poke_order(orders[0]))
        assert poked.value is OrderState.CLOSED and poked.tx_id.startswith("0x")
        assert (await c.read(shop.get_order(orders[0]))).state is OrderState.CLOSED
        awarded = (await c.send(K["merchant1"], shop.award_points("m1-points", orders[0]))).value
        assert awarded == 100 and await c.read(shop.points_balance("m1-points", pk("buyer1"))) == 100
        program = await c.read(shop.get_program("m1-points"))
        assert program.issuer == pk("merchant1") and program.minted == 100

    asyncio.run(flow())


# ---- every helper fits the installed contracts' ABI, and every user method has one ----------

CONTRACTS = ("ledger", "orders", "cases", "warranty", "reviews", "loyalty", "tickets", "provenance")
#: Methods only genesis calls (before seal); governance and capability-gated ones are left out by ``requires``.
GENESIS_ONLY = {"configure", "seal", "genesis_credit"}


def _abi(contract: str) -> dict[str, dict]:
    from contracts_vm.bytecode import decode_container
    from contracts_vm.system import compiled_code
    return {m["name"]: m for m in decode_container(compiled_code(contract + ".sc.py")).abi["methods"]}


def _sample_args(fn) -> dict:
    """Valid arguments for a helper, chosen by parameter name (overridden per helper below)."""
    import inspect
    from ledger import ring
    prior = shop.Review(id=1, key_image=ring.key_image(ring.secret_scalar(K["buyer1"].seed)), line=0,
                        merchant=pk("merchant1"), product=h("p"), ring=[1, 2], scores=[5] * 5, content_hash=h("c"),
                        disputed=False, incentivised=False, version=1, prior=0, superseded=False, hidden=False,
                        reply_hash=b"", height=3)
    by_name = {"items": [OrderItem(h("p"), 1, 100, h("t"))], "terms": terms(), "name": "gold", "program": "p1",
               "currency": "EUR", "code": b"c" * 16, "review_key": K["buyer1"], "prior": prior,
               "ring_keys": {1: pk("buyer1"), 2: pk("buyer2")}, "scores": [5] * 5, "chain_id": "commerce-test",
               "remedy": "REPAIR", "unit_flag": "LOST", "what": [h("i")], "biz_step": "inspecting",
               "disposition": "active", "action": "ADD", "line": 0, "agree": True, "counter": 0, "contract": "orders",
               "key": "o1", "brand_serial": "m:1", "expiry_seconds": 3600, "destination": None, "unit": h("u"), "restock_fee": 0}
    overrides = {"open_case": {"kind": "REFUND_ONLY", "quantity": 0}, "record_service": {"kind": "REPAIR", "amends": 0},
                 "post_event": {"kind": "OBJECT"}, "create_voucher": {"kind": "FIXED", "valid_to": 5},
                 "open_ticket": {"order": 1, "unit": None}, "rule_dispute": {"fee": 0},
                 "announce_review_key": {"review_key": pk("buyer1")}}
    args = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name in overrides.get(fn.__name__, {}):
            args[p.name] = overrides[fn.__name__][p.name]
        elif p.name in by_name:
            args[p.name] = by_name[p.name]
        elif p.default is not inspect.Parameter.empty:
            continue
        else:
            annotation = str(p.annotation)
            args[p.name] = (h(p.name) if annotation.startswith("bytes") else True if annotation == "bool"
                            else p.name if annotation == "str" else 1)
    return args


def _helpers() -> list:
    import inspect
    from node import commerce_aftersales, commerce_ledger, commerce_orders, commerce_rewards
    found = []
    for module in (commerce_ledger, commerce_orders, commerce_rewards, commerce_aftersales):
        for name in module.__all__:
            fn = getattr(module, name)
            if inspect.isfunction(fn) and "ContractCall" in str(inspect.signature(fn).return_annotation):
                found.append(fn)
    return found


def _fits(value, abi_type: str) -> bool:
    if abi_type == "any" or abi_type.startswith("dict"):
        return True
    if abi_type.startswith("list"):
        return isinstance(value, list)
    return {"bytes": bytes, "str": str, "bool": bool}.get(abi_type, int) is type(value)


def test_every_helper_builds_a_call_the_installed_contract_accepts_by_its_abi():
    abis = {c: _abi(c) for c in CONTRACTS}
    built = set()
    # place_order builds orders.place_in for a currency or points (the samples' "EUR"), else orders.place.
    samples = [(fn, _sample_args(fn)) for fn in _helpers()]
    samples.append((shop.place_order, {**_sample_args(shop.place_order), "currency": ""}))
    for fn, args in samples:
        call = fn(**args)
        method = abis[call.contract].get(call.method)
        assert method is not None, f"{fn.__name__} calls {call.contract}.{call.method}, which the contract lacks"
        assert method["requires"] is None, f"{fn.__name__}: {call.method} is only for capability {method['requires']}"
        assert call.view == (method["kind"] == "view"), f"{fn.__name__}: view={call.view}, the ABI says {method['kind']}"
        assert len(call.args) == len(method["args"]), f"{fn.__name__}: {len(call.args)} args for {method['args']}"
        for value, (arg, abi_type) in zip(call.args, method["args"]):
            assert _fits(value, abi_type), f"{fn.__name__}: {arg} is {abi_type}, the helper passes {value!r:.40}"
        built.add((call.contract, call.method))
    unhelped = sorted(f"{c}.{name}" for c in CONTRACTS for name, m in abis[c].items()
                      if m["requires"] is None and name not in GENESIS_ONLY and (c, name) not in built)
    assert unhelped == [], f"contract methods a user calls with no typed helper: {unhelped}"


def test_every_helper_record_and_enum_is_exported():
    from node import commerce_aftersales, commerce_ledger, commerce_orders, commerce_rewards
    for module in (commerce_ledger, commerce_orders, commerce_rewards, commerce_aftersales):
        defined = {name for name, value in vars(module).items()
                   if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__}
        assert defined <= set(module.__all__), f"{module.__name__} does not export {sorted(defined - set(module.__all__))}"
        assert all(hasattr(shop, name) for name in module.__all__)  # and node.client_commerce re-exports it
