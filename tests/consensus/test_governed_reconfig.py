"""A validator voted in by governance on the real node core: observer, then voter, no restart.

The real-core simulator's instances run NodeCore with the schedule read from the
governance contract's state (node/core/chain.py), so this is the production path from
a proposal to certificates carrying the new key, with a simulated clock.
"""

from __future__ import annotations

import logging

import pytest

from devnet.genesis import ADMINS
from ledger.types import TxBody
from node.core.executor import call_view
from tests.sim.cluster import HEALED, Simulation
from tests.sim.corenode import account_key
from tests.sim.scenarios import Scenario

#: Organisations whose admins vote yes: 4 of the devnet's 6 is the 2/3 threshold.
VOTERS = ("platform", "acme", "globex", "swiftship")
MAX_TICKS = 4000


@pytest.fixture(autouse=True)
def quiet_logs():
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


class Admins:
    """Signs governance calls as the organisations' admins, keeping their nonces."""

    def __init__(self, sim: Simulation) -> None:
        self.sim, self.nonces = sim, {}

    def send(self, org: str, method: str, args: list) -> None:
        key = account_key(ADMINS[org])
        nonce = self.nonces.get(org, 0)
        self.nonces[org] = nonce + 1
        raw = TxBody(self.sim.chain_id, key.public_key, nonce, "governance", method, args, 2_000_000).sign(key).encode()
        for node in self.sim.nodes:
            if node.up:
                node.admit(raw)


def run_until(sim: Simulation, done, what: str) -> None:
    start = sim.now
    while not done():
        sim.tick_once()
        assert not sim.violations, sim.violations[:3]
        assert sim.now - start < MAX_TICKS, f"{what}: not within {MAX_TICKS} ticks (height {sim.nodes[0].committed_height})"


def view(sim: Simulation, method: str, *args):
    chain = sim.nodes[0].core.chain
    result = call_view(chain.state, "governance", method, list(args), chain.height, sim.chain_id)
    assert result.ok, result.error_message
    return result.return_value


def enact(sim: Simulation, admins: Admins, kind: str, args: list, expected: list[bytes]) -> int:
    """Propose, vote with 4 of 6 organisations, wait out the timelock, execute; returns the activation height."""
    chain = sim.nodes[0].core.chain
    known = len(view(sim, "list_proposals", 0, 50))
    entries = len(chain.schedule().entries)
    admins.send("platform", "propose", [kind, args, f"{kind} by vote"])
    run_until(sim, lambda: len(view(sim, "list_proposals", 0, 50)) > known, "the proposal to be committed")
    pid = view(sim, "list_proposals", 0, 50)[known]["id"]
    for org in VOTERS:
        admins.send(org, "vote", [pid, True])
    run_until(sim, lambda: view(sim, "get_proposal", pid)["state"] == "passed", "the proposal to pass")
    assert len(chain.schedule().entries) == entries  # passing alone changes nothing: the timelock runs first
    ready_ms = view(sim, "get_proposal", pid)["executable_ms"]
    run_until(sim, lambda: sim.nodes[0].clock_ms() > ready_ms + 1_000, "the timelock (60 s of block time)")
    admins.send("acme", "execute", [pid, b""])
    run_until(sim, lambda: len(chain.schedule().entries) == entries + 1, "the change to be scheduled")
    activation = chain.schedule().entries[-1][0]
    assert activation > chain.height + 1 and list(chain.schedule().at(activation)) == expected
    # The checkers judge certificates against the simulation's schedule: give it the change
    # the test expects (not the node's word for it), before any height it governs commits.
    sim.schedule = sim.schedule.then(activation, expected)
    run_until(sim, lambda: min(n.committed_height for n in sim.nodes) >= activation + 3, "blocks after activation")
    return activation


def signers(sim: Simulation, height: int) -> set[bytes]:
    return {v.validator for v in sim.nodes[0].core.chain.blocks.get_certificate(height).votes}


def test_governance_adds_removes_and_rotates_validators_of_a_running_network():
    sim = Simulation(11, 4, real_core=True, scenario=Scenario(HEALED, [], heal_tick=1, spares=2))
    admins = Admins(sim)
    genesis = list(sim.validators)
    spare, successor = (k.public_key for k in sim.spare_keys)
    by_key = {n.key.public_key: n for n in sim.nodes}

    added = enact(sim, admins, "add_validator", [spare, "spare", "fixit", "127.0.0.1:26090", "127.0.0.1:27090"],
                  genesis + [spare])
    assert not any(spare in signers(sim, h) for h in range(1, added))  # it followed as an observer...
    assert any(spare in signers(sim, h) for h in range(added, added + 3))  # ...and signs from activation on
    assert by_key[spare].replica.voting

    removed = enact(sim, admins, "remove_validator", [genesis[1]], [genesis[0], genesis[2], genesis[3], spare])
    assert not any(genesis[1] in signers(sim, h) for h in range(removed, removed + 3))
    assert not by_key[genesis[1]].replica.voting and by_key[genesis[1]].committed_height >= removed + 2  # follows on

    rotated = enact(sim, admins, "rotate_validator", [genesis[2], successor], [genesis[0], successor, genesis[3], spare])
    # A certificate holds a quorum (3 of the 4), so look a few blocks on for the new key.
    run_until(sim, lambda: min(n.committed_height for n in sim.nodes) >= rotated + 12, "more blocks")
    assert by_key[successor].replica.voting and by_key[successor].replica.counters.get("votes_cast", 0) > 0
    assert any(successor in signers(sim, h) for h in range(rotated, rotated + 12))
    assert not any(genesis[2] in signers(sim, h) for h in range(rotated, rotated + 3))
    heads = {n.core.chain.blocks.get_block(rotated + 2).block_hash for n in sim.nodes}
    assert len(heads) == 1  # every instance, voters and observers, holds the same chain
