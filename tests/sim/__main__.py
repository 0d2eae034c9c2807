"""Command line: ``python -m tests.sim --validators N --seeds K [--start S] [--twins] [--mutant NAME] [--real-core]
[--reconfig]``.

``--real-core`` runs every instance on the production node core (node/core/engine.py:
real chain, contract execution, mempool, catch-up) over a store with seeded faults
(tests/sim/corenode.py); without it the instances run the consensus core around a
stand-in executor, which is about as fast and checks consensus alone.

Exits 1 if any seed shows a violation or a liveness failure, and always ends with the
line ``seeds=K validators=N violations=V liveness_failures=L trace_hash=H``; the CPU
time and scenarios per CPU-hour go to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.sim.mutants import MUTANTS, RECONFIG_MUTANTS
from tests.sim.runner import run_seeds, run_seeds_parallel

#: Seeds run when --seeds is not given; every mutant must be caught within it.
DEFAULT_SEEDS = 200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description="Deterministic PBFT simulator with checkers.")
    parser.add_argument("--validators", type=int, default=4, help="validators in the cluster (n >= 4)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--twins", action="store_true", help="Twins scenarios: one key on two instances")
    parser.add_argument("--mutant", choices=sorted({**MUTANTS, **RECONFIG_MUTANTS}), help="run with a planted bug the checkers must catch")
    parser.add_argument("--real-core", action="store_true",
                        help="run the production node core (chain, contracts, mempool) on a faulty in-memory store")
    parser.add_argument("--reconfig", action="store_true",
                        help="validator-set changes (add, remove, replace) at drawn heights during the faults")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (seed ranges split between them)")
    parser.add_argument("--verbose", action="store_true", help="print one line per seed")
    args = parser.parse_args(argv)
    if args.validators < 4:
        parser.error(f"--validators must be at least 4 (n = 3f+1 with f >= 1), found {args.validators}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, found {args.jobs}")
    started, cpu = time.monotonic(), _cpu_seconds()
    if args.jobs > 1:
        summary = run_seeds_parallel(args.validators, args.seeds, args.start, twins=args.twins, mutant=args.mutant,
                                     real_core=args.real_core, jobs=args.jobs, reconfig=args.reconfig)
        for line in summary.failures:
            print(line, flush=True)
    else:
        summary = run_seeds(args.validators, args.seeds, args.start, twins=args.twins, mutant=args.mutant,
                            keep_results=args.verbose, progress=lambda line: print(line, flush=True),
                            real_core=args.real_core, reconfig=args.reconfig)
    cpu, wall = _cpu_seconds() - cpu, time.monotonic() - started
    if args.verbose:
        for r in summary.results:
            print(f"seed={r.seed} ticks={r.ticks} committed={r.committed} messages={r.messages} trace={r.trace_hash[:16]} "
                  f"scenario: {r.scenario}")
    print(f"elapsed={wall:.1f}s cpu={cpu:.1f}s scenarios_per_cpu_hour={summary.seeds * 3600 / max(cpu, 1e-9):.0f} "
          f"scenarios_per_day={summary.seeds * 86400 / max(wall, 1e-9):.0f}", file=sys.stderr)
    print(summary.last_line())
    return 1 if summary.violations or summary.liveness_failures else 0


def _cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes (``--jobs``)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    sys.exit(main())
