"""The mempool: admission of client transactions and batches for the primary.

How it works: ``admit`` runs every check a transaction must pass before a node
acknowledges it (DESIGN §2), cheapest first so that junk costs little: size,
canonical decode, chain id, gas cap, duplicate id, sender registered, nonce window,
per-sender and global caps, and last the signature. Each refusal is a
``MempoolError`` with a stable reason code that JSON-RPC turns into a specific
error. Admitted transactions wait per sender, keyed by nonce; ``reap`` hands the
primary, sender by sender in order of first arrival, each sender's run of consecutive
nonces starting at its next expected nonce, within count, byte and gas limits.
After every committed block ``update`` drops what was included and everything whose
nonce the chain has moved past.

Gossip is fire-and-forget, so pending transactions are offered to peers again, first
after ``regossip_after_s`` and then at doubling intervals (a heap orders them by when
they are due): a transaction that missed a peer gets there, but an overloaded network
is not flooded with copies of its whole backlog every second. Copies that do arrive
are recognised by their raw bytes (pending, or committed recently) before any decoding.

Nothing acknowledged is dropped silently: a transaction leaves the pool only by being
committed, by being made stale by a committed transaction with the same nonce, or by
the node stopping (and then it was never in a block, so the client's wait reports it).
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ledger.errors import ChainError, DecodeError
from ledger.types import MAX_TX_BYTES, MAX_TX_GAS, SignedTx

# Refusal reasons: stable codes shown to clients and counted in metrics.
MALFORMED = "malformed"
TOO_LARGE = "too_large"
WRONG_CHAIN = "wrong_chain"
GAS_TOO_HIGH = "gas_too_high"
DUPLICATE = "duplicate"
UNREGISTERED = "unregistered_sender"
NONCE_TOO_LOW = "nonce_too_low"
NONCE_TOO_HIGH = "nonce_too_high"
SENDER_FULL = "sender_full"
POOL_FULL = "mempool_full"
BAD_SIGNATURE = "bad_signature"
REASONS = (MALFORMED, TOO_LARGE, WRONG_CHAIN, GAS_TOO_HIGH, DUPLICATE, UNREGISTERED, NONCE_TOO_LOW,
           NONCE_TOO_HIGH, SENDER_FULL, POOL_FULL, BAD_SIGNATURE)


class MempoolError(ChainError):
    """A transaction was refused; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class MempoolLimits:
    max_txs: int = 50_000           # most pending transactions in all
    max_per_sender: int = 1_000     # most pending transactions of one sender
    nonce_window: int = 1_000       # how far past the next nonce a transaction may be
    max_tx_bytes: int = MAX_TX_BYTES
    max_tx_gas: int = MAX_TX_GAS
    recent_committed: int = 20_000  # raw bytes of recently committed txs kept to drop late copies
    regossip_after_s: float = 1.0   # first re-broadcast of a pending transaction
    regossip_max_interval_s: float = 32.0  # re-broadcast intervals double up to this


