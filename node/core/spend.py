"""Spend limits of under-signed transactions: the executor's half of signing policies.

How it works: an account's signing policy (identity's ``policies``, read directly by
``contracts_vm.system.signing_policy``) asks for k of n+1 signatures: the account's own
key, which signs every transaction of the account, plus co-signatures from the
policy's keys (``SignedTx.cosignatures``, verified at admission and again when a block
is validated). ``guard`` counts them for one transaction. With k or more, the call
runs unrestricted. With fewer, the executor notes the account's ledger balance just
before the call (after the fee was held, so fees never count as spending) and, when
the call succeeded, ``check`` measures how far the balance fell: transfers, escrow
locks for orders, bonds, burns, whatever debits it through any contract. If that
spend, plus what earlier under-signed transactions spent in the policy's current
window of block time (``window_ms``; 0 means each transaction on its own), exceeds the
policy's ``spend_limit``, the executor reverts the call and the receipt names the
spend, the limit, the threshold and the signatures present. Otherwise the window's
total is updated under ``sys/spent/<account>``, next to the nonce.

Why the balance and not a list of debit paths: every contract that moves the
account's money moves its ledger balance, so measuring the balance cannot miss a path
a future contract adds, costs no gas and writes nothing for accounts without a
policy. Money credited to the account during the same call offsets its spending
(the limit is on how far the balance falls, so a call that both paid the account and
sent money on could pass on what it received; only what the account held before the
call is protected). Money already in escrow is not the balance: it was limited when it
was locked. The window starts at the first under-signed spend and
lasts ``window_ms`` of block time; only block timestamps feed it, so every validator
computes the same result. Changing the policy and rotating keys need the full
threshold too, but that is the identity contract's own rule (it reads
``ctx.cosigners``).
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts_vm.system import SigningPolicy, signing_policy
from ledger import encoding
from ledger.errors import CorruptionError, DecodeError
from node.core.fees import read_balance

#: State key prefix of each policy account's spend window (outside every contract's namespace).
SPENT_PREFIX = b"sys/spent/"
#: Error name of a transaction refused for spending past its policy's limit.
SPEND_LIMIT = "SpendLimit"


def spent_key(account: bytes) -> bytes:
    """Where an account's current spend window lives: ``[window start ms, spent in it]``."""
    return SPENT_PREFIX + account


def read_window(state, account: bytes) -> tuple[int, int]:
    """(window start in block-time ms, minor units spent in it under-signed); (0, 0) when none."""
    raw = state.get(spent_key(account))
    if raw is None:
        return 0, 0
    try:
        value = encoding.decode(raw)
    except DecodeError as exc:
        raise CorruptionError(f"the spend window of {account.hex()} does not decode: {exc}") from None
    if not (isinstance(value, list) and len(value) == 2 and all(type(v) is int for v in value)):
        raise CorruptionError(f"the spend window of {account.hex()} is not [start_ms, spent]: {value!r}")
    return value[0], value[1]


@dataclass(frozen=True)
class SpendGuard:
    """One transaction's standing against its account's policy, and the balance before the call."""

    account: bytes
    policy: SigningPolicy
    approvals: int
    cosigners: tuple[bytes, ...]
    balance_before: int

    def describe_signatures(self) -> str:
        counted = [k for k in self.cosigners if k in self.policy.cosigners]
        shown = ", ".join("0x" + k.hex()[:16] for k in counted) or "none"
        return f"it carries {self.approvals} (the account's key; co-signers from the policy: {shown})"


def guard(state, account: bytes, cosigner_keys: tuple[bytes, ...]) -> SpendGuard | None:
    """The guard for a call by ``account``, or None when nothing limits it (no policy, or
    the transaction carries the policy's threshold of signatures)."""
    policy = signing_policy(state, account)
    if policy is None:
        return None
    approvals = policy.approvals(cosigner_keys)
    if approvals >= policy.threshold:
        return None
    return SpendGuard(account, policy, approvals, tuple(cosigner_keys), read_balance(state, account))


def check(state, g: SpendGuard, timestamp_ms: int) -> str | None:
    """After a successful call: why it must be reverted (``SpendLimit: ...``), or None; books
    the spend in the account's window when the policy has one."""
    spent = g.balance_before - read_balance(state, g.account)
    if spent <= 0:
        return None
    policy = g.policy
    earlier = 0
    start = timestamp_ms
    if policy.window_ms:
        start, earlier = read_window(state, g.account)
        if earlier == 0 or timestamp_ms >= start + policy.window_ms:
            start, earlier = timestamp_ms, 0
    total = earlier + spent
    if total > policy.spend_limit:
        window = ("per transaction" if not policy.window_ms else
                  f"per {policy.window_ms} ms of block time ({earlier} already spent in the window "
                  f"that began at {start})")
        return (f"{SPEND_LIMIT}: this transaction moves {spent} out of account 0x{g.account.hex()}; with fewer "
                f"than {policy.threshold} of {len(policy.cosigners) + 1} signatures its signing policy allows "
                f"{policy.spend_limit} {window}; {g.describe_signatures()}; add co-signatures "
                f"(shopchain ... --cosign KEY, or shopchain tx cosign) to reach the threshold")
    if policy.window_ms:
        state.put(spent_key(g.account), encoding.encode([start, total]))
    return None
