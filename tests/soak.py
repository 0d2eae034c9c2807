"""Soak: steady load on a real devnet while partitions, stalls and kill -9 come and go.

How this works: one seed drives everything (``random.Random(seed)``). A 4-validator
devnet runs behind a ``FaultNet`` (a TCP proxy per ordered pair of validators) and a
``LoadGenerator`` sends pre-signed transfers at a steady pace. The driver runs every
fault kind once in a seeded order, then random ones until the time is up; each fault
is held a few seconds, then healed (killed nodes restarted), and the driver waits for
every node to catch up and every validator link to be back before the next one. For faults that take the primary out it
measures the view-change recovery time: from the fault to the moment the others have
committed two more blocks, and to the next commit on all of them (reported for
``kill_primary`` alone, "primary killed -> next commit", and for every primary fault).

At the end it heals everything, waits for every acknowledged transaction's receipt,
stops the nodes and reads their stores: same blocks and state roots everywhere, every
acknowledged transaction committed exactly once, valid certificates, and no validator
that signed two digests for one (view, height, phase). ``python -m tests.soak
--minutes M --seed S`` prints one JSON report and exits non-zero on any violation.

``--byzantine`` adds the kinds of ``BYZANTINE_KINDS`` (``tests.fault.scenario``): one
validator replaced by an attacker process that floods, equivocates, sends garbage or
replays, or an outsider holding connections open. Each measures the committed rate of
the others against a fault-free window just before it and ``chain_status`` latency;
a rate below ``RATE_FLOOR`` of the baseline or an answer over ``STATUS_LIMIT_S`` is a
liveness problem, reported per kind at the end next to the safety checks. The
equivocation check then leaves out the validators that were Byzantine on purpose.

``--reconfig`` adds the validator-set changes of ``tests.fault.reconfig`` (add a fifth
validator from an observer, remove one, rotate a key), each by vote through the CLI
while a fault is held, in that order at seeded places among the faults; the nodes they
add are checked like the others, and a commit gap longer than two view timeouts around
an activation height is a problem.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable

from tests.fault.checks import (check_agreement, check_exactly_once, find_equivocations, percentile, read_store)
from tests.consortium import Cli
from tests.fault.cluster import FAULT_CONFIG, Crasher, primary_index, start_proxied
from tests.fault.proxy import DELAY, STALL
from tests.fault.reconfig import SOAK_TIMELOCK_S, STEPS, Reconfigurer
from tests.fault.scenario import KINDS as SCENARIO_KINDS
from tests.fault.scenario import ByzantineRunner, filter_byzantine, liveness_problems, per_kind
from tests.nethelpers import Devnet, LoadGenerator

VALIDATORS = 4
#: Most nodes a fault may take out at once (f for 4 validators).
MAX_FAULTY = 1
#: Fault kinds; every run does each at least once.
FAULT_KINDS = ("isolate_primary", "blackhole_primary", "mute_primary", "split_2_2", "delay_all", "stall_node",
               "cut_link", "kill_random", "kill_primary")
PRIMARY_FAULTS = ("isolate_primary", "blackhole_primary", "mute_primary", "kill_primary")
#: With --byzantine: one validator (or an outsider) attacks; see tests.fault.scenario.
BYZANTINE_KINDS = tuple(f"byz_{k}" for k in SCENARIO_KINDS)
#: Length of a Byzantine fault's baseline window and of its fault window.
BYZANTINE_WINDOW_S = 8.0
#: How long a fault is held (seconds), drawn uniformly.
HOLD_MIN_S, HOLD_MAX_S = 2.0, 5.0
#: Longest wait for the others to recover from a primary fault while it is held.
RECOVERY_LIMIT_S = 30.0
#: Longest wait for every node to catch up after a heal.
CATCH_UP_LIMIT_S = 90.0
#: Longest wait, after a heal, for every validator link to be back. A flooder's ban
#: (``[p2p] flood_ban_ms``, doubling per repeated offence up to 300 s) keeps its link down
#: that long on purpose.
MESH_LIMIT_S = 330.0
#: A heal whose links take longer than this to come back is reported in the progress.
MESH_SLOW_S = 3.0
#: Longest wait for the receipts of all acknowledged transactions at the end.
RECEIPT_LIMIT_S = 120.0
#: Transfers per second per load sender (3 senders).
LOAD_RATE_PER_SENDER = 15.0
LOAD_SENDERS = ("buyer-1", "buyer-2", "buyer-3")
#: Kind names of the reconfiguration steps ("reconfig_add", ...).
RECONFIG_PREFIX = "reconfig_"


def _heights(net: Devnet, nodes: list[int]) -> dict[int, int]:
    out = {}
    for i in nodes:
        try:
            out[i] = net.height(i)
        except Exception:  # noqa: BLE001 - an unreachable node has no height right now
            pass
    return out


def _mesh_complete(net: Devnet, nodes: list[int]) -> bool:
    """Every node reports a connection to every other validator."""
    return all(all(p["connected"] for p in net.client(i).request("net_peers")) for i in nodes)


def _stats(values: list[float]) -> dict:
    """count, p50, p99 and max of recovery times (seconds)."""
    return {"count": len(values), "p50": percentile(values, 50), "p99": percentile(values, 99),
            "max": max(values, default=None)}


class Soak:
    def __init__(self, root: str, seed: int, progress: Callable[[str], None], byzantine: bool = False,
                 reconfig: bool = False) -> None:
        self.root = root
        self.seed = seed
        self.rng = random.Random(seed)
        self.progress = progress
        settings = {"governance": {"timelock_s": SOAK_TIMELOCK_S}} if reconfig else None
        self.net, self.faults = start_proxied(root, VALIDATORS, seed, contract_settings=settings)
        self.crasher = Crasher(self.net, self.rng)
        self.reconfig = None
        if reconfig:
            view_timeout_ms = FAULT_CONFIG[("consensus", "tick_ms")] * FAULT_CONFIG[("consensus", "view_timeout_ticks")]
            self.reconfig = Reconfigurer(Cli(self.net, os.path.join(os.path.dirname(root), "keystore")), self.faults,
                                         self.crasher, self.rng, progress, view_timeout_ms)
        self.recoveries: list[float] = []
        self.mesh_restores: list[float] = []
        self.next_commits: dict[str, list[float]] = {}  # primary fault kind -> seconds to the next commit everywhere
        self.heal_catch_ups: list[float] = []
        self.kinds = FAULT_KINDS + (BYZANTINE_KINDS if byzantine else ())
        self.done: dict[str, int] = {k: 0 for k in self.kinds}
        self.byzantine = ByzantineRunner(self.net, self.faults, self.crasher, self.rng, progress) if byzantine else None

    # --- one fault ---------------------------------------------------------------------

    def _apply(self, kind: str) -> list[int]:
        """Inject ``kind``; returns the nodes still expected to make progress."""
        n = VALIDATORS
        everyone = list(range(n))
        primary = primary_index(self.net, everyone)
        primary = self.rng.randrange(n) if primary is None else primary
        others = [i for i in everyone if i != primary]
        if kind == "isolate_primary":
            self.faults.isolate(primary, "cut")
            return others
        if kind == "blackhole_primary":
            self.faults.isolate(primary, "blackhole")
            return others
        if kind == "mute_primary":  # asymmetric: the primary hears everyone, nobody hears it
            for b in others:
                self.faults.set_flow(primary, b, "blackhole")
            return others
        if kind == "split_2_2":
            shuffled = self.rng.sample(everyone, n)
            self.faults.partition([shuffled[:2], shuffled[2:]], self.rng.choice(["cut", "blackhole"]))
            return []
        if kind == "delay_all":
            delay = self.rng.randint(20, 150)
            for a in everyone:
                for b in everyone:
                    if a != b:
                        self.faults.set_flow(a, b, DELAY, delay, delay // 2)
            return everyone
        if kind == "stall_node":
            victim = self.rng.randrange(n)
            for b in everyone:
                if b != victim:
                    self.faults.set_flow(victim, b, STALL)
            return [i for i in everyone if i != victim]
        if kind == "cut_link":
            a, b = self.rng.sample(everyone, 2)
            self.faults.cut(a, b)
            return everyone if n > 2 else []
        if kind == "kill_random":
            victim = self.crasher.kill_random(MAX_FAULTY)
            return [i for i in everyone if i != victim]
        if kind == "kill_primary":
            self.crasher.kill(primary)
            return others
        raise ValueError(f"fault kind: expected one of {FAULT_KINDS}, found {kind!r}")

    def run_fault(self, kind: str) -> None:
        if kind.startswith(RECONFIG_PREFIX):
            assert self.reconfig is not None, "reconfiguration steps run only with reconfig=True"
            self.reconfig.run(kind[len(RECONFIG_PREFIX):])
            self.heal()
            return
        if kind in BYZANTINE_KINDS:
            assert self.byzantine is not None, "Byzantine kinds run only with byzantine=True"
            self.byzantine.run(kind[len("byz_"):], BYZANTINE_WINDOW_S)
            self.heal()
            self.done[kind] += 1
            return
        live = self.crasher.alive
        before = _heights(self.net, live)
        started = time.monotonic()
        progressing = self._apply(kind)
        hold = self.rng.uniform(HOLD_MIN_S, HOLD_MAX_S)
        self.progress(f"fault {kind} ({self.faults.describe()}; down {sorted(self.crasher.down)}) for {hold:.1f} s")
        if kind in PRIMARY_FAULTS and progressing:
            base = max(before.get(i, 0) for i in progressing)
            recovered = next_commit = None
            while time.monotonic() - started < RECOVERY_LIMIT_S:
                heights = _heights(self.net, progressing)
                if next_commit is None and sum(1 for h in heights.values() if h > base) >= len(progressing):
                    next_commit = time.monotonic() - started
                if sum(1 for h in heights.values() if h >= base + 2) >= len(progressing):
                    recovered = time.monotonic() - started
                    break
                time.sleep(0.05)
            if recovered is None:
                raise AssertionError(f"no commits {RECOVERY_LIMIT_S:.0f} s after {kind}; the rest did not recover")
            self.recoveries.append(recovered)
            self.next_commits.setdefault(kind, []).append(recovered if next_commit is None else next_commit)
            self.progress(f"  recovered after {recovered:.2f} s (next commit after {self.next_commits[kind][-1]:.2f} s)")
        remaining = hold - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
        self.heal()
        self.done[kind] += 1

    def heal(self) -> None:
        """Heal, then wait for every node to commit and for every link to be back: a fault
        that starts while a link of the last one is still down is two faults at once."""
        self.faults.heal()
        self.crasher.restart_all()
        started = time.monotonic()
        everyone = list(range(VALIDATORS))
        target = max(_heights(self.net, everyone).values(), default=0)
        self.net.wait_height(everyone, target + 1, timeout=CATCH_UP_LIMIT_S)
        self.heal_catch_ups.append(time.monotonic() - started)
        self.net.wait_for("every validator link back", lambda: _mesh_complete(self.net, everyone), timeout=MESH_LIMIT_S)
        self.mesh_restores.append(time.monotonic() - started)
        if self.mesh_restores[-1] > MESH_SLOW_S:
            self.progress(f"  links back after {self.mesh_restores[-1]:.1f} s")

    # --- the run -------------------------------------------------------------------------

    def run(self, minutes: float) -> dict:
        load = LoadGenerator(self.net, list(LOAD_SENDERS), self.net.keys["merchant-acme"].public_key,
                             LOAD_RATE_PER_SENDER).start()
        if self.byzantine is not None:
            self.byzantine.load = load  # clients keep off an attacking node, as a real one would
        deadline = time.monotonic() + minutes * 60
        order = list(self.kinds)
        self.rng.shuffle(order)
        if self.reconfig is not None:  # in order, at seeded places among the faults
            places = sorted(self.rng.sample(range(len(order) + len(STEPS)), len(STEPS)))
            for place, step in zip(places, STEPS):
                order.insert(place, RECONFIG_PREFIX + step)
        try:
            while order or time.monotonic() < deadline:
                kind = order.pop(0) if order else self.rng.choice(self.kinds)
                self.run_fault(kind)
                time.sleep(self.rng.uniform(0.5, 2.0))
        finally:
            self.heal()
            acked = load.stop()
        self.progress(f"load stopped: {len(acked)} acknowledged; waiting for their receipts")
        client = self.net.client(0)
        for tx_id in acked:
            self.net.wait_for(f"receipt of {tx_id}", lambda t=tx_id: client.receipt(t), timeout=RECEIPT_LIMIT_S)
        top = client.status()["height"]
        self.net.wait_height(list(range(VALIDATORS)), top)
        return self.check(acked, load.errors)

    def check(self, acked: list[str], load_errors: list[str]) -> dict:
        if self.byzantine is not None:
            self.byzantine.stop()
        added = []
        if self.reconfig is not None:
            added, top = self.reconfig.added_nodes, self.net.height(0)
            self.net.wait_for(f"the added nodes at height {top}",
                              lambda: all(self.reconfig.c.height_of(n) >= top for n in added), timeout=CATCH_UP_LIMIT_S)
            self.reconfig.stop()
        self.net.stop()
        self.faults.stop()
        views = [read_store(n["name"], os.path.join(n["home"], "data"), self.net.genesis)
                 for n in self.net.manifest["nodes"] + added]
        equivocations = find_equivocations(views)
        byzantine = {}
        if self.byzantine is not None:  # the validators that attacked on purpose are not a safety finding
            equivocations = filter_byzantine(equivocations, self.byzantine.byzantine_keys)
            results = self.byzantine.results
            byzantine = {"byzantine": per_kind(results),
                         "liveness_problems": [p for r in results for p in liveness_problems(r)]}
            for result in results:
                self.progress(result["line"])
        problems = check_agreement(views) + equivocations
        for view in views:
            problems += view.bad_certificates + check_exactly_once(view, acked)
        return {
            "seed": self.seed, "validators": VALIDATORS, "faults": self.done, "kills": self.crasher.kills,
            "acknowledged_txs": len(acked), "load_errors": len(load_errors), "heights": [v.height for v in views],
            "signatures_checked": sum(len(v.signatures) for v in views), "records_read": sum(v.records for v in views),
            "view_change_recovery_s": _stats(self.recoveries),
            "primary_killed_next_commit_s": _stats(self.next_commits.get("kill_primary", [])),
            "primary_fault_next_commit_s": _stats([t for ts in self.next_commits.values() for t in ts]),
            "heal_catch_up_s": {"p50": percentile(self.heal_catch_ups, 50), "p99": percentile(self.heal_catch_ups, 99)},
            "heal_links_back_s": _stats(self.mesh_restores),
            "problems": problems + (self.reconfig.problems if self.reconfig else []), **byzantine,
            **({"reconfig": self.reconfig.results} if self.reconfig else {}),
        }

    def abort(self) -> None:
        if self.byzantine is not None:
            self.byzantine.stop()
        if self.reconfig is not None:
            self.reconfig.stop()
        self.net.stop()
        self.faults.stop()


def run_soak(root: str, minutes: float, seed: int, progress: Callable[[str], None] = lambda _: None,
             byzantine: bool = False, reconfig: bool = False) -> dict:
    """Run a soak in ``root`` (a fresh directory); the report's ``problems`` is empty on success."""
    soak = Soak(root, seed, progress, byzantine, reconfig)
    try:
        return soak.run(minutes)
    except BaseException:
        soak.abort()
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to inject faults (each kind runs once anyway)")
    parser.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    parser.add_argument("--root", default=None, help="where to put the devnet (default: a new temporary directory)")
    parser.add_argument("--byzantine", action="store_true",
                        help="add one-validator flood/equivocate/garbage/replay and outsider faults with rate checks")
    parser.add_argument("--reconfig", action="store_true",
                        help="add, remove and rotate validators by vote while faults are held")
    args = parser.parse_args(argv)
    root = args.root or tempfile.mkdtemp(prefix="shopchain-soak-")
    started = time.monotonic()
    report = run_soak(os.path.join(root, "devnet"), args.minutes, args.seed,
                      lambda m: print(f"[{time.monotonic() - started:7.1f} s] {m}", file=sys.stderr, flush=True),
                      byzantine=args.byzantine, reconfig=args.reconfig)
    report["wall_s"] = round(time.monotonic() - started, 1)
    report["root"] = root
    print(json.dumps(report, indent=2))
    return 1 if report["problems"] or report.get("liveness_problems") else 0


if __name__ == "__main__":
    sys.exit(main())
