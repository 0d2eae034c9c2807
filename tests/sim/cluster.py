"""One seed, one simulated cluster, checkers after every step.

How it works: ``Simulation(seed, validators, twins, mutant).run()`` builds the
instances, draws a scenario from the seed (tests/sim/scenarios.py) and advances time
tick by tick: apply the scenario's events, deliver due messages (each delivery is a
step of one replica followed by its Ready/Advance loop), then tick every replica. The
checkers run inside those steps, on what the replicas emit:

1. agreement: no two honest instances commit different blocks at one height;
2. prefix: each instance's committed chain only grows, across restarts (every commit
   extends the persisted head; a restarted replica starts from the persisted head);
3. no equivocation: no honest key signs two digests for one (view, height, phase);
4. certificates: every committed block's certificate passes
   ``ledger.types.verify_certificate`` (the real one, not the core's copy);
5. liveness: after ``heal_tick`` (faults cleared, everything restarted, so at least
   2f+1 honest replicas are connected), every honest instance commits
   ``LIVENESS_BLOCKS`` blocks above the best height at heal within ``LIVENESS_TICKS``;
6. rejoin: after the heal, a restarted or rebuilt honest instance votes within one view
   timeout of reaching the head (tests/sim/rejoin.py).

Every delivery, commit and crash feeds a running SHA-256, the trace hash: one seed
always gives one trace hash.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from ledger.crypto import SigningKey, sha256, verify_signed
from ledger.errors import ValidationError
from ledger.types import PHASE_COMMIT, Block, CommitCertificate, Vote, verify_certificate
from ledger.validator_set import ValidatorSchedule

from consensus.messages import Blocks, BlockRequest, NewView, PrePrepare, ViewChange
from consensus.ready import PHASE_NEW_VIEW, PHASE_PRE_PREPARE, PHASE_VIEW_CHANGE, ProposeRequest, Record
from consensus.replica import VIEW_TIMEOUT_TICKS, Replica
from tests.sim.mutants import MUTANTS, RECONFIG_MUTANTS
from tests.sim.network import LinkFaults, Network
from tests.sim.corenode import WORKLOAD_PER_TICK, CoreSimNode, Workload, draw_storage_fault
from tests.sim.node import SimNode
from tests.sim.rejoin import RejoinChecker, forced_view_change_allows, may_rebuild, must_restore, start_stale_restart
from tests.sim.scenarios import RECONFIG_SPARES, Change, Scenario, draw_changes, make_scenario

CHAIN_ID = "shopchain-sim"
#: Blocks every honest instance must commit after the heal (above the best height then).
LIVENESS_BLOCKS = 3
#: Ticks allowed for that after the heal: three view changes at the capped timer
#: (20 << 4 = 320 ticks each) plus catch-up. Seeds observed so far need under 100.
LIVENESS_TICKS = 1000
#: Real-core runs: a halted instance is restarted this many ticks later (the operator's response).
HALT_RESTART_TICKS = 30
#: Link behaviour after the heal: reliable, small delays.
HEALED = LinkFaults(drop=0.0, duplicate=0.0, max_delay=2)


@dataclass
class Result:
    seed: int
    trace_hash: str
    violations: list[str] = field(default_factory=list)
    liveness_failure: str | None = None
    ticks: int = 0
    committed: int = 0
    scenario: str = ""
    messages: int = 0
    counters: dict[str, int] = field(default_factory=dict)


def message_key(message) -> tuple:
    """Small, deterministic description of a message for the trace hash."""
    if isinstance(message, Vote):
        return ("V", message.phase, message.view, message.height, message.block_hash[:6], message.validator[:4])
    if isinstance(message, PrePrepare):
        return ("PP", message.view, message.height, message.digest[:6])
    if isinstance(message, ViewChange):
        return ("VC", message.new_view, message.committed_height, message.replica[:4])
    if isinstance(message, NewView):
        return ("NV", message.view, message.pre_prepare.digest[:6])
    if isinstance(message, BlockRequest):
        return ("BR", message.from_height)
    if isinstance(message, Blocks):
        return ("B", tuple(b.height for b, _ in message.items))
    return (type(message).__name__,)


def schedule_of(genesis_keys: list[bytes], spare_keys: list[bytes], changes: list[Change]) -> ValidatorSchedule:
    """The validator schedule the scenario's changes make (governance decided them in advance)."""
    schedule, members = ValidatorSchedule.fixed(genesis_keys), list(genesis_keys)
    for change in changes:
        if change.kind == "add":
            members.append(spare_keys[change.spare])
        elif change.kind == "remove":
            members.pop(change.member)
        else:
            members[change.member] = spare_keys[change.spare]
        schedule = schedule.then(change.height, members)
    return schedule


