"""Benchmarks of the commerce system contracts: `python -m bench.contracts`.

Prints one JSON object per line ({bench, metric, value, unit, baseline, ratio}):
- gas and wall time of one call for each step of an order's life (place, accept,
  ship, deliver, confirm, close by poke), a review (ring-signed over 3 orders, relayed), a
  warranty service record and a warranty transfer by commit-reveal (offer, commit, claim),
  each averaged over many orders on one in-memory chain;
- order placements per second through the VM on one core vs a plain-Python
  equivalent of the same placement logic (role checks, terms hash, debt check, order
  record encoded canonically into a dict store, escrow lock) measured in the same
  run; ratio = VM / plain Python;
- a placement's dispatches and CPU time with fused code (fuse.py) vs the same
  program's unfused code, interleaved in one process (baseline = unfused);
- signing policies (bench/multisig.py): policy setting, a transfer under a policy with
  one key and co-signed vs without a policy, co-signature checks vs a plain one.
- gas and wall time of placing a CART_LINES-line cart vs a one-line order (baseline =
  one line), and the same for confirming it (the per-line fee and holdback);
- a transfer and a placement in a voted-in currency, and a placement part-paid with
  loyalty points, each vs the same call in the base currency (baseline).
The per-call figures skip a few warm-up orders: the first call of each function fuses
it, once per process.
"""

from __future__ import annotations

import json
import time
from typing import Any

from contracts_vm.api import CallContext, execute_call
from contracts_vm.program import unfused
from contracts_vm.system import warranty_claim_commitment
from ledger.crypto import SigningKey, sha256
from ledger.encoding import encode
from tests.commerce_harness import Chain, h
from tests.ring_reviews import publish_args

#: Orders pushed through the whole life cycle for the per-call figures.
LIFECYCLE_ORDERS = 200
#: Orders pushed through first and not timed (one-off work such as fusing each function).
WARMUP_ORDERS = 5
#: Placements timed for the throughput figure (both VM and plain Python).
PLACEMENTS = 1000
PRICE = 1_000
#: Orders in each review's ring (three buyers take turns, so consecutive orders have distinct buyers).
REVIEW_RING = 3
#: Rounds and placements per round of the fused/unfused comparison.
FUSION_ROUNDS = 5
FUSION_BATCH = 200
#: Lines of the cart compared with a one-line order, and how many of each are placed.
CART_LINES = 5
CART_ORDERS = 100


def _line(bench: str, metric: str, value: float, unit: str, baseline: float | None = None,
          ratio: float | None = None) -> None:
    print(json.dumps({"bench": bench, "metric": metric, "value": round(value, 3), "unit": unit,
                      "baseline": None if baseline is None else round(baseline, 3),
                      "ratio": None if ratio is None else round(ratio, 3)}), flush=True)


