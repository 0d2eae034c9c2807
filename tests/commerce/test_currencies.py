"""Currencies: the base one from genesis, further ones only by a passed governance proposal.

A currency has a code, a name, decimals and one issuer; its supply identity holds on its
own (supply = balances + escrow), events name the currency, and a stateful property test
drives random issues, transfers, escrow locks and releases and retirements across two
currencies and the base one.
"""

from __future__ import annotations

from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from contracts_vm.api import CallContext, execute_call, execute_view, install_contract
from contracts_vm.memstate import MemoryState
from contracts_vm.system import install_system_contracts
from ledger.genesis import Genesis, GenesisAccount, Organisation
from tests.commerce.test_governance import Gov
from tests.commerce_harness import key

GAS = 10_000_000


def test_genesis_names_the_base_currency_and_governance_adds_others():
    g = Gov()
    assert g.view("ledger", "currency") == {"code": "USD", "decimals": 2}
    assert g.view("ledger", "currency_list") == ["USD"]
    issuer = key("platform-acct")
    # No single key creates a currency: the method needs the governance capability.
    assert g.call(issuer, "ledger", "gov_create_currency", "EUR", "Euro", 2, issuer).error == "PermissionDenied"
    assert "must be an active account" in g.err(g.admin("platform"), "governance", "propose", "currency",
                                                 ["PTS", "Points", 0, key("stranger")], "x")
    g.enact("currency", ["EUR", "Euro", 2, issuer])
    assert g.view("ledger", "currency_list") == ["USD", "EUR"]
    eur = g.view("ledger", "get_currency", "EUR")
    assert eur["name"] == "Euro" and eur["decimals"] == 2 and eur["issuer"] == issuer and eur["supply"] == 0
    assert ("ledger", "CurrencyCreated") in [(e[0], e[1]) for e in g.events]
    assert "exists already" in g.err(g.admin("platform"), "governance", "propose", "currency",
                                     ["EUR", "Euro again", 2, issuer], "x")
    for bad, why in (("eu", "3..8 characters"), ("EU-R", "A-Z and 0-9")):
        pid = g.propose("currency", [bad, "Bad", 2, issuer])
        g.pass_(pid)
        g.wait()
        assert why in g.err(g.admin("service"), "governance", "execute", pid, b"")


def test_issue_transfer_retire_and_events_name_the_currency():
    g = Gov()
    issuer, buyer = key("platform-acct"), g.buyer
    g.enact("currency", ["PTS", "Shop points", 0, issuer])
    assert "only the issuer" in g.err(buyer, "ledger", "issue", "PTS", buyer, 10)
    g.ok(issuer, "ledger", "issue", "PTS", buyer, 500)
    g.ok(buyer, "ledger", "transfer_in", "PTS", issuer, 120)
    assert g.view("ledger", "balance_in", "PTS", buyer) == 380
    assert g.view("ledger", "balances_of", buyer) == [["USD", 5_000], ["PTS", 380]]
    assert "insufficient PTS balance: have 380, sending 381" in g.err(buyer, "ledger", "transfer_in", "PTS", issuer, 381)
    assert "no currency GBP" in g.err(buyer, "ledger", "transfer_in", "GBP", issuer, 1)
    g.ok(issuer, "ledger", "retire", "PTS", 100)
    assert g.view("ledger", "get_currency", "PTS")["supply"] == 400
    # The base code moves the base currency through the same call.
    g.ok(buyer, "ledger", "transfer_in", "USD", issuer, 250)
    assert g.view("ledger", "balance_of", buyer) == 4_750
    moved = [e for e in g.events if e[0] == "ledger" and e[1] in ("Minted", "Transfer", "Burned")]
    assert all("currency" in dict(e[2]) for e in moved), moved
    assert {dict(e[2])["currency"] for e in moved} == {"PTS", "USD"}


