"""Validator sets that change by height: the schedule, the walk from genesis, the core's use of them.

Deterministic: the cluster runs are the simulator's (ticks, no clock); longer runs:
``python -m tests.sim --seeds 2000 --reconfig`` (add ``--twins``, ``--real-core``).
"""

from __future__ import annotations

import dataclasses

import pytest

from consensus.messages import Blocks
from consensus.replica import Replica
from ledger.crypto import SigningKey
from ledger.errors import ValidationError
from ledger.types import PHASE_COMMIT, ZERO_HASH, Vote, verify_certificate
from ledger.validator_set import ValidatorSchedule, check_header_sets
from tests.sim.cluster import HEALED, Simulation
from tests.sim.mutants import RECONFIG_MUTANTS
from tests.sim.runner import run_seeds
from tests.sim.scenarios import Change, Scenario

KEYS = [SigningKey.from_label(f"vset-{i}").public_key for i in range(6)]


# --- the schedule -------------------------------------------------------------------

def test_the_set_in_force_is_the_last_entry_at_or_below_the_height():
    schedule = ValidatorSchedule.fixed(KEYS[:4]).then(10, KEYS[1:5]).then(20, KEYS[:3] + KEYS[5:6])
    assert schedule.at(1) == schedule.at(9) == tuple(KEYS[:4])
    assert schedule.at(10) == schedule.at(19) == tuple(KEYS[1:5])
    assert schedule(25) == tuple(KEYS[:3] + KEYS[5:6])
    assert schedule.changes() == [10, 20] and schedule.ever() == frozenset(KEYS)
    assert schedule.hash_at(9) != schedule.hash_at(10)


@pytest.mark.parametrize("entries, problem", [
    (((2, tuple(KEYS[:4])),), "first entry must start at height 1"),
    (((1, tuple(KEYS[:4])), (1, tuple(KEYS[:3]))), "heights must ascend"),
    (((1, ()),), "expected 1..256 validators, found 0"),
    (((1, (KEYS[0], KEYS[0])),), "a key is listed twice"),
    (((1, (b"short",)),), "expected a 32-byte public key"),
])
def test_a_bad_schedule_is_refused_saying_what_is_wrong(entries, problem):
    with pytest.raises(ValidationError, match=problem):
        ValidatorSchedule(entries)


# --- cluster runs with changes --------------------------------------------------------

def quiet_run(changes: list[Change], seed: int = 7) -> Simulation:
    scenario = Scenario(HEALED, [], heal_tick=1, spares=2, changes=changes)
    sim = Simulation(seed, 4, scenario=scenario)
    sent: list[tuple[int, Vote]] = []
    observe = sim.observe_sent

    def record(node, message):
        if isinstance(message, Vote):
            sent.append((node.index, message))
        observe(node, message)

    sim.observe_sent = record
    sim.votes = sent
    while min(n.committed_height for n in sim.nodes) < 16 and sim.now < 2000:
        sim.tick_once()
    assert not sim.violations, sim.violations
    assert min(n.committed_height for n in sim.nodes) >= 16, "the cluster stopped committing across the changes"
    return sim


def voted_heights(sim: Simulation, key: bytes) -> set[int]:
    return {v.height for _, v in sim.votes if v.validator == key}


def test_an_added_validator_follows_as_an_observer_then_votes_from_its_activation_height():
    sim = quiet_run([Change(6, "add", -1, 0)])
    spare = sim.spare_keys[0].public_key
    heights = voted_heights(sim, spare)
    assert heights and min(heights) == 6, f"the spare voted at heights {sorted(heights)[:5]}"
    spare_node = next(n for n in sim.nodes if n.key.public_key == spare)
    assert spare_node.committed_height >= 16  # it followed every block, then took part without a restart
    certs = [cert for block, cert in sim.nodes[0].store]
    assert any(spare in {v.validator for v in c.votes} for c in certs[5:])
    assert all(spare not in {v.validator for v in c.votes} for c in certs[:5])


def test_a_removed_validator_stops_voting_and_its_votes_no_longer_count():
    sim = quiet_run([Change(4, "add", -1, 0), Change(8, "remove", 1, -1)])
    removed = sim.keys[1].public_key
    assert max(voted_heights(sim, removed)) == 7
    for block, cert in sim.nodes[0].store[7:]:
        assert removed not in {v.validator for v in cert.votes}
        verify_certificate(cert, list(sim.schedule.at(block.height)), sim.chain_id, block.height, block.block_hash)


def test_a_replaced_key_hands_its_position_to_the_new_one():
    sim = quiet_run([Change(5, "replace", 0, 1)])
    old, new = sim.keys[0].public_key, sim.spare_keys[1].public_key
    assert max(voted_heights(sim, old)) == 4 and min(voted_heights(sim, new)) == 5
    assert sim.schedule.at(5)[0] == new  # the primary of views 0, 4, 8, ... from height 5 on