class _Timed:
    """Wraps Chain.call to collect gas and wall time per (contract, method)."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.samples: dict[str, list[tuple[int, float]]] = {}

    def call(self, label: str, who: Any, contract: str, method: str, *args: Any) -> Any:
        t0 = time.perf_counter()
        out = self.chain.ok(who, contract, method, *args)
        dt = time.perf_counter() - t0
        self.samples.setdefault(label, []).append((self.chain.gas_log[-1][2], dt))
        return out


def lifecycle() -> None:
    c = Chain()
    c.publish_terms()
    c.ok("merchant1", "warranty", "authorize_service", c.keys["service1"], True)
    t = _Timed(c)
    terms_hash = c.view("orders", "terms_hash_of", c.keys["merchant1"])
    review_keys: dict[int, SigningKey] = {}
    for i in range(-WARMUP_ORDERS, LIFECYCLE_ORDERS):
        if i == 0:
            t.samples.clear()       # the first calls fuse each function (once per process): not a per-call cost
        rk = SigningKey.from_label(f"bench-review-{i}")
        buyer = ("buyer1", "buyer2", "buyer3")[i % 3]
        oid = t.call("place", buyer, "orders", "place", c.keys["merchant1"], [[h("product-1"), 1, PRICE, terms_hash]],
                     h(f"pii{i}"), h(f"payload{i}"), sha256(rk.public_key), b"", b"", b"")
        t.call("accept", "merchant1", "orders", "accept", oid, c.keys["carrier1"], h("label"))
        t.call("ship", "carrier1", "orders", "ship", oid, h(f"track{i}"), False)
        t.call("deliver", "carrier1", "orders", "deliver", oid, h(f"pod{i}"))
        t.call("confirm", buyer, "orders", "confirm", oid)
        c.ok(buyer, "reviews", "announce_key", oid, rk.public_key)
        review_keys[oid] = rk
        if len(review_keys) >= REVIEW_RING:  # a ring of this order and the previous ones (other buyers)
            members = {o: review_keys[o].public_key for o in range(oid - REVIEW_RING + 1, oid + 1)}
            args = publish_args(rk, members, 0, [5, 4, 5, 4, 5], h(f"text{i}"), aux=b"bench")
            t.call("review", "platform", "reviews", "publish", *args)
        unit = h(f"unit{i}")
        c.ok("merchant1", "warranty", "register_unit", unit, h("product-1"))
        c.ok(buyer, "warranty", "activate", unit, oid, 0)
        t.call("warranty_record", "service1", "warranty", "record_service", unit, "REPAIR", h(f"rep{i}"), True, 0)
        code, taker = f"claim-code-{i}".encode(), ("buyer1", "buyer2", "buyer3")[(i + 1) % 3]
        t.call("transfer_offer", buyer, "warranty", "offer_transfer", unit, sha256(code), c.after(10))
        t.call("transfer_commit", taker, "warranty", "commit_claim", unit,
               warranty_claim_commitment(unit, c.keys[taker], code))
        c.advance(1, seconds=1)          # the reveal must come in a later block than the commitment
        t.call("transfer_claim", taker, "warranty", "claim_transfer", unit, code)
    c.advance(c.days(15))
    for oid in range(WARMUP_ORDERS + 1, WARMUP_ORDERS + LIFECYCLE_ORDERS + 1):
        t.call("close", "carrier2", "orders", "poke", oid)
    for label, rows in t.samples.items():
        gas = sum(g for g, _ in rows) / len(rows)
        us = sum(d for _, d in rows) / len(rows) * 1e6
        _line("contracts", f"{label}_gas", gas, "gas")
        _line("contracts", f"{label}_wall", us, "us/call")


# ---- the plain-Python placement --------------------------------------------------------

def _terms_hash(t: dict) -> bytes:
    b = b"shopchain/terms/v2"
    for k in ("accept_seconds", "handling_seconds", "transit_seconds", "auto_confirm_seconds", "return_seconds",
              "restock_bps", "warranty_seconds"):
        b += b"|" + str(t[k]).encode()
    return sha256(b + b"|" + t["arbiter"])


class PlainPlacement:
    """The placement rules of orders.place, written directly in Python over dicts."""

    def __init__(self, roles: dict[bytes, set], balances: dict[bytes, int], terms: dict[bytes, dict]) -> None:
        self.roles, self.balances, self.terms = roles, balances, terms
        self.store: dict[bytes, bytes] = {}
        self.escrows: dict[str, int] = {}
        self.debt: dict[bytes, int] = {}
        self.next_id = 0
        self.events: list = []

    def place(self, buyer: bytes, merchant: bytes, lines: list, pii_root: bytes, payload_hash: bytes,
              review_key_hash: bytes, height: int, now: int) -> int:
        if "BUYER" not in self.roles.get(buyer, ()):
            raise ValueError("only a BUYER places orders")
        if "MERCHANT" not in self.roles.get(merchant, ()):
            raise ValueError("seller is not an active MERCHANT")
        if buyer == merchant or self.debt.get(merchant, 0) != 0:
            raise ValueError("bad parties")
        if not 1 <= len(lines) <= 32:
            raise ValueError("bad line count")
        for x in (pii_root, payload_hash, review_key_hash):
            if len(x) != 32:
                raise ValueError("hashes are 32 bytes")
        t = self.terms[merchant]
        items, price = [], 0
        for product, quantity, unit_price, terms_hash in lines:
            if not (1 <= quantity <= 1_000_000 and 1 <= unit_price <= 10**15 // quantity):
                raise ValueError("bad amounts")
            if len(product) != 32 or _terms_hash(t) != terms_hash:
                raise ValueError("bad product or terms hash")
            price += quantity * unit_price
            items.append({"product": product, "quantity": quantity, "unit_price": unit_price,
                          "price": quantity * unit_price, "discount": 0, "amount": quantity * unit_price,
                          "terms_hash": terms_hash, "refunded": 0, "returned": 0, "fee_paid": 0})
        self.next_id += 1
        oid = self.next_id
        order = {"id": oid, "buyer": buyer, "merchant": merchant, "lines": items,
                 "price": price, "discount": 0, "amount": price, "state": "PLACED", "terms": t,
                 "pii_root": pii_root, "payload_hash": payload_hash,
                 "review_key_hash": review_key_hash, "placed_height": height, "placed_at": now,
                 "accept_by": now + t["accept_seconds"],
                 "refunded": 0, "open_case": 0}
        self.store[b"o" + oid.to_bytes(8, "big")] = encode(order)
        bal = self.balances.get(buyer, 0)
        if bal < price:
            raise ValueError("insufficient balance")
        self.balances[buyer] = bal - price
        key = "o" + str(oid)
        self.escrows[key] = self.escrows.get(key, 0) + price
        self.events.append(("OrderPlaced", oid, price))
        return oid


def throughput() -> None:
    c = Chain()
    c.publish_terms()
    terms_hash = c.view("orders", "terms_hash_of", c.keys["merchant1"])
    merchant = c.keys["merchant1"]
    t0 = time.perf_counter()
    for i in range(PLACEMENTS):
        c.ok(("buyer1", "buyer2", "buyer3")[i % 3], "orders", "place", merchant, [[h("product-1"), 1, 10, terms_hash]],
             h(f"pii{i}"), h(f"payload{i}"), h(f"rk{i}"), b"", b"", b"")
    vm_rate = PLACEMENTS / (time.perf_counter() - t0)

    terms = c.view("orders", "get_terms", merchant)
    roles = {c.keys[n]: set(r) for n, r in c.accounts.items()}
    plain = PlainPlacement(roles, {c.keys[b]: 10**9 for b in ("buyer1", "buyer2", "buyer3")}, {merchant: terms})
    buyers = [c.keys[b] for b in ("buyer1", "buyer2", "buyer3")]
    t0 = time.perf_counter()
    for i in range(PLACEMENTS):
        plain.place(buyers[i % 3], merchant, [(h("product-1"), 1, 10, terms_hash)], h(f"pii{i}"), h(f"payload{i}"),
                    h(f"rk{i}"), 1, c.now)
    py_rate = PLACEMENTS / (time.perf_counter() - t0)
    _line("contracts", "placements_per_s", vm_rate, "orders/s", py_rate, vm_rate / py_rate)



def fusion() -> None:
    """A placement's steps, and its CPU time fused vs unfused, interleaved in one process."""
    c = Chain()
    c.publish_terms()
    terms_hash = c.view("orders", "terms_hash_of", c.keys["merchant1"])
    merchant = c.keys["merchant1"]
    count = [0]

    def place(n: int) -> float:
        t0 = time.process_time()
        for _ in range(n):
            i = count[0]
            count[0] += 1
            ctx = CallContext(sender=c.keys[("buyer1", "buyer2", "buyer3")[i % 3]], height=c.height,
                              timestamp_ms=c.time_ms, chain_id="commerce-test")
            r = execute_call(c.state, "orders", "place", [merchant, [[h("product-1"), 1, 10, terms_hash]], h(f"pii{i}"),
                                                          h(f"payload{i}"), h(f"rk{i}"), b"", b"", b""], ctx, 10**7)
            assert r.ok, r
        place.steps = r.steps
        return (time.process_time() - t0) / n * 1e6

    place(50)
    fused_steps = place.steps
    fused_us, unfused_us = [], []
    for _ in range(FUSION_ROUNDS):
        fused_us.append(place(FUSION_BATCH))
        with unfused():
            unfused_us.append(place(FUSION_BATCH))
    with unfused():
        place(1)
        unfused_steps = place.steps
    _line("contracts", "place_dispatches", fused_steps, "steps", unfused_steps, fused_steps / unfused_steps)
    _line("contracts", "place_cpu_fused", min(fused_us), "us/call", min(unfused_us), min(fused_us) / min(unfused_us))


