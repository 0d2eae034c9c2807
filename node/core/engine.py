"""The node's deterministic core: chain, mempool, consensus records and replica, and the Ready loop.

How it works: ``NodeCore`` owns everything a validator decides with, over one
key-value store, and nothing that does I/O besides that store: no sockets, no event
loop, no wall clock (the host passes ``clock_ms`` for the block-time drift check and
``now`` for mempool timing). The production service (node/service.py) and the
deterministic simulator (tests/sim) both drive the same object, so the simulated node
runs the real Ready loop, block validation, execution, mempool and catch-up.

Inputs: ``step`` (a peer's consensus message), ``tick``, ``submit`` (a client's raw
transaction), ``propose`` (the block ``build_block`` made for a ``ProposeRequest``). After
each, ``drive`` runs the replica's Ready/Advance cycle in the order DESIGN §4 fixes:
persist what was signed (node/core/records.py) BEFORE any of it is sent, then send,
then apply committed blocks (one atomic batch each, which also deletes the consensus
records and mempool journal entries the commit made obsolete), then fetch and serve
for catch-up, then ``advance``. What leaves the core goes through the ``CoreHost``
callbacks. A block that executes differently from its certificate, a corrupted read
or a failed write halts the core (``halted`` holds the reason): nothing that depends
on a write that failed is signed, sent or acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from consensus import CATCHUP_TIMEOUT_TICKS, VIEW_TIMEOUT_TICKS, BlockRequest, ProposeRequest, Replica
from consensus.certs import DEFAULT_VERIFIER, Verifier
from ledger.crypto import SigningKey
from ledger.errors import ChainError, CorruptionError, StorageError
from ledger.genesis import Genesis
from ledger.storage import schema
from ledger.storage.kv import KVStore
from ledger.types import Block, CommitCertificate, SignedTx
from node.core.chain import BlockLimits, Chain, DivergenceError, ScheduleReader
from node.core.executor import BlockOutcome
from node.core.mempool import Mempool, MempoolError, MempoolLimits
from node.core.records import RecordJournal
from node.core.retention import BlockRetention

log = logging.getLogger("shopchain.chain")

#: Ready cycles one input may cause before the core reports a bug in itself.
MAX_READY_ROUNDS = 10_000


class ReadyLoopError(ChainError):
    """The consensus core kept producing work for one input: a bug, reported instead of spinning."""


#: What stops the core: a certified block executing differently here, a store that
#: reads back damaged, a write that failed, a Ready loop that does not settle.
HALTING_ERRORS = (DivergenceError, CorruptionError, StorageError, ReadyLoopError)


def halt_reason(exc: Exception) -> str:
    """The halt message. Anything else escaping validation or the Ready loop is a local fault too:
    execution is deterministic and never raises on valid state (the simulator found a
    damaged stored value surfacing as a VM decode error), and a half-done Ready cycle
    cannot be resumed safely, so the node stops instead of guessing."""
    if isinstance(exc, HALTING_ERRORS):
        return str(exc)
    return (f"{type(exc).__name__} while validating or applying blocks: {exc}. The local state may be damaged; "
            f"stop the node and run `shopchain node verify`")


class CoreHost(Protocol):
    """What the core asks of its host (the service, or the simulator's node)."""

    def send(self, to: bytes | None, message: Any) -> None: ...
    def serve(self, peer: bytes | None, from_height: int, count: int) -> None: ...
    def committed(self, block: Block, cert: CommitCertificate, outcome: BlockOutcome) -> None: ...
    def asked_to_propose(self, request: ProposeRequest) -> None: ...
    def on_halt(self, reason: str, cause: Exception) -> None: ...


@dataclass(frozen=True)
class CoreSettings:
    """The consensus and admission knobs of one node (the service reads them from config.toml)."""

    block_limits: BlockLimits = BlockLimits()
    mempool_limits: MempoolLimits = MempoolLimits()
    view_timeout_ticks: int = VIEW_TIMEOUT_TICKS
    catchup_timeout_ticks: int = CATCHUP_TIMEOUT_TICKS
    sync_writes: bool = True
    observer: bool = False  # never sign, whatever the validator set says ([node] observer)
    retain_states: int = 0  # state versions kept ([storage] retain_states; 0 = archive)
    snapshot_interval: int = 0  # state-sync snapshot heights, kept from pruning ([statesync] snapshot_interval)
    retention: BlockRetention = BlockRetention()  # old blocks each commit may prune ([storage] retain_blocks)


class NodeCore:
    """One validator's decisions over one store; see the module docstring."""

    def __init__(self, kv: KVStore, genesis: Genesis, key: SigningKey, host: CoreHost, clock_ms: Callable[[], int],
                 settings: CoreSettings = CoreSettings(), verifier: Verifier = DEFAULT_VERIFIER,
                 replica_class: type[Replica] = Replica, schedule_of: ScheduleReader | None = None) -> None:
        self.kv, self.genesis, self.key, self.host, self.clock_ms = kv, genesis, key, host, clock_ms
        self.settings = settings
        self.chain = Chain(kv, genesis, settings.sync_writes, schedule_of=schedule_of,
                           retain_states=settings.retain_states, snapshot_interval=settings.snapshot_interval,
                           retention=settings.retention)
        self.limits = settings.block_limits
        self.mempool = Mempool(genesis.chain_id, self.chain.account_nonce, self.chain.signer, settings.mempool_limits,
                               call_shape=self.chain.call_shape, fees=self.chain.fee_schedule,
                               balance_of=self.chain.account_balance, signing_policy=self.chain.signing_policy)
        self.chain.verified_tx, self.chain.tx_verified = self.mempool.verified_before, self.mempool.remember_verified
        # A read that finds the store corrupted (an RPC answer, a catch-up serve) halts the node.
        self.chain.blocks.on_corruption = self.chain.state.on_corruption = lambda exc: self.halt(str(exc), exc)
        self.records = RecordJournal(kv, settings.sync_writes)
        self.replica = replica_class(
            chain_id=genesis.chain_id, key=key, validators=self.chain.validators_at, block_validator=self,
            committed_height=self.chain.height, committed_hash=self.chain.head_hash(),
            last_certificate=self.chain.head_certificate(), records=self.records.records(),
            view_timeout_ticks=settings.view_timeout_ticks, verifier=verifier,
            catchup_timeout_ticks=settings.catchup_timeout_ticks, observer=settings.observer)
        self.halted_reason: str | None = None
        self.driving = False
        self.rejected_blocks: list[str] = []  # the last few reasons, for the host's log

    # --- inputs -------------------------------------------------------------------

    def step(self, message: Any, sender: bytes) -> None:
        """A peer's message (catch-up answers included); validating a proposal executes it here."""
        if self.halted_reason is None:
            with self._halt_on_failure():
                self.replica.step(message, sender=sender)
            self.drive()

    def tick(self, unreachable: frozenset[bytes]) -> None:
        if self.halted_reason is None:
            with self._halt_on_failure():
                self.replica.peers_unreachable(unreachable)
                self.replica.tick()
            self.drive()

    def build_block(self, request: ProposeRequest, txs: list[SignedTx], timestamp_ms: int) -> Block | None:
        """Execute and build the block for ``request``, or None if the request went stale meanwhile."""
        if (self.halted_reason is not None or self.driving or request.height != self.chain.height + 1
                or request.view != self.replica.view):
            return None  # the view moved on; the core asks again if it must
        with self._halt_on_failure():
            return self.chain.build_block(request.view, request.height, request.prev_hash, request.last_commit,
                                          self.key.public_key, txs, timestamp_ms)
        return None  # building failed and halted the core

    def propose(self, block: Block) -> None:
        """Hand a block from ``build_block`` to the replica (it signs and sends the PRE-PREPARE)."""
        if self.halted_reason is None:
            self.replica.propose(block)
            self.drive()

    def submit(self, raw: bytes, now: float) -> SignedTx:
        """Admit a client's transaction and journal it before it is acknowledged.

        MempoolError says why it was refused; a StorageError halts the core and is
        raised as a ChainError, so the client never gets an id for what was not stored.
        """
        if self.halted_reason is not None:
            raise ChainError(f"this node has halted: {self.halted_reason}")
        tx = self.mempool.admit(raw, now, client=True)
        # A kill -9 keeps OS-buffered writes; a restart re-admits what was acknowledged (reload_journal).
        try:
            self.kv.write([(schema.mempool_key(tx.tx_id), tx.encode())], sync=False)
        except StorageError as exc:
            self.halt(str(exc), exc)
            raise ChainError(f"this node has halted: {self.halted_reason}") from None
        return tx

    def reload_journal(self, now: float) -> list[bytes]:
        """Re-admit acknowledged transactions a previous run had not committed; returns them."""
        readmitted, dead = [], []
        for key, raw in self.kv.iterate(prefix=schema.MEMPOOL):
            try:
                self.mempool.admit(raw, now)
                readmitted.append(raw)
            except MempoolError:
                dead.append((key, None))  # committed meanwhile, or no longer valid
        if dead:
            self._write_or_halt(dead)
        return readmitted

    # --- the BlockValidator the replica asks ----------------------------------------

    def validate_block(self, block: Block) -> bool:
        """Re-execute ``block`` on the committed state and compare every root. A block of the
        replica's current view is a fresh proposal, whose time must be recent as well; one a
        NEW-VIEW carries over from an earlier view keeps its older time."""
        live = block.header.view == self.replica.view
        reason = self.chain.check_block(block, self.clock_ms(), live)
        if reason is not None:
            self.rejected_blocks = (self.rejected_blocks + [f"height {block.height}: {reason}"])[-8:]
            log.warning("rejected proposed block at height %d (view %d, proposer %s..): %s", block.height,
                        block.header.view, block.header.proposer.hex()[:16], reason)
        return reason is None

    # --- the Ready loop ---------------------------------------------------------------

    def drive(self) -> None:
        """Run the replica's Ready/Advance cycle until it has nothing more to say."""
        if self.driving or self.halted_reason is not None:
            return  # re-entered from inside a cycle: the outer loop picks the work up
        self.driving = True
        try:
            rounds = 0
            while self.replica.has_ready():
                rounds += 1
                if rounds > MAX_READY_ROUNDS:
                    raise ReadyLoopError(f"the consensus core produced work {MAX_READY_ROUNDS} times for one input")
                rd = self.replica.ready()
                if rd.persist:
                    self.records.append(rd.persist)
                for to, message in rd.messages:
                    self.host.send(to, message)
                for block, cert in rd.committed:
                    self._apply(block, cert)
                for peer, from_height, count in rd.fetch:
                    self.host.send(peer, BlockRequest(from_height, count))
                for peer, from_height, count in rd.serve:
                    self.host.serve(peer, from_height, count)
                request = rd.propose_request
                self.replica.advance()
                if request is not None:
                    self.host.asked_to_propose(request)
        except Exception as exc:
            # StorageError: disk full, read-only, I/O error; nothing of this cycle that needed it was sent.
            self.halt(halt_reason(exc), exc)
        finally:
            self.driving = False

    @contextlib.contextmanager
    def _halt_on_failure(self) -> Iterator[None]:
        """Inputs outside the Ready loop read the store too (validation executes blocks)."""
        try:
            yield
        except Exception as exc:
            self.halt(halt_reason(exc), exc)

    def _apply(self, block: Block, cert: CommitCertificate) -> None:
        journal = [(schema.mempool_key(tx.tx_id), None) for tx in block.txs]
        outcome = self.chain.commit(block, cert, self.records.deletions(block.height) + journal)
        stale = [(schema.mempool_key(t), None) for t in self.mempool.update(block.txs, block.header.timestamp_ms)]
        if stale:
            self._write_or_halt(stale)
        self.host.committed(block, cert, outcome)

    def _write_or_halt(self, batch: list[tuple[bytes, bytes | None]]) -> None:
        try:
            self.kv.write(batch, sync=False)
        except StorageError as exc:
            self.halt(str(exc), exc)

    def halt(self, reason: str, cause: Exception) -> None:
        """Stop deciding: the first reason sticks and the host is told once."""
        if self.halted_reason is not None:
            return
        self.halted_reason = reason
        self.host.on_halt(reason, cause)
