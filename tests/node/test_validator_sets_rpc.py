"""chain_getValidators and the client's offline walk of validator sets from genesis."""

from __future__ import annotations

import asyncio
import copy

import pytest

from ledger.errors import ValidationError
from ledger.validator_set import ValidatorSchedule
from node.client import verify_validator_sets
from node.rpc.methods import make_routes
from tests.consensus.test_validator_sets import quiet_run
from tests.sim.scenarios import Change


class StoreBlocks:
    """The block reads chain_getValidators makes, over a simulated node's committed store."""

    def __init__(self, store) -> None:
        self.store = store

    @property
    def height(self) -> int:
        return len(self.store)

    def get_block(self, height: int):
        return self.store[height - 1][0] if 1 <= height <= len(self.store) else None

    def get_certificate(self, height: int):
        return self.store[height - 1][1] if 1 <= height <= len(self.store) else None


class View:
    def __init__(self, sim) -> None:
        self.blocks, self._schedule = StoreBlocks(sim.nodes[0].store), sim.schedule

    def validator_schedule(self) -> ValidatorSchedule:
        return self._schedule


@pytest.fixture(scope="module")
def run():
    sim = quiet_run([Change(5, "add", -1, 0), Change(9, "replace", 1, 1), Change(40, "remove", 0, -1)])
    method = next(m for m in make_routes(View(sim)) if m.name == "chain_getValidators")
    return sim, asyncio.run(method.handler(None))


def test_a_light_client_proves_every_reached_set_from_genesis_alone(run):
    sim, answer = run
    proven = verify_validator_sets(answer, sim.validators, sim.chain_id)
    assert proven.entries == sim.schedule.entries[:3]  # the change at 40 is scheduled, not yet certified
    assert answer["schedule"][3]["proof"] is None and answer["validators"] == ["0x" + k.hex() for k in sim.schedule.at(17)]


@pytest.mark.parametrize("tamper, problem", [
    (lambda a: a["schedule"][1]["validators"].reverse(), "does not name the set"),
    (lambda a: a["schedule"][2].update(proof=a["schedule"][1]["proof"]), "is proven by header"),
    (lambda a: a["schedule"][0]["validators"].pop(), "genesis set"),
])
def test_a_lying_schedule_is_refused(run, tamper, problem):
    sim, answer = run
    bad = copy.deepcopy(answer)
    tamper(bad)
    with pytest.raises(ValidationError, match=problem):
        verify_validator_sets(bad, sim.validators, sim.chain_id)


def test_a_proof_checked_with_the_genesis_set_after_a_change_is_refused(run):
    """An old set cannot vouch for a header of a height it no longer certifies."""
    sim, answer = run
    proof = answer["schedule"][2]["proof"]  # header 8, certified by the set in force from 5
    with pytest.raises(ValidationError, match="not the set trusted"):
        verify_validator_sets({"schedule": [answer["schedule"][0], dict(answer["schedule"][2])]},
                              sim.validators, sim.chain_id)
    assert proof["height"] == 8