def carts() -> None:
    """Placing and confirming a CART_LINES-line cart vs a one-line order (baseline), per order."""
    c = Chain()
    c.publish_terms()
    c.publish_terms_named("gadgets", return_days=30, restock_bps=500, warranty_days=366)
    t = _Timed(c)
    sets = [c.view("orders", "terms_hash_of", c.keys["merchant1"]),
            c.view("orders", "named_terms_hash", c.keys["merchant1"], "gadgets")]
    for i in range(-WARMUP_ORDERS, CART_ORDERS):
        if i == 0:
            t.samples.clear()
        for label, n in (("one", 1), ("cart", CART_LINES)):
            lines = [[h(f"product-{k}"), 1 + k % 3, 100 + k, sets[k % 2]] for k in range(n)]
            oid = t.call(f"place_{label}", "buyer1", "orders", "place", c.keys["merchant1"], lines, h(f"pii{i}"),
                         h(f"payload{i}"), h(f"rk{i}"), b"", b"", b"")
            c.ok("merchant1", "orders", "accept", oid, c.keys["carrier1"], h("label"))
            c.ok("carrier1", "orders", "ship", oid, h(f"track{i}"), False)
            c.ok("carrier1", "orders", "deliver", oid, h(f"pod{i}"))
            t.call(f"confirm_{label}", "buyer1", "orders", "confirm", oid)
    avg = {label: (sum(g for g, _ in rows) / len(rows), sum(d for _, d in rows) / len(rows) * 1e6)
           for label, rows in t.samples.items()}
    for step in ("place", "confirm"):
        (g1, w1), (gn, wn) = avg[f"{step}_one"], avg[f"{step}_cart"]
        _line("contracts", f"{step}_{CART_LINES}_lines_gas", gn, "gas", g1, gn / g1)
        _line("contracts", f"{step}_{CART_LINES}_lines_wall", wn, "us/call", w1, wn / w1)


