"""A small chain for commerce tests: genesis accounts by role, signed calls, block heights and times.

How it works: ``Chain`` builds a genesis (organisations, accounts with roles and
balances, contract settings), installs the system contracts into an in-memory state
and then drives them exactly as the node would: ``execute_call`` with a CallContext
for the signer, the current height and the current block time. ``call`` returns the
method's result, or an ``Err`` carrying the VM's error name and message (the state is
unchanged then); ``ok`` insists on success and ``err`` on a failure. ``advance`` moves
the height and the block time: by default each block is a tenth of a day
(TEST_BLOCKS_PER_DAY), so ``advance(c.days(3) + 1)`` crosses a three-day deadline, and
``advance(n, seconds=s)`` makes n blocks in s seconds (back to back under load).
A call's signing key is resolved to its account as the node's executor does
(``resolve_signer``): after a rotation the new key acts for the same account id, and
a rotated-out key's call fails with ``RotatedKey``. Keys that are no account's reach
the contracts as they are (the contracts' own checks are what these tests exercise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contracts_vm.api import CallContext, execute_call, execute_view
from contracts_vm.memstate import MemoryState
from contracts_vm.system import (ROTATED_KEY, install_system_contracts, key_proof_message, resolve_signer,
                                 warranty_claim_commitment)
from ledger.crypto import SigningKey, sha256

from ledger.genesis import Genesis, GenesisAccount, Organisation

#: Gas limit of every test call (well above any single commerce call).
CALL_GAS = 10_000_000
#: Opening balance of every buyer and merchant.
OPENING_BALANCE = 1_000_000
#: Blocks per day of block time in tests by default: few, so deadlines are reached with few advances.
TEST_BLOCKS_PER_DAY = 10
#: Seconds in a day; contracts take every period in seconds.
DAY = 86_400
#: The block time of the test genesis (2026-01-01T00:00:00Z) in ms.
GENESIS_TIME_MS = 1_767_225_600_000

ORG_OF_ROLE = {"PLATFORM": "platform", "TREASURY": "platform", "ARBITER": "platform", "AUDITOR": "platform",
               "BUYER": "platform", "MERCHANT": "shops", "ISSUER": "shops", "CARRIER": "logistics",
               "SERVICE_CENTER": "service"}


@dataclass(frozen=True)
class Err:
    name: str
    message: str

    def __bool__(self) -> bool:
        return False


def key(label: str) -> bytes:
    return SigningKey.from_label(label).public_key


def h(label: str) -> bytes:
    """A 32-byte hash standing in for a commitment (tracking number, evidence, content)."""
    return sha256(label.encode("utf-8"))


DEFAULT_ACCOUNTS = {
    "platform": ["PLATFORM"], "treasury": ["TREASURY"], "arbiter": ["ARBITER"], "arbiter2": ["ARBITER"],
    "auditor": ["AUDITOR"], "buyer1": ["BUYER"], "buyer2": ["BUYER"], "buyer3": ["BUYER"],
    "merchant1": ["MERCHANT", "ISSUER"], "merchant2": ["MERCHANT"], "carrier1": ["CARRIER"],
    "carrier2": ["CARRIER"], "service1": ["SERVICE_CENTER"], "referrer1": ["BUYER"],
}


class Chain:
    def __init__(self, accounts: dict[str, list[str]] | None = None, settings: dict | None = None) -> None:
        self.accounts = dict(accounts or DEFAULT_ACCOUNTS)
        self.keys = {name: key(name) for name in self.accounts}
        self.names = {k: n for n, k in self.keys.items()}
        self.admins = {org: key("admin-" + org) for org in ("platform", "shops", "logistics", "service")}
        base: dict = {}
        for k, v in (settings or {}).items():
            base.setdefault(k, {}).update(v)
        orgs = tuple(Organisation(o, o.title(), (self.admins[o],)) for o in self.admins)
        accts = tuple(GenesisAccount(self.keys[n], ORG_OF_ROLE[roles[0]], tuple(sorted(roles)),
                                     OPENING_BALANCE if roles[0] in ("BUYER", "MERCHANT") else 0, None)
                      for n, roles in self.accounts.items())
        self.genesis = Genesis("commerce-test", GENESIS_TIME_MS, orgs, (), accts, base)
        self.state = MemoryState()
        install_system_contracts(self.state, self.genesis)
        self.height = 1
        self.time_ms = GENESIS_TIME_MS + DAY * 1000 // TEST_BLOCKS_PER_DAY
        self.events: list = []
        self.gas_log: list = []
        self.signing: dict[str, bytes] = {}  # name -> its current key, once it rotated (keys keeps the ids)

    def by_role(self, role: str) -> list[str]:
        """Names of the genesis accounts holding ``role``."""
        return [n for n, roles in self.accounts.items() if role in roles]

    def advance(self, blocks: int = 1, seconds: float | None = None) -> int:
        """Move ``blocks`` blocks on, and the block time by ``seconds`` (default: a tenth of a day a block)."""
        self.height += blocks
        self.time_ms += round(1000 * seconds) if seconds is not None else blocks * DAY * 1000 // TEST_BLOCKS_PER_DAY
        return self.height

    def days(self, n: int) -> int:
        """The number of default-paced blocks that take ``n`` days of block time."""
        return n * TEST_BLOCKS_PER_DAY

    def after(self, blocks: int) -> int:
        """The block time (unix seconds) ``blocks`` default-paced blocks from now: for expiry arguments."""
        return self.now + blocks * DAY // TEST_BLOCKS_PER_DAY

    @property
    def now(self) -> int:
        """The current block time in unix seconds, as the contracts see it."""
        return self.time_ms // 1000

    def sender(self, who: str | bytes) -> bytes:
        """The key ``who`` signs with now: its latest rotated key, else its account id (or admin key)."""
        if isinstance(who, bytes):
            return who
        return self.signing.get(who) or self.keys.get(who) or self.admins[who.removeprefix("admin-")]

    def account(self, who: str | bytes) -> bytes:
        """The account id ``who`` (a name, or any key it ever signed with) acts for."""
        if isinstance(who, bytes):
            return resolve_signer(self.state, who).account or who
        return self.keys.get(who) or self.admins[who.removeprefix("admin-")]

    def call(self, who: str | bytes, contract: str, method: str, *args: Any) -> Any:
        key = self.sender(who)
        signer = resolve_signer(self.state, key)
        if signer.refusal is not None and signer.refusal[0] == ROTATED_KEY:
            return Err(*signer.refusal)
        account = signer.account or key
        ctx = CallContext(sender=account, height=self.height, timestamp_ms=self.time_ms, chain_id="commerce-test",
                          origin=account)
        result = execute_call(self.state, contract, method, list(args), ctx, CALL_GAS)
        self.gas_log.append((contract, method, result.gas_used))
        if not result.ok:
            return Err(result.error, result.error_message)
        self.events.extend(result.events)
        return result.return_value

    def ok(self, who: str | bytes, contract: str, method: str, *args: Any) -> Any:
        out = self.call(who, contract, method, *args)
        assert not isinstance(out, Err), f"{contract}.{method} by {who} failed: {out.name}: {out.message}"
        return out

    def err(self, who: str | bytes, contract: str, method: str, *args: Any) -> Err:
        out = self.call(who, contract, method, *args)
        assert isinstance(out, Err), f"{contract}.{method} by {who} should have failed but returned {out!r}"
        return out

    def claim_unit(self, who: str, unit: bytes, code: bytes) -> Any:
        """Take ``unit`` over by commit-reveal: commit, one block (a second) later reveal ``code``."""
        commitment = warranty_claim_commitment(unit, self.account(who), code)
        committed = self.call(who, "warranty", "commit_claim", unit, commitment)
        if isinstance(committed, Err):
            return committed
        self.advance(1, seconds=1)
        return self.call(who, "warranty", "claim_transfer", unit, code)

    def key_proof(self, account: bytes, new_key: SigningKey) -> bytes:
        """The new key's proof of possession for moving ``account`` to it (rotation or recovery)."""
        return new_key.sign_raw(key_proof_message("commerce-test", account, new_key.public_key))

    def rotate(self, who: str | bytes, new_label: str) -> bytes:
        """``who`` (a name or its current key) rotates its account to the key labelled ``new_label``;
        a name signs with the new key from then on."""
        new_key = SigningKey.from_label(new_label)
        key, account = self.sender(who), self.account(who)
        self.ok(key, "identity", "rotate_signing_key", new_key.public_key, self.key_proof(account, new_key))
        if isinstance(who, str):
            self.signing[who] = new_key.public_key
        return new_key.public_key

    def view(self, contract: str, method: str, *args: Any) -> Any:
        ctx = CallContext(sender=b"\x01" * 32, height=self.height, timestamp_ms=self.time_ms)
        result = execute_view(self.state, contract, method, list(args), ctx, CALL_GAS)
        assert result.ok, f"view {contract}.{method} failed: {result.error}: {result.error_message}"
        return result.return_value

    def balance(self, who: str | bytes) -> int:
        return self.view("ledger", "balance_of", self.account(who))

    def escrow(self, order_id: int) -> int:
        return self.view("ledger", "escrow_of", "orders", "o" + str(order_id))

    def order(self, order_id: int) -> dict:
        return self.view("orders", "get_order", order_id)

    def event_names(self) -> list[str]:
        return [e[1] for e in self.events]

    # ---- commerce shortcuts ----------------------------------------------------------

    def publish_terms(self, merchant: str = "merchant1", *, accept_days: int = 2, handling_days: int = 3,
                      transit_days: int = 5, auto_confirm_days: int = 7, return_days: int = 14,
                      restock_bps: int = 1000, warranty_days: int = 365, arbiter: str = "arbiter") -> bytes:
        """Terms in whole days (the contract takes seconds)."""
        return self.ok(merchant, "orders", "set_terms", accept_days * DAY, handling_days * DAY, transit_days * DAY,
                       auto_confirm_days * DAY, return_days * DAY, restock_bps, warranty_days * DAY, self.keys[arbiter])

    def publish_terms_named(self, name: str, merchant: str = "merchant1", *, accept_days: int = 2,
                            handling_days: int = 3, transit_days: int = 5, auto_confirm_days: int = 7,
                            return_days: int = 14, restock_bps: int = 1000, warranty_days: int = 365,
                            arbiter: str = "arbiter") -> bytes:
        """A named terms set (``set_named_terms``) in whole days; returns its hash for cart lines."""
        return self.ok(merchant, "orders", "set_named_terms", name, accept_days * DAY, handling_days * DAY,
                       transit_days * DAY, auto_confirm_days * DAY, return_days * DAY, restock_bps,
                       warranty_days * DAY, self.keys[arbiter])

    def place(self, buyer: str = "buyer1", merchant: str = "merchant1", price: int = 10_000, *,
              product: bytes | None = None, review_key_hash: bytes | None = None, referrer: bytes = b"",
              voucher: bytes = b"", voucher_code: bytes = b"", quantity: int = 1,
              lines: list | None = None) -> Any:
        """Place an order. By default one line of ``quantity`` units costing ``price`` in all (a multiple of
        the quantity) under the merchant's default terms; ``lines`` gives a cart instead: each
        ``(product, quantity, unit_price)`` or ``(product, quantity, unit_price, terms_hash)``."""
        default_terms = self.view("orders", "terms_hash_of", self.keys[merchant])
        if lines is None:
            assert price % quantity == 0, "the one-line shorthand takes a total that the quantity divides"
            lines = [(product or h("product-1"), quantity, price // quantity)]
        cart = [[ln[0], ln[1], ln[2], ln[3] if len(ln) > 3 else default_terms] for ln in lines]
        return self.call(buyer, "orders", "place", self.keys[merchant], cart, h("pii-" + buyer), h("payload-" + buyer),
                         review_key_hash or h("rk-" + buyer), referrer, voucher, voucher_code)

    def to_delivered(self, buyer: str = "buyer1", merchant: str = "merchant1", price: int = 10_000,
                     carrier: str = "carrier1", **kw: Any) -> int:
        oid = self.place(buyer, merchant, price, **kw)
        assert not isinstance(oid, Err), oid
        self.ok(merchant, "orders", "accept", oid, self.keys[carrier], h("label"))
        self.ok(carrier, "orders", "ship", oid, h(f"track-{oid}"), False)
        self.ok(carrier, "orders", "deliver", oid, h(f"pod-{oid}"))
        return oid

    def supply_check(self, extra_escrows: list[tuple[str, str]] = ()) -> None:
        """E1: every balance plus every escrow equals the supply (the harness knows every key)."""
        total = sum(self.view("ledger", "balance_of", k) for k in list(self.keys.values()) + list(self.admins.values()))
        n = self.view("orders", "order_count")
        esc = sum(self.view("ledger", "escrow_of", "orders", "o" + str(i)) for i in range(1, n + 1))
        esc += sum(self.view("ledger", "escrow_of", "orders", "b" + k.hex()) for k in self.keys.values())
        esc += sum(self.view("ledger", "escrow_of", c, k) for c, k in extra_escrows)
        assert esc == self.view("ledger", "total_escrow"), "escrow total differs from the sum of escrows"
        assert total + esc == self.view("ledger", "total_supply"), "conservation (E1) broken"
