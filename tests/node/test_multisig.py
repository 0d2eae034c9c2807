"""Signing policies through the real node core: k of n+1 signatures above a spend limit.

A lone validator's NodeCore (admission, the executor with fees, commits) runs the
devnet consortium. The merchant sets a policy (two co-signers, threshold 2, a spend
limit): small transfers pass with its key alone, a large transfer or bond deposit is
reverted naming the spend, the limit, the threshold and the signatures present, and
passes once co-signed; changing or clearing the policy and rotating keys need the
threshold; admission refuses co-signatures from keys outside the policy, bad
co-signatures, and a copy with forged co-signatures never rides on a verified id; a
governance recovery clears the policy. Limits per window of block time add up across
transactions and reset when the window has passed.
"""

from __future__ import annotations

import pytest

from contracts_vm.system import cosigner_proof_message
from ledger import encoding
from ledger.crypto import SigningKey
from ledger.types import SignedTx, TxBody
from node.client import key_proof
from node.core.mempool import BAD_COSIGNER, BAD_SIGNATURE, MALFORMED, MempoolError
from node.core.spend import read_window
from tests.node.test_account_rotation import GAS, Story
from tests.sim.corenode import account_key

LIMIT = 1_000
BIG = 5_000


class CoStory(Story):
    """The rotation story's driver, with co-signatures."""

    def raw(self, key: SigningKey, contract: str, method: str, *args, nonce: int | None = None,
            cosign: tuple[SigningKey, ...] = ()) -> bytes:
        n = self.core.chain.nonce(key.public_key) if nonce is None else nonce
        tx = TxBody(self.chain_id, key.public_key, n, contract, method, list(args), GAS).sign(key)
        for co in cosign:
            tx = tx.cosigned_by(co)
        return tx.encode()

    def run(self, key: SigningKey, contract: str, method: str, *args, cosign: tuple[SigningKey, ...] = ()):
        """Admit and commit; return the receipt whatever its status."""
        tx = self.core.submit(self.raw(key, contract, method, *args, cosign=cosign), 0.0)
        (receipt,) = self.block([tx])
        return receipt

    def ok(self, key: SigningKey, contract: str, method: str, *args, cosign: tuple[SigningKey, ...] = ()):
        receipt = self.run(key, contract, method, *args, cosign=cosign)
        assert receipt.status == 0, f"{contract}.{method}: {receipt.error}"
        return receipt

    def refused(self, key: SigningKey, contract: str, method: str, *args, cosign: tuple[SigningKey, ...] = ()):
        with pytest.raises(MempoolError) as info:
            self.core.submit(self.raw(key, contract, method, *args, cosign=cosign), 0.0)
        return info.value

    def set_policy(self, key: SigningKey, account: bytes, cosigners: list[SigningKey], threshold: int,
                   limit: int, window_ms: int = 0, cosign: tuple[SigningKey, ...] = ()):
        proofs = [c.sign_raw(cosigner_proof_message(self.chain_id, account, c.public_key)) for c in cosigners]
        return self.run(key, "identity", "set_signing_policy", [c.public_key for c in cosigners], proofs,
                        threshold, limit, window_ms, cosign=cosign)


def merchant_story(window_ms: int = 0):
    s = CoStory()
    merchant, c1, c2 = account_key("merchant-acme"), SigningKey.from_label("cfo"), SigningKey.from_label("ceo")
    receipt = s.set_policy(merchant, merchant.public_key, [c1, c2], 2, LIMIT, window_ms)
    assert receipt.status == 0, receipt.error
    return s, merchant, c1, c2


def test_below_the_limit_one_key_suffices_above_it_the_spend_is_reverted_until_co_signed():
    s, merchant, c1, c2 = merchant_story()
    m_id, buyer = merchant.public_key, account_key("buyer-1").public_key
    viewed, direct = s.view("identity", "signing_policy", m_id), s.core.chain.signing_policy(m_id)
    assert direct.cosigners == (c1.public_key, c2.public_key)       # the node's direct read agrees with the view
    assert (tuple(viewed["cosigners"]), viewed["threshold"], viewed["spend_limit"], viewed["window_ms"]) == (
        direct.cosigners, direct.threshold, direct.spend_limit, direct.window_ms) == (direct.cosigners, 2, LIMIT, 0)

    start_m, start_b, fees_before = s.balance(m_id), s.balance(buyer), s.fees[m_id]
    s.ok(merchant, "ledger", "transfer", buyer, LIMIT)                    # at the limit: one key is enough
    big = s.run(merchant, "ledger", "transfer", buyer, BIG)
    assert big.status == 1 and big.fee > 0 and big.events == []
    assert big.error == (
        f"SpendLimit: this transaction moves {BIG} out of account 0x{m_id.hex()}; with fewer than 2 of 3 "
        f"signatures its signing policy allows {LIMIT} per transaction; it carries 1 (the account's key; "
        f"co-signers from the policy: none); add co-signatures (shopchain ... --cosign KEY, or shopchain tx "
        f"cosign) to reach the threshold")
    assert s.balance(buyer) == start_b + LIMIT                            # reverted: only the fee left
    s.ok(merchant, "ledger", "transfer", buyer, BIG, cosign=(c2,))
    assert s.balance(buyer) == start_b + LIMIT + BIG
    assert s.balance(m_id) == start_m - LIMIT - BIG - (s.fees[m_id] - fees_before)

    # Escrow locks count as spending too (a bond deposit), and money coming back does not.
    bond = s.run(merchant, "orders", "deposit_bond", BIG)
    assert bond.status == 1 and bond.error.startswith(f"SpendLimit: this transaction moves {BIG} ")
    s.ok(merchant, "orders", "deposit_bond", BIG, cosign=(c1, c2))
    assert s.view("ledger", "escrow_of", "orders", "b" + m_id.hex()) == BIG
    s.ok(merchant, "orders", "withdraw_bond", BIG)                         # an inflow: one key is enough
    assert s.view("ledger", "escrow_of", "orders", "b" + m_id.hex()) == 0


