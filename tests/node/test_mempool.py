"""Mempool admission: one test per refusal reason, ordering, and updates after blocks."""

from __future__ import annotations

import pytest

from contracts_vm.system import Signer
from ledger.crypto import SigningKey
from ledger.encoding import encode
from ledger.types import SignedTx, TxBody
from node.core.fees import FeeSchedule
from node.core.mempool import (
    ARGS_TOO_LARGE,
    BAD_ARGUMENTS,
    BAD_SIGNATURE,
    DUPLICATE,
    GAS_TOO_HIGH,
    GAS_TOO_LOW,
    INSUFFICIENT_FEE,
    MALFORMED,
    MAX_TX_ARGS_BYTES,
    NONCE_TOO_HIGH,
    NONCE_TOO_LOW,
    POOL_FULL,
    REASON_DOCS,
    REASONS,
    ROTATED_KEY,
    SENDER_FULL,
    TOO_LARGE,
    UNREGISTERED,
    WRONG_CHAIN,
    Mempool,
    MempoolError,
    MempoolLimits,
)

CHAIN = "mp-chain"
ALICE, BOB, MALLORY = (SigningKey.from_label(n) for n in ("alice", "bob", "mallory"))


def tx(key: SigningKey, nonce: int, chain: str = CHAIN, gas: int = 1000, args: list | None = None) -> SignedTx:
    return TxBody(chain, key.public_key, nonce, "ledger", "transfer", args or [b"x", 1], gas).sign(key)


class World:
    def __init__(self) -> None:
        self.nonces: dict[bytes, int] = {}
        self.registered = {ALICE.public_key, BOB.public_key}

    def pool(self, **limits) -> Mempool:
        return Mempool(CHAIN, lambda s: self.nonces.get(s, 0), self.refusal, MempoolLimits(**limits))

    def refusal(self, key: bytes) -> Signer:
        """Every registered key is its own account here."""
        if key in self.registered:
            return Signer(key, key)
        return Signer(key, None, ("UnregisteredSender", f"sender {key.hex()} is not registered"))

    def fee_pool(self, balances: dict[bytes, int], schedule: FeeSchedule) -> Mempool:
        """A pool whose ABI check refuses every call of ``ledger.burn`` and whose fees are ``schedule``."""
        def shape(body):
            return ("BadArguments", "ledger.burn is refused in this test") if body.method == "burn" else None
        return Mempool(CHAIN, lambda s: self.nonces.get(s, 0), self.refusal, call_shape=shape, fees=lambda: schedule,
                       balance_of=lambda s: balances.get(s, 0))


def refused(pool: Mempool, raw: bytes) -> str:
    with pytest.raises(MempoolError) as info:
        pool.admit(raw)
    return info.value.reason


def test_every_refusal_reason_has_a_clear_message():
    world = World()
    pool = world.pool(max_per_sender=3, max_txs=5, nonce_window=10, max_tx_bytes=2000, max_tx_gas=5000,
                      max_args_bytes=500)
    assert refused(pool, b"\xc1junk") == MALFORMED
    assert refused(pool, b"\x00" * 3000) == TOO_LARGE
    assert refused(pool, tx(ALICE, 0, chain="other").encode()) == WRONG_CHAIN
    assert refused(pool, tx(ALICE, 0, gas=6000).encode()) == GAS_TOO_HIGH
    assert refused(pool, tx(ALICE, 0, gas=199).encode()) == GAS_TOO_LOW
    assert refused(pool, tx(ALICE, 0, args=[b"x" * 600, 1]).encode()) == ARGS_TOO_LARGE
    assert refused(pool, tx(MALLORY, 0).encode()) == UNREGISTERED
    world.nonces[ALICE.public_key] = 2
    assert refused(pool, tx(ALICE, 1).encode()) == NONCE_TOO_LOW
    assert refused(pool, tx(ALICE, 12).encode()) == NONCE_TOO_HIGH
    good = tx(ALICE, 2)
    pool.admit(good.encode())
    assert refused(pool, good.encode()) == DUPLICATE
    assert refused(pool, tx(ALICE, 2, args=[b"y", 2]).encode()) == DUPLICATE  # same nonce, other body
    forged = SignedTx(tx(ALICE, 3).body, tx(ALICE, 4).signature)
    assert refused(pool, forged.encode()) == BAD_SIGNATURE
    pool.admit(tx(ALICE, 3).encode())
    pool.admit(tx(ALICE, 4).encode())
    assert refused(pool, tx(ALICE, 5).encode()) == SENDER_FULL
    pool.admit(tx(BOB, 0).encode())
    pool.admit(tx(BOB, 1).encode())
    assert refused(pool, tx(BOB, 2).encode()) == POOL_FULL
    assert len(pool) == 5
    tried = {MALFORMED, TOO_LARGE, WRONG_CHAIN, GAS_TOO_HIGH, GAS_TOO_LOW, ARGS_TOO_LARGE, UNREGISTERED, NONCE_TOO_LOW,
             NONCE_TOO_HIGH, BAD_SIGNATURE, SENDER_FULL, POOL_FULL}
    assert {reason: pool.refusals[reason] for reason in tried} == {reason: 1 for reason in tried}
    assert pool.refusals[DUPLICATE] == 2


