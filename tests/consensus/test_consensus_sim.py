"""The simulator's default coverage: seed ranges that must run clean, mutants that must not.

Longer runs (``python -m tests.sim --validators 4 --seeds 10000``) stay behind the CLI.
"""

from __future__ import annotations

import pytest

from tests.sim.__main__ import DEFAULT_SEEDS, main
from tests.sim.cluster import Simulation
from tests.sim.mutants import MUTANTS
from tests.sim.runner import run_seeds


def assert_clean(validators: int, seeds: int, start: int, twins: bool = False) -> None:
    summary = run_seeds(validators, seeds, start, twins=twins)
    assert summary.violations == 0 and summary.liveness_failures == 0, "\n".join(summary.failures)


@pytest.mark.parametrize("start", [0, 100, 200])
def test_n4_seeds_are_clean(start):
    assert_clean(4, 100, start)  # 300 seeds in all


def test_n7_seeds_are_clean():
    assert_clean(7, 100, 0)


@pytest.mark.parametrize("start", [0, 250, 500, 750])
def test_twins_scenarios_are_clean(start):
    assert_clean(4, 250, start, twins=True)  # 1,000 scenarios in all


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_every_mutant_is_caught_within_the_default_seed_count(mutant):
    summary = run_seeds(4, DEFAULT_SEEDS, 0, mutant=mutant, stop_on_violation=True)
    assert summary.violations >= 1, f"mutant {mutant} survived {DEFAULT_SEEDS} seeds"
    assert "replay: python -m tests.sim --validators 4 --seeds 1 --start" in summary.failures[0]


def test_one_seed_gives_one_trace():
    first, again, other = Simulation(11, 4).run(), Simulation(11, 4).run(), Simulation(12, 4).run()
    assert first.trace_hash == again.trace_hash != other.trace_hash
    assert first.committed > 0


def test_cli_prints_the_summary_line_and_fails_on_violations(capsys):
    assert main(["--validators", "4", "--seeds", "3", "--start", "40"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("seeds=3 validators=4 violations=0 liveness_failures=0 trace_hash=")
    assert main(["--validators", "4", "--seeds", "2", "--mutant", "quorum_2f"]) == 1
    out = capsys.readouterr().out
    assert "replay: python -m tests.sim" in out and "violations=2" in out.strip().splitlines()[-1]