def test_changing_or_clearing_the_policy_and_rotating_keys_need_the_threshold():
    s, merchant, c1, c2 = merchant_story()
    m_id = merchant.public_key
    c3 = SigningKey.from_label("auditor-phone")
    weaker = s.set_policy(merchant, m_id, [c3], 2, 10**12)
    assert weaker.status == 1 and weaker.error.endswith(
        "changing the signing policy needs 2 of 3 signatures (the account's key and its co-signers), found 1")
    cleared = s.run(merchant, "identity", "clear_signing_policy")
    assert cleared.status == 1 and "clearing the signing policy needs 2 of 3 signatures" in cleared.error
    new_key = account_key("merchant-acme-rotated")
    rotation = s.run(merchant, "identity", "rotate_signing_key", new_key.public_key, key_proof(s.chain_id, m_id, new_key))
    assert rotation.status == 1 and "rotating the signing key needs 2 of 3 signatures" in rotation.error
    enc = s.run(merchant, "identity", "rotate_encryption_key", b"\x07" * 32)
    assert enc.status == 1 and "rotating the encryption key needs 2 of 3" in enc.error
    to_cosigner = s.run(merchant, "identity", "rotate_signing_key", c1.public_key, key_proof(s.chain_id, m_id, c1),
                        cosign=(c2,))
    assert to_cosigner.status == 1 and "is one of the account's co-signers" in to_cosigner.error

    # With a co-signature the rotation passes; the new key and a co-signer still meet the threshold.
    s.ok(merchant, "identity", "rotate_signing_key", new_key.public_key, key_proof(s.chain_id, m_id, new_key),
         cosign=(c1,))
    retired = s.set_policy(new_key, m_id, [merchant], 2, 10**12, cosign=(c1,))
    assert retired.status == 1 and "is a retired signing key of this account" in retired.error
    assert s.run(new_key, "ledger", "transfer", account_key("buyer-1").public_key, BIG).status == 1
    s.ok(new_key, "ledger", "transfer", account_key("buyer-1").public_key, BIG, cosign=(c1,))
    assert s.set_policy(new_key, m_id, [c3], 2, 10**12, cosign=(c2,)).status == 0
    assert s.core.chain.signing_policy(m_id).cosigners == (c3.public_key,)
    s.ok(new_key, "identity", "clear_signing_policy", cosign=(c3,))
    assert s.core.chain.signing_policy(m_id) is None
    s.ok(new_key, "ledger", "transfer", account_key("buyer-1").public_key, BIG)   # one key moves everything again


def test_a_policy_must_be_satisfiable_and_every_co_signer_must_prove_possession():
    s = CoStory()
    buyer, c1 = account_key("buyer-2"), SigningKey.from_label("buyer-2-phone")
    b_id = buyer.public_key
    assert s.set_policy(buyer, b_id, [c1], 3, LIMIT).error.endswith("expected 2..2, found 3")
    assert "expected 2..2, found 1" in s.set_policy(buyer, b_id, [c1], 1, LIMIT).error
    assert "own signing key cannot be its co-signer" in s.set_policy(buyer, b_id, [buyer], 2, LIMIT).error
    assert "listed twice" in s.set_policy(buyer, b_id, [c1, c1], 2, LIMIT).error
    forged = s.run(buyer, "identity", "set_signing_policy", [c1.public_key], [b"\x01" * 64], 2, LIMIT, 0)
    assert forged.status == 1 and "proof 0 is not co-signer 0x" in forged.error
    nine = [SigningKey.from_label(f"k{i}") for i in range(9)]
    assert "expected 1..8 co-signer keys, found 9" in s.set_policy(buyer, b_id, nine, 2, LIMIT).error
    assert s.core.chain.signing_policy(b_id) is None