def test_headers_carry_the_sets_so_a_walk_from_genesis_proves_each_one():
    sim = quiet_run([Change(6, "add", -1, 0), Change(9, "replace", 2, 1)])
    chain = sim.nodes[0].store
    for block, cert in chain:
        check_header_sets(block.header, cert, sim.schedule, sim.chain_id)
    # A schedule that lies about the set of height 9 fails at height 8, whose certified
    # header names the real next set, however well the lie is signed afterwards.
    lie = ValidatorSchedule(sim.schedule.entries[:2] + ((9, sim.schedule.at(6)),))
    block, cert = chain[7]
    with pytest.raises(ValidationError, match="next validator set"):
        check_header_sets(block.header, cert, lie, sim.chain_id)


def test_catch_up_across_a_change_never_checks_a_certificate_against_a_set_not_yet_known():
    """The runtime knows the set of h only once h - 2 is applied; a replica fed a long
    run of blocks at once must wait for that, not check against a stale answer."""
    sim = quiet_run([Change(5, "add", -1, 0), Change(7, "remove", 0, -1)])
    chain = sim.nodes[0].store[:14]
    applied: list = []

    def runtime_sets(height: int):  # stale (the genesis set) beyond what the applied state fixes
        return sim.schedule.at(height) if height <= len(applied) + 2 else sim.schedule.at(1)

    class Validator:
        def validate_block(self, block):
            return True

    replica = Replica(chain_id=sim.chain_id, key=sim.keys[3], validators=runtime_sets, block_validator=Validator(),
                      committed_hash=sim.genesis_hash)
    replica.step(Blocks(tuple(chain)), sender=sim.keys[1].public_key)
    rounds = 0
    while replica.has_ready() and rounds < 100:
        rounds += 1
        applied.extend(replica.ready().committed)
        replica.advance()
    assert [b.block_hash for b, _ in applied] == [b.block_hash for b, _ in chain]
    assert replica.counters.get("dropped.delivered_bad_certificate", 0) == 0
    assert replica.counters.get("deliver_waits_for_set", 0) > 0


def test_an_observer_never_signs_anything():
    sim = quiet_run([])
    spares = {k.public_key for k in sim.spare_keys}
    assert not [v for _, v in sim.votes if v.validator in spares]
    assert all(n.committed_height >= 16 for n in sim.nodes if n.key.public_key in spares)


def test_a_certificate_from_the_old_set_is_refused_after_the_change():
    sim = quiet_run([Change(4, "add", -1, 0), Change(6, "remove", 3, -1)])
    block, cert = sim.nodes[0].store[5]  # height 6: the set is keys 0, 1, 2 and the spare
    old = sim.schedule.at(5)
    # Four signatures of the old set's keys (a quorum of its five), one of them by the removed key.
    forged = dataclasses.replace(cert, votes=tuple(sorted(
        (Vote.create(k, sim.chain_id, PHASE_COMMIT, cert.view, 6, cert.block_hash) for k in sim.keys[:4]),
        key=lambda v: v.validator)))
    verify_certificate(forged, list(old), sim.chain_id, 6, block.block_hash)  # valid for the old set...
    with pytest.raises(ValidationError, match="not in the validator set"):
        verify_certificate(forged, list(sim.schedule.at(6)), sim.chain_id, 6, block.block_hash)
    replica = Replica(chain_id=sim.chain_id, key=sim.keys[0], validators=sim.schedule,
                      block_validator=sim.nodes[0], committed_height=5, committed_hash=sim.nodes[0].store[4][0].block_hash,
                      last_certificate=sim.nodes[0].store[4][1])
    assert not replica.deliver_committed(block, forged)  # ...and not for the set of its height
    assert replica.committed_height == 5


# --- seed ranges ----------------------------------------------------------------------

@pytest.mark.parametrize("twins, validators, seeds", [(False, 4, 150), (True, 4, 80), (False, 7, 30)])
def test_seed_ranges_with_reconfiguration_run_clean(twins, validators, seeds):
    summary = run_seeds(validators, seeds, 0, twins=twins, keep_results=True, reconfig=True)
    assert summary.violations == 0 and summary.liveness_failures == 0, "\n".join(summary.failures)
    in_force = sum(r.counters.get("reconfig.changes_in_force", 0) for r in summary.results)
    by_spares = sum(1 for r in summary.results if r.counters.get("reconfig.heights_certified_by_spares", 0))
    assert in_force >= seeds and by_spares >= seeds // 2  # the changes really happened and mattered


@pytest.mark.parametrize("mutant", sorted(RECONFIG_MUTANTS))
def test_a_replica_that_ignores_set_changes_is_caught(mutant):
    summary = run_seeds(4, 60, 0, mutant=mutant, reconfig=True, stop_on_violation=True)
    assert summary.violations >= 1, f"mutant {mutant} survived 60 reconfiguration seeds"


def test_real_core_seeds_with_reconfiguration_run_clean():
    import logging

    logging.disable(logging.CRITICAL)
    try:
        summary = run_seeds(4, 30, 0, real_core=True, reconfig=True)
    finally:
        logging.disable(logging.NOTSET)
    assert summary.violations == 0 and summary.liveness_failures == 0, "\n".join(summary.failures)


def test_zero_next_set_hash_is_refused_by_a_header_walk():
    sim = quiet_run([])
    block, cert = sim.nodes[0].store[0]
    header = dataclasses.replace(block.header, next_validator_set_hash=ZERO_HASH)
    with pytest.raises(ValidationError, match="next validator set"):
        check_header_sets(header, cert, sim.schedule, sim.chain_id)
