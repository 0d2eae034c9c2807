"""Command line: ``python -m tests.sim --validators N --seeds K [--start S] [--twins] [--mutant NAME]``.

Exits 1 if any seed shows a violation or a liveness failure, and always ends with the
line ``seeds=K validators=N violations=V liveness_failures=L trace_hash=H``.
"""

from __future__ import annotations

import argparse
import sys
import time

from tests.sim.mutants import MUTANTS
from tests.sim.runner import run_seeds

#: Seeds run when --seeds is not given; every mutant must be caught within it.
DEFAULT_SEEDS = 200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description="Deterministic PBFT simulator with checkers.")
    parser.add_argument("--validators", type=int, default=4, help="validators in the cluster (n >= 4)")
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--twins", action="store_true", help="Twins scenarios: one key on two instances")
    parser.add_argument("--mutant", choices=sorted(MUTANTS), help="run with a planted bug the checkers must catch")
    parser.add_argument("--verbose", action="store_true", help="print one line per seed")
    args = parser.parse_args(argv)
    if args.validators < 4:
        parser.error(f"--validators must be at least 4 (n = 3f+1 with f >= 1), found {args.validators}")
    started = time.monotonic()
    summary = run_seeds(args.validators, args.seeds, args.start, twins=args.twins, mutant=args.mutant,
                        keep_results=args.verbose, progress=lambda line: print(line, flush=True))
    if args.verbose:
        for r in summary.results:
            print(f"seed={r.seed} ticks={r.ticks} committed={r.committed} messages={r.messages} trace={r.trace_hash[:16]} "
                  f"scenario: {r.scenario}")
    print(f"elapsed={time.monotonic() - started:.1f}s", file=sys.stderr)
    print(summary.last_line())
    return 1 if summary.violations or summary.liveness_failures else 0


if __name__ == "__main__":
    sys.exit(main())