class Mempool:
    def __init__(self, chain_id: str, account_nonce: Callable[[bytes], int], is_registered: Callable[[bytes], bool],
                 limits: MempoolLimits = MempoolLimits(),
                 verify: Callable[[SignedTx], bool] = SignedTx.verify_signature) -> None:
        self.chain_id = chain_id
        self.account_nonce = account_nonce
        self.is_registered = is_registered
        self.limits = limits
        self.verify = verify
        self._by_sender: OrderedDict[bytes, dict[int, SignedTx]] = OrderedDict()
        self._ids: dict[bytes, SignedTx] = {}
        self._raws: set[bytes] = set()  # raw bytes of the pending transactions
        self._recent: OrderedDict[bytes, None] = OrderedDict()  # raw bytes of recently committed ones
        self._regossip: dict[bytes, tuple[float, float]] = {}  # tx id -> (next due, interval)
        self._due_heap: list[tuple[float, bytes]] = []  # (due, tx id); stale entries skipped lazily
        self.refusals: dict[str, int] = {reason: 0 for reason in REASONS}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._ids

    def _refuse(self, reason: str, message: str) -> MempoolError:
        self.refusals[reason] += 1
        return MempoolError(reason, message)

    def check(self, raw: bytes) -> SignedTx:
        """Decode and run every admission check without adding; raise MempoolError."""
        limits = self.limits
        if len(raw) > limits.max_tx_bytes:
            raise self._refuse(TOO_LARGE, f"transaction is {len(raw)} bytes, the limit is {limits.max_tx_bytes}")
        if raw in self._raws:  # gossip copies: no need to decode to know
            raise self._refuse(DUPLICATE, "this transaction is already pending")
        if raw in self._recent:
            raise self._refuse(DUPLICATE, "this transaction was committed in a recent block")
        try:
            tx = SignedTx.decode(raw)
        except DecodeError as exc:
            raise self._refuse(MALFORMED, f"transaction does not decode: {exc}") from None
        body = tx.body
        if body.chain_id != self.chain_id:
            raise self._refuse(WRONG_CHAIN, f"transaction is for chain {body.chain_id!r}, this node runs {self.chain_id!r}")
        if body.gas_limit > limits.max_tx_gas:
            raise self._refuse(GAS_TOO_HIGH, f"gas limit {body.gas_limit} exceeds the maximum {limits.max_tx_gas}")
        if tx.tx_id in self._ids:
            raise self._refuse(DUPLICATE, f"transaction {tx.tx_id.hex()} is already pending")
        if not self.is_registered(body.sender):
            raise self._refuse(UNREGISTERED, f"sender {body.sender.hex()} is not a registered, active account")
        expected = self.account_nonce(body.sender)
        if body.nonce < expected:
            raise self._refuse(NONCE_TOO_LOW, f"nonce {body.nonce} is already used; the sender's next nonce is {expected}")
        if body.nonce >= expected + limits.nonce_window:
            raise self._refuse(NONCE_TOO_HIGH, f"nonce {body.nonce} is more than {limits.nonce_window} past the next nonce {expected}")
        pending = self._by_sender.get(body.sender)
        if pending is not None and body.nonce in pending:
            raise self._refuse(DUPLICATE, f"the sender already has a pending transaction with nonce {body.nonce}")
        if pending is not None and len(pending) >= limits.max_per_sender:
            raise self._refuse(SENDER_FULL, f"the sender has {len(pending)} pending transactions, the limit is {limits.max_per_sender}")
        if len(self._ids) >= limits.max_txs:
            raise self._refuse(POOL_FULL, f"the mempool holds {len(self._ids)} transactions, its limit; retry after the next block")
        if not self.verify(tx):
            raise self._refuse(BAD_SIGNATURE, "the signature does not verify for this sender, chain and body")
        return tx

    def admit(self, raw: bytes, now: float = 0.0) -> SignedTx:
        """Check and add a client's raw transaction; return it or raise MempoolError."""
        tx = self.check(raw)
        self.add_checked(tx, now)
        return tx

    def add_checked(self, tx: SignedTx, now: float = 0.0) -> bool:
        """Add a transaction that already passed ``check``."""
        if tx.tx_id in self._ids:
            return False
        self._by_sender.setdefault(tx.body.sender, {})[tx.body.nonce] = tx
        self._ids[tx.tx_id] = tx
        self._raws.add(tx.encode())
        first = self.limits.regossip_after_s
        self._regossip[tx.tx_id] = (now + first, first)
        heapq.heappush(self._due_heap, (now + first, tx.tx_id))
        return True

    def due_for_regossip(self, now: float, limit: int) -> list[SignedTx]:
        """Pending transactions due to be broadcast again (earliest first), rescheduled.

        Each one comes due ``regossip_after_s`` after admission, then at doubling
        intervals up to ``regossip_max_interval_s``.
        """
        due: list[SignedTx] = []
        heap, schedule = self._due_heap, self._regossip
        while heap and heap[0][0] <= now and len(due) < limit:
            at, tx_id = heapq.heappop(heap)
            entry = schedule.get(tx_id)
            if entry is None or entry[0] != at:
                continue  # left the pool, or an older schedule of a transaction seen again
            interval = min(2 * entry[1], self.limits.regossip_max_interval_s)
            schedule[tx_id] = (now + interval, interval)
            heapq.heappush(heap, (now + interval, tx_id))
            due.append(self._ids[tx_id])
        if len(heap) > 4 * len(schedule) + 1024:  # drop stale entries now and then
            self._due_heap = [(at, t) for at, t in heap if schedule.get(t, (None,))[0] == at]
            heapq.heapify(self._due_heap)
        return due

    def get(self, tx_id: bytes) -> SignedTx | None:
        return self._ids.get(tx_id)

    def has_executable(self) -> bool:
        """True if some sender's next nonce is pending (a block would not be empty)."""
        return any(self.account_nonce(sender) in pending for sender, pending in self._by_sender.items())

    def reap(self, max_txs: int, max_bytes: int, max_gas: int) -> list[SignedTx]:
        """The next block's transactions: per sender, consecutive nonces from the next one."""
        batch: list[SignedTx] = []
        size = gas = 0
        for sender, pending in self._by_sender.items():
            nonce = self.account_nonce(sender)
            while nonce in pending:
                tx = pending[nonce]
                tx_size = len(tx.encode())
                if len(batch) >= max_txs or size + tx_size > max_bytes or gas + tx.body.gas_limit > max_gas:
                    return batch
                batch.append(tx)
                size += tx_size
                gas += tx.body.gas_limit
                nonce += 1
        return batch

    def update(self, committed: Iterable[SignedTx]) -> list[bytes]:
        """After a block: drop included transactions and any made stale. Returns the ids that left."""
        removed: list[bytes] = []
        senders = set()
        recent, keep = self._recent, self.limits.recent_committed
        for tx in committed:
            senders.add(tx.body.sender)
            raw = tx.encode()
            recent[raw] = None
            if len(recent) > keep:
                recent.popitem(last=False)
            if self._forget(tx.tx_id) is not None:
                removed.append(tx.tx_id)
                pending = self._by_sender.get(tx.body.sender)
                if pending is not None:
                    pending.pop(tx.body.nonce, None)
        for sender in senders:
            pending = self._by_sender.get(sender)
            if pending is None:
                continue
            floor = self.account_nonce(sender)
            for nonce in [n for n in pending if n < floor]:
                stale = pending.pop(nonce).tx_id
                self._forget(stale)
                removed.append(stale)
            if not pending:
                del self._by_sender[sender]
        return removed

    def _forget(self, tx_id: bytes) -> SignedTx | None:
        tx = self._ids.pop(tx_id, None)
        if tx is not None:
            self._raws.discard(tx.encode())
            self._regossip.pop(tx_id, None)
        return tx

    def pending_txs(self) -> list[SignedTx]:
        return list(self._ids.values())