#: A contract installed with the escrow capability, as orders is: it locks and releases through
#: the ledger's ``*_in`` calls.
VAULT = """
@public
def hold(code: str, key: str, frm: bytes, amount: int) -> None:
    call("ledger", "lock_in", code, key, frm, amount)


@public
def pay(code: str, key: str, to: bytes, amount: int) -> None:
    call("ledger", "release_in", code, key, to, amount, "refund")
"""


class CurrencyMachine(RuleBasedStateMachine):
    """Random money movements in USD (base), EUR (2 decimals) and PTS (0), with an escrow
    contract holding funds; per currency, supply = balances + escrow and nothing is negative."""

    CODES = ("USD", "EUR", "PTS")

    def __init__(self) -> None:
        super().__init__()
        self.people = [key(f"cur-{i}") for i in range(3)]
        self.issuer = key("cur-issuer")
        self.admin = key("cur-admin")
        accts = tuple(GenesisAccount(k, "platform", ("BUYER",), 1_000, None) for k in self.people) + (
            GenesisAccount(self.issuer, "platform", ("PLATFORM",), 0, None),)
        self.state = MemoryState()
        install_system_contracts(self.state, Genesis("cur-test", 0, (Organisation("platform", "P", (self.admin,)),),
                                                     (), accts, {}))
        install_contract(self.state, "vault", VAULT, ["escrow"])
        self.now = 1_000
        for code, decimals in (("EUR", 2), ("PTS", 0)):
            pid = self._call(self.admin, "governance", "propose", "currency", [code, code, decimals, self.issuer], "x")
            self._call(self.admin, "governance", "vote", pid, True)
            self.now += 86_400_000 + 1_000          # past the timelock
            self._call(self.admin, "governance", "execute", pid, b"")
        assert self._view("currency_list") == list(self.CODES)
        self.locks: dict[tuple[str, str], int] = {}

    def _run(self, who, contract, method, *args):
        ctx = CallContext(sender=who, height=1, timestamp_ms=self.now, chain_id="cur-test")
        r = execute_call(self.state, contract, method, list(args), ctx, GAS)
        assert r.ok or r.error == "RequireFailed", (method, r.error, r.error_message)
        return r

    def _call(self, who, contract, method, *args):
        r = self._run(who, contract, method, *args)
        return r.return_value if r.ok else None

    @rule(code=st.sampled_from(CODES[1:]), who=st.integers(0, 2), amount=st.integers(1, 500))
    def issue(self, code, who, amount):
        self._call(self.issuer, "ledger", "issue", code, self.people[who], amount)

    @rule(code=st.sampled_from(CODES), a=st.integers(0, 2), b=st.integers(0, 2), amount=st.integers(1, 700))
    def transfer(self, code, a, b, amount):
        self._call(self.people[a], "ledger", "transfer_in", code, self.people[b], amount)

    @rule(code=st.sampled_from(CODES[1:]), amount=st.integers(1, 300))
    def retire(self, code, amount):
        self._call(self.issuer, "ledger", "retire", code, amount)

    @rule(code=st.sampled_from(CODES), who=st.integers(0, 2), amount=st.integers(1, 400))
    def lock(self, code, who, amount):
        r = self._run(self.people[0], "vault", "hold", code, f"e{who}", self.people[who], amount)
        if r.ok:
            self.locks[(code, f"e{who}")] = self.locks.get((code, f"e{who}"), 0) + amount

    @rule(code=st.sampled_from(CODES), who=st.integers(0, 2), to=st.integers(0, 2), amount=st.integers(0, 400))
    def release(self, code, who, to, amount):
        r = self._run(self.people[0], "vault", "pay", code, f"e{who}", self.people[to], amount)
        held = self.locks.get((code, f"e{who}"), 0)
        assert r.ok == (amount <= held), (r.error_message, amount, held)
        if r.ok:
            self.locks[(code, f"e{who}")] = held - amount

    def _view(self, method, *args):
        r = execute_view(self.state, "ledger", method, list(args), CallContext(sender=b"\x01" * 32, height=1), GAS)
        assert r.ok, r.error_message
        return r.return_value

    @invariant()
    def supply_identity_per_currency(self):
        holders = self.people + [self.issuer]
        for code in self.CODES:
            balances = [self._view("balance_in", code, k) for k in holders]
            assert min(balances) >= 0
            escrow = sum(self._view("escrow_in", code, "vault", f"e{i}") for i in range(3))
            assert escrow == sum(v for (c, _), v in self.locks.items() if c == code)
            record = self._view("get_currency", code)
            assert record["supply"] == sum(balances) + escrow, code
            assert record["escrowed"] == escrow
            if code == "USD":
                assert self._view("total_escrow") == escrow


