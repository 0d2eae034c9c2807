"""Run seed ranges and summarise them; shared by the CLI and the pytest suite.

How it works: each seed is an independent ``Simulation``; the summary's trace hash is
the SHA-256 of the per-seed trace hashes in seed order, so two runs over the same
seeds print the same hash. Every failing seed is reported with the exact command that
replays it alone.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from tests.sim.cluster import Result, Simulation


@dataclass
class Summary:
    seeds: int
    validators: int
    violations: int = 0
    liveness_failures: int = 0
    failures: list[str] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    seed_hashes: list[str] = field(default_factory=list)  # per seed, in seed order
    trace_hash: str = ""

    def last_line(self) -> str:
        return (f"seeds={self.seeds} validators={self.validators} violations={self.violations} "
                f"liveness_failures={self.liveness_failures} trace_hash={self.trace_hash}")


def replay_command(seed: int, validators: int, twins: bool, mutant: str | None, real_core: bool = False,
                   reconfig: bool = False) -> str:
    cmd = f"python -m tests.sim --validators {validators} --seeds 1 --start {seed}"
    if twins:
        cmd += " --twins"
    if real_core:
        cmd += " --real-core"
    if reconfig:
        cmd += " --reconfig"
    if mutant:
        cmd += f" --mutant {mutant}"
    return cmd


def run_seeds(validators: int, seeds: int, start: int = 0, twins: bool = False, mutant: str | None = None,
              stop_on_violation: bool = False, keep_results: bool = False, progress=None,
              real_core: bool = False, reconfig: bool = False) -> Summary:
    summary = Summary(seeds, validators)
    h = hashlib.sha256()
    for seed in range(start, start + seeds):
        result = Simulation(seed, validators, twins=twins, mutant=mutant, real_core=real_core, reconfig=reconfig).run()
        h.update(bytes.fromhex(result.trace_hash))
        summary.seed_hashes.append(result.trace_hash)
        if keep_results:
            summary.results.append(result)
        if result.violations or result.liveness_failure:
            what = result.violations[0] if result.violations else result.liveness_failure
            summary.failures.append(f"seed {seed}: {what}\n  scenario: {result.scenario}\n"
                                    f"  replay: {replay_command(seed, validators, twins, mutant, real_core, reconfig)}")
            if result.violations:
                summary.violations += 1
            else:
                summary.liveness_failures += 1
            if progress:
                progress(summary.failures[-1])
            if stop_on_violation:
                summary.seeds = seed - start + 1
                break
    summary.trace_hash = h.hexdigest()
    return summary


def _run_chunk(args: tuple) -> Summary:
    validators, seeds, start, twins, mutant, real_core, reconfig = args
    return run_seeds(validators, seeds, start, twins=twins, mutant=mutant, real_core=real_core, reconfig=reconfig)


def run_seeds_parallel(validators: int, seeds: int, start: int = 0, twins: bool = False, mutant: str | None = None,
                       real_core: bool = False, jobs: int = 2, reconfig: bool = False) -> Summary:
    """``run_seeds`` over ``jobs`` processes (contiguous seed ranges); same summary and trace hash."""
    from concurrent.futures import ProcessPoolExecutor

    bounds = [start + seeds * i // jobs for i in range(jobs + 1)]
    chunks = [(validators, hi - lo, lo, twins, mutant, real_core, reconfig) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
    with ProcessPoolExecutor(max_workers=len(chunks)) as pool:
        parts = list(pool.map(_run_chunk, chunks))
    summary = Summary(seeds, validators)
    h = hashlib.sha256()
    for part in parts:
        summary.violations += part.violations
        summary.liveness_failures += part.liveness_failures
        summary.failures += part.failures
        summary.seed_hashes += part.seed_hashes
        for seed_hash in part.seed_hashes:
            h.update(bytes.fromhex(seed_hash))
    summary.trace_hash = h.hexdigest()
    return summary
