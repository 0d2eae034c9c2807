"""Permissions: every transition called by every wrong party fails with a clear reason.

Each row sets up a chain where the transition is legal, lets every other account (and
an organisation admin) try it and expect a RequireFailed with a message, then lets the
right party do it, so a row cannot pass by the transition being impossible anyway.
Capability-guarded methods are tried from a transaction and from a contract that
lacks the capability.
"""

from __future__ import annotations

from typing import Callable

import pytest

from contracts_vm.api import install_contract
from ledger.crypto import sha256
from tests.commerce_harness import DAY, DEFAULT_ACCOUNTS, Chain, h

PRICE = 10_000
EVERYONE = list(DEFAULT_ACCOUNTS) + ["admin-platform", "admin-shops"]


def _placed(c: Chain) -> int:
    c.publish_terms()
    return c.place()


def _accepted(c: Chain) -> int:
    oid = _placed(c)
    c.ok("merchant1", "orders", "accept", oid, c.keys["carrier1"], h("label"))
    return oid


def _shipped(c: Chain) -> int:
    oid = _accepted(c)
    c.ok("merchant1", "orders", "ship", oid, h("t"), False)
    return oid


def _delivered(c: Chain) -> int:
    c.publish_terms()
    return c.to_delivered()


def _disputed(c: Chain) -> int:
    oid = _delivered(c)
    c.ok("buyer1", "orders", "dispute", oid, h("e"))
    return oid


def _case(c: Chain) -> int:
    oid = _delivered(c)
    return c.ok("buyer1", "cases", "open", oid, 0, "RETURN_REFUND", 1, PRICE, h("r"))


def _unit(c: Chain) -> bytes:
    c.publish_terms()
    unit = h("unit-p")
    c.ok("merchant1", "warranty", "register_unit", unit, h("product-1"))
    c.ok("merchant1", "warranty", "authorize_service", c.keys["service1"], True)
    oid = c.to_delivered()
    c.ok("buyer1", "orders", "confirm", oid)
    c.ok("buyer1", "warranty", "activate", unit, oid, 0)
    return unit


def _claim(c: Chain) -> int:
    return c.ok("buyer1", "warranty", "open_claim", _unit(c), h("issue"))


def _ticket(c: Chain) -> int:
    return c.ok("buyer1", "tickets", "open", _delivered(c), b"", h("q"))


def _countered(c: Chain) -> int:
    k = _case(c)
    c.ok("merchant1", "cases", "reply", k, False, 5_000)
    return k


def _agreed_return(c: Chain) -> int:
    k = _case(c)
    c.ok("merchant1", "cases", "reply", k, True, 0)
    return k


def _return_step(c: Chain, steps: int) -> int:
    k = _agreed_return(c)
    c.ok("buyer1", "cases", "return_shipped", k, h("rt"))
    if steps > 1:
        c.ok("merchant1", "cases", "return_received", k)
    return k


def _in_debt(c: Chain) -> int:
    oid = _delivered(c)
    c.ok("buyer1", "orders", "confirm", oid)
    k = c.ok("buyer1", "cases", "open", oid, 0, "REFUND_ONLY", 0, 5_000, h("r"))
    c.ok("merchant1", "cases", "reply", k, True, 0)
    return oid


def _accepted_claim(c: Chain) -> int:
    k = _claim(c)
    c.ok("merchant1", "warranty", "decide_claim", k, True)
    return k


def _serviced(c: Chain) -> bytes:
    unit = _unit(c)
    c.ok("service1", "warranty", "record_service", unit, "INSPECT", h("i"), False, 0)
    return unit


def _closed_in_program(c: Chain) -> int:
    c.ok("merchant1", "loyalty", "create_program", "p", 100, 10 * DAY)
    oid = _delivered(c)
    c.ok("buyer1", "orders", "confirm", oid)
    c.advance(c.days(15))
    c.ok("buyer1", "orders", "poke", oid)
    return oid


