"""The node's chain: committed blocks and state, block building, validation and commit.

How it works: ``Chain`` owns the block store and the authenticated state over one
KVStore. ``build_block`` (primary) and ``validate_block`` (backups, called by the
consensus core) both execute the block on an overlay of the committed state and keep
the outcome in a small cache keyed by block hash, so a block is executed once per
node however it arrives; ``speculate`` executes a previewed block's inputs before its
PRE-PREPARE arrives (``node.core.preview``) and ``check_block`` then takes that outcome;
``commit`` then writes block, certificate, receipts, state diff and indexes in one
synced batch and moves the state root, then ``prune_blocks`` deletes a bounded batch of
blocks older than the retain height (node.core.retention). A block that arrives
by catch-up (certificate already checked by the core) is executed at commit and its
roots compared with the header: a mismatch means this node's state or code differs
from the network's, and the node stops rather than diverge.

Which validators certify a height comes from committed state: ``schedule`` reads the
validator schedule (ledger/validator_set.py) through ``schedule_of`` (by default the
governance contract's storage; a chain whose state holds none keeps its genesis set)
once per state root. Every header names the set of its own height and of the next one,
and a block whose hashes differ from this node's schedule is not a valid next block.

The mempool's admission reads (the account a signing key acts for, its nonce and
balance, the call's shape against the installed ABI, the fee schedule) are answered
on the committed state, through the same ``resolve_signer`` the executor uses.

Nothing here does network I/O or reads a clock: callers pass timestamps in.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from contracts_vm.api import check_call_shape
from contracts_vm.system import (Signer, SigningPolicy, install_system_contracts, member_nodes, resolve_signer,
                                 signing_policy, validator_directory, validator_schedule)
from ledger.crypto import PUBLIC_KEY_BYTES
from ledger.errors import ChainError, CorruptionError, StorageError, ValidationError
from ledger.genesis import Genesis
from ledger.state import StateStore
from ledger.state_prune import PRUNE_NODES_PER_COMMIT, StatePruner
from ledger.storage.blockstore import BlockStore
from ledger.storage.schema import STATESYNC_KEY
from ledger.storage.kv import CORRUPTION_RECOVERY, KVStore
from ledger.validator_set import ValidatorSchedule
from ledger.types import (
    MAX_TX_GAS,
    ZERO_HASH,
    Block,
    BlockHeader,
    CommitCertificate,
    SignedTx,
    TxBody,
    compute_tx_root,
    verify_certificate,
)
from node.core.executor import SYSTEM_CONTRACT, BlockOutcome, execute_block, read_nonce, system_call_shape
from node.core.fees import FeeSchedule, genesis_schedule, read_balance, read_fee_schedule, write_fee_schedule
from node.core.retention import BlockRetention

log = logging.getLogger("shopchain.chain")

#: Executed-but-uncommitted block outcomes kept (one per candidate block of the open height).
MAX_CACHED_OUTCOMES = 16
#: Outcomes of previewed blocks kept until their PRE-PREPARE (or the next commit).
MAX_SPECULATIVE_OUTCOMES = 4
#: How far ahead of this node's clock a proposed block's timestamp may be.
MAX_FUTURE_DRIFT_MS = 30_000
#: How far behind this node's clock a block freshly proposed in the current view may be:
#: without it a hostile primary could stop the clock (each block 1 ms after the last) and no
#: commerce deadline would ever pass while it leads. Blocks re-proposed by a NEW-VIEW keep
#: their original, older time and are exempt.
MAX_PAST_DRIFT_MS = 60_000
#: Most transactions a primary puts in one block (``[consensus] max_block_txs``); the
#: protocol's hard cap, ``ledger.types.MAX_BLOCK_TXS``, is what a config may raise it to.
BLOCK_MAX_TXS = 2000
#: Largest encoded block a primary proposes (``[consensus] max_block_bytes``): half the
#: protocol cap ``ledger.types.MAX_BLOCK_BYTES``, so a proposal plus its certificate
#: travels well inside one p2p frame.
BLOCK_MAX_BYTES = 4 * 1024 * 1024
#: Most gas all transactions of a block use together (``[consensus] max_block_gas``),
#: which bounds a block's execution time whatever its transaction count.
BLOCK_MAX_GAS = 200_000_000


class DivergenceError(ChainError):
    """A certified block executes to different roots here: this node must stop."""


@dataclass(frozen=True)
class BlockLimits:
    max_txs: int = BLOCK_MAX_TXS
    max_bytes: int = BLOCK_MAX_BYTES
    max_gas: int = BLOCK_MAX_GAS


#: Reads the validator schedule from committed state, or None when the state holds none.
ScheduleReader = Callable[[StateStore], "ValidatorSchedule | None"]


def governance_schedule(state: StateStore) -> ValidatorSchedule | None:
    """The schedule the governance contract keeps in ``state`` (contracts_vm.system), None if it has none."""
    pairs = validator_schedule(state)
    return ValidatorSchedule.from_pairs(pairs) if pairs else None


def schedule_in(state: StateStore, genesis: Genesis, schedule_of: ScheduleReader | None = None) -> ValidatorSchedule:
    """The validator schedule ``state`` holds (governance's unless ``schedule_of`` says otherwise),
    else the genesis set for every height."""
    read = (schedule_of or governance_schedule)(state)
    return read if read is not None else ValidatorSchedule.fixed(genesis.validator_keys)


class Chain:
    def __init__(self, kv: KVStore, genesis: Genesis, sync: bool = True,
                 schedule_of: ScheduleReader | None = None,
                 directory_of: "Callable[[StateStore], dict[bytes, dict] | None] | None" = None,
                 retain_states: int = 0, snapshot_interval: int = 0,
                 retention: BlockRetention = BlockRetention()) -> None:
        self.kv = kv
        self.retention = retention  # which old blocks each commit may prune ([storage] retain_blocks)
        #: The oldest height a reader of this store still needs (the node's SQL indexer: its next
        #: height), or None; block pruning never passes it, so nothing is pruned before it is indexed.
        self.prune_floor: Callable[[], int] | None = None
        self.sync = sync  # fsync each commit; off only for throwaway networks ([storage] sync)
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self._schedule_of = schedule_of
        self._directory_of = directory_of or validator_directory
        self._schedule: tuple[bytes, ValidatorSchedule] | None = None  # (state root, schedule read there)
        self.blocks = BlockStore(kv)
        self.blocks.check_integrity()
        stored = self.blocks.genesis_hash()
        if stored is None:
            if kv.get(STATESYNC_KEY) is not None:
                raise StorageError(
                    "this store holds a state sync that has not finished (expected a complete store or an empty one, "
                    "found the fetched part of a snapshot): start the node with [statesync] enable = true to resume "
                    "it, or stop it, empty the data directory and start again")
            self.state = StateStore(kv)
            self._init_genesis()
        else:
            if stored != genesis.genesis_hash:
                raise CorruptionError(
                    f"the store belongs to genesis {stored.hex()[:16]}, but genesis.json hashes to "
                    f"{genesis.genesis_hash.hex()[:16]}", "use the genesis file this node was created with")
            root = self.blocks.get_state_root(self.blocks.height)
            self.state = StateStore(kv, root, height=self.blocks.height)
            self._check_head_certificate()
        # State pruning (ledger.state_prune): a bounded step in each commit's batch, and a bounded
        # catch-up here for a window that was lowered while the node was stopped.
        self.state_pruner = StatePruner(kv, retain_states, snapshot_interval)
        self.state_pruner.catch_up(self.blocks.height, sync=sync)
        self._head: Block | None = None
        self._outcomes: OrderedDict[bytes, BlockOutcome] = OrderedDict()
        # (height, timestamp_ms, tx_root) -> outcome: everything execution depends on.
        self._speculative: OrderedDict[tuple[int, int, bytes], BlockOutcome] = OrderedDict()
        self.speculation_hits = 0
        # Transactions of proposed blocks verified here because admission had not (verified_tx).
        self.block_tx_verifications = 0
        #: True when this node already verified this exact transaction (same bytes: co-signatures
        #: share the id); ``tx_verified`` is told of each one a block's validation verified. The
        #: node wires both to its mempool, so admission and blocks check each signature once.
        self.verified_tx: Callable[[SignedTx], bool] = lambda tx: False
        self.tx_verified: Callable[[SignedTx], None] = lambda tx: None
        self._fees: tuple[bytes, FeeSchedule] | None = None  # (state root, schedule read there)

    def _check_head_certificate(self) -> None:
        """Open check, last step: the head's certificate is a valid quorum of this validator set.

        ``check_integrity`` proved every header links to the head and the state root is
        the head's; this anchors that chain in the validators' signatures, so a store
        rewritten consistently (headers, indexes and roots together) is still refused.
        """
        height = self.blocks.height
        if height == 0:
            return
        head = self.blocks.get_block(height)
        cert = self.blocks.get_certificate(height)
        if head is None or cert is None:  # check_integrity has already refused a store like this
            raise CorruptionError(f"the head block {height} or its certificate is missing", CORRUPTION_RECOVERY)
        try:
            verify_certificate(cert, list(self.validators_at(height)), self.chain_id, height, head.block_hash)
        except ValidationError as exc:
            raise CorruptionError(f"the certificate of the head block {height} does not verify: {exc}",
                                  CORRUPTION_RECOVERY) from None

    def _init_genesis(self) -> None:
        overlay = self.state.overlay()
        install_system_contracts(overlay, self.genesis)
        write_fee_schedule(overlay, genesis_schedule(self.genesis))
        diff = overlay.commit()
        self.blocks.init_genesis(self.genesis.genesis_hash, diff.ops, diff.root)
        self.state.mark_committed(diff)
        log.info("genesis state written", extra={"state_root": diff.root.hex()})

    # --- reads ----------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self.blocks.height

    def head(self) -> Block | None:
        # Kept decoded: validating, building and previewing each read the head, and
        # decoding a block of hundreds of transactions costs milliseconds.
        height = self.height
        if self._head is None or self._head.height != height:
            self._head = self.blocks.get_block(height) if height else None
        return self._head

    def head_hash(self) -> bytes:
        """Hash of the head block, or the genesis hash before the first block."""
        head = self.head()
        return self.genesis.genesis_hash if head is None else head.block_hash

    def head_certificate(self) -> CommitCertificate | None:
        return self.blocks.get_certificate(self.height) if self.height else None

    def schedule(self) -> ValidatorSchedule:
        """The validator schedule in the committed state: final for every height up to head + 2."""
        root = self.state.root
        if self._schedule is None or self._schedule[0] != root:
            self._schedule = (root, schedule_in(self.state, self.genesis, self._schedule_of))
        return self._schedule[1]

    def validators_at(self, height: int) -> tuple[bytes, ...]:
        """The ordered keys that certify ``height`` (the consensus core's ``sets``)."""
        return self.schedule().at(height)

    def peer_keys(self) -> frozenset[bytes]:
        """Validators of the next height and every later scheduled one: the nodes to stay connected to."""
        schedule, following = self.schedule(), self.height + 1
        later = [keys for start, keys in schedule.entries if start > following]
        return frozenset(schedule.at(following)).union(*later)

    def validator_directory(self) -> dict[bytes, dict]:
        """{key: {"name", "organisation", "p2p_address", "rpc_address"}} of every validator ever scheduled."""
        directory = {v.public_key: {"name": v.name, "organisation": v.organisation, "p2p_address": v.p2p_address,
                                    "rpc_address": v.rpc_address} for v in self.genesis.validators}
        directory.update(self._directory_of(self.state) or {})
        return directory

    def member_nodes(self) -> dict[bytes, str]:
        """{key: p2p address} of the nodes active organisations registered (contracts_vm/system/nodes.sc.py):
        the observers a validator accepts connections from and sends votes and blocks to."""
        return {key: node["p2p_address"] for key, node in member_nodes(self.state).items()}

    def signer(self, key: bytes) -> Signer:
        """The account ``key`` signs for in the committed state, or why it may not sign."""
        return resolve_signer(self.state, key)

    def is_registered(self, key: bytes) -> bool:
        return self.signer(key).ok

    def account_of(self, key: bytes) -> bytes:
        """The account id ``key`` signs (or signed) for; the key itself when it is no account's."""
        return self.signer(key).account or key

    def nonce(self, key: bytes) -> int:
        """The next nonce of the account ``key`` signs for (nonces are per account, not per key)."""
        return read_nonce(self.state, self.account_of(key))

    def account_nonce(self, account: bytes) -> int:
        """The next nonce of an account id (the mempool resolved the key already)."""
        return read_nonce(self.state, account)

    # Admission reads (node.core.mempool): the latest committed state, cheap enough per transaction.

    def call_shape(self, body: TxBody) -> tuple[str, str] | None:
        """Why ``body``'s call does not fit the installed ABI (VM error name, message), or None."""
        if body.contract == SYSTEM_CONTRACT:
            return system_call_shape(body.method, body.args)
        return check_call_shape(self.state, body.contract, body.method, body.args)

    def fee_schedule(self) -> FeeSchedule:
        """The fee schedule in the committed state (read again only when the root moves)."""
        root = self.state.root
        if self._fees is None or self._fees[0] != root:
            self._fees = (root, read_fee_schedule(self.state))
        return self._fees[1]

    def balance(self, key: bytes) -> int:
        """The ledger balance of the account ``key`` signs for (it pays that key's fees)."""
        return read_balance(self.state, self.account_of(key))

    def account_balance(self, account: bytes) -> int:
        return read_balance(self.state, account)

    def signing_policy(self, account: bytes) -> SigningPolicy | None:
        """The account's signing policy in the committed state (admission's co-signer check)."""
        return signing_policy(self.state, account)

    # --- execution ------------------------------------------------------------------

    def _remember(self, block_hash: bytes, outcome: BlockOutcome) -> None:
        self._outcomes[block_hash] = outcome
        while len(self._outcomes) > MAX_CACHED_OUTCOMES:
            self._outcomes.popitem(last=False)

    def _execute(self, header: BlockHeader, txs: Iterable[SignedTx]) -> BlockOutcome:
        return self._run(header.height, header.timestamp_ms, list(txs))

    def _run(self, height: int, timestamp_ms: int, txs: list[SignedTx]) -> BlockOutcome:
        return execute_block(self.state, height, timestamp_ms, txs, resolve_signer)

    def next_timestamp(self, now_ms: int) -> int:
        """The timestamp a block built now gets: the clock, but always after the head's."""
        head = self.head()
        return max(now_ms, (head.header.timestamp_ms + 1) if head else self.genesis.genesis_time_ms + 1)

    def speculate(self, height: int, timestamp_ms: int, txs: list[SignedTx]) -> bool:
        """Execute a previewed block's inputs now; False if they are not for the next height or already done."""
        key = (height, timestamp_ms, compute_tx_root(txs))
        if height != self.height + 1 or key in self._speculative:
            return False
        self._speculative[key] = self._run(height, timestamp_ms, txs)
        while len(self._speculative) > MAX_SPECULATIVE_OUTCOMES:
            self._speculative.popitem(last=False)
        return True

    def build_block(self, view: int, height: int, prev_hash: bytes, last_commit: CommitCertificate | None,
                    proposer: bytes, txs: list[SignedTx], now_ms: int) -> Block:
        """Execute ``txs`` on the committed state and wrap them in a block for (view, height)."""
        if height != self.height + 1:
            raise ValidationError(f"asked to build block {height} but the head is {self.height}")
        timestamp = self.next_timestamp(now_ms)
        schedule = self.schedule()
        vset, next_vset = schedule.hash_at(height), schedule.hash_at(height + 1)
        draft = BlockHeader(self.chain_id, height, prev_hash, timestamp, proposer, view, compute_tx_root(txs),
                            ZERO_HASH, ZERO_HASH, vset, ZERO_HASH if last_commit is None else last_commit.cert_hash,
                            next_vset)
        outcome = self._execute(draft, txs)
        header = BlockHeader(draft.chain_id, height, prev_hash, timestamp, proposer, view, draft.tx_root,
                             outcome.receipts_root, outcome.state_root, vset, draft.last_commit_hash, next_vset)
        block = Block(header, tuple(txs), last_commit)
        self._remember(block.block_hash, outcome)
        return block

    def check_block(self, block: Block, now_ms: int | None, live: bool = False) -> str | None:
        """Why ``block`` is not a valid next block, or None if it is (executes it).

        ``now_ms`` is this node's clock (None when replaying certified blocks); ``live`` says
        the block was just proposed in the current view, so its time must also be recent."""
        h = block.header
        if h.chain_id != self.chain_id:
            return f"chain id {h.chain_id!r} is not {self.chain_id!r}"
        if h.height != self.height + 1:
            return f"height {h.height} does not follow the head {self.height}"
        if h.prev_hash != self.head_hash():
            return "prev_hash is not the head block's hash"
        schedule = self.schedule()
        if h.validator_set_hash != schedule.hash_at(h.height):
            return f"validator_set_hash does not match the validator set of height {h.height}"
        if h.next_validator_set_hash != schedule.hash_at(h.height + 1):
            return f"next_validator_set_hash does not match the validator set of height {h.height + 1}"
        if len(h.proposer) != PUBLIC_KEY_BYTES or h.proposer not in schedule.at(h.height):
            return f"the proposer is not a validator at height {h.height}"
        head = self.head()
        floor = head.header.timestamp_ms if head else self.genesis.genesis_time_ms
        if h.timestamp_ms <= floor:
            return f"timestamp {h.timestamp_ms} is not after the previous block's {floor}"
        if now_ms is not None and h.timestamp_ms > now_ms + MAX_FUTURE_DRIFT_MS:
            return f"timestamp {h.timestamp_ms} is more than {MAX_FUTURE_DRIFT_MS} ms ahead of this node's clock"
        if live and now_ms is not None and h.timestamp_ms < now_ms - MAX_PAST_DRIFT_MS:
            return (f"timestamp {h.timestamp_ms} of a fresh proposal is more than {MAX_PAST_DRIFT_MS} ms behind "
                    f"this node's clock {now_ms}")
        try:
            block.check_shape()
        except ValidationError as exc:
            return str(exc)
        for tx in block.txs:
            if tx.body.chain_id != self.chain_id:
                return f"transaction {tx.tx_id.hex()[:16]} is for another chain"
            if tx.body.gas_limit > MAX_TX_GAS:
                return f"transaction {tx.tx_id.hex()[:16]} asks for {tx.body.gas_limit} gas, the maximum is {MAX_TX_GAS}"
            if not self.verified_tx(tx):
                self.block_tx_verifications += 1
                if not tx.verify_signature():
                    return f"transaction {tx.tx_id.hex()[:16]} has an invalid signature or co-signature"
                self.tx_verified(tx)
        outcome = self._outcomes.get(block.block_hash)
        if outcome is None:
            # check_shape proved tx_root commits to these transactions in this order.
            outcome = self._speculative.pop((h.height, h.timestamp_ms, h.tx_root), None)
            if outcome is not None and outcome.diff.base_root == self.state.root:
                self.speculation_hits += 1
            else:
                outcome = self._execute(h, block.txs)
        if outcome.state_root != h.state_root:
            return "state_root differs from this node's execution"
        if outcome.receipts_root != h.receipts_root:
            return "receipts_root differs from this node's execution"
        self._remember(block.block_hash, outcome)
        return None

    # --- commit ---------------------------------------------------------------------

    def commit(self, block: Block, cert: CommitCertificate, extra_ops: list | None = None) -> BlockOutcome:
        """Persist a certified block (one synced batch) and move the state to it."""
        outcome = self._outcomes.pop(block.block_hash, None)
        if outcome is None or outcome.diff.base_root != self.state.root:
            outcome = self._execute(block.header, block.txs)
        schedule = self.schedule()
        if (block.header.validator_set_hash != schedule.hash_at(block.height)
                or block.header.next_validator_set_hash != schedule.hash_at(block.height + 1)):
            raise DivergenceError(
                f"certified block {block.height} names validator sets this node does not schedule for heights "
                f"{block.height} and {block.height + 1}: this node's state differs from the network's; "
                f"stop it and run `shopchain node verify`")
        if outcome.state_root != block.header.state_root or outcome.receipts_root != block.header.receipts_root:
            raise DivergenceError(
                f"certified block {block.height} ({block.block_hash.hex()[:16]}) executes to state root "
                f"{outcome.state_root.hex()[:16]} here, its header says {block.header.state_root.hex()[:16]}: "
                f"this node's code or state differs from the network's; stop it and run `shopchain node verify`")
        if outcome.diff.height != block.height:
            raise StorageError(f"the state diff of block {block.height} was computed for height {outcome.diff.height}")
        state_ops = outcome.diff.ops
        prune_ops, pruned_below = self.state_pruner.plan(block.height, PRUNE_NODES_PER_COMMIT, state_ops)
        if prune_ops:  # first, so a node this block writes again outlives any delete of its old copy
            state_ops = prune_ops + state_ops
        self.blocks.commit_block(block, cert, outcome.receipts, state_ops, extra_ops or (), sync=self.sync)
        self.state_pruner.written(pruned_below, prune_ops)
        self.state.mark_committed(outcome.diff)
        self._head = block
        self._outcomes.clear()  # every cached outcome was computed on the old root
        self._speculative.clear()
        self.prune_blocks()
        return outcome

    def prune_blocks(self) -> int:
        """One bounded pruning step towards the retain height (node.core.retention); returns the base.

        A separate batch after the commit's: the commit stays one synced write, and a crash
        between the two only leaves this step for the next commit to do."""
        target = self.retention.retain_height(self.height)
        if self.prune_floor is not None:
            target = min(target, self.prune_floor())
        if target <= max(self.blocks.base, 1):
            return self.blocks.base
        set_changes = [start - 1 for start, _ in self.schedule().entries[1:]]
        return self.blocks.prune_to(target, set_changes, sync=False)
