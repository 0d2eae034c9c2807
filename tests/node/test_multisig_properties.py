"""A Hypothesis state machine over signing policies, through the executor.

The merchant of the devnet consortium sets a random policy (three co-signers, a random
threshold, spend limit and window of block time), then makes random transfers, bond
deposits and withdrawals, each signed by a random subset of its co-signers plus
sometimes a stranger's key, while block time jumps at random; now and then it tries to
clear the policy with a random subset. A model predicts every outcome exactly: a call
with the threshold of policy signatures runs as without a policy, one below it may move
at most the limit out of the balance per window, a stranger's co-signature never
counts, and only the threshold clears the policy. After every step: the balances and
the bond escrow match the model, money is conserved, and the under-signed outflow of
every window is within the limit.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from contracts_vm.api import CallContext, execute_view
from contracts_vm.system import cosigner_proof_message
from ledger.crypto import SigningKey
from ledger.storage.kv import MemoryKV
from ledger.types import TxBody
from node.core.chain import Chain
from node.core.executor import execute_tx, read_nonce
from node.core.fees import read_balance
from node.core.spend import read_window
from tests.node.test_node_core import LABEL
from tests.sim.corenode import account_key, sim_genesis

MERCHANT = account_key("merchant-acme")
BUYER = account_key("buyer-1")
COSIGNERS = [SigningKey.from_label(f"prop-cosigner-{i}") for i in range(3)]
STRANGER = SigningKey.from_label("prop-stranger")
GAS = 2_000_000
BOND_KEY = "b" + MERCHANT.public_key.hex()

_CHAIN: list[Chain] = []


def genesis_chain() -> Chain:
    """One chain at genesis for the whole module (examples run on overlays of it)."""
    if not _CHAIN:
        _CHAIN.append(Chain(MemoryKV(), sim_genesis("node-core-test", (LABEL,))))
    return _CHAIN[0]


signer_sets = st.lists(st.sampled_from(COSIGNERS + [STRANGER]), unique=True, max_size=4)


class MultisigMachine(RuleBasedStateMachine):
    @initialize(threshold=st.integers(2, 4), limit=st.integers(0, 3_000), window_ms=st.sampled_from([0, 5_000]))
    def setup(self, threshold: int, limit: int, window_ms: int) -> None:
        genesis = sim_genesis("node-core-test", (LABEL,))
        self.chain_id = genesis.chain_id
        self.state = genesis_chain().state.overlay()   # never committed: every example starts at genesis
        self.height, self.now = 1, genesis.genesis_time_ms + 1_000
        self.policy: tuple[int, int, int] | None = (threshold, limit, window_ms)
        self.window = (0, 0)                       # (start ms, under-signed spent in it), as the model sees it
        self.bond = 0
        self.balance = read_balance(self.state, MERCHANT.public_key)
        self.total = self.balance + read_balance(self.state, BUYER.public_key)
        m = MERCHANT.public_key
        proofs = [c.sign_raw(cosigner_proof_message(self.chain_id, m, c.public_key)) for c in COSIGNERS]
        receipt = self.send("identity", "set_signing_policy", [[c.public_key for c in COSIGNERS], proofs, threshold,
                                                               limit, window_ms], [])
        assert receipt.status == 0, receipt.error

    def send(self, method_contract: str, method: str, args: list, cosigners: list[SigningKey]):
        nonce = read_nonce(self.state, MERCHANT.public_key)
        tx = TxBody(self.chain_id, MERCHANT.public_key, nonce, method_contract, method, args, GAS).sign(MERCHANT)
        for key in cosigners:
            tx = tx.cosigned_by(key)
        receipt = execute_tx(self.state, tx, self.height, self.now)
        self.height += 1
        return receipt

    def full(self, cosigners: list[SigningKey]) -> bool:
        """Does this signer set meet the policy's threshold (always, without a policy)?"""
        if self.policy is None:
            return True
        return 1 + sum(1 for k in cosigners if k in COSIGNERS) >= self.policy[0]

    def allowed_under_signed(self, amount: int) -> tuple[bool, tuple[int, int]]:
        """Whether an under-signed outflow of ``amount`` fits, and the window after it."""
        _, limit, window_ms = self.policy
        start, spent = self.window
        if window_ms == 0 or spent == 0 or self.now >= start + window_ms:
            start, spent = self.now, 0
        return spent + amount <= limit, ((start, spent + amount) if window_ms else (0, 0))

    @rule(kind=st.sampled_from(["transfer", "deposit_bond"]), amount=st.integers(1, 5_000), signers=signer_sets,
          dt=st.integers(0, 4_000))
    def spend(self, kind: str, amount: int, signers: list[SigningKey], dt: int) -> None:
        self.now += dt + 1
        args = [BUYER.public_key, amount] if kind == "transfer" else [amount]
        receipt = self.send("ledger" if kind == "transfer" else "orders", kind, args, signers)
        fits, window = (True, self.window) if self.full(signers) else self.allowed_under_signed(amount)
        expect_ok = amount <= self.balance and fits
        assert (receipt.status == 0) == expect_ok, (kind, amount, len(signers), self.policy, self.window, receipt.error)
        if not expect_ok and amount <= self.balance:
            assert receipt.error.startswith(f"SpendLimit: this transaction moves {amount} ")
        if expect_ok:
            self.balance -= amount
            self.bond += amount if kind == "deposit_bond" else 0
            self.window = window

    @rule(amount=st.integers(1, 5_000), dt=st.integers(0, 4_000))
    def withdraw(self, amount: int, dt: int) -> None:
        self.now += dt + 1
        receipt = self.send("orders", "withdraw_bond", [amount], [])
        assert (receipt.status == 0) == (amount <= self.bond), receipt.error   # money coming back is never limited
        if receipt.status == 0:
            self.bond -= amount
            self.balance += amount

    @rule(signers=signer_sets)
    def clear(self, signers: list[SigningKey]) -> None:
        receipt = self.send("identity", "clear_signing_policy", [], signers)
        expect_ok = self.policy is not None and self.full(signers)
        assert (receipt.status == 0) == expect_ok, receipt.error
        if expect_ok:
            self.policy = None

    @invariant()
    def balances_match_the_model_and_money_is_conserved(self) -> None:
        m, b = read_balance(self.state, MERCHANT.public_key), read_balance(self.state, BUYER.public_key)
        result = execute_view(self.state, "ledger", "escrow_of", ["orders", BOND_KEY], CallContext(sender=b"\x01" * 32), GAS)
        assert m == self.balance and result.return_value == self.bond
        assert m + b + self.bond == self.total

    @invariant()
    def under_signed_spending_stays_within_the_limit(self) -> None:
        if self.policy is not None and self.policy[2]:
            booked = read_window(self.state, MERCHANT.public_key)
            assert booked[1] <= self.policy[1] and booked == self.window


MultisigMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow])
TestMultisigProperties = MultisigMachine.TestCase
