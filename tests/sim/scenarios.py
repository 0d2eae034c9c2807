"""Fault scenarios drawn from a seed: link faults, partitions, crashes, byzantine, Twins.

How it works: ``make_scenario(rng, ...)`` draws everything up front, so a seed names a
whole scenario. A scenario is link faults for the chaotic phase plus a list of timed
``Event``s; the simulation applies them tick by tick and, at ``heal_tick``, clears
every fault, restarts every crashed instance and starts the liveness clock.

Kinds of events:
- ``partition``: instances only talk within their group (drawn at random);
- ``isolate_primary``: cut the current primary off both ways (decided when it starts);
- ``oneway``: messages from one set to another are lost, the reverse direction works;
- ``crash``: an instance stops, losing all but its persisted state, and restarts later;
  ``mid`` crashes it between persisting and sending;
- ``crash_primary``: crash whoever is primary now, restart it a few ticks later (before
  the others time out), which is when a restarted primary is tempted to re-propose;
- ``commit_to_one``: for a while COMMITs reach one instance only, which then crashes:
  a prepared block is committed by one replica and must survive the view change;
- ``stale_restart`` / ``rebuild``: an instance is down while the others pass a few
  views, then restarts in its old view or from an empty store (tests/sim/rejoin.py).

Reconfiguration (``--reconfig``, drawn from its own generator so a seed's fault scenario
is the same with and without it): spare keys run from the start as observers, and the
validator set changes at drawn heights inside the chaotic phase, so changes land
during partitions, crashes and view changes: ``add`` (a spare joins at the end of the
order), ``remove`` (only while at least five remain, so f >= 1 survives) and
``replace`` (a spare takes a validator's position; the old key keeps running as an
observer). The schedule is what governance would have fixed two blocks ahead.

Twins (Bano et al., "Twins: BFT Systems Made Robust"): one validator key runs on two
instances; for each of the first views, a partition of the instances is drawn and a
message of view v is delivered only inside partition v's groups.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from consensus.replica import VIEW_TIMEOUT_TICKS
from tests.sim.network import LinkFaults

#: Ticks of the chaotic phase in the default scenarios.
FAULT_TICKS = 160
#: Ticks of the chaotic phase in Twins scenarios (they are many, so kept short).
TWINS_FAULT_TICKS = 70
#: Views that get a drawn partition in a Twins scenario; later views are connected.
TWINS_VIEWS = 6


@dataclass
class Event:
    start: int
    end: int
    kind: str
    instance: int = -1
    groups: tuple[int, ...] = ()
    mid: bool = False
    views: int = 0  # stale_restart / rebuild: views the others must pass while the instance is down
    mute_below: int = 0  # set when it starts: PRE-PREPAREs and NEW-VIEWs of lower views are dropped
    crash_height: int = 0  # set when it starts: the instance's committed height at the crash


#: Spare keys (observers that may be added) in a reconfiguration scenario.
RECONFIG_SPARES = 2
#: Heights at which drawn changes take effect (inside the chaotic phase at default pacing).
RECONFIG_HEIGHTS = range(3, 15)


@dataclass(frozen=True)
class Change:
    height: int  # the first height the new set certifies
    kind: str  # add | remove | replace
    member: int  # remove/replace: position in the set before the change
    spare: int  # add/replace: spare number (0-based)


@dataclass
class Scenario:
    faults: LinkFaults
    events: list[Event]
    heal_tick: int
    byzantine: int | None = None  # instance index of an equivocating primary
    twin_of: int | None = None  # validator index whose key runs on a second instance
    view_partitions: list[tuple[int, ...]] = field(default_factory=list)  # Twins: group per instance, per view
    spares: int = 0  # extra keys running as observers (reconfiguration)
    changes: list[Change] = field(default_factory=list)

    def describe(self) -> str:
        parts = [f"drop={self.faults.drop} dup={self.faults.duplicate} delay<={self.faults.max_delay}"]
        if self.byzantine is not None:
            parts.append(f"byzantine=#{self.byzantine}")
        if self.twin_of is not None:
            parts.append(f"twin_of=#{self.twin_of} views={self.view_partitions}")
        parts += [f"{e.kind}@{e.start}-{e.end}" + (f"#{e.instance}" if e.instance >= 0 else "") for e in self.events]
        parts += [f"{c.kind}@h{c.height}" + (f"#{c.member}" if c.kind != "add" else "") +
                  (f"+spare{c.spare}" if c.kind != "remove" else "") for c in self.changes]
        return " ".join(parts)


def _groups(rng: random.Random, count: int, max_groups: int) -> tuple[int, ...]:
    return tuple(rng.randrange(max_groups) for _ in range(count))


def make_scenario(rng: random.Random, validators: int, twins: bool) -> Scenario:
    if twins:
        return _twins_scenario(rng, validators)
    faults = LinkFaults(drop=rng.choice([0.0, 0.0, 0.02, 0.1, 0.25]), duplicate=rng.choice([0.0, 0.05, 0.2]),
                        max_delay=rng.choice([1, 2, 3, 6]))
    byzantine = rng.randrange(validators) if rng.random() < 0.25 else None
    honest = [i for i in range(validators) if i != byzantine]
    events: list[Event] = []
    kinds = ["partition", "isolate_primary", "oneway", "crash", "crash_primary", "commit_to_one", "stale_restart", "rebuild"]
    for _ in range(rng.randint(1, 4)):
        if not kinds:
            break  # no spare left and no room to remove
        kind = rng.choice(kinds)
        if kind in ("stale_restart", "rebuild"):
            kinds = kinds[:-2]  # one long absence per scenario: with two, no quorum is left to pass views
        start = rng.randrange(10, FAULT_TICKS - 20)
        end = min(FAULT_TICKS, start + rng.randint(10, 70))
        if kind == "partition":
            events.append(Event(start, end, kind, groups=_groups(rng, validators, 2)))
        elif kind == "oneway":
            events.append(Event(start, end, kind, groups=_groups(rng, validators, 2)))
        elif kind == "isolate_primary":
            events.append(Event(start, end, kind))
        elif kind == "crash":
            events.append(Event(start, end, kind, instance=rng.choice(honest), mid=rng.random() < 0.5))
        elif kind in ("stale_restart", "rebuild"):
            start = rng.randrange(10, FAULT_TICKS // 2)
            events.append(Event(start, start + rng.randint(40, 200), kind, instance=rng.choice(honest), views=rng.randint(1, 3)))
        elif kind == "crash_primary":
            events.append(Event(start, start + rng.randint(1, VIEW_TIMEOUT_TICKS // 2), kind, mid=rng.random() < 0.5))
        else:
            end = min(FAULT_TICKS, start + rng.randint(2 * VIEW_TIMEOUT_TICKS, 4 * VIEW_TIMEOUT_TICKS))
            events.append(Event(start, end, kind, instance=rng.choice(honest)))
    events.sort(key=lambda e: (e.start, e.kind))
    return Scenario(faults, events, FAULT_TICKS, byzantine=byzantine)


def _twins_scenario(rng: random.Random, validators: int) -> Scenario:
    instances = validators + 1
    partitions = []
    for _ in range(TWINS_VIEWS):
        if rng.random() < 0.2:
            partitions.append((0,) * instances)
        else:
            partitions.append(_groups(rng, instances, rng.choice([2, 2, 3])))
    faults = LinkFaults(drop=rng.choice([0.0, 0.0, 0.05]), duplicate=0.0, max_delay=rng.choice([1, 2, 3]))
    return Scenario(faults, [], TWINS_FAULT_TICKS, twin_of=rng.randrange(validators), view_partitions=partitions)


def draw_changes(rng: random.Random, validators: int) -> list[Change]:
    """One to three validator-set changes at distinct heights, never below four validators."""
    heights = sorted(rng.sample(list(RECONFIG_HEIGHTS), rng.randint(1, 3)))
    members = list(range(validators))  # positions hold instance indexes of the base keys, spares as -1 - k
    spares = list(range(RECONFIG_SPARES))
    changes: list[Change] = []
    for height in heights:
        kinds = (["add"] if spares else []) + (["remove"] if len(members) >= 5 else []) + (["replace"] if spares else [])
        if not kinds:
            break  # no spare left and no room to remove
        kind = rng.choice(kinds)
        member = rng.randrange(len(members))
        spare = spares.pop(0) if kind != "remove" else -1
        if kind == "add":
            members.append(-1 - spare)
        elif kind == "remove":
            members.pop(member)
        else:
            members[member] = -1 - spare
        changes.append(Change(height, kind, member if kind != "add" else -1, spare))
    return changes
