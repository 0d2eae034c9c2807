"""Key rotation and governed recovery keep an account's business, through the real node core.

A lone validator's NodeCore (mempool admission, block building, the executor with
fees, atomic commits) runs the devnet's consortium: a merchant with terms, a bond and
a registered unit, a buyer with a balance, two orders in escrow and a ticket. Both
rotate their signing keys; the orders complete and refund with the new keys to the
exact minor unit, the passport activates to the buyer's account and its owner opens
a ticket with the new key, the old keys are refused at admission and in blocks from
their rotation height (also an old-key transaction that was already pending), and a
lost key is replaced by a recovery proposal the organisations vote through.
"""

from __future__ import annotations

import pytest

from contracts_vm.system import key_proof_message
from ledger.crypto import SigningKey, sha256
from ledger.types import TxBody
from node.client import key_proof
from node.core.mempool import ROTATED_KEY, MempoolError
from tests.node.test_node_core import make_core, propose_next
from tests.sim.corenode import account_key
from contracts_vm.system import DAY

GAS = 2_000_000
PRICE, SMALL_PRICE, BOND = 10_000, 3_000, 5_000


def h(label: str) -> bytes:
    return sha256(label.encode())


class Story:
    """Signs as the parties, commits one block per step, books every fee each account pays."""

    def __init__(self) -> None:
        self.core, self.host, self.kv, self.clock = make_core()
        self.chain_id = self.core.genesis.chain_id
        self.fees: dict[bytes, int] = {}

    def raw(self, key: SigningKey, contract: str, method: str, *args, nonce: int | None = None) -> bytes:
        n = self.core.chain.nonce(key.public_key) if nonce is None else nonce
        return TxBody(self.chain_id, key.public_key, n, contract, method, list(args), GAS).sign(key).encode()

    def block(self, txs: list) -> list:
        """Commit the next block with ``txs``; returns its receipts (and books their fees)."""
        propose_next(self.core, self.host, self.clock, txs)
        block, outcome = self.host.committed_blocks[-1]
        for tx, receipt in zip(block.txs, outcome.receipts):
            account = self.core.chain.account_of(tx.body.sender)
            self.fees[account] = self.fees.get(account, 0) + receipt.fee
        return outcome.receipts

    def send(self, key: SigningKey, contract: str, method: str, *args):
        """Admit through the mempool, commit, insist on success; returns the return value."""
        tx = self.core.submit(self.raw(key, contract, method, *args), 0.0)
        (receipt,) = self.block([tx])
        assert receipt.status == 0, f"{contract}.{method}: {receipt.error}"
        return receipt.return_value

    def view(self, contract: str, method: str, *args):
        from node.core.executor import call_view

        result = call_view(self.core.chain.state, contract, method, list(args), self.core.chain.height, self.chain_id)
        assert result.ok, result.error_message
        return result.return_value

    def balance(self, account: bytes) -> int:
        return self.view("ledger", "balance_of", account)

    def rotate(self, key: SigningKey, new: SigningKey) -> int:
        account = self.core.chain.account_of(key.public_key)
        self.send(key, "identity", "rotate_signing_key", new.public_key, key_proof(self.chain_id, account, new))
        return self.core.chain.height

    def refused_at_admission(self, key: SigningKey, contract: str, method: str, *args) -> MempoolError:
        with pytest.raises(MempoolError) as info:
            self.core.submit(self.raw(key, contract, method, *args), 0.0)
        return info.value