def test_call_shape_and_fee_checks_run_before_the_signature_and_count_pending_fees():
    world = World()
    schedule = FeeSchedule(gas_price=1000, byte_price=1, collector=BOB.public_key)  # 1 per gas unit
    one = tx(ALICE, 0)
    fee = 1000 + len(one.encode())
    pool = world.fee_pool({ALICE.public_key: 2 * fee - 1}, schedule)
    burn = TxBody(CHAIN, ALICE.public_key, 0, "ledger", "burn", [1], 1000).sign(ALICE)
    forged = SignedTx(burn.body, one.signature)
    assert refused(pool, forged.encode()) == BAD_ARGUMENTS  # before the signature is checked
    pool.admit(one.encode())
    with pytest.raises(MempoolError, match=f"balance is {2 * fee - 1}, the fee may be up to {fee} plus {fee}") as exc:
        pool.admit(tx(ALICE, 1).encode())
    assert exc.value.reason == INSUFFICIENT_FEE
    world.nonces[ALICE.public_key] = 1
    pool.update([one])  # committed: its fee is no longer held
    pool.admit(tx(ALICE, 1).encode())
    assert pool.refusals[INSUFFICIENT_FEE] == 1 and pool.refusals[BAD_ARGUMENTS] == 1
    assert set(pool.refusals) == set(REASONS) == set(REASON_DOCS)  # each one counted and documented


def test_reap_orders_by_nonce_and_skips_gaps():
    world = World()
    pool = world.pool()
    pool.admit(tx(ALICE, 5).encode())
    assert not pool.has_executable()  # only a future nonce: nothing a block could include
    for nonce in (2, 0, 1):  # 5 waits for 3 and 4
        pool.admit(tx(ALICE, nonce).encode())
    assert pool.has_executable()
    pool.admit(tx(BOB, 0).encode())
    batch = pool.reap(100, 10**6, 10**9)
    assert [(t.body.sender, t.body.nonce) for t in batch] == [
        (ALICE.public_key, 0), (ALICE.public_key, 1), (ALICE.public_key, 2), (BOB.public_key, 0)]
    assert len(pool.reap(2, 10**6, 10**9)) == 2
    assert len(pool.reap(100, 10**6, 2500)) == 2  # gas limit 1000 each


def test_update_removes_committed_and_stale():
    world = World()
    pool = world.pool()
    txs = [tx(ALICE, n) for n in range(4)]
    for t in txs:
        pool.admit(t.encode())
    world.nonces[ALICE.public_key] = 3  # the chain executed nonces 0..2 (0 and 1 from this pool)
    removed = pool.update(txs[:2])
    assert set(removed) == {t.tx_id for t in txs[:3]} and len(pool) == 1 and txs[3].tx_id in pool
    assert [t.body.nonce for t in pool.reap(10, 10**6, 10**9)] == [3]


def test_a_rotated_key_is_refused_and_its_stale_transactions_leave_when_the_new_key_moves_the_account_on():
    """Nonces are per account: the new key continues the sequence, and what the old key
    left pending below the account's nonce is dropped although the old key signs no more."""
    world = World()
    account = ALICE.public_key
    new_key = SigningKey.from_label("alice-rotated")
    keys_of = {account: account, new_key.public_key: account}
    rotated = {}

    def resolve(key: bytes) -> Signer:
        if key in rotated:
            return Signer(key, keys_of[key], ("RotatedKey", rotated[key]))
        return Signer(key, keys_of[key]) if key in keys_of else Signer(key, None, ("UnregisteredSender", "no"))

    pool = Mempool(CHAIN, lambda acct: world.nonces.get(acct, 0), resolve)
    old = [tx(ALICE, n) for n in (0, 1, 2)]
    for t in old:
        pool.admit(t.encode())
    rotated[account] = f"key {account.hex()} was rotated out of account {account.hex()} at height 7"
    with pytest.raises(MempoolError, match="was rotated out of account .* at height 7") as info:
        pool.admit(tx(ALICE, 3).encode())
    assert info.value.reason == ROTATED_KEY
    world.nonces[account] = 1                   # old[0] committed (the rotation itself)
    pool.update([old[0]])
    fresh = [tx(new_key, n) for n in (1, 2)]
    for t in fresh:
        pool.admit(t.encode())
    world.nonces[account] = 3                   # the new key's two committed: the old key's 1 and 2 are stale
    removed = pool.update(fresh)
    assert set(removed) == {t.tx_id for t in fresh + old[1:]} and len(pool) == 0
    assert pool._keys_of == {} and pool._account == {}