#: Orders and transfers timed per variant in the currencies comparison.
CURRENCY_ROUNDS = 100


def currencies() -> None:
    """A transfer and a placement in a voted-in currency, and a placement part-paid with loyalty
    points, each against the same call in the base currency (baseline), per call."""
    from tests.commerce.test_currencies import _enact_currency
    from tests.commerce_harness import DAY

    c = Chain()
    c.publish_terms()
    _enact_currency(c, "EUR", 2, "treasury")
    c.ok("treasury", "ledger", "issue", "EUR", c.keys["buyer1"], 10**9)
    c.ok("merchant1", "loyalty", "create_program", "acme", 1_000, 30 * DAY)
    first = c.to_delivered(price=100_000)
    c.ok("buyer1", "orders", "confirm", first)
    c.advance(c.days(15))
    c.ok("buyer2", "orders", "poke", first)
    c.ok("merchant1", "loyalty", "award", "acme", first)
    c.ok("merchant1", "loyalty", "set_point_value", "acme", 1, 1_000)
    t = _Timed(c)
    terms = c.view("orders", "terms_hash_of", c.keys["merchant1"])
    base = [c.keys["merchant1"], [[h("product-1"), 1, 1_000, terms]]]
    for i in range(-WARMUP_ORDERS, CURRENCY_ROUNDS):
        if i == 0:
            t.samples.clear()
        tail = [h(f"pii{i}"), h(f"payload{i}"), h(f"rk{i}"), b"", b"", b""]
        t.call("transfer_base", "buyer1", "ledger", "transfer", c.keys["buyer2"], 10)
        t.call("transfer_eur", "buyer1", "ledger", "transfer_in", "EUR", c.keys["buyer2"], 10)
        t.call("place_base", "buyer1", "orders", "place", *base, *tail)
        t.call("place_eur", "buyer1", "orders", "place_in", *base, *tail, "EUR", "", 0)
        t.call("place_points", "buyer1", "orders", "place_in", *base, *tail, "", "acme", 10)
    avg = {label: (sum(g for g, _ in rows) / len(rows), sum(d for _, d in rows) / len(rows) * 1e6)
           for label, rows in t.samples.items()}
    for label, baseline in (("transfer_eur", "transfer_base"), ("place_eur", "place_base"),
                            ("place_points", "place_base")):
        (g, w), (g0, w0) = avg[label], avg[baseline]
        _line("contracts", f"{label}_gas", g, "gas", g0, g / g0)
        _line("contracts", f"{label}_wall", w, "us/call", w0, w / w0)


def main() -> None:
    from bench import multisig

    lifecycle()
    throughput()
    fusion()
    carts()
    currencies()
    multisig.main()


if __name__ == "__main__":
    main()
