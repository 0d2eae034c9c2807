"""Cost of PBFT per committed block as the validator set grows.

Runs a fault-free simulated cluster (tests/sim) for n = 4, 7, 10, 16 with real
signature checks (no shared cache) and prints JSON lines: network messages per block
(cluster total), signature checks per block (cluster total) and core CPU time per
block per replica (time spent inside the replica's step/tick/propose/ready/advance).
The baseline of each metric is its n = 4 value from the same run.

    python -m bench.consensus [--blocks 30]
"""

from __future__ import annotations

import argparse
import json
import time

from consensus.replica import Replica
from tests.sim.cluster import Simulation
from tests.sim.network import LinkFaults
from tests.sim.scenarios import Scenario

SIZES = (4, 7, 10, 16)


class TimedReplica(Replica):
    """The real replica; only the entry points are timed, with process CPU time."""

    cpu_ns = 0

    def _timed(self, fn, *args, **kwargs):
        start = time.process_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            TimedReplica.cpu_ns += time.process_time_ns() - start

    def step(self, message, sender=None):
        return self._timed(super().step, message, sender)

    def tick(self):
        return self._timed(super().tick)

    def propose(self, block):
        return self._timed(super().propose, block)

    def advance(self):
        return self._timed(super().advance)


def measure(n: int, blocks: int) -> dict[str, float]:
    TimedReplica.cpu_ns = 0
    scenario = Scenario(LinkFaults(max_delay=1), [], heal_tick=10**9)
    sim = Simulation(1, n, scenario=scenario, replica_class=TimedReplica, share_signature_cache=False)
    start_msgs, start_sigs, start_cpu = sim.network.sent, sim.signature_checks, TimedReplica.cpu_ns
    while min(node.committed_height for node in sim.nodes) < blocks:
        sim.tick_once()
        assert not sim.violations, sim.violations
        assert sim.now < 100 * blocks, "cluster stopped committing"
    return {
        "messages_per_block": (sim.network.sent - start_msgs) / blocks,
        "signature_checks_per_block": (sim.signature_checks - start_sigs) / blocks,
        "core_cpu_ms_per_block_per_replica": (TimedReplica.cpu_ns - start_cpu) / 1e6 / blocks / n,
    }


UNITS = {"messages_per_block": "messages", "signature_checks_per_block": "checks",
         "core_cpu_ms_per_block_per_replica": "ms"}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.consensus")
    parser.add_argument("--blocks", type=int, default=30, help="blocks to commit per cluster size")
    args = parser.parse_args()
    results = {n: measure(n, args.blocks) for n in SIZES}
    for metric, unit in UNITS.items():
        baseline = results[SIZES[0]][metric]
        for n in SIZES:
            value = results[n][metric]
            print(json.dumps({"bench": f"consensus.n{n}", "metric": metric, "value": round(value, 3), "unit": unit,
                              "baseline": round(baseline, 3), "ratio": round(value / baseline, 3), "n": n}))


if __name__ == "__main__":
    main()