TestCurrencies = CurrencyMachine.TestCase
TestCurrencies.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)


SHOP = """
@public
def pay(program: str, points: int, buyer: bytes, merchant: bytes, price: int, order_id: int) -> int:
    return call("loyalty", "pay_with_points", program, points, buyer, merchant, price, order_id)


@public
def refund(program: str, buyer: bytes, order_id: int) -> int:
    return call("loyalty", "restore_points", program, buyer, order_id)
"""


def test_points_pay_part_of_an_order_within_the_programs_rules():
    """What orders.place and a full refund ask of loyalty (capability "loyalty"), driven here by a
    stand-in contract: points of the merchant's own program, worth point_value each, pay at most
    max_pay_bps of the price; a full refund gives them back as a fresh lot; the supply identity holds."""
    from tests.commerce_harness import DAY, Chain
    c = Chain()
    c.publish_terms()
    install_contract(c.state, "shop", SHOP, ["loyalty"])
    c.ok("merchant1", "loyalty", "create_program", "acme", 1_000, 30 * DAY)      # 10% back in points
    for price in (10_000, 20_000):
        oid = c.to_delivered(price=price)
        c.ok("buyer1", "orders", "confirm", oid)
    c.advance(c.days(15))
    for oid in (1, 2):
        c.ok("buyer2", "orders", "poke", oid)
        c.ok("merchant1", "loyalty", "award", "acme", oid)
    assert c.view("loyalty", "balance_of", "acme", c.keys["buyer1"]) == 3_000
    buyer, merchant = c.keys["buyer1"], c.keys["merchant1"]
    assert "do not pay" in c.err("platform", "shop", "pay", "acme", 100, buyer, merchant, 5_000, 9).message
    assert "only the program's issuer" in c.err("buyer1", "loyalty", "set_point_value", "acme", 1, 5_000).message
    c.ok("merchant1", "loyalty", "set_point_value", "acme", 2, 2_000)            # a point pays 2, up to 20%
    assert "not this merchant's" in c.err("platform", "shop", "pay", "acme", 100, buyer, c.keys["merchant2"],
                                          5_000, 9).message
    assert "pay at most 1000 of this order" in c.err("platform", "shop", "pay", "acme", 501, buyer, merchant,
                                                     5_000, 9).message
    assert c.err("buyer1", "loyalty", "pay_with_points", "acme", 1, buyer, merchant, 5_000, 9).name == "PermissionDenied"
    assert c.ok("platform", "shop", "pay", "acme", 500, buyer, merchant, 5_000, 9) == 1_000
    assert c.view("loyalty", "balance_of", "acme", buyer) == 2_500
    assert c.ok("platform", "shop", "refund", "acme", buyer, 9) == 500
    assert c.ok("platform", "shop", "refund", "acme", buyer, 9) == 0             # once
    assert c.view("loyalty", "balance_of", "acme", buyer) == 3_000
    assert {"PointsPaid", "PointsRestored"} <= set(c.event_names())
    p = c.view("loyalty", "get_program", "acme")
    assert p["minted"] == p["redeemed"] + p["expired"] + p["clawed"] + c.view("loyalty", "held_in_lots", "acme", buyer)
    c.supply_check()
