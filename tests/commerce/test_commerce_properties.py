"""A Hypothesis state machine over the whole suite, checking the spec's invariants.

Several buyers, two merchants, two carriers, an arbiter and a service centre make
random calls (any party may try anything) while the height and the block time jump at
random, at random paces. Orders are random carts of 1..MAX_CART_LINES lines under the
merchants' different terms sets; cases, returns (with units), reviews and warranty
activations name random lines, valid or not. After every step: conservation (E1), no
negative escrow (E2), refunds never above what was paid (E3) per line and per order,
the order's sums equal to its lines' (price, voucher discount split by largest
remainder, paid, refunded, fee), escrow exact before completion, returned and activated
units within each line's quantity, empty escrow in terminal states (E4), the
points supply identity, voucher limits, reviews only from a ring of eligible orders
holding the line, signed by one of their committed keys and relayed by none of their
buyers, one live review per order line, ratings equal to the sums of the live
reviews, service logs never rewritten, one passport per unit, and that every call
that succeeded was made by a party the spec permits.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from contracts_vm.system import review_message
from ledger import ring
from ledger.crypto import SigningKey, sha256
from tests.commerce.test_commerce_carts import largest_remainder
from tests.commerce_harness import DAY, Chain, Err, h
from tests.ring_reviews import publish_args

BUYERS = ["buyer1", "buyer2", "buyer3"]
MERCHANTS = ["merchant1", "merchant2"]
PARTIES = BUYERS + MERCHANTS + ["carrier1", "carrier2", "arbiter", "service1", "platform"]
TERMINAL = {"CANCELLED", "REJECTED", "RESOLVED", "CLOSED"}
REVIEWABLE = {"COMPLETED", "RESOLVED", "CLOSED"}
PROGRAM = "pts"
VOUCHER = h("voucher-sm")
VOUCHER_MAX = 3
#: Lines of the random carts, and the products and terms sets they are drawn from.
MAX_CART_LINES = 4
PRODUCTS = [h("product-1"), h("product-2"), h("product-3")]
TERMS_SETS = ["", "gadgets", "final"]
#: Who may succeed at each order method (in terms of the order's own parties), ANY = any registered account.
ORDER_PERMS = {"accept": {"merchant"}, "reject": {"merchant"}, "ship": {"merchant", "carrier"},
               "deliver": {"carrier"}, "confirm": {"buyer"}, "extend": {"buyer"}, "dispute": {"buyer", "merchant"}}

parties = st.sampled_from(PARTIES)
#: Who acts in an order or case call: one of its own parties most of the time, else anyone.
actors = st.sampled_from(["buyer", "merchant", "carrier", "buyer", "merchant", "carrier", "anyone"])


_ACTIONS: dict[str, dict] = {}


def action(**strategies):
    """Register a step; ``step`` below draws which one runs (weighted towards moving orders on)."""
    def wrap(fn):
        _ACTIONS[fn.__name__] = strategies
        return fn
    return wrap


#: The first entry is what Hypothesis tries first and shrinks towards.
WEIGHTED = (["progress"] * 6 + ["progress_case"] * 5 + ["place"] * 3 + ["advance"] * 3 + ["order_call"] * 2
            + ["after_sales"] * 4 + ["deliver_cart"] * 2
            + ["review"] * 2 + ["open_case", "case_call", "rule_dispute", "warranty_flow", "warranty_flow", "transfer", "ticket",
               "loyalty", "rotate_key"])


class CommerceMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.c = Chain()
        for m in MERCHANTS:
            self.c.publish_terms(m)
            self.c.publish_terms_named("gadgets", m, return_days=30, restock_bps=500, warranty_days=366,
                                       accept_days=1, auto_confirm_days=9)
            self.c.publish_terms_named("final", m, return_days=0, warranty_days=0, restock_bps=0)
        self.c.ok("merchant1", "orders", "deposit_bond", 2_000)
        self.c.ok("merchant1", "loyalty", "create_program", PROGRAM, 500, 20 * DAY)
        self.c.ok("merchant1", "loyalty", "create_voucher", VOUCHER, b"", "FIXED", 500, 1_000, 0, self.c.after(10_000),
                  VOUCHER_MAX, 1)
        self.c.ok("platform", "loyalty", "approve_referrer", self.c.keys["referrer1"], 500, 2_000, 300)
        self.orders: list[int] = []
        self.cases: list[int] = []
        self.review_keys: dict[int, SigningKey] = {}
        self.announced: set[int] = set()
        self.live: dict[tuple[bytes, int], dict] = {}   # (key image, line) -> the live review's model
        self.units: list[bytes] = []
        self.logs: dict[bytes, list] = {}
        self.tickets: list[int] = []
        self.rotations = 0
        for b in BUYERS:   # completed orders from the start, so rings of reviewable orders exist early
            rk = SigningKey.from_label(f"sm-review-setup-{b}")
            oid = self.c.to_delivered(b, "merchant1", 1_000, review_key_hash=sha256(rk.public_key))
            self.c.ok(b, "orders", "confirm", oid)
            self.orders.append(oid)
            self.review_keys[oid] = rk

    # ---- helpers ---------------------------------------------------------------------

    def _actor(self, data, o: dict, actor: str) -> str:
        if actor == "anyone" or not o[actor]:
            return data.draw(parties)
        return self.c.names[o[actor]]

    def _role_of(self, o: dict, who: str) -> set[str]:
        k = self.c.keys[who]
        return {r for r, key in (("buyer", o["buyer"]), ("merchant", o["merchant"]), ("carrier", o["carrier"]))
                if key == k}

    # ---- rules -----------------------------------------------------------------------

    @action(buyer=st.sampled_from(BUYERS + ["merchant1", "carrier1"]), merchant=st.sampled_from(MERCHANTS),
          cart=st.lists(st.tuples(st.sampled_from(PRODUCTS), st.integers(1, 3), st.integers(1, 7_000),
                                  st.sampled_from(TERMS_SETS)), min_size=1, max_size=MAX_CART_LINES),
          voucher=st.booleans(), referred=st.booleans())
    def place(self, buyer, merchant, cart, voucher, referred):
        n = len(self.orders) + 1
        rk = SigningKey.from_label(f"sm-review-{n}-{len(cart)}")
        mk = self.c.keys[merchant]
        lines = [(p, q, u, self.c.view("orders", "named_terms_hash", mk, t)) for p, q, u, t in cart]
        out = self.c.place(buyer, merchant, lines=lines, review_key_hash=sha256(rk.public_key),
                           voucher=VOUCHER if voucher else b"", referrer=self.c.keys["referrer1"] if referred else b"")
        if isinstance(out, Err):
            return
        assert buyer in BUYERS, "only BUYERs place orders"
        self.orders.append(out)
        self.review_keys[out] = rk

    @action(data=st.data(), actor=actors,
          method=st.sampled_from(["accept", "accept", "reject", "ship", "ship", "deliver", "deliver", "confirm",
                                  "extend", "dispute", "cancel", "poke", "poke"]))
    def order_call(self, data, actor, method):
        if not self.orders:
            return
        oid = data.draw(st.sampled_from(self.orders))
        before = self.c.order(oid)
        who = self._actor(data, before, actor)
        args = {"accept": [self.c.keys[data.draw(st.sampled_from(["carrier1", "carrier2"]))], h("label")],
                "ship": [h("t"), data.draw(st.booleans())], "deliver": [h("pod")], "dispute": [h("ev")]}.get(method, [])
        out = self.c.call(who, "orders", method, oid, *args)
        if isinstance(out, Err):
            assert out.name == "RequireFailed", out
            return
        if method in ORDER_PERMS:
            assert self._role_of(before, who) & ORDER_PERMS[method], f"{who} succeeded at {method}"
        if method == "cancel" and self.c.now <= before["accept_by"] and before["state"] == "PLACED":
            assert self._role_of(before, who) == {"buyer"}

    @action(data=st.data(), choice=st.integers(0, 7), split=st.integers(0, 100))
    def progress(self, data, choice, split):
        """Move an order along by one of the steps its parties would plausibly take next."""
        if not self.orders:
            return
        oid = data.draw(st.sampled_from(self.orders))
        o = self.c.order(oid)
        name = self.c.names   # parties act by name, so they sign with their current (maybe rotated) key
        b, m, k = name[o["buyer"]], name[o["merchant"]], name[o["carrier"]] if o["carrier"] else "carrier1"
        held = self.c.escrow(oid)
        remaining = o["amount"] - o["refunded"]
        line = choice % len(o["lines"])
        ln = o["lines"][line]
        part = max(1, (ln["amount"] - ln["refunded"]) * split // 100)
        units = max(1, (ln["quantity"] - ln["returned"]) * split // 100)
        ret = ("cases", "open", oid, line, "RETURN_REFUND", units, max(1, ln["amount"] * units // ln["quantity"] * split // 100),
               h("r"))
        steps = {
            "PLACED": [(m, "orders", "accept", oid, self.c.keys[k], h("label")), (m, "orders", "reject", oid), (b, "orders", "cancel", oid),
                       (b, "cases", "open", oid, line, "REFUND_ONLY", 0, part, h("r"))],
            "ACCEPTED": [(m, "orders", "ship", oid, h("t"), split < 20), (k, "orders", "ship", oid, h("t"), False),
                         (b, "orders", "dispute", oid, h("e")), (b, "orders", "cancel", oid)],
            "PARTIALLY_SHIPPED": [(k, "orders", "ship", oid, h("t2"), False)],
            "SHIPPED": [(k, "orders", "deliver", oid, h("pod")), (b, "cases", "open", oid, -1, "NOT_RECEIVED", 0, remaining, h("r")),
                        (b, "orders", "confirm", oid), (m, "orders", "dispute", oid, h("e")),
                        (b, "cases", "open", oid, line, "REFUND_ONLY", 0, part, h("r"))],
            "DELIVERED": [(b, "orders", "confirm", oid), (b, "orders", "extend", oid), (b, *ret),
                          (b, "orders", "dispute", oid, h("e"))],
            "COMPLETED": [(b, "orders", "poke", oid), (b, *ret), (m, "orders", "dispute", oid, h("e")), (b, "orders", "poke", oid)],
            "DISPUTED": [("platform" if o["escalated"] else "arbiter", "orders", "rule", oid,
                          held * split // 100, held - held * split // 100, 0), (b, "orders", "poke", oid)],
        }.get(o["state"])
        if not steps:
            return
        who, contract, method, *args = steps[0 if choice < 4 else (choice - 4) % len(steps)]   # forward first
        out = self.c.call(who, contract, method, *args)
        if contract == "cases" and not isinstance(out, Err):
            self.cases.append(out)

    @action(data=st.data(), choice=st.integers(0, 5), fee_pct=st.integers(0, 10))
    def progress_case(self, data, choice, fee_pct):
        if not self.cases:
            return
        cid = data.draw(st.sampled_from(self.cases))
        c = self.c.view("cases", "get_case", cid)
        b, m = self.c.names[c["buyer"]], self.c.names[c["merchant"]]
        steps = {
            "REQUESTED": [(m, "reply", cid, True, 0), (m, "reply", cid, False, max(1, c["amount"] // 2)),
                          (b, "poke", cid), (b, "escalate", cid)],
            "COUNTERED": [(b, "accept_counter", cid), (b, "escalate", cid), (b, "poke", cid)],
            "AGREED": [(b, "return_shipped", cid, h("rt")), (b, "poke", cid)],
            "RETURN_SHIPPED": [(m, "return_received", cid), (b, "poke", cid)],
            "RETURN_RECEIVED": [(m, "refund_return", cid, c["amount"] * c["restock_bps"] * fee_pct // 100_000),
                                (b, "poke", cid)],
        }.get(c["state"])
        if steps:
            who, method, *args = steps[0 if choice < 2 else (choice - 2) % len(steps)]
            self.c.call(who, "cases", method, *args)

    @action(data=st.data(), who=st.sampled_from(["arbiter", "arbiter", "platform", "buyer1", "merchant1"]), to_buyer=st.integers(0, 100), fee=st.integers(0, 10))
    def rule_dispute(self, data, who, to_buyer, fee):
        disputed = [o for o in self.orders if self.c.order(o)["state"] == "DISPUTED"]
        if not disputed:
            return
        oid = data.draw(st.sampled_from(disputed))
        held = self.c.escrow(oid)
        b = held * to_buyer // 100
        f = min(held - b, held * fee // 100)
        o = self.c.order(oid)
        out = self.c.call(who, "orders", "rule", oid, b, held - b - f, f)
        if not isinstance(out, Err):
            assert (o["escalated"] and who == "platform") or (not o["escalated"] and who == "arbiter")

    @action(data=st.data(), kind=st.sampled_from(["REFUND_ONLY", "NOT_RECEIVED", "RETURN_REFUND"]),
          pct=st.integers(1, 100), who=st.sampled_from(BUYERS), line=st.integers(-1, MAX_CART_LINES),
          units=st.integers(0, 4))
    def open_case(self, data, kind, pct, who, line, units):
        if not self.orders:
            return
        oid = data.draw(st.sampled_from(self.orders))
        o = self.c.order(oid)
        held = (o["lines"][line]["amount"] - o["lines"][line]["refunded"]) if 0 <= line < len(o["lines"]) \
            else o["amount"] - o["refunded"]
        amount = max(1, held * pct // 100)
        out = self.c.call(who, "cases", "open", oid, line, kind, units, amount, h("why"))
        if not isinstance(out, Err):
            assert self.c.keys[who] == o["buyer"]
            if kind == "NOT_RECEIVED":
                assert line == -1 and units == 0
            else:
                ln = o["lines"][line]
                assert amount <= ln["amount"] - ln["refunded"], "E3 per line at opening"
                if kind == "RETURN_REFUND":
                    assert 1 <= units <= ln["quantity"] - ln["returned"]
                    assert amount <= ln["amount"] * (ln["returned"] + units) // ln["quantity"] \
                        - ln["amount"] * ln["returned"] // ln["quantity"], "a return asks at most its units' worth"
                    terms = self.c.view("orders", "get_terms_set", ln["terms_hash"])
                    assert terms["return_seconds"] > 0
                else:
                    assert units == 0
            self.cases.append(out)

    @action(data=st.data(), carrier=st.sampled_from(["carrier1", "carrier2"]), confirm=st.booleans())
    def deliver_cart(self, data, carrier, confirm):
        """Carry a placed cart straight to delivery (and maybe confirmation), so after-sales steps have carts."""
        placed = [oid for oid in self.orders if self.c.order(oid)["state"] == "PLACED"]
        if not placed:
            return
        oid = data.draw(st.sampled_from(placed))
        o = self.c.order(oid)
        b, m = self.c.names[o["buyer"]], self.c.names[o["merchant"]]
        for who, method, *args in [(m, "accept", self.c.keys[carrier], h("label")), (carrier, "ship", h("t"), False),
                                   (carrier, "deliver", h("pod"))] + ([(b, "confirm")] if confirm else []):
            if isinstance(self.c.call(who, "orders", method, oid, *args), Err):
                return

    @action(data=st.data(), op=st.sampled_from(["return", "return", "refund", "activate", "activate"]),
            line=st.integers(0, MAX_CART_LINES), units=st.integers(1, 3), pct=st.integers(1, 100),
            serial=st.integers(0, 5))
    def after_sales(self, data, op, line, units, pct, serial):
        """Line-level after-sales on a delivered or finished cart: returns of some units, refunds, activations
        of units of the line's product (the line may be past the cart's end); reviews of lines are ``review``'s."""
        states = ("DELIVERED", "COMPLETED") if op in ("return", "refund") else ("COMPLETED", "CLOSED", "RESOLVED")
        done = [oid for oid in self.orders if self.c.order(oid)["state"] in states]
        if not done:
            return
        oid = data.draw(st.sampled_from(done))
        o = self.c.order(oid)
        b, m = self.c.names[o["buyer"]], self.c.names[o["merchant"]]
        ln = o["lines"][line] if line < len(o["lines"]) else o["lines"][0]
        if op in ("return", "refund"):
            left = ln["amount"] - ln["refunded"]
            worth = ln["amount"] * (ln["returned"] + units) // ln["quantity"] - ln["amount"] * ln["returned"] // ln["quantity"]
            kind, n, ask = ("RETURN_REFUND", units, max(1, min(left, worth) * pct // 100)) if op == "return" \
                else ("REFUND_ONLY", 0, max(1, left * pct // 100))
            out = self.c.call(b, "cases", "open", oid, line, kind, n, ask, h("why"))
            if isinstance(out, Err):
                return
            self.cases.append(out)
            if data.draw(st.booleans()):       # the parties see it through at once, restocking fee within terms
                fee = ask * self.c.view("cases", "get_case", out)["restock_bps"] * (pct % 3) // 20_000
                steps = [(m, "reply", out, True, 0)] + ([(b, "return_shipped", out, h("rt")), (m, "return_received", out),
                                                         (m, "refund_return", out, fee)] if op == "return" else [])
                for who, method, *args in steps:
                    assert not isinstance(self.c.call(who, "cases", method, *args), Err), method
                ln2 = self.c.order(oid)["lines"][line]
                assert ln2["refunded"] == ln["refunded"] + ask - (fee if op == "return" else 0)
                assert ln2["returned"] == ln["returned"] + n
        else:
            unit = h(f"cart-unit-{oid}-{line}-{serial}")
            if unit not in self.logs:
                if not isinstance(self.c.call(m, "warranty", "register_unit", unit, ln["product"]), Err):
                    self.logs[unit] = []
                    self.units.append(unit)
            self.c.call(b, "warranty", "activate", unit, oid, line)

    @action(data=st.data(), actor=actors,
          method=st.sampled_from(["reply_agree", "reply_counter", "accept_counter", "escalate", "withdraw",
                                  "return_shipped", "return_received", "refund_return", "poke"]),
          fee_pct=st.integers(0, 20))
    def case_call(self, data, actor, method, fee_pct):
        if not self.cases:
            return
        cid = data.draw(st.sampled_from(self.cases))
        case = self.c.view("cases", "get_case", cid)
        who = self._actor(data, {"buyer": case["buyer"], "merchant": case["merchant"], "carrier": b""}, actor)
        calls = {"reply_agree": ("reply", True, 0), "reply_counter": ("reply", False, max(1, case["amount"] // 2)),
                 "accept_counter": ("accept_counter",), "escalate": ("escalate",), "withdraw": ("withdraw",),
                 "return_shipped": ("return_shipped", h("rt")), "return_received": ("return_received",),
                 "refund_return": ("refund_return", case["amount"] * fee_pct // 100), "poke": ("poke",)}
        name, *args = calls[method]
        out = self.c.call(who, "cases", name, cid, *args)
        if isinstance(out, Err):
            return
        k = self.c.keys[who]
        if name in ("reply", "return_received", "refund_return"):
            assert k == case["merchant"]
        if name in ("accept_counter", "withdraw", "return_shipped"):
            assert k == case["buyer"]
        if name == "refund_return":
            assert args[0] <= case["amount"] * case["restock_bps"] // 10_000

    @action(blocks=st.sampled_from([3, 1, 10, 25, 80, 160]), pace=st.sampled_from([None, None, 0.05, 1.0, 40_000.0]))
    def advance(self, blocks, pace):
        """Blocks at the default pace, back to back (0.05 s), idle (1 s) or sparse: deadlines follow time."""
        self.c.advance(blocks, None if pace is None else blocks * pace)

    def _announce(self, oid: int) -> None:
        if oid not in self.announced:
            self.c.ok("platform", "reviews", "announce_key", oid, self.review_keys[oid].public_key)
            self.announced.add(oid)

    @action(data=st.data(), right_key=st.booleans(), relayer=parties, amend=st.booleans(),
            line=st.sampled_from([0, 0, 0, 1, 2, -1, MAX_CART_LINES]))
    def review(self, data, right_key, relayer, amend, line):
        if len(self.orders) < 2:
            return
        pool = self.orders
        if data.draw(st.booleans()):   # half the time a ring that may well be eligible, else any orders
            pool = [i for i in self.orders if self.c.order(i)["state"] in REVIEWABLE] or pool
        oid = data.draw(st.sampled_from(pool))
        o = self.c.order(oid)
        mates = [i for i in pool if i != oid and self.c.order(i)["merchant"] == o["merchant"]
                 and self.c.order(i)["buyer"] != o["buyer"]] or self.orders
        others = data.draw(st.lists(st.sampled_from(mates), min_size=1, max_size=3, unique=True))
        ids = sorted(set(others) | {oid})
        if len(ids) < 2:
            return
        for i in ids:
            self._announce(i)
        rk = self.review_keys[oid]
        image = ring.key_image(ring.secret_scalar(rk.seed))
        scores = [data.draw(st.integers(1, 5)) for _ in range(5)]
        live = self.live.get((image, line))
        if amend and live is not None:
            prior = self.c.view("reviews", "get_review", live["id"])
            keys = [self.review_keys[i].public_key for i in prior["ring"]]
            message = review_message("commerce-test", prior["ring"], line, scores, h("amended"), False, 2)
            _, sig = ring.sign(ring.secret_scalar(rk.seed), keys, message, aux=b"sm")
            out = self.c.call(relayer, "reviews", "amend", image, line, scores, h("amended"), False, sig)
            if not isinstance(out, Err):
                assert prior["version"] == 1 and self.c.keys[relayer] not in {self.c.order(i)["buyer"] for i in prior["ring"]}
                self.live[(image, line)] = {**live, "id": out, "scores": scores}
            return
        signer = rk if right_key else SigningKey.from_label("intruder")
        ring_keys = {i: self.review_keys[i].public_key for i in ids}
        ring_keys[oid] = signer.public_key  # an intruder signs over a ring holding its key instead of the order's
        args = publish_args(signer, ring_keys, line, scores, h("txt"))
        orders = [self.c.order(i) for i in ids]
        out = self.c.call(relayer, "reviews", "publish", *args)
        if not isinstance(out, Err):
            assert right_key and (image, line) not in self.live, "a second live review of one order line"
            assert all(0 <= line < len(o["lines"]) for o in orders)
            assert all(o["state"] in REVIEWABLE for o in orders)
            assert all(self.c.now <= (o["completed_at"] or o["placed_at"]) + 90 * DAY for o in orders)
            assert len({o["merchant"] for o in orders}) == 1 and len({o["buyer"] for o in orders}) == len(orders)
            assert self.c.keys[relayer] not in {o["buyer"] for o in orders}, "a buyer relayed its own ring's review"
            assert len({o["prev_state"] != "" for o in orders}) == 1
            products = {o["lines"][line]["product"] for o in orders}
            self.live[(image, line)] = {"id": out, "origin": oid, "merchant": orders[0]["merchant"], "scores": scores,
                                        "product": products.pop() if len(products) == 1 else b""}

    @action(data=st.data(), who=st.sampled_from(MERCHANTS + BUYERS), serial=st.integers(0, 3),
            product=st.sampled_from(PRODUCTS), line=st.integers(-1, MAX_CART_LINES))
    def warranty_flow(self, data, who, serial, product, line):
        if not self.orders:
            return
        oid = data.draw(st.sampled_from(self.orders))
        unit = h(f"unit-{oid}-{serial}")
        if unit not in self.logs:
            out = self.c.call(who, "warranty", "register_unit", unit, product)
            if not isinstance(out, Err):
                self.logs[unit] = []
                self.units.append(unit)
            return
        again = self.c.call("merchant2", "warranty", "register_unit", unit, product)
        assert isinstance(again, Err), "a unit got a second passport"
        p = self.c.view("warranty", "get_passport", unit)
        o = self.c.order(oid)
        out = self.c.call(who, "warranty", "activate", unit, oid, line)
        if not isinstance(out, Err):
            ln = o["lines"][line]
            assert line >= 0 and ln["product"] == p["product"] and o["merchant"] == p["brand"]
            assert o["state"] in ("COMPLETED", "CLOSED")
            terms = self.c.view("orders", "get_terms_set", ln["terms_hash"])
            assert self.c.view("warranty", "get_passport", unit)["warranty_end"] == o["delivered_at"] + terms["warranty_seconds"]
        kind = data.draw(st.sampled_from(["INSPECT", "REPAIR", "AMEND"]))
        amends = len(self.logs[unit]) if kind == "AMEND" else 0
        out = self.c.call(data.draw(st.sampled_from(["merchant1", "service1", "buyer1"])), "warranty",
                          "record_service", unit, kind, h(f"{unit.hex()}-{len(self.logs[unit])}"), False, amends)
        if not isinstance(out, Err):
            self.logs[unit].append(out)

    @action(data=st.data(), who=parties, right_code=st.booleans(), expiry=st.sampled_from([1, 5, 50]))
    def transfer(self, data, who, right_code, expiry):
        if not self.units:
            return
        unit = data.draw(st.sampled_from(self.units))
        p = self.c.view("warranty", "get_passport", unit)
        if not p["activated"]:
            return
        owner = self.c.names[p["owner"]]
        if p["claim_hash"] == b"":
            self.c.call(owner, "warranty", "offer_transfer", unit, sha256(b"code" + unit), self.c.after(expiry))
            return
        out = self.c.claim_unit(who, unit, b"code" + unit if right_code else b"guess")
        if not isinstance(out, Err):
            assert right_code and self.c.now <= p["offer_expiry"] and who != owner
            assert self.c.view("warranty", "get_passport", unit)["owner"] == self.c.keys[who]

    @action(data=st.data(), who=parties, step=st.sampled_from(["open", "assign", "resolve", "escalate", "close"]))
    def ticket(self, data, who, step):
        if not self.orders:
            return
        if step == "open" or not self.tickets:
            oid = data.draw(st.sampled_from(self.orders))
            out = self.c.call(self.c.names[self.c.order(oid)["buyer"]], "tickets", "open", oid, b"", h("q"))
            if not isinstance(out, Err):
                self.tickets.append(out)
            return
        tid = data.draw(st.sampled_from(self.tickets))
        t = self.c.view("tickets", "get_ticket", tid)
        args = [self.c.keys["service1"]] if step == "assign" else [h("res")] if step == "resolve" else []
        out = self.c.call(who, "tickets", step, tid, *args)
        if isinstance(out, Err):
            return
        if step == "escalate":
            assert (not t["responded"] and self.c.now > t["first_response_by"]) or self.c.now > t["resolve_by"]
        if step in ("assign", "resolve"):
            assert self.c.keys[who] in (t["handler"], t["assignee"]) or (t["escalated"] and who == "platform")

    @action(data=st.data(), who=parties, points=st.integers(1, 200))
    def loyalty(self, data, who, points):
        if self.orders:
            self.c.call(who, "loyalty", "award", PROGRAM, data.draw(st.sampled_from(self.orders)))
            self.c.call(who, "loyalty", "clawback", PROGRAM, data.draw(st.sampled_from(self.orders)))
        self.c.call(who, "loyalty", "redeem", PROGRAM, points)
        self.c.call(who, "loyalty", "expire", PROGRAM, self.c.keys[data.draw(st.sampled_from(BUYERS))])

    @action(who=parties)
    def rotate_key(self, who):
        """Any party moves to a new signing key mid-flight: everything it has stays its, the old key is refused."""
        old = self.c.sender(who)
        self.rotations += 1
        new = self.c.rotate(who, f"sm-rotated-{who}-{self.rotations}")
        assert self.c.account(new) == self.c.keys[who]
        refused = self.c.call(old, "ledger", "transfer", self.c.keys["buyer1"], 1)
        assert isinstance(refused, Err) and refused.name == "RotatedKey"

    @rule(data=st.data(), name=st.sampled_from(WEIGHTED))
    def step(self, data, name):
        kwargs = {k: data.draw(v) for k, v in _ACTIONS[name].items() if k != "data"}
        if "data" in _ACTIONS[name]:
            kwargs["data"] = data
        getattr(self, name)(**kwargs)

    # ---- invariants ------------------------------------------------------------------

    @invariant()
    def money(self):
        if not hasattr(self, "c"):
            return
        self.c.supply_check()
        for oid in self.orders:
            o = self.c.order(oid)
            esc = self.c.escrow(oid)
            assert esc >= 0, "E2"
            assert 0 <= o["refunded"] <= o["amount"], "E3"
            self._check_lines(o)
            if o["state"] in ("PLACED", "ACCEPTED", "PARTIALLY_SHIPPED", "SHIPPED", "DELIVERED"):
                assert esc == o["amount"] - o["refunded"], "before completion the escrow is exactly what is unrefunded"
            if o["state"] in TERMINAL:
                assert esc == 0, f"E4: order {oid} {o['state']} holds {esc}"
            if o["state"] in ("PLACED", "ACCEPTED", "SHIPPED", "PARTIALLY_SHIPPED", "DELIVERED"):
                assert esc + self.c.view("orders", "merchant_debt", o["merchant"]) >= 0
        for m in MERCHANTS:
            assert self.c.view("orders", "bond_of", self.c.keys[m]) >= 0

    def _check_lines(self, o: dict) -> None:
        """Per line: E3, exact sums to the order, the voucher's largest-remainder split, units within quantity."""
        lines = o["lines"]
        assert 1 <= len(lines) <= MAX_CART_LINES
        for ln in lines:
            assert ln["price"] == ln["quantity"] * ln["unit_price"] and ln["amount"] == ln["price"] - ln["discount"]
            assert 0 <= ln["refunded"] <= ln["amount"], "E3 per line"
            assert 0 <= ln["returned"] <= ln["quantity"]
            assert 0 <= ln["fee_paid"] <= ln["amount"] * o["fee_bps"] // 10_000
        for field in ("price", "discount", "amount", "refunded", "fee_paid"):
            assert sum(ln[field] for ln in lines) == o[field], f"the lines' {field} sum to the order's"
        assert [ln["discount"] for ln in lines] == largest_remainder(o["discount"], [ln["price"] for ln in lines])
        if o["state"] in TERMINAL - {"RESOLVED", "CLOSED"}:
            assert all(ln["refunded"] == ln["amount"] for ln in lines), "a cancelled order refunds every line in full"

    @invariant()
    def points_and_vouchers(self):
        if not hasattr(self, "c"):
            return
        p = self.c.view("loyalty", "get_program", PROGRAM)
        held = sum(self.c.view("loyalty", "held_in_lots", PROGRAM, self.c.keys[b]) for b in BUYERS)
        assert p["minted"] == p["redeemed"] + p["expired"] + p["clawed"] + held, "points supply identity"
        v = self.c.view("loyalty", "get_voucher", VOUCHER)
        assert 0 <= v["redemptions"] <= VOUCHER_MAX
        for b in BUYERS:
            assert 0 <= self.c.view("loyalty", "voucher_uses", VOUCHER, self.c.keys[b]) <= 1

    @invariant()
    def reviews_and_logs(self):
        if not hasattr(self, "c"):
            return
        sums: dict[bytes, list[int]] = {}
        for (image, line), model in self.live.items():
            assert self.c.view("reviews", "live_review", image, line) == model["id"]
            r = self.c.view("reviews", "get_review", model["id"])
            assert model["origin"] in r["ring"] and "order" not in r and r["scores"] == model["scores"]
            assert r["product"] == model["product"], "a review counts for its ring's common line product, or none"
            total = sums.setdefault(model["merchant"], [0] * 6)
            for i, v in enumerate([1] + model["scores"]):
                total[i] += v
        for m in MERCHANTS:   # ratings are exactly the sums over the live reviews (none is hidden here)
            got = self.c.view("reviews", "merchant_rating", self.c.keys[m])
            assert [got["count"]] + got["sums"] == sums.get(self.c.keys[m], [0] * 6)
        owners, activated = {}, {}
        for unit in self.units:
            p = self.c.view("warranty", "get_passport", unit)
            assert p["unit"] == unit, "one passport per unit"
            owners[unit] = p["owner"]
            if p["activated"]:
                activated[(p["order"], p["line"])] = activated.get((p["order"], p["line"]), 0) + 1
        for (oid, line), n in activated.items():
            ln = self.c.order(oid)["lines"][line]
            assert n <= ln["quantity"], "no line activates more units than it holds"
        for unit, seqs in self.logs.items():
            log = self.c.view("warranty", "service_log", unit, 256)
            assert [r["seq"] for r in log] == seqs, "service log rewritten"
            for r in log:
                assert r["data_hash"] == h(f"{unit.hex()}-{r['seq'] - 1}")


CommerceMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=80, deadline=None,
                                             suppress_health_check=list(HealthCheck))
TestCommerce = CommerceMachine.TestCase
