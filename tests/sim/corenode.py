"""A simulated validator that runs the real node core (node/core/engine.py) on a faulty store.

How it works: ``CoreSimNode`` is a ``SimNode`` whose decisions are made by the same
``NodeCore`` the production service drives: the real Ready loop, consensus records
journal, chain (block building, validation by re-execution of the system contracts,
atomic commits), mempool admission and catch-up. It plays the service's part as the
core's ``CoreHost``: messages go to the simulated network, catch-up requests are served
from the real block store, a propose request is answered right after the Ready loop
with a block built from the mempool, stamped with the simulated clock.

Its store is a ``FaultyKV`` (tests/sim/faultykv.py). A crash drops the core and
reopens the store as a process kill (unsynced writes kept) or a power loss (rolled
back); a scenario may make writes fail or reads come back corrupted on one instance,
and the core must halt (``NodeCore.halt``) rather than sign, send or commit anything
that depended on them. A halted instance counts as down until the simulator restarts
it. All genesis stores are copies of one genesis state built once per process, so a
scenario costs block execution, not contract installation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from functools import lru_cache
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from consensus.messages import BlockRequest, Blocks, NewView, PrePrepare
from consensus.ready import ProposeRequest, Record
from devnet.genesis import ADMINS, CONTRACT_SETTINGS, DEMO_ACCOUNTS, FEE_COLLECTOR, ORGANISATIONS
from ledger.crypto import SigningKey, sha256
from ledger.validator_set import ValidatorSchedule
from ledger.genesis import Genesis, GenesisAccount, GenesisFees, Organisation, ValidatorInfo
from ledger.storage.kv import MemoryKV
from ledger.types import Block, CommitCertificate, SignedTx, TxBody
from node.core.chain import Chain
from node.core.engine import CoreSettings, NodeCore
from node.core.executor import BlockOutcome
from node.core.records import RECORD_PREFIX
from tests.sim.faultykv import FaultyKV
from tests.sim.node import SimNode

if TYPE_CHECKING:
    from tests.sim.cluster import Simulation

#: Simulated milliseconds per tick: block timestamps are genesis time + tick x this.
TICK_MS = 50
#: Buyers whose transfers make the workload (each has its own nonce sequence).
WORKLOAD_SENDERS = ("buyer-1", "buyer-2", "buyer-3")
#: Chance per tick of another transfer being offered (up to 4 per tick).
WORKLOAD_PER_TICK = 0.3
#: Storage faults a real-core scenario may draw, with the per-operation rate while on.
STORAGE_FAULTS = {"fail_writes": 0.25, "corrupt_reads": 0.02}


@dataclass(frozen=True)
class StorageFault:
    instance: int
    kind: str  # a FaultyKV attribute: fail_writes or corrupt_reads
    rate: float
    start: int
    end: int


def draw_storage_fault(rng: random.Random, instances: int, heal_tick: int) -> StorageFault | None:
    """Two scenarios in three get one instance's disk failing for a while before the heal."""
    if rng.random() < 1 / 3 or heal_tick < 4:
        return None
    kind = rng.choice(sorted(STORAGE_FAULTS))
    start = rng.randrange(1, heal_tick // 2)
    return StorageFault(rng.randrange(instances), kind, STORAGE_FAULTS[kind], start,
                        min(heal_tick, start + rng.randrange(10, 80)))


def account_key(name: str) -> SigningKey:
    return SigningKey.from_label(f"sim-account-{name}")


@lru_cache(maxsize=8)
def sim_genesis(chain_id: str, validator_labels: tuple[str, ...]) -> Genesis:
    keys = [SigningKey.from_label(label) for label in validator_labels]
    orgs = tuple(Organisation(oid, name, (account_key(ADMINS[oid]).public_key,)) for oid, name in ORGANISATIONS)
    validators = tuple(ValidatorInfo(f"node{i}", ORGANISATIONS[i % len(ORGANISATIONS)][0], k.public_key,
                                     f"127.0.0.1:{26000 + i}", f"127.0.0.1:{27000 + i}") for i, k in enumerate(keys))
    accounts = tuple(GenesisAccount(account_key(name).public_key, org, tuple(sorted(roles)), balance, None)
                     for name, org, roles, balance in DEMO_ACCOUNTS)
    fees = GenesisFees(1, 1, account_key(FEE_COLLECTOR).public_key)
    return Genesis(chain_id, 1_000, orgs, validators, accounts, dict(CONTRACT_SETTINGS), fees)


_GENESIS_STORES: dict[bytes, dict[bytes, bytes]] = {}


def genesis_store(genesis: Genesis) -> dict[bytes, bytes]:
    """The store right after genesis, built once per process: every instance starts from a copy."""
    data = _GENESIS_STORES.get(genesis.genesis_hash)
    if data is None:
        kv = MemoryKV()
        Chain(kv, genesis)
        data = _GENESIS_STORES[genesis.genesis_hash] = dict(kv.iterate())
    return data


class SimCrash(BaseException):
    """Raised out of the core's Ready loop to model a crash between persisting and sending
    (a BaseException: the core halts on any Exception, and a crash is not a halt)."""


class CoreSimNode(SimNode):
    """One instance running ``NodeCore``; see the module docstring."""

    def __init__(self, sim: "Simulation", index: int, key: SigningKey, byzantine: bool = False) -> None:
        self.sim, self.index, self.key, self.byzantine = sim, index, key, byzantine
        self.replica = None
        self.crash_after_persist = False
        self.genesis = sim_genesis(sim.chain_id, tuple(sim.validator_labels))
        self.kv = self._fresh_store()
        self.core: NodeCore | None = None
        self._request: ProposeRequest | None = None
        self._head: tuple[int, bytes] = (0, self.genesis.genesis_hash)  # what this instance has persisted
        self.halts: list[str] = []
        self.halted_at: int | None = None
        self.txs_committed = 0

    def _fresh_store(self) -> FaultyKV:
        return FaultyKV(random.Random(self.sim.rng.getrandbits(64)), dict(genesis_store(self.genesis)))

    # --- what the cluster and checkers read ------------------------------------------

    @property
    def committed_height(self) -> int:
        return self._head[0]

    def head_hash(self) -> bytes:
        return self._head[1]

    @property
    def store(self) -> list[tuple[Block, CommitCertificate]]:
        return []  # the blocks live in the KV store; only a wipe (below) is ever assigned

    @store.setter
    def store(self, value: list) -> None:
        if value:
            raise ValueError("a CoreSimNode's store can only be wiped")
        self.kv = self._fresh_store()  # a rebuild: the operator gave it an empty disk

    @property
    def records(self) -> list[Record]:
        return [Record.decode(raw) for _, raw in self.kv.iterate(prefix=RECORD_PREFIX)]

    @records.setter
    def records(self, value: list) -> None:
        if value:
            raise ValueError("a CoreSimNode's records can only be wiped")
        self.kv.write([(k, None) for k, _ in self.kv.iterate(prefix=RECORD_PREFIX)])

    def clock_ms(self) -> int:
        return self.genesis.genesis_time_ms + self.sim.now * TICK_MS

    def _schedule(self, state) -> ValidatorSchedule:
        """The scenario's changes, as if governance in this state had scheduled them all."""
        return self.sim.schedule

    # --- lifecycle -------------------------------------------------------------------

    def start(self, forget_records: bool = False) -> None:
        if forget_records:
            self.records = []
        self.kv.closed = False
        try:
            self.core = NodeCore(self.kv, self.genesis, self.key, self, self.clock_ms,
                                 CoreSettings(view_timeout_ticks=self.sim.view_timeout_ticks),
                                 verifier=self.sim.verifier, replica_class=self.sim.replica_class,
                                 schedule_of=self._schedule if self.sim.scenario.changes else None)
        except Exception as exc:  # e.g. the store refused to open: stays down, the sim restarts it later
            self.halts.append(f"start: {exc}")
            self.core = None
            self.replica = None
            self.halted_at = self.sim.now
            return
        self.replica = self.core.replica
        self._head = (self.core.chain.height, self.core.chain.head_hash())
        self._request = None
        self.pump()

    def crash(self, power_loss: bool | None = None) -> None:
        self.core = None
        self.replica = None
        self.crash_after_persist = False
        self.kv.crash(self.sim.rng.random() < 0.5 if power_loss is None else power_loss)

    # --- CoreHost ----------------------------------------------------------------------

    def send(self, to: bytes | None, message: Any) -> None:
        if self.crash_after_persist:  # the crash window between persist and send
            raise SimCrash()
        if isinstance(message, BlockRequest):
            self.sim.send_fetch(self, to, message)
            return
        self.sim.observe_sent(self, message)
        if self.byzantine and to is None and isinstance(message, (PrePrepare, NewView)):
            self.sim.equivocate(self, message)
            return
        self.sim.network.send(self.index, to, message)

    def serve(self, peer: bytes | None, from_height: int, count: int) -> None:
        blocks = self.core.chain.blocks
        items = []
        for height in range(from_height, min(from_height + count, blocks.height + 1)):
            block, cert = blocks.get_block(height), blocks.get_certificate(height)
            if block is None or cert is None:
                break
            items.append((block, cert))
        if items and peer is not None:
            self.sim.network.send(self.index, peer, Blocks(tuple(items)))

    def committed(self, block: Block, cert: CommitCertificate, outcome: BlockOutcome) -> None:
        self.sim.observe_commit(self, block, cert)
        self._head = (block.height, block.block_hash)
        self.txs_committed += len(block.txs)

    def asked_to_propose(self, request: ProposeRequest) -> None:
        self._request = request

    def on_halt(self, reason: str, cause: Exception) -> None:
        self.halts.append(reason)
        self.sim.trace("halt", self.sim.now, self.index)

    # --- driving -----------------------------------------------------------------------

    def pump(self, action: Callable[[NodeCore], None] | None = None) -> None:
        """Apply one input, run the core's Ready loop, then answer a propose request, until quiet."""
        core = self.core
        if core is None:
            return
        try:
            if action is not None:
                action(core)
            for _ in range(100):
                core.drive()
                request, self._request = self._request, None
                if request is None or core.halted_reason is not None:
                    break
                block = core.build_block(request, self._reap(core), core.chain.next_timestamp(self.clock_ms()))
                if block is not None:
                    core.propose(block)
        except SimCrash:
            self.sim.trace("crash-mid", self.index)
            self.crash()
            return
        if core.halted_reason is not None:
            self.crash(power_loss=False)  # a halted node is down until it is restarted
            self.halted_at = self.sim.now

    def _reap(self, core: NodeCore) -> list[SignedTx]:
        return core.mempool.reap(core.limits.max_txs, core.limits.max_bytes, core.limits.max_gas)

    def deliver(self, message: Any, sender: bytes) -> None:
        if self.core is not None:
            self.pump(lambda core: core.step(message, sender))

    def tick(self, unreachable: frozenset[bytes]) -> None:
        if self.core is not None:
            self.pump(lambda core: core.tick(unreachable))

    def build_block(self, req: ProposeRequest, valid: bool = True) -> Block:
        """A conflicting block for an equivocating primary (valid, or with a wrong state root)."""
        chain = self.core.chain
        block = chain.build_block(req.view, req.height, req.prev_hash, req.last_commit, self.key.public_key,
                                  [], chain.next_timestamp(self.clock_ms()) + 1 + self.sim.rng.randrange(1000))
        if valid:
            return block
        return Block(replace(block.header, state_root=sha256(b"bad")), block.txs, block.last_commit)

    def admit(self, raw: bytes) -> None:
        """A transaction gossiped to this instance (admission refusals are normal under faults)."""
        if self.core is not None and self.core.halted_reason is None:
            try:
                self.core.mempool.admit(raw, float(self.sim.now))
            except Exception:
                pass


class Workload:
    """Signed transfers between the genesis buyers, injected into every up instance's mempool."""

    def __init__(self, chain_id: str, rng: random.Random, per_tick: float) -> None:
        self.chain_id, self.rng, self.per_tick = chain_id, rng, per_tick
        self.keys = [account_key(name) for name in WORKLOAD_SENDERS]
        self.nonces = [0] * len(self.keys)
        self.sent = 0

    def next_batch(self) -> list[bytes]:
        out = []
        while self.rng.random() < self.per_tick and len(out) < 4:
            i = self.rng.randrange(len(self.keys))
            to = self.keys[(i + 1) % len(self.keys)].public_key
            body = TxBody(self.chain_id, self.keys[i].public_key, self.nonces[i], "ledger", "transfer",
                          [to, 1 + self.rng.randrange(100)], 50_000)
            self.nonces[i] += 1
            out.append(body.sign(self.keys[i]).encode())
        self.sent += len(out)
        return out