# (name, setup returning the subject, method call builder, parties allowed)
ROWS: list[tuple[str, Callable, Callable, set[str]]] = [
    ("orders.accept", _placed, lambda c, o: ("orders", "accept", o, c.keys["carrier1"], h("label")), {"merchant1"}),
    ("orders.reject", _placed, lambda c, o: ("orders", "reject", o), {"merchant1"}),
    ("orders.cancel(PLACED)", _placed, lambda c, o: ("orders", "cancel", o), {"buyer1"}),
    ("orders.ship", _accepted, lambda c, o: ("orders", "ship", o, h("t"), False), {"merchant1", "carrier1"}),
    ("orders.deliver", _shipped, lambda c, o: ("orders", "deliver", o, h("pod")), {"carrier1"}),
    ("orders.confirm", _delivered, lambda c, o: ("orders", "confirm", o), {"buyer1"}),
    ("orders.extend", _delivered, lambda c, o: ("orders", "extend", o), {"buyer1"}),
    ("orders.dispute", _delivered, lambda c, o: ("orders", "dispute", o, h("e")), {"buyer1", "merchant1"}),
    ("orders.rule", _disputed, lambda c, o: ("orders", "rule", o, PRICE, 0, 0), {"arbiter"}),
    ("orders.add_evidence", _disputed, lambda c, o: ("orders", "add_evidence", o, h("e2")),
     {"buyer1", "merchant1", "arbiter"}),
    ("orders.set_terms", lambda c: None, lambda c, o: ("orders", "set_terms", 3600, 3600, 3600, 3600, 3600, 0, 0, c.keys["arbiter"]),
     {"merchant1", "merchant2"}),
    ("loyalty.approve_referrer", lambda c: None,
     lambda c, o: ("loyalty", "approve_referrer", c.keys["referrer1"], 100, 10, 10), {"platform"}),
    ("orders.deposit_bond", lambda c: None, lambda c, o: ("orders", "deposit_bond", 10), {"merchant1", "merchant2"}),
    ("ledger.mint", lambda c: None, lambda c, o: ("ledger", "mint", c.keys["buyer1"], 5), {"treasury"}),
    ("identity.register", lambda c: None, lambda c, o: ("identity", "register", h("new"), ["BUYER"], b""),
     {"admin-platform", "admin-shops"}),
    ("identity.grant_role(AUDITOR)", lambda c: None,
     lambda c, o: ("identity", "grant_role", c.keys["buyer1"], "AUDITOR"), {"admin-platform"}),
    ("ledger.burn", lambda c: c.ok("treasury", "ledger", "mint", c.keys["treasury"], 10),
     lambda c, o: ("ledger", "burn", 5), {"treasury"}),
    ("cases.accept_counter", lambda c: _countered(c), lambda c, k: ("cases", "accept_counter", k), {"buyer1"}),
    ("cases.return_shipped", lambda c: _agreed_return(c), lambda c, k: ("cases", "return_shipped", k, h("rt")),
     {"buyer1"}),
    ("cases.return_received", lambda c: _return_step(c, 1), lambda c, k: ("cases", "return_received", k),
     {"merchant1"}),
    ("cases.refund_return", lambda c: _return_step(c, 2), lambda c, k: ("cases", "refund_return", k, 0),
     {"merchant1"}),
    ("orders.settle_debt", lambda c: _in_debt(c), lambda c, o: ("orders", "settle_debt", o), {"merchant1"}),
    ("warranty.fulfil_claim", lambda c: _accepted_claim(c),
     lambda c, k: ("warranty", "fulfil_claim", k, "REPAIR", h("r")), {"merchant1", "service1"}),
    ("warranty.contest", lambda c: _serviced(c), lambda c, u: ("warranty", "contest", u, 1, h("no")), {"buyer1"}),
    ("loyalty.award", lambda c: _closed_in_program(c), lambda c, o: ("loyalty", "award", "p", o), {"merchant1"}),
    ("loyalty.create_voucher", lambda c: None,
     lambda c, o: ("loyalty", "create_voucher", h("v"), b"", "FIXED", 5, 0, 0, c.after(10), 1, 1), {"merchant1"}),
    ("cases.open", _delivered, lambda c, o: ("cases", "open", o, 0, "RETURN_REFUND", 1, PRICE, h("r")), {"buyer1"}),
    ("cases.reply", _case, lambda c, k: ("cases", "reply", k, True, 0), {"merchant1"}),
    ("cases.withdraw", _case, lambda c, k: ("cases", "withdraw", k), {"buyer1"}),
    ("warranty.register_unit", lambda c: None, lambda c, o: ("warranty", "register_unit", h("u9"), h("p9")),
     {"merchant1", "merchant2"}),
    ("warranty.record_service", _unit, lambda c, u: ("warranty", "record_service", u, "INSPECT", h("i"), False, 0),
     {"merchant1", "service1"}),
    ("warranty.offer_transfer", _unit, lambda c, u: ("warranty", "offer_transfer", u, sha256(b"c"), c.after(5)),
     {"buyer1"}),
    ("warranty.open_claim", _unit, lambda c, u: ("warranty", "open_claim", u, h("i")), {"buyer1"}),
    ("warranty.decide_claim", _claim, lambda c, k: ("warranty", "decide_claim", k, True), {"merchant1", "service1"}),
    ("warranty.issue_recall", lambda c: None, lambda c, o: ("warranty", "issue_recall", h("p9"), h("why")),
     {"merchant1", "merchant2"}),
    ("reviews.hide", None, None, {"platform"}),   # filled in by the review fixture below
    ("tickets.assign", _ticket, lambda c, t: ("tickets", "assign", t, c.keys["merchant1"]), {"merchant1"}),
    ("tickets.resolve", _ticket, lambda c, t: ("tickets", "resolve", t, h("r")), {"merchant1"}),
    ("provenance.post", lambda c: None,
     lambda c, o: ("provenance", "post", "OBJECT", "OBSERVE", [h("i")], "inspecting", "", h("loc"), 0, 1, h("d"), 0,
                   b""), {"merchant1", "merchant2", "carrier1", "carrier2"}),
    ("loyalty.create_program", lambda c: None, lambda c, o: ("loyalty", "create_program", "p", 100, 10 * DAY),
     {"merchant1"}),
]


