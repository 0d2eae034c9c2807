"""A simulated validator runtime around one consensus ``Replica``.

How it works: a ``SimNode`` plays the part the real node will play. It keeps what a
node keeps on disk (the committed chain with certificates, and the consensus records)
and nothing else survives ``crash()``. ``pump()`` drives the Ready/Advance loop in the
documented order: persist, send, apply committed blocks, serve and fetch, then
advance and build a requested block. Execution is a stand-in that is still checked:
a block's state root must be sha256(parent root || height), so a block that does not
"re-execute" is rejected by ``validate_block``.

A byzantine node runs the honest core but equivocates as primary: the sim hands half
of its peers a second, conflicting PRE-PREPARE signed with the same key (sometimes an
invalid block).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.crypto import SigningKey, sha256
from ledger.merkle import EMPTY_ROOT
from ledger.types import ZERO_HASH, Block, BlockHeader, CommitCertificate

from consensus.messages import BlockRequest, Blocks, NewView, PrePrepare
from consensus.ready import ProposeRequest, Record, compact_records
from consensus.replica import Replica

if TYPE_CHECKING:
    from tests.sim.cluster import Simulation

GENESIS_STATE = sha256(b"shopchain/sim/genesis-state")


def state_after(parent_state: bytes, height: int) -> bytes:
    return sha256(parent_state + height.to_bytes(8, "big"))


class SimNode:
    """One instance: a key, a persisted store, and a replica while it is up."""

    def __init__(self, sim: "Simulation", index: int, key: SigningKey, byzantine: bool = False) -> None:
        self.sim, self.index, self.key, self.byzantine = sim, index, key, byzantine
        self.store: list[tuple[Block, CommitCertificate]] = []
        self.records: list[Record] = []
        self.replica: Replica | None = None
        self.crash_after_persist = False
        self.halted_at: int | None = None  # the stand-in runtime never halts (see corenode.py)

    @property
    def up(self) -> bool:
        return self.replica is not None

    @property
    def committed_height(self) -> int:
        return len(self.store)

    def head_hash(self) -> bytes:
        return self.store[-1][0].block_hash if self.store else self.sim.genesis_hash

    def start(self, forget_records: bool = False) -> None:
        self.records = compact_records(self.records, len(self.store))  # what a node would prune on disk
        cls = self.sim.replica_class
        self.replica = cls(chain_id=self.sim.chain_id, key=self.key, validators=self.sim.schedule, block_validator=self,
                           committed_height=len(self.store), committed_hash=self.head_hash(),
                           last_certificate=self.store[-1][1] if self.store else None,
                           records=[] if forget_records else list(self.records), verifier=self.sim.verifier)
        self.pump()

    def crash(self) -> None:
        self.replica = None
        self.crash_after_persist = False

    def deliver(self, message, sender: bytes) -> None:
        """A message the network delivers: one step of the replica, then its Ready loop."""
        if self.replica is not None:
            self.replica.step(message, sender=sender)
            self.pump()

    def tick(self, unreachable: frozenset[bytes]) -> None:
        if self.replica is not None:
            self.replica.peers_unreachable(unreachable)
            self.replica.tick()
            self.pump()

    # --- the runtime's side of the interface ---------------------------------------

    def validate_block(self, block: Block) -> bool:
        h = block.header
        parent_state = self.store[-1][0].header.state_root if self.store else GENESIS_STATE
        return (h.height == len(self.store) + 1 and h.prev_hash == self.head_hash()
                and h.state_root == state_after(parent_state, h.height)
                and h.validator_set_hash == self.sim.schedule.hash_at(h.height)
                and h.next_validator_set_hash == self.sim.schedule.hash_at(h.height + 1) and h.tx_root == EMPTY_ROOT)

    def build_block(self, req: ProposeRequest, valid: bool = True) -> Block:
        parent_state = self.store[-1][0].header.state_root if self.store else GENESIS_STATE
        state = state_after(parent_state, req.height) if valid else sha256(b"bad")
        header = BlockHeader(self.sim.chain_id, req.height, req.prev_hash, self.sim.rng.getrandbits(40), self.key.public_key,
                             req.view, EMPTY_ROOT, ZERO_HASH, state, self.sim.schedule.hash_at(req.height),
                             ZERO_HASH if req.last_commit is None else req.last_commit.cert_hash,
                             self.sim.schedule.hash_at(req.height + 1))
        return Block(header, (), req.last_commit)

    def pump(self) -> None:
        """Run Ready/Advance until the replica has nothing more to say."""
        rounds = 0
        while self.replica is not None and self.replica.has_ready():
            rounds += 1
            assert rounds < 1000, "ready loop does not settle"
            rd = self.replica.ready()
            self.records.extend(rd.persist)
            self.sim.observe_persist(self, rd.persist)
            if self.crash_after_persist:  # the crash window between persist and send
                self.sim.trace("crash-mid", self.index)
                self.crash()
                return
            for to, message in rd.messages:
                self.sim.observe_sent(self, message)
                self.send(to, message)
            for block, cert in rd.committed:
                self.sim.observe_commit(self, block, cert)
                self.store.append((block, cert))
            for peer, from_height, count in rd.fetch:
                self.sim.send_fetch(self, peer, BlockRequest(from_height, count))
            for peer, from_height, count in rd.serve:
                items = tuple(self.store[from_height - 1: from_height - 1 + count])
                if items and peer is not None:
                    self.sim.network.send(self.index, peer, Blocks(items))
            req = rd.propose_request
            self.replica.advance()
            if req is not None:
                self.replica.propose(self.build_block(req))

    def send(self, to: bytes | None, message) -> None:
        if self.byzantine and to is None and isinstance(message, (PrePrepare, NewView)):
            self.sim.equivocate(self, message)
            return
        self.sim.network.send(self.index, to, message)