def test_admission_refuses_foreign_missing_and_bad_co_signatures():
    s, merchant, c1, c2 = merchant_story()
    buyer = account_key("buyer-1")
    stranger = SigningKey.from_label("stranger")
    to = buyer.public_key
    refusal = s.refused(merchant, "ledger", "transfer", to, BIG, cosign=(stranger,))
    assert refusal.reason == BAD_COSIGNER and f"co-signer 0x{stranger.public_key.hex()} is not in the signing policy" in str(refusal)
    no_policy = s.refused(buyer, "ledger", "transfer", merchant.public_key, 5, cosign=(c1,))
    assert no_policy.reason == BAD_COSIGNER and "has no signing policy" in str(no_policy)

    good = SignedTx.decode(s.raw(merchant, "ledger", "transfer", to, BIG, cosign=(c1,)))
    bad = SignedTx(good.body, good.signature, cosignatures=((c1.public_key, b"\x00" * 64),))
    with pytest.raises(MempoolError) as info:
        s.core.submit(bad.encode(), 0.0)
    assert info.value.reason == BAD_SIGNATURE and f"co-signature of key 0x{c1.public_key.hex()}" in str(info.value)

    # Duplicates and unsorted co-signatures are not canonical: refused before any state is read.
    pair = [c1.public_key, good.cosignatures[0][1]]
    dup = encoding.encode(["cstx/1", good.body.to_list(), good.signature, [pair, pair]])
    with pytest.raises(MempoolError) as info:
        s.core.submit(dup, 0.0)
    assert info.value.reason == MALFORMED and "strictly ascending" in str(info.value)


def test_a_block_copy_with_forged_co_signatures_is_not_taken_as_verified():
    s, merchant, c1, c2 = merchant_story()
    honest = s.core.submit(s.raw(merchant, "ledger", "transfer", account_key("buyer-1").public_key, 7), 0.0)
    assert s.core.mempool.holds(honest)
    forged = SignedTx(honest.body, honest.signature, cosignatures=((c1.public_key, b"\x00" * 64),))
    assert forged.tx_id == honest.tx_id and not s.core.mempool.holds(forged)
    assert not forged.verify_signature()


def test_spend_windows_add_up_across_transactions_and_reset_after_the_window():
    s, merchant, c1, c2 = merchant_story(window_ms=10_000)
    m_id, to = merchant.public_key, account_key("buyer-1").public_key
    s.ok(merchant, "ledger", "transfer", to, 600)
    second = s.run(merchant, "ledger", "transfer", to, 600)                  # 1200 in the window > 1000
    assert second.status == 1 and "(600 already spent in the window" in second.error
    s.ok(merchant, "ledger", "transfer", to, 400)                          # exactly the limit
    assert read_window(s.core.chain.state, m_id)[1] == LIMIT
    s.ok(merchant, "ledger", "transfer", to, 600, cosign=(c1,))            # co-signed: not counted
    assert read_window(s.core.chain.state, m_id)[1] == LIMIT
    s.clock[0] += 10_000                                                   # past the window (block time)
    s.ok(merchant, "ledger", "transfer", to, 600)
    assert read_window(s.core.chain.state, m_id)[1] == 600


def test_a_governance_recovery_clears_the_policy():
    s = CoStory()
    buyer, c1 = account_key("buyer-1"), SigningKey.from_label("buyer-1-phone")
    b_id = buyer.public_key
    assert s.set_policy(buyer, b_id, [c1], 2, LIMIT).status == 0
    recovered = account_key("buyer-1-recovered")
    args = [b_id, recovered.public_key, key_proof(s.chain_id, b_id, recovered)]
    platform = account_key("platform-admin")
    pid = s.send(platform, "governance", "propose", "recover_account", args, "buyer-1 lost both keys")
    for voter in (platform, account_key("merchant-acme"), account_key("merchant-globex"), account_key("carrier")):
        s.send(voter, "governance", "vote", pid, True)
    s.clock[0] += 61_000
    s.send(account_key("buyer-2"), "governance", "execute", pid, b"")
    assert s.core.chain.signing_policy(b_id) is None
    s.ok(recovered, "ledger", "transfer", account_key("buyer-2").public_key, BIG)


def test_a_copy_with_more_co_signatures_replaces_the_pending_one_and_a_stripped_copy_is_a_duplicate():
    s, merchant, c1, c2 = merchant_story()
    to = account_key("buyer-1").public_key
    nonce = s.core.chain.nonce(merchant.public_key)
    bare = s.core.submit(s.raw(merchant, "ledger", "transfer", to, BIG, nonce=nonce), 0.0)
    full = s.core.submit(s.raw(merchant, "ledger", "transfer", to, BIG, nonce=nonce, cosign=(c1,)), 0.0)
    assert full.tx_id == bare.tx_id and s.core.mempool.get(full.tx_id).cosigner_keys == (c1.public_key,)
    assert len(s.core.mempool) == 1
    with pytest.raises(MempoolError) as info:                     # the stripped copy cannot push it out
        s.core.submit(bare.encode(), 0.0)
    assert info.value.reason == "duplicate" and "is already pending" in str(info.value)
    (receipt,) = s.block(s.core.mempool.reap(10, 1 << 20, 10 * GAS))
    assert receipt.status == 0 and s.balance(to) >= BIG