def test_pending_transactions_come_due_for_regossip_at_doubling_intervals():
    world = World()
    pool = world.pool(regossip_after_s=1.0, regossip_max_interval_s=4.0)
    first, second = tx(ALICE, 0), tx(BOB, 0)
    pool.admit(first.encode(), now=10.0)
    pool.admit(second.encode(), now=10.5)
    assert pool.due_for_regossip(now=10.9, limit=10) == []
    assert pool.due_for_regossip(now=11.2, limit=10) == [first]   # 1 s after admission
    assert pool.due_for_regossip(now=11.6, limit=10) == [second]
    assert pool.due_for_regossip(now=13.0, limit=10) == []        # first waits 2 s now
    assert pool.due_for_regossip(now=13.3, limit=1) == [first]    # limit respected: second waits
    assert pool.due_for_regossip(now=13.7, limit=10) == [second]
    assert pool.due_for_regossip(now=17.2, limit=10) == []        # then 4 s (the cap)
    assert pool.due_for_regossip(now=17.4, limit=10) == [first]
    assert pool.due_for_regossip(now=17.8, limit=10) == [second]
    assert pool.due_for_regossip(now=21.5, limit=10) == [first]   # stays at the cap
    world.nonces[ALICE.public_key] = 1
    pool.update([first])
    assert pool.due_for_regossip(now=40.0, limit=10) == [second]  # committed ones never come back


def test_copies_are_refused_before_decoding_pending_or_recently_committed():
    world = World()
    pool = world.pool(recent_committed=2)
    txs = [tx(ALICE, n) for n in range(4)]
    pool.admit(txs[0].encode())
    with pytest.raises(MempoolError, match="already pending") as exc:
        pool.admit(bytes(txs[0].encode()))  # an equal copy, as gossip delivers it
    assert exc.value.reason == "duplicate"
    for t in txs[1:]:
        pool.admit(t.encode())
    world.nonces[ALICE.public_key] = 4
    pool.update(txs)
    with pytest.raises(MempoolError, match="committed in a recent block"):
        pool.admit(txs[3].encode())
    # Only the last `recent_committed` are remembered; older copies fail on their nonce.
    with pytest.raises(MempoolError) as exc:
        pool.admit(txs[0].encode())
    assert exc.value.reason == "nonce_too_low"
    assert len(pool) == 0


def test_the_config_default_for_argument_size_is_the_named_limit():
    from node.ops.config import DEFAULTS

    default = next(k.default for k in DEFAULTS if (k.section, k.name) == ("mempool", "max_args_bytes"))
    assert default == MAX_TX_ARGS_BYTES == MempoolLimits().max_args_bytes


def test_past_saturation_new_client_work_is_refused_as_busy_with_a_retry_hint_and_nothing_pending_is_lost():
    from node.core.backpressure import MIN_BUSY_PENDING
    world = World()
    keys = [SigningKey.from_label(f"busy-{i}") for i in range(MIN_BUSY_PENDING // 100 + 2)]
    world.registered |= {k.public_key for k in keys}
    pool = world.pool(max_queue_ms=2000, max_per_sender=100)
    pending = [tx(k, n) for k in keys[:-2] for n in range(100)]
    for t in pending:
        pool.admit(t.encode(), client=True)   # no commit rate known yet: never busy
    assert len(pool) == MIN_BUSY_PENDING
    # Blocks of 100 transactions every 250 ms (of other senders): 400 tx/s, so 1,000 pending are 2.5 s of work.
    for i in range(5):
        pool.drain.committed(1000 + 250 * i, 100)
    assert pool.drain.per_second() == 400
    extra = tx(keys[-1], 0)
    with pytest.raises(MempoolError) as caught:
        pool.admit(extra.encode(), client=True)
    assert caught.value.reason == "busy" and pool.refusals["busy"] == 1
    assert "1,000 transactions are pending" in str(caught.value) and "retry after" in str(caught.value)
    assert caught.value.data["retry_after_ms"] == 500  # 2.5 s of work, 2 s allowed
    # A client's retry of a transaction already in gets its DUPLICATE answer, not busy.
    assert refused_client(pool, pending[0].encode()) == DUPLICATE
    # Gossip and the journal (not client=True) are not subject to it: others acknowledged those.
    pool.admit(tx(keys[-2], 0).encode())
    # Nothing pending was dropped; once blocks drain the pool, the client is admitted again.
    assert len(pool) == MIN_BUSY_PENDING + 1
    committed = [t for t in pending[:600]]
    for sender in {t.body.sender for t in committed}:
        world.nonces[sender] = 100
    pool.update(committed, timestamp_ms=2250)
    assert pool.drain.per_second() == 800
    assert pool.admit(extra.encode(), client=True) == extra


def test_backpressure_off_never_refuses():
    from node.core.backpressure import busy_refusal
    assert busy_refusal(10**6, 1.0, 0) is None
    assert busy_refusal(10**6, None, 2000) is None
    assert busy_refusal(999, 1.0, 2000) is None
    message, retry = busy_refusal(10**6, 1000.0, 2000)
    assert retry == 10_000 and "1,000,000 transactions are pending" in message


def refused_client(pool: Mempool, raw: bytes) -> str:
    with pytest.raises(MempoolError) as info:
        pool.admit(raw, client=True)
    return info.value.reason