def test_rotated_keys_keep_orders_escrow_bond_terms_tickets_and_passport_and_recovery_replaces_a_lost_key():
    s = Story()
    merchant, buyer = account_key("merchant-acme"), account_key("buyer-1")
    carrier, arbiter = account_key("carrier"), account_key("arbiter")
    m_id, b_id = merchant.public_key, buyer.public_key          # account ids: the keys they were registered with
    m_start, b_start = s.balance(m_id), s.balance(b_id)

    # The merchant publishes terms, posts a bond and registers a unit; the buyer orders twice and opens a ticket.
    s.send(merchant, "orders", "set_terms", 2 * DAY, 3 * DAY, 5 * DAY, 7 * DAY, 14 * DAY, 1000, 365 * DAY, arbiter.public_key)
    s.send(merchant, "orders", "deposit_bond", BOND)
    unit, product = h("unit-1"), h("product-1")
    s.send(merchant, "warranty", "register_unit", unit, product)
    terms = s.view("orders", "terms_hash_of", m_id)
    place = lambda key, price: s.send(key, "orders", "place", m_id, [[product, 1, price, terms]], h("pii"),  # noqa: E731
                                      h("payload"), h("review-key"), b"", b"", b"")
    big, small = place(buyer, PRICE), place(buyer, SMALL_PRICE)
    ticket = s.send(buyer, "tickets", "open", big, b"", h("where is it"))
    assert s.view("ledger", "escrow_of", "orders", "o" + str(big)) == PRICE

    # The merchant rotates; its old key is refused at admission from that height, naming account and height.
    merchant2 = account_key("merchant-acme-rotated")
    rotated_at = s.rotate(merchant, merchant2)
    refusal = s.refused_at_admission(merchant, "orders", "accept", big, carrier.public_key, h("label"))
    assert refusal.reason == ROTATED_KEY
    assert str(refusal) == (f"key {m_id.hex()} was rotated out of account {m_id.hex()} at height {rotated_at}; "
                            f"sign with the account's current key")
    assert s.view("identity", "account_of", merchant2.public_key) == [m_id, merchant2.public_key, 0]
    assert s.view("identity", "account_of", m_id) == [m_id, merchant2.public_key, rotated_at]
    assert s.core.chain.nonce(merchant2.public_key) == s.core.chain.nonce(m_id) == 4   # the sequence continues

    # The buyer rotates with an old-key transaction still pending behind the rotation: it is included and refused.
    buyer2 = account_key("buyer-1-rotated")
    nonce = s.core.chain.nonce(b_id)
    rotation = s.core.submit(s.raw(buyer, "identity", "rotate_signing_key", buyer2.public_key,
                                   key_proof(s.chain_id, b_id, buyer2), nonce=nonce), 0.0)
    pending = s.core.submit(s.raw(buyer, "ledger", "transfer", m_id, 1, nonce=nonce + 1), 0.0)
    assert s.block([rotation])[0].status == 0
    buyer_rotated_at = s.core.chain.height
    assert pending.tx_id in s.core.mempool   # its nonce is the account's next one: it goes into the next block
    (late,) = s.block(s.core.mempool.reap(10, 1 << 20, 10 * GAS))
    assert late.status == 1 and late.fee == 0 and late.error == (
        f"RotatedKey: key {b_id.hex()} was rotated out of account {b_id.hex()} at height {buyer_rotated_at}; "
        f"sign with the account's current key")
    assert pending.tx_id not in s.core.mempool
    assert s.refused_at_admission(buyer, "orders", "cancel", small).reason == ROTATED_KEY

    # The new keys drive everything the old ones left: the order completes, the other refunds, the ticket resolves.
    s.send(merchant2, "orders", "accept", big, carrier.public_key, h("label"))
    s.send(carrier, "orders", "ship", big, h("track"), False)
    s.send(carrier, "orders", "deliver", big, h("pod"))
    s.send(buyer2, "orders", "confirm", big)
    s.send(buyer2, "orders", "cancel", small)
    assert [s.view("orders", "get_order", o)["state"] for o in (big, small)] == ["COMPLETED", "CANCELLED"]
    assert s.view("orders", "get_order", big)["buyer"] == b_id
    s.send(merchant2, "tickets", "resolve", ticket, h("sent again"))
    assert s.view("tickets", "get_ticket", ticket)["state"] == "RESOLVED"
    s.send(buyer2, "warranty", "activate", unit, big, 0)
    assert s.view("warranty", "get_passport", unit)["owner"] == b_id
    unit_ticket = s.send(buyer2, "tickets", "open", 0, unit, h("it rattles"))
    assert s.view("tickets", "get_ticket", unit_ticket)["owner"] == b_id
    s.send(merchant2, "orders", "withdraw_bond", BOND)
    fee, holdback = PRICE * 250 // 10_000, PRICE * 1000 // 10_000
    assert s.balance(m_id) == m_start - s.fees[m_id] + PRICE - fee - holdback
    assert s.balance(b_id) == b_start - s.fees[b_id] - PRICE
    assert s.view("ledger", "escrow_of", "orders", "o" + str(big)) == holdback
    assert s.view("ledger", "escrow_of", "orders", "o" + str(small)) == 0

    # The buyer loses its key. Only its own organisation may ask; the organisations vote it through.
    platform, acme = account_key("platform-admin"), merchant2     # acme's admin key travelled with the account
    buyer3 = account_key("buyer-1-recovered")
    args = [b_id, buyer3.public_key, key_proof(s.chain_id, b_id, buyer3)]
    tx = s.core.submit(s.raw(acme, "governance", "propose", "recover_account", args, "lost phone"), 0.0)
    (wrong_org,) = s.block([tx])
    assert wrong_org.status == 1 and "only an admin of organisation platform" in wrong_org.error
    pid = s.send(platform, "governance", "propose", "recover_account", args, "buyer-1 lost its phone")
    for voter in (platform, acme, account_key("merchant-globex"), carrier):
        s.send(voter, "governance", "vote", pid, True)
    s.clock[0] += 61_000   # past the devnet's 60 s timelock of block time
    s.send(account_key("buyer-2"), "governance", "execute", pid, b"")
    recovered_at = s.core.chain.height
    assert s.view("identity", "account_of", buyer3.public_key) == [b_id, buyer3.public_key, 0]
    refusal = s.refused_at_admission(buyer2, "ledger", "transfer", m_id, 1)
    assert refusal.reason == ROTATED_KEY and f"at height {recovered_at}" in str(refusal)
    before = s.balance(m_id)
    s.send(buyer3, "ledger", "transfer", m_id, 25)
    assert s.balance(m_id) == before + 25
    assert s.balance(b_id) == b_start - s.fees[b_id] - PRICE - 25
    assert s.view("identity", "has_role", b_id, "BUYER")


def test_a_rotation_needs_the_new_keys_proof_and_a_free_key():
    s = Story()
    buyer, other = account_key("buyer-2"), account_key("buyer-3")
    fresh = SigningKey.from_label("fresh")
    forged = fresh.sign_raw(key_proof_message(s.chain_id, other.public_key, fresh.public_key))  # for another account
    tx = s.core.submit(s.raw(buyer, "identity", "rotate_signing_key", fresh.public_key, forged), 0.0)
    (bad_proof,) = s.block([tx])
    assert bad_proof.status == 1 and "the proof is not the new key's signature" in bad_proof.error
    taken = other.public_key
    tx = s.core.submit(s.raw(buyer, "identity", "rotate_signing_key", taken, key_proof(s.chain_id, buyer.public_key,
                                                                                      other)), 0.0)
    (squat,) = s.block([tx])
    assert squat.status == 1 and "is already an account's key" in squat.error
    assert s.core.chain.is_registered(buyer.public_key)