def _group(groups: tuple[int, ...], instance: int) -> int:
    """An instance's side in a drawn partition; instances beyond the draw (spares) are on side 0."""
    return groups[instance] if instance < len(groups) else 0


class Simulation:
    def __init__(self, seed: int, validators: int = 4, twins: bool = False, mutant: str | None = None,
                 scenario: Scenario | None = None, replica_class: type[Replica] | None = None,
                 share_signature_cache: bool = True, real_core: bool = False, reconfig: bool = False) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.chain_id = CHAIN_ID
        self.real_core = real_core
        self.view_timeout_ticks = VIEW_TIMEOUT_TICKS
        self.validator_labels = [f"sim-validator-{i}" for i in range(validators)]
        self.keys = [SigningKey.from_label(label) for label in self.validator_labels]
        self.validators = [k.public_key for k in self.keys]  # the genesis set
        self.genesis_hash = sha256(b"shopchain/sim/genesis/" + CHAIN_ID.encode())
        self.mutant = mutant
        self.replica_class, self.forget_records = {**MUTANTS, **RECONFIG_MUTANTS}[mutant] if mutant else (Replica, False)
        if replica_class is not None:
            self.replica_class = replica_class
        self.share_signature_cache = share_signature_cache
        self.scenario = scenario if scenario is not None else make_scenario(self.rng, validators, twins)
        if reconfig and scenario is None:
            self.scenario.spares = RECONFIG_SPARES
            self.scenario.changes = draw_changes(random.Random(f"{seed}/reconfig"), validators)
        self.spare_keys = [SigningKey.from_label(f"sim-spare-{k}") for k in range(self.scenario.spares)]
        self.schedule = schedule_of(self.validators, [k.public_key for k in self.spare_keys], self.scenario.changes)
        self._spare_set = {k.public_key for k in self.spare_keys}
        self.spare_certified: set[int] = set()  # heights whose certificate (seen by anyone) holds a spare's vote
        self._sig_cache: dict[tuple, bool] = {}
        self.signature_checks = 0
        self._hash = hashlib.sha256(f"{seed}/{validators}/{twins}/{mutant}{'/core' if real_core else ''}"
                                    f"{'/reconfig' if reconfig else ''}".encode())
        self.violations: list[str] = []
        self.agreed: dict[int, bytes] = {}
        self.signed: dict[tuple, bytes] = {}
        self._certs_ok: dict[bytes, bool] = {}
        self.now = 0
        sc = self.scenario
        keys = list(self.keys) + ([self.keys[sc.twin_of]] if sc.twin_of is not None else []) + self.spare_keys
        self.instances_by_key: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            self.instances_by_key.setdefault(key.public_key, []).append(i)
        self.honest_keys = {k.public_key for k in self.keys + self.spare_keys}
        if sc.byzantine is not None:
            self.honest_keys.discard(self.keys[sc.byzantine].public_key)
        if sc.twin_of is not None:
            self.honest_keys.discard(self.keys[sc.twin_of].public_key)
        self.rejoin = RejoinChecker(self)
        self.pending_rebuilds: list = []
        self.absent: set[int] = set()  # instances down for a stale_restart or rebuild event
        self.network = Network(self.rng, lambda key: self.instances_by_key.get(key, []), len(keys))
        self.network.faults = sc.faults
        node_class = CoreSimNode if real_core else SimNode
        self.nodes = [node_class(self, i, key, byzantine=(i == sc.byzantine)) for i, key in enumerate(keys)]
        self.workload = Workload(self.chain_id, self.rng, WORKLOAD_PER_TICK) if real_core else None
        self.storage_fault = draw_storage_fault(self.rng, len(keys), sc.heal_tick) if real_core else None
        for node in self.nodes:
            node.start()
        self.healed = False
        self._active: list = []
        self.network.link_filter = self.link_allowed

    # --- services for nodes -------------------------------------------------------

    def verifier(self, domain: bytes, chain_id: str, pk: bytes, payload: bytes, sig: bytes) -> bool:
        """Shared across replicas: each still checks every message, the cache saves the math."""
        self.signature_checks += 1
        if not self.share_signature_cache:
            return verify_signed(domain, chain_id, pk, payload, sig)
        key = (domain, chain_id, pk, payload, sig)
        ok = self._sig_cache.get(key)
        if ok is None:
            ok = self._sig_cache[key] = verify_signed(domain, chain_id, pk, payload, sig)
        return ok

    def trace(self, *fields) -> None:
        self._hash.update(repr(fields).encode())

    def is_honest(self, node: SimNode) -> bool:
        return node.key.public_key in self.honest_keys

    def send_fetch(self, node: SimNode, peer: bytes | None, request: BlockRequest) -> None:
        targets = [i for i in range(len(self.nodes)) if i != node.index]
        if peer is not None and self.instances_by_key.get(peer):
            dst = self.instances_by_key[peer][0]
            if dst == node.index:
                dst = self.rng.choice(targets)
        else:
            dst = self.rng.choice(targets)
        self.network.send_to(node.index, dst, request)

    def equivocate(self, node: SimNode, message) -> None:
        """A byzantine primary sends conflicting PRE-PREPAREs to two halves of its peers."""
        if not isinstance(message, PrePrepare) or message.block is None or message.block.header.proposer != node.key.public_key:
            self.network.send(node.index, None, message)
            return
        b = message.block
        req = ProposeRequest(b.header.view, b.height, b.header.prev_hash, b.last_commit)
        other = PrePrepare.create(node.key, self.chain_id, message.view, node.build_block(req, valid=self.rng.random() < 0.7))
        for dst in range(len(self.nodes)):
            if dst != node.index:
                self.network.send_to(node.index, dst, message if self.rng.random() < 0.5 else other)

    # --- checkers -----------------------------------------------------------------

    def violation(self, text: str) -> None:
        self.violations.append(f"tick {self.now}: {text}")

    def observe_commit(self, node: SimNode, block: Block, cert: CommitCertificate) -> None:
        self.trace("C", self.now, node.index, block.height, block.block_hash[:8])
        self.rejoin.on_commit(node, cert)
        if block.height != node.committed_height + 1 or block.header.prev_hash != node.head_hash():
            self.violation(f"#{node.index} committed height {block.height} that does not extend its persisted head "
                           f"{node.committed_height} (checker 2: prefix)")
        if self.is_honest(node):
            seen = self.agreed.setdefault(block.height, block.block_hash)
            if seen != block.block_hash:
                self.violation(f"#{node.index} committed {block.block_hash.hex()[:12]} at height {block.height}, another "
                               f"honest replica committed {seen.hex()[:12]} (checker 1: agreement)")
        if self.spare_keys and any(v.validator in self._spare_set for v in cert.votes):
            self.spare_certified.add(block.height)
        raw = cert.encode()
        ok = self._certs_ok.get(raw)
        if ok is None:
            try:
                verify_certificate(cert, list(self.schedule.at(block.height)), self.chain_id, block.height,
                                   block.block_hash)
                ok = True
            except ValidationError:
                ok = False
            self._certs_ok[raw] = ok
        if not ok:
            self.violation(f"#{node.index} committed height {block.height} with an invalid certificate of "
                           f"{len(cert.votes)} votes (checker 4: certificates)")

    def _signed(self, node: SimNode, key: tuple, digest: bytes) -> None:
        full = (node.key.public_key,) + key
        seen = self.signed.setdefault(full, digest)
        if seen != digest:
            self.violation(f"#{node.index} signed two digests for (view, height, phase) {key} (checker 3: equivocation)")

    def observe_sent(self, node: SimNode, message) -> None:
        if not self.is_honest(node):
            return
        self.rejoin.on_sent(node, message)
        if isinstance(message, Vote) and message.validator == node.key.public_key:
            self._signed(node, (message.view, message.height, message.phase), message.block_hash)
        elif isinstance(message, PrePrepare) and message.primary == node.key.public_key:
            self._signed(node, (message.view, message.height, PHASE_PRE_PREPARE), message.digest)
        elif isinstance(message, ViewChange) and message.replica == node.key.public_key:
            self._signed(node, (message.new_view, message.committed_height, PHASE_VIEW_CHANGE), sha256(message.signed_body()))
        elif isinstance(message, NewView) and message.primary == node.key.public_key:
            pp = message.pre_prepare
            self._signed(node, (pp.view, pp.height, PHASE_PRE_PREPARE), pp.digest)
            self._signed(node, (message.view, pp.height, PHASE_NEW_VIEW), sha256(message.signed_body()))

    def observe_persist(self, node: SimNode, records: list[Record]) -> None:
        if records:
            self.trace("P", self.now, node.index, len(records))

    # --- the run ------------------------------------------------------------------

    def _current_primary_instances(self) -> list[int]:
        up = [n for n in self.nodes if n.up and self.is_honest(n)]
        view = max((n.replica.view for n in up), default=0)
        members = self.schedule.at(max((n.committed_height for n in up), default=0) + 1)
        return self.instances_by_key[members[view % len(members)]]

    def _apply_events(self) -> None:
        now = self.now
        sc = self.scenario
        filters = []
        for e in sc.events:
            if e.start == now:
                if e.kind == "isolate_primary":
                    e.groups = tuple(self._current_primary_instances())
                elif e.kind == "crash_primary":
                    e.instance = self._current_primary_instances()[0]
                if e.kind in ("stale_restart", "rebuild"):
                    start_stale_restart(self, e)
                    self.absent.add(e.instance)
                if e.kind in ("crash", "crash_primary") and e.instance in self.absent:
                    e.instance = -1  # already down for a stale_restart or rebuild: leave it to that event
                if e.kind in ("crash", "crash_primary") and e.instance >= 0:
                    node = self.nodes[e.instance]
                    if node.up:
                        self.trace("crash", now, e.instance)
                        if e.mid:
                            node.crash_after_persist = True
                        else:
                            node.crash()
            if (e.kind in ("crash", "crash_primary", "stale_restart") and e.end == now and e.instance >= 0
                    and not self.nodes[e.instance].up and (e.kind == "stale_restart" or e.instance not in self.absent)):
                self.absent.discard(e.instance)
                self._restart(self.nodes[e.instance])
            if e.kind == "rebuild" and e.end == now and not self.nodes[e.instance].up:
                self.pending_rebuilds.append(e)
            if e.kind == "commit_to_one" and e.start + 6 == now and self.nodes[e.instance].up and e.instance not in self.absent:
                self.trace("crash", now, e.instance)
                self.nodes[e.instance].crash()
            if e.start <= now < e.end:
                filters.append(e)
        self._active = filters

    def _restart(self, node: SimNode) -> None:
        self.trace("restart", self.now, node.index)
        node.start(forget_records=self.forget_records)
        self.rejoin.on_restart(node)

    def _rebuild_when_safe(self) -> None:
        for e in list(self.pending_rebuilds):
            if may_rebuild(self, e) or must_restore(self):
                self.pending_rebuilds.remove(e)
                node = self.nodes[e.instance]
                if may_rebuild(self, e):
                    node.store, node.records = [], []
                    self.trace("rebuild", self.now, node.index)
                self.absent.discard(e.instance)
                self._restart(node)

    def link_allowed(self, src: int, dst: int, message) -> bool:
        sc = self.scenario
        if sc.view_partitions and not self.healed:
            view = getattr(message, "view", getattr(message, "new_view", None))
            if view is not None and view < len(sc.view_partitions):
                groups = sc.view_partitions[view]  # spares (after the twin) share group 0
                if (groups[src] if src < len(groups) else 0) != (groups[dst] if dst < len(groups) else 0):
                    return False
        for e in self._active:
            if e.kind == "partition" and _group(e.groups, src) != _group(e.groups, dst):
                return False
            if e.kind == "isolate_primary" and (src in e.groups) != (dst in e.groups):
                return False
            if e.kind == "oneway" and _group(e.groups, src) == 0 and _group(e.groups, dst) == 1:
                return False
            if (e.kind == "commit_to_one" and isinstance(message, Vote) and message.phase == PHASE_COMMIT
                    and dst != e.instance):
                return False
            if e.kind in ("stale_restart", "rebuild") and not forced_view_change_allows(e, message):
                return False
        return True

    def unreachable_from(self, node: SimNode) -> frozenset[bytes]:
        """What a runtime's transport would report: keys with no up instance linked both ways to ``node``."""
        reachable = {self.nodes[i].key.public_key for i in range(len(self.nodes))
                     if i != node.index and self.nodes[i].up and self.link_allowed(i, node.index, None)
                     and self.link_allowed(node.index, i, None)}
        return self.schedule.ever() - reachable - {node.key.public_key}

    def _heal(self) -> None:
        self.healed = True
        self._active = []
        self.network.faults = HEALED
        self.trace("heal", self.now)
        for e in self.scenario.events:
            if e.kind == "rebuild" and e.instance in self.absent and e not in self.pending_rebuilds:
                self.pending_rebuilds.append(e)
        rebuilding = {e.instance for e in self.pending_rebuilds}
        for node in self.nodes:
            node.crash_after_persist = False
            if not node.up and node.index not in rebuilding:
                self.absent.discard(node.index)
                self._restart(node)

    def tick_once(self) -> None:
        """Advance the cluster by one tick: events, due deliveries, then every replica's tick."""
        self.now += 1
        self.network.now = self.now
        if self.now == self.scenario.heal_tick:
            self._heal()
        elif not self.healed:
            self._apply_events()
        self._rebuild_when_safe()
        if self.real_core:
            self._storage_and_workload()
        for src, dst, message in self.network.due():
            node = self.nodes[dst]
            if node.up:
                self.trace(self.now, src, dst, message_key(message))
                node.deliver(message, self.nodes[src].key.public_key)
        for node in self.nodes:
            if node.up:
                node.tick(self.unreachable_from(node))
        if self.healed:
            self.rejoin.check()

    def _storage_and_workload(self) -> None:
        """Real-core runs: switch the drawn storage fault on and off, and gossip new transfers."""
        fault = self.storage_fault
        if fault is not None:
            node = self.nodes[fault.instance]
            on = fault.start <= self.now < fault.end and not self.healed
            setattr(node.kv, fault.kind, fault.rate if on else 0.0)
        for node in self.nodes:  # an operator restarts a halted node (its disk fault is gone by then)
            if (node.halted_at is not None and not node.up and node.index not in self.absent
                    and self.now - node.halted_at >= HALT_RESTART_TICKS):
                node.halted_at = None
                self._restart(node)
        for raw in self.workload.next_batch():
            for node in self.nodes:
                node.admit(raw)

    def run(self) -> Result:
        sc = self.scenario
        deadline = sc.heal_tick + LIVENESS_TICKS
        honest = [n for n in self.nodes if self.is_honest(n)]
        target = None
        liveness = None
        while True:
            self.tick_once()
            if self.now == sc.heal_tick:
                target = max(n.committed_height for n in honest) + LIVENESS_BLOCKS
            if self.violations:
                break
            if self.rejoin.failure is not None:
                liveness = self.rejoin.failure
                break
            if target is not None and all(n.committed_height >= target for n in honest) and not self.rejoin.pending:
                break
            if self.now >= deadline and target is not None and all(n.committed_height >= target for n in honest) \
                    and self.rejoin.pending:
                liveness = (f"restarted instances {sorted(self.rejoin.restarted - self.rejoin.exempt)} had not voted again {LIVENESS_TICKS} "
                            f"ticks after the heal (checker 6: rejoin)")
                break
            if self.now >= deadline:
                behind = {n.index: n.committed_height for n in honest if n.committed_height < target}
                liveness = f"after heal at tick {sc.heal_tick}, honest instances {behind} did not reach height {target} " \
                           f"within {LIVENESS_TICKS} ticks (checker 5: liveness)"
                break
        counters: dict[str, int] = {}
        if self.real_core:
            counters["txs_offered"] = self.workload.sent
            counters["txs_committed_max"] = max(n.txs_committed for n in self.nodes)
            counters["halts"] = sum(len(n.halts) for n in self.nodes)
            for node in self.nodes:
                for k, v in node.kv.faults.items():
                    counters["store." + k] = counters.get("store." + k, 0) + v
            if self.storage_fault is not None:
                counters["storage_fault." + self.storage_fault.kind] = 1
        if self.scenario.changes:
            reached = max(n.committed_height for n in self.nodes)
            counters["reconfig.changes_in_force"] = sum(1 for c in self.scenario.changes if c.height <= reached)
            counters["reconfig.heights_certified_by_spares"] = len(self.spare_certified)
        for node in self.nodes:
            if node.replica is not None:
                for k, v in node.replica.counters.items():
                    counters[k] = counters.get(k, 0) + v
        return Result(self.seed, self._hash.hexdigest(), list(self.violations), liveness, self.now,
                      max(n.committed_height for n in self.nodes), sc.describe(), self.network.sent, counters)