def _reviewed(c: Chain) -> int:
    """A live review of a ring of two orders (buyer1's, buyer2's), relayed by buyer3."""
    from ledger.crypto import SigningKey
    from tests.ring_reviews import publish_args

    c.publish_terms()
    keys = {}
    for b in ("buyer1", "buyer2"):
        rk = SigningKey.from_label("perm-review-" + b)
        oid = c.to_delivered(b, review_key_hash=sha256(rk.public_key))
        c.ok(b, "orders", "confirm", oid)
        c.ok(b, "reviews", "announce_key", oid, rk.public_key)
        keys[oid] = rk
    first = min(keys)
    return c.ok("buyer3", "reviews", "publish",
                *publish_args(keys[first], {o: k.public_key for o, k in keys.items()}, 0, [5] * 5, h("t")))


ROWS = [(n, _reviewed, lambda c, r: ("reviews", "hide", r, h("why")), a) if n == "reviews.hide" else (n, s, b, a)
        for n, s, b, a in ROWS]


@pytest.mark.parametrize("name,setup,build,allowed", ROWS, ids=[r[0] for r in ROWS])
def test_only_permitted_parties_succeed(name, setup, build, allowed):
    c = Chain()
    subject = setup(c)
    contract, method, *args = build(c, subject)
    for who in EVERYONE:
        if who in allowed:
            continue
        out = c.err(who, contract, method, *args)
        assert out.name == "RequireFailed" and len(out.message) > 10, (who, out)
    c.ok(sorted(allowed)[0], contract, method, *args)


@pytest.mark.parametrize("contract,method,args", [
    ("ledger", "lock", ["o1", b"\x01" * 32, 5]),
    ("ledger", "release", ["o1", b"\x01" * 32, 5, "refund"]),
    ("orders", "case_refund", [1, 0, 0, 5]),
    ("orders", "carrier_event", [1, b"\x01" * 32, "shipping", b"\x02" * 32]),
    ("loyalty", "redeem_voucher", [b"\x01" * 32, b"", b"\x01" * 32, b"\x01" * 32, 5, 1]),
    ("cases", "order_resolved", [1]),
    ("cases", "carrier_return", [1, b"\x01" * 32, "shipping", b"\x02" * 32]),
    ("loyalty", "claim_commission", [b"\x01" * 32, b"\x02" * 32, 100, 100, 100]),
    ("warranty", "link_ticket", [1, 1, b"\x01" * 32]),
])
def test_capability_methods_refuse_transactions(contract, method, args):
    c = Chain()
    out = c.err("platform", contract, method, *args)
    assert out.name == "PermissionDenied" and "requires capability" in out.message


ROGUE = '''
"""A contract without capabilities trying to take escrowed money."""


@public
def steal(key: str, to: bytes, amount: int) -> None:
    call("ledger", "release", key, to, amount, "refund")
'''


def test_contract_without_capability_cannot_release_escrow():
    c = Chain()
    c.publish_terms()
    oid = c.place()
    install_contract(c.state, "rogue", ROGUE, [])
    out = c.err("buyer2", "rogue", "steal", "o" + str(oid), c.keys["buyer2"], PRICE)
    assert out.name == "PermissionDenied"
    assert c.escrow(oid) == PRICE


def test_genesis_methods_closed_after_seal():
    c = Chain()
    for contract, method, args in [("identity", "genesis_org", ["x", [h("a")], False]),
                                   ("ledger", "genesis_credit", [h("a"), 5]),
                                   ("orders", "configure", [1, 1, 3600, 3600, h("a")])]:
        assert c.err(b"\x00" * 32, contract, method, *args).message in ("genesis is sealed", "only genesis may credit opening balances")
