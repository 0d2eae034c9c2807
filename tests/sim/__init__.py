"""Deterministic simulator for the PBFT core: ``python -m tests.sim --help``."""

from tests.sim.cluster import Result, Simulation
from tests.sim.runner import run_seeds

__all__ = ["Result", "Simulation", "run_seeds"]
