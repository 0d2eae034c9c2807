"""The mempool: admission of client transactions and batches for the primary.

How it works: ``admit`` runs every check a transaction must pass before a node
acknowledges it (DESIGN §2), cheapest first so that junk costs little: size,
canonical decode, chain id, gas bounds, argument size, duplicate id, the signing
key may sign (``resolve_sender``: the current key of an active account or an admin
key; a key rotated out of its account is refused naming the account and the
rotation height), the nonce window (of the key's account: nonces are per account), per-sender and global caps, the call's shape against the
installed ABI (``call_shape``: contract, method, argument count and types, from the
latest committed state), whether the sender can pay the most this and its other
pending transactions may cost in fees (``fees`` and ``balance_of``), that every
co-signature comes from a key of the sender's signing policy (``signing_policy``:
one that does not would never count; the spend limit itself is the executor's,
``node.core.spend``, since it depends on what the call does), and last the sender's
signature and every co-signature, each verified once (``verify``; bytes a proposed
block's validation already verified are not checked again, ``remember_verified``). Each refusal is a
``MempoolError`` with a stable reason code that JSON-RPC turns into a specific
error. A copy of a pending transaction that carries strictly more co-signatures
replaces it (``_upgrade_of``): co-signatures are outside the id, and the better-signed
copy must not be shut out by an earlier or stripped one. Admitted transactions wait per sender, keyed by nonce; ``reap`` hands the
primary, sender by sender in order of first arrival, each sender's run of consecutive
nonces starting at its next expected nonce, within count, byte and gas limits.
After every committed block ``update`` drops what was included and everything whose
nonce the chain has moved past, for every pending key of the accounts the block's
senders act for: after a rotation the new key moves the account's
nonce past what the old key left pending. An old key's transaction still pending at
the next nonce when its key is rotated out is included and refused by the executor
with the rotation in its receipt, so its client learns why.

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

from contracts_vm import errors as vm_errors
from contracts_vm.limits import INTRINSIC_GAS
from ledger import encoding
from ledger.errors import ChainError, DecodeError
from ledger.types import MAX_TX_BYTES, MAX_TX_GAS, SignedTx, TxBody
from contracts_vm.system import Signer, SigningPolicy
from node.core.backpressure import MAX_QUEUE_MS, DrainRate, busy_refusal
from node.core.fees import FREE, FeeSchedule

#: Largest encoded argument list of a transaction: far below MAX_TX_BYTES and the block
#: limit, so one call cannot fill a block with payload (governed code deploys, whose
#: argument is the code, are bounded by MAX_TX_BYTES only).
MAX_TX_ARGS_BYTES = 16 * 1024
#: Most pending transactions in all (``[mempool] max_txs``): bounds the pool's memory.
MAX_POOL_TXS = 50_000
#: Most pending transactions of one sender (``[mempool] max_per_sender``), so one busy
#: sender cannot fill the pool.
MAX_PER_SENDER = 1_000
#: How far past a sender's next nonce a transaction may be (``[mempool] nonce_window``).
NONCE_WINDOW = 1_000
#: Smallest gas limit: entering the VM at all costs this much, so less always fails.
MIN_TX_GAS = INTRINSIC_GAS
#: The pseudo-contract of governed deploys (node.core.executor.SYSTEM_CONTRACT) is exempt from MAX_TX_ARGS_BYTES.
DEPLOY_CONTRACT = "system"

# Refusal reasons: stable codes shown to clients and counted in metrics.
MALFORMED = "malformed"
TOO_LARGE = "too_large"
WRONG_CHAIN = "wrong_chain"
GAS_TOO_HIGH = "gas_too_high"
GAS_TOO_LOW = "gas_too_low"
ARGS_TOO_LARGE = "args_too_large"
UNKNOWN_CONTRACT = "unknown_contract"
UNKNOWN_METHOD = "unknown_method"
NOT_CALLABLE = "method_not_callable"
BAD_ARGUMENTS = "bad_arguments"
INSUFFICIENT_FEE = "insufficient_fee"
DUPLICATE = "duplicate"
UNREGISTERED = "unregistered_sender"
ROTATED_KEY = "rotated_key"
NONCE_TOO_LOW = "nonce_too_low"
NONCE_TOO_HIGH = "nonce_too_high"
SENDER_FULL = "sender_full"
POOL_FULL = "mempool_full"
BUSY = "busy"
BAD_SIGNATURE = "bad_signature"
BAD_COSIGNER = "bad_cosigner"
REASONS = (MALFORMED, TOO_LARGE, WRONG_CHAIN, GAS_TOO_HIGH, GAS_TOO_LOW, ARGS_TOO_LARGE, DUPLICATE, UNREGISTERED,
           ROTATED_KEY, NONCE_TOO_LOW, NONCE_TOO_HIGH, SENDER_FULL, POOL_FULL, BUSY, UNKNOWN_CONTRACT, UNKNOWN_METHOD, NOT_CALLABLE,
           BAD_ARGUMENTS, INSUFFICIENT_FEE, BAD_SIGNATURE, BAD_COSIGNER)
#: What each refusal means (the JSON-RPC reference lists these, docs/rpc.md).
REASON_DOCS = {
    MALFORMED: "the bytes are not a canonical signed transaction",
    TOO_LARGE: f"the encoded transaction exceeds the size limit ({MAX_TX_BYTES // 1024} KiB)",
    WRONG_CHAIN: "the transaction names another chain id",
    GAS_TOO_HIGH: f"the gas limit exceeds the per-transaction maximum ({MAX_TX_GAS:,})",
    GAS_TOO_LOW: f"the gas limit is below {MIN_TX_GAS}, the cost of entering the VM",
    ARGS_TOO_LARGE: f"the encoded arguments exceed {MAX_TX_ARGS_BYTES // 1024} KiB (code deploys excepted)",
    DUPLICATE: "the transaction, or another with its sender and nonce, is pending or recently committed",
    UNREGISTERED: "the sender is not a registered, active account",
    ROTATED_KEY: "the signing key was rotated out of its account (the message names the account and the height)",
    NONCE_TOO_LOW: "the nonce is already used",
    NONCE_TOO_HIGH: "the nonce is beyond the nonce window past the sender's next nonce",
    SENDER_FULL: "the sender has the most pending transactions allowed",
    POOL_FULL: "the mempool is full; retry after the next block",
    BUSY: ("the node already holds more than it commits in [mempool] max_queue_ms; data.retry_after_ms says when to "
           "send the same signed bytes again (node/core/backpressure.py)"),
    UNKNOWN_CONTRACT: "no contract of that name is installed",
    UNKNOWN_METHOD: "the contract has no public method of that name (the message lists its methods)",
    NOT_CALLABLE: "the method may only be called by a contract holding a capability",
    BAD_ARGUMENTS: "the argument count or a type does not match the method's ABI (the message shows both)",
    INSUFFICIENT_FEE: "the sender's balance does not cover the most this and its pending transactions may cost",
    BAD_SIGNATURE: "the signature or a co-signature does not verify for its key, the chain and the body",
    BAD_COSIGNER: "a co-signature is from a key that is not in the sender's signing policy (or the account has none)",
}
#: The refusal reason for each VM error name ``call_shape`` may answer.
SHAPE_REASONS = {vm_errors.UNKNOWN_CONTRACT: UNKNOWN_CONTRACT, vm_errors.UNKNOWN_METHOD: UNKNOWN_METHOD,
                 vm_errors.PERMISSION_DENIED: NOT_CALLABLE, vm_errors.BAD_ARGUMENTS: BAD_ARGUMENTS}

#: ``call_shape(body)``: None when the call fits the installed ABI, else (VM error name, message).
CallShape = Callable[[TxBody], "tuple[str, str] | None"]
#: ``resolve_sender(key)``: the account the key signs for and why it may not sign now
#: (contracts_vm.system.resolve_signer through ``Chain.signer``).
SenderResolver = Callable[[bytes], Signer]
#: The refusal reason for each error name a ``Signer`` refusal may carry.
SENDER_REASONS = {"RotatedKey": ROTATED_KEY}
#: ``signing_policy(account)``: the account's signing policy, None when it has none.
PolicyReader = Callable[[bytes], SigningPolicy | None]


class MempoolError(ChainError):
    """A transaction was refused; ``reason`` is one of REASONS, ``data`` what a client acts on (JSON-RPC error data)."""

    def __init__(self, reason: str, message: str, data: dict | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.data = data or {}


@dataclass(frozen=True)
class MempoolLimits:
    max_txs: int = MAX_POOL_TXS
    max_per_sender: int = MAX_PER_SENDER
    nonce_window: int = NONCE_WINDOW
    max_tx_bytes: int = MAX_TX_BYTES
    max_tx_gas: int = MAX_TX_GAS
    min_tx_gas: int = MIN_TX_GAS
    max_args_bytes: int = MAX_TX_ARGS_BYTES
    recent_committed: int = 20_000  # raw bytes of recently committed txs kept to drop late copies
    verified_elsewhere: int = 20_000  # raw bytes of txs a proposed block's validation verified, not yet pending
    regossip_after_s: float = 1.0   # first re-broadcast of a pending transaction
    regossip_max_interval_s: float = 32.0  # re-broadcast intervals double up to this
    max_queue_ms: int = MAX_QUEUE_MS  # client submissions refused as busy past this expected wait (0: never)


class Mempool:
    """Pending transactions; every state question is a callback on the latest committed state.

    ``resolve_sender`` maps a signing key to its account id (or a refusal);
    ``account_nonce`` and ``balance_of`` take account ids. Each pending key's account
    is resolved once, when its first transaction is added (a key never changes
    account), so ``reap`` and ``has_executable`` read nonces only. ``call_shape``,
    ``fees`` and ``balance_of`` are optional so that a pool can be tested without a
    chain; the node passes the Chain's (``node.core.engine``).
    """

    def __init__(self, chain_id: str, account_nonce: Callable[[bytes], int], resolve_sender: SenderResolver,
                 limits: MempoolLimits = MempoolLimits(),
                 verify: Callable[[SignedTx], bool] = SignedTx.verify_signature,
                 call_shape: CallShape | None = None, fees: Callable[[], FeeSchedule] = lambda: FREE,
                 balance_of: Callable[[bytes], int] | None = None,
                 signing_policy: PolicyReader | None = None) -> None:
        self.chain_id = chain_id
        self.account_nonce = account_nonce
        self.resolve_sender = resolve_sender
        self._account: dict[bytes, bytes] = {}  # pending signing key -> its account id (fixed for good)
        self._keys_of: dict[bytes, dict[bytes, None]] = {}  # account id -> its keys with pending txs
        self.limits = limits
        self.verify = verify
        self.call_shape = call_shape
        self.fees = fees
        self.balance_of = balance_of
        self.signing_policy = signing_policy
        self._held: dict[bytes, int] = {}  # sender -> the most its pending transactions may cost in fees
        self._fee_of: dict[bytes, int] = {}  # tx id -> the most it may cost (what it adds to _held)
        self._by_sender: OrderedDict[bytes, dict[int, SignedTx]] = OrderedDict()
        self._ids: dict[bytes, SignedTx] = {}
        self._raws: set[bytes] = set()  # raw bytes of the pending transactions
        self._recent: OrderedDict[bytes, None] = OrderedDict()  # raw bytes of recently committed ones
        # Raw bytes whose signatures block validation verified (Chain.check_block): their gossip
        # copy, arriving while the block is voted on, is admitted without a second check.
        self._verified_elsewhere: OrderedDict[bytes, None] = OrderedDict()
        self._regossip: dict[bytes, tuple[float, float]] = {}  # tx id -> (next due, interval)
        self._due_heap: list[tuple[float, bytes]] = []  # (due, tx id); stale entries skipped lazily
        self.refusals: dict[str, int] = {reason: 0 for reason in REASONS}
        self.drain = DrainRate()
        self.verified = 0  # transactions whose signatures admission checked (each once: see Chain.check_block)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._ids

    def holds(self, tx: SignedTx) -> bool:
        """True when this very transaction is pending: same id and same bytes. Its signatures
        were verified at admission; a copy with the same id but other co-signatures was not."""
        pending = self._ids.get(tx.tx_id)
        return pending is not None and pending.encode() == tx.encode()

    def verified_before(self, tx: SignedTx) -> bool:
        """True when this node already verified these exact bytes: pending, or checked in a
        proposed block. The bytes include every signature, so the answer cannot differ."""
        return self.holds(tx) or tx.encode() in self._verified_elsewhere

    def remember_verified(self, tx: SignedTx) -> None:
        """Block validation verified ``tx``'s signatures; keep that for its gossip copy (bounded,
        oldest forgotten first: forgetting costs one more check, never a wrong answer)."""
        memo = self._verified_elsewhere
        memo[tx.encode()] = None
        while len(memo) > self.limits.verified_elsewhere:
            memo.popitem(last=False)

    def _refuse(self, reason: str, message: str, data: dict | None = None) -> MempoolError:
        self.refusals[reason] += 1
        return MempoolError(reason, message, data)

    def check(self, raw: bytes, signed: bool = True, counted: bool = True) -> SignedTx:
        """Decode and run every admission check without adding; raise MempoolError.

        ``signed=False`` skips only the signature (a wallet simulating a call before it
        signs, node.core.simulate); ``counted=False`` leaves the refusal counters alone
        (a simulation asked what admission would say, nothing was sent).
        """
        if counted:
            return self._check(raw, signed)[0]
        before = dict(self.refusals)
        try:
            return self._check(raw, signed)[0]
        finally:
            self.refusals.update(before)

    def pending_before(self, sender: bytes, start: int, stop: int) -> list[SignedTx] | None:
        """``sender``'s pending transactions with nonces ``start..stop-1`` in order (what a block
        would include before nonce ``stop``), or None when one of them is not pending."""
        pending = self._by_sender.get(sender, {})
        run = [pending.get(nonce) for nonce in range(start, stop)]
        return None if any(tx is None for tx in run) else run  # type: ignore[return-value]


    def _upgrade_of(self, tx: SignedTx) -> SignedTx | None:
        """The pending copy of ``tx`` that ``tx`` replaces, or None when its id is not pending.

        The id leaves signatures out, so the same transaction may arrive with more
        co-signatures than a copy already pending (collected later, or a copy someone
        stripped): the one whose co-signers strictly include the pending copy's replaces
        it. Any other copy of a pending id is a duplicate.
        """
        pending = self._ids.get(tx.tx_id)
        if pending is None:
            return None
        if set(pending.cosigner_keys) < set(tx.cosigner_keys) and pending.signature == tx.signature:
            return pending
        raise self._refuse(DUPLICATE, f"transaction {tx.tx_id.hex()} is already pending"
                                      + (" with these or more co-signatures" if tx.cosignatures else ""))

    def _check(self, raw: bytes, signed: bool = True) -> tuple[SignedTx, bytes, SignedTx | None]:
        """``check``, also returning the account id the sender's key resolved to and the
        pending copy with fewer co-signatures this one replaces (None for a new id)."""
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
        if body.gas_limit < limits.min_tx_gas:
            raise self._refuse(GAS_TOO_LOW, f"gas limit {body.gas_limit} is below the minimum {limits.min_tx_gas} "
                                            f"(the cost of entering the VM)")
        if len(raw) > limits.max_args_bytes and body.contract != DEPLOY_CONTRACT:  # else the args cannot be larger
            args_bytes = len(encoding.encode(body.args))
            if args_bytes > limits.max_args_bytes:
                raise self._refuse(ARGS_TOO_LARGE, f"the arguments encode to {args_bytes} bytes, the limit is "
                                                   f"{limits.max_args_bytes}")
        replaces = self._upgrade_of(tx)
        signer = self.resolve_sender(body.sender)
        if signer.refusal is not None or signer.account is None:
            name, message = signer.refusal or ("UnregisteredSender", f"sender {body.sender.hex()} has no account")
            raise self._refuse(SENDER_REASONS.get(name, UNREGISTERED), message)
        account = signer.account
        expected = self.account_nonce(account)
        if body.nonce < expected:
            raise self._refuse(NONCE_TOO_LOW, f"nonce {body.nonce} is already used; the sender's next nonce is {expected}")
        if body.nonce >= expected + limits.nonce_window:
            raise self._refuse(NONCE_TOO_HIGH, f"nonce {body.nonce} is more than {limits.nonce_window} past the next nonce {expected}")
        pending = self._by_sender.get(body.sender)
        if pending is not None and body.nonce in pending and replaces is None:
            raise self._refuse(DUPLICATE, f"the sender already has a pending transaction with nonce {body.nonce}")
        if pending is not None and len(pending) >= limits.max_per_sender and replaces is None:
            raise self._refuse(SENDER_FULL, f"the sender has {len(pending)} pending transactions, the limit is {limits.max_per_sender}")
        if len(self._ids) >= limits.max_txs and replaces is None:
            raise self._refuse(POOL_FULL, f"the mempool holds {len(self._ids)} transactions, its limit; retry after the next block")
        if self.call_shape is not None:
            shape = self.call_shape(body)
            if shape is not None:
                raise self._refuse(SHAPE_REASONS.get(shape[0], BAD_ARGUMENTS), shape[1])
        fees = self.fees()
        if not fees.free and self.balance_of is not None:
            fee = fees.max_fee(body.gas_limit, len(raw))
            held = self._held.get(body.sender, 0) - (0 if replaces is None else self._fee_of.get(replaces.tx_id, 0))
            balance = self.balance_of(account)
            if balance < held + fee:
                pending_note = f" plus {held} for its pending transactions" if held else ""
                raise self._refuse(INSUFFICIENT_FEE, (
                    f"the sender's balance is {balance}, the fee may be up to {fee}{pending_note} (gas limit "
                    f"{body.gas_limit} x {fees.gas_price} per 1000 gas + {len(raw)} bytes x {fees.byte_price})"))
        if tx.cosignatures:
            self._check_cosigners(tx, account)
        if signed and raw in self._verified_elsewhere:
            signed = False  # a proposed block's validation verified these very bytes
        if signed:
            self.verified += 1
        if signed and not self.verify(tx):
            bad = tx.bad_cosignature() if tx.cosignatures else None
            if bad is not None:
                raise self._refuse(BAD_SIGNATURE, f"the co-signature of key 0x{bad.hex()} does not verify for this "
                                                  f"chain and body (a co-signer signs the same body as the sender)")
            raise self._refuse(BAD_SIGNATURE, "the signature does not verify for this sender, chain and body")
        return tx, account, replaces

    def _check_cosigners(self, tx: SignedTx, account: bytes) -> None:
        """Every co-signer must be a key of the account's policy: others would never count."""
        policy = None if self.signing_policy is None else self.signing_policy(account)
        if policy is None:
            raise self._refuse(BAD_COSIGNER, (
                f"the transaction carries {len(tx.cosignatures)} co-signature(s) but account 0x{account.hex()} has "
                f"no signing policy; send it signed by the account's key alone, or set a policy first "
                f"(identity.set_signing_policy)"))
        for key in tx.cosigner_keys:
            if key not in policy.cosigners:
                raise self._refuse(BAD_COSIGNER, (
                    f"co-signer 0x{key.hex()} is not in the signing policy of account 0x{account.hex()} "
                    f"(its co-signers: {', '.join('0x' + k.hex()[:16] for k in policy.cosigners)})"))

    def admit(self, raw: bytes, now: float = 0.0, client: bool = False) -> SignedTx:
        """Check and add a raw transaction; return it or raise MempoolError.

        ``client``: a new submission, which backpressure may refuse as BUSY before anything
        else is spent on it (a copy of a pending or just-committed one still gets its
        DUPLICATE answer, so a client's retry learns its transaction is in).
        """
        if client and raw not in self._raws and raw not in self._recent:
            busy = busy_refusal(len(self._ids), self.drain.per_second(), self.limits.max_queue_ms)
            if busy is not None:
                raise self._refuse(BUSY, busy[0], {"retry_after_ms": busy[1]})
        tx, account, replaces = self._check(raw)
        if replaces is not None:
            self._forget(replaces.tx_id)
            self._by_sender[tx.body.sender].pop(tx.body.nonce, None)
        self.add_checked(tx, now, account)
        return tx

    def add_checked(self, tx: SignedTx, now: float = 0.0, account: bytes | None = None) -> bool:
        """Add a transaction that already passed ``check`` (``account``: its sender's, if known)."""
        if tx.tx_id in self._ids:
            return False
        sender = tx.body.sender
        if sender not in self._by_sender:
            account = self._account[sender] = account or self._account_of(sender)
            self._keys_of.setdefault(account, {})[sender] = None
        self._by_sender.setdefault(sender, {})[tx.body.nonce] = tx
        self._ids[tx.tx_id] = tx
        self._raws.add(tx.encode())
        fees = self.fees()
        if not fees.free:
            fee = self._fee_of[tx.tx_id] = fees.max_fee(tx.body.gas_limit, len(tx.encode()))
            self._held[tx.body.sender] = self._held.get(tx.body.sender, 0) + fee
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
        return any(self.account_nonce(self._account[sender]) in pending for sender, pending in self._by_sender.items())

    def reap(self, max_txs: int, max_bytes: int, max_gas: int) -> list[SignedTx]:
        """The next block's transactions: per sender, consecutive nonces from the next one."""
        batch: list[SignedTx] = []
        size = gas = 0
        for sender, pending in self._by_sender.items():
            nonce = self.account_nonce(self._account[sender])
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

    def update(self, committed: Iterable[SignedTx], timestamp_ms: int | None = None) -> list[bytes]:
        """After a block: drop included transactions and any made stale. Returns the ids that left.

        ``timestamp_ms``, the block's consensus time, feeds the drain rate backpressure uses.
        """
        removed: list[bytes] = []
        count = 0
        accounts: dict[bytes, None] = {}  # in block order: every read below happens in one order on every run
        recent, keep = self._recent, self.limits.recent_committed
        for tx in committed:
            count += 1
            sender = tx.body.sender
            accounts[self._account.get(sender) or self._account_of(sender)] = None
            raw = tx.encode()
            recent[raw] = None
            self._verified_elsewhere.pop(raw, None)  # ``_recent`` answers its late copies now
            if len(recent) > keep:
                recent.popitem(last=False)
            if self._forget(tx.tx_id) is not None:
                removed.append(tx.tx_id)
                pending = self._by_sender.get(tx.body.sender)
                if pending is not None:
                    pending.pop(tx.body.nonce, None)
        for account in accounts:
            for sender in list(self._keys_of.get(account, ())):
                self._drop_stale(sender, removed)
        if timestamp_ms is not None:
            self.drain.committed(timestamp_ms, count)
        return removed

    def _account_of(self, key: bytes) -> bytes:
        """The account id ``key`` signs for (a key that is no account's stands for itself)."""
        return self.resolve_sender(key).account or key

    def _drop_stale(self, sender: bytes, removed: list[bytes]) -> None:
        """Drop ``sender``'s pending transactions whose nonce its account has moved past."""
        pending = self._by_sender.get(sender)
        if pending is not None:
            floor = self.account_nonce(self._account[sender])
            for nonce in [n for n in pending if n < floor]:
                stale = pending.pop(nonce).tx_id
                self._forget(stale)
                removed.append(stale)
        if not pending:
            self._by_sender.pop(sender, None)
            account = self._account.pop(sender, None)
            keys = self._keys_of.get(account)
            if keys is not None:
                keys.pop(sender, None)
                if not keys:
                    del self._keys_of[account]

    def _forget(self, tx_id: bytes) -> SignedTx | None:
        tx = self._ids.pop(tx_id, None)
        if tx is not None:
            self._raws.discard(tx.encode())
            self._regossip.pop(tx_id, None)
            fee = self._fee_of.pop(tx_id, 0)
            if fee:
                left = self._held[tx.body.sender] - fee
                if left:
                    self._held[tx.body.sender] = left
                else:
                    del self._held[tx.body.sender]
        return tx

    def pending_txs(self) -> list[SignedTx]:
        return list(self._ids.values())
