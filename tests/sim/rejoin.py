"""Checker 6 (rejoin) and the events that provoke it: restarts into an old view, rebuilds.

How it works: a validator that restarts, or is rebuilt from an empty store, catches up
by fetching certified blocks. The operator guide promises more than following the
chain: once it has reached the head it votes again within one view timeout. The
``RejoinChecker`` holds the simulation to that after the heal (when the network is
reliable): for every honest instance restarted at any time it notes the first tick at
which the instance is within one block of the best honest height ("at the head"), then
waits for a PREPARE or COMMIT it signs. If, more than ``VIEW_TIMEOUT_TICKS`` after
that tick, another honest instance commits a block above that head on a certificate
whose COMMITs were all cast after that tick, while the restarted one still has not
voted, the seed fails: the chain moved on without it. (While the network makes no
progress, say in a view change, nobody votes, which is not the restarted one's fault;
and a certificate completed late from old votes is no sign of the others voting.)

One case is exempt, and only while it lasts: an instance in a view change to a view
above every other honest instance's view. It signed a VIEW-CHANGE for that view and
may not go back to an older one (its VIEW-CHANGE may already be in a NEW-VIEW); it
rejoins at the next view change, and the clock restarts when that case ends.

Events (drawn in tests/sim/scenarios.py, applied here):
- ``stale_restart``: crash an instance, then drop every PRE-PREPARE and NEW-VIEW of the
  next ``views`` views so the others change views while it is down; it restarts at the
  event's end with its records, in its old view.
- ``rebuild``: the same, but it restarts with an empty store and no records. Like an
  operator, the simulation rebuilds it only once the others have committed two blocks
  above the height it crashed at, so its lost no-equivocation records cannot matter
  (nothing it signed before is for a height still open). If the chain cannot move
  without it (the others stuck in a view change it took part in), it is restarted with
  its store after ``REBUILD_GIVE_UP_TICKS`` past the heal, as an operator would restore
  the disk rather than wipe the only way forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.types import CommitCertificate, Vote

from consensus.messages import NewView, PrePrepare
from consensus.transitions import VIEW_CHANGE, VIEW_TIMEOUT_TICKS

if TYPE_CHECKING:
    from tests.sim.cluster import Simulation
    from tests.sim.node import SimNode
    from tests.sim.scenarios import Event

#: Heights the others must commit above a crashed instance's head before it is rebuilt.
REBUILD_AFTER_BLOCKS = 2
#: Ticks after the heal a rebuild waits for that before the instance restarts with its store.
REBUILD_GIVE_UP_TICKS = 200
#: Ticks a restarted instance at the head may go without voting while others vote.
REJOIN_WINDOW_TICKS = VIEW_TIMEOUT_TICKS


class RejoinChecker:
    """Checker 6: a restarted honest instance at the head votes within one view timeout."""

    def __init__(self, sim: "Simulation") -> None:
        self.sim = sim
        self.restarted: set[int] = set()  # instances with an open obligation
        self.head_at: dict[int, int] = {}  # instance -> tick it was first seen at the head
        self.last_vote: dict[int, int] = {}  # instance -> tick of its latest vote
        self.failure: str | None = None
        self.exempt: set[int] = set()  # instances exempt at the last check
        self.vote_tick: dict[tuple, int] = {}  # (validator, phase, view, height, digest) -> tick first sent
        self.head_height: dict[int, int] = {}  # instance -> best height of the others when it reached the head

    @property
    def pending(self) -> bool:
        """Obligations still open, not counting instances exempt right now."""
        return bool(self.restarted - self.exempt)

    def on_restart(self, node: "SimNode") -> None:
        if self.sim.is_honest(node):
            self.restarted.add(node.index)
            self._restart_clock(node.index, None)

    def _restart_clock(self, index: int, head_at: int | None) -> None:
        if head_at is None:
            self.head_at.pop(index, None)
        else:
            self.head_at[index] = head_at

    def on_sent(self, node: "SimNode", message) -> None:
        if (isinstance(message, (PrePrepare, NewView)) and message.primary == node.key.public_key
                and self.sim.is_honest(node)):
            self.last_vote[node.index] = self.sim.now  # proposing (alone or in a NEW-VIEW) is taking part too
            return
        if isinstance(message, Vote) and message.validator == node.key.public_key and self.sim.is_honest(node):
            self.last_vote[node.index] = self.sim.now
            key = (message.validator, message.phase, message.view, message.height, message.block_hash)
            self.vote_tick.setdefault(key, self.sim.now)

    def on_commit(self, node: "SimNode", cert: CommitCertificate) -> None:
        """Progress: another honest instance committed above the head the restarted one reached."""
        sim = self.sim
        if not (sim.healed and sim.is_honest(node)) or self.failure is not None:
            return
        height = cert.height
        keys = [(v.validator, v.phase, v.view, v.height, v.block_hash) for v in cert.votes]
        cast = [self.vote_tick[k] for k in keys if k in self.vote_tick]  # honest votes only
        if not cast:
            return
        for index in sorted(self.restarted - self.exempt):
            since = self.head_at.get(index)
            if (index == node.index or since is None or height <= self.head_height[index] or min(cast) < since
                    or sim.now - since <= REJOIN_WINDOW_TICKS or self.last_vote.get(index, -1) >= since):
                continue
            other = sim.nodes[index]
            self.failure = (f"#{index} restarted, was at the head at tick {since} (height {self.head_height[index]}), "
                            f"and had cast no vote when #{node.index} committed height {height} at tick {sim.now} "
                            f"(it is at height {other.committed_height}, view {other.replica.view} {other.replica.mode}; "
                            f"checker 6: rejoin)")

    def check(self) -> None:
        """Run after every tick once healed; records the first failure."""
        sim, now = self.sim, self.sim.now
        honest = [n for n in sim.nodes if n.up and sim.is_honest(n)]
        for index in sorted(self.restarted):
            node = sim.nodes[index]
            if not node.up:
                continue
            others = [n for n in honest if n.index != index]
            if not others:
                continue
            best = max(n.committed_height for n in others)
            if self._exempt(node, others):
                self.exempt.add(index)
                self._restart_clock(index, now)
                self.head_height[index] = max(best, node.committed_height)
                continue
            self.exempt.discard(index)
            if index not in self.head_at:
                if node.committed_height >= best - 1:
                    self._restart_clock(index, now)
                    self.head_height[index] = max(best, node.committed_height)
                continue
            since = self.head_at[index]
            if self.last_vote.get(index, -1) >= since:
                self.restarted.discard(index)
                continue

    @staticmethod
    def _exempt(node: "SimNode", others: list["SimNode"]) -> bool:
        """Waiting in a view change above the view the committing replicas run in: by PBFT's
        design (§4.5.2) it stays silent until f+1 others move up too, however many others are
        in that higher view with it (real-core runs, where halted nodes restart, hit this)."""
        if not node.replica.voting:
            return True  # not in the set of its height (an observer, or removed): nothing to vote
        if node.replica.mode != VIEW_CHANGE:
            return False
        working = [n.replica.view for n in others if n.replica.mode != VIEW_CHANGE]
        return node.replica.view > max(working or [n.replica.view for n in others])


def forced_view_change_allows(event: "Event", message) -> bool:
    """While a stale_restart/rebuild event holds, the next views' primaries are muted."""
    if isinstance(message, PrePrepare):
        return message.view >= event.mute_below
    if isinstance(message, NewView):
        return message.view >= event.mute_below
    return True


def start_stale_restart(sim: "Simulation", event: "Event") -> None:
    """Crash the instance and decide which views the others must pass while it is down."""
    node = sim.nodes[event.instance]
    views = [n.replica.view for n in sim.nodes if n.up and sim.is_honest(n)]
    event.mute_below = max(views, default=0) + event.views
    event.crash_height = node.committed_height
    if node.up:
        sim.trace("crash", sim.now, event.instance)
        node.crash()


def may_rebuild(sim: "Simulation", event: "Event") -> bool:
    """A rebuilt instance comes back only once the chain moved past what it may have signed.

    And only after the heal: cut off from its peers, a rebuilt validator cannot learn
    that the heights it starts at were decided long ago (``Replica.is_listening``).
    """
    if not sim.healed:
        return False
    best = max((n.committed_height for n in sim.nodes if n.up and sim.is_honest(n)), default=0)
    return best >= event.crash_height + REBUILD_AFTER_BLOCKS


def must_restore(sim: "Simulation") -> bool:
    """The chain did not move without the instance: restart it with its store instead."""
    return sim.healed and sim.now >= sim.scenario.heal_tick + REBUILD_GIVE_UP_TICKS
