"""Scenario tests that follow Castro & Liskov (TOCS 2002), one situation each.

Each test drives a quiet simulated cluster (no random faults) by hand: which links
work, who crashes, who lies. The simulator's checkers stay on throughout, so every
test also asserts agreement, growing prefixes, no equivocation and valid certificates.
"""

from __future__ import annotations

from ledger.types import PHASE_COMMIT, PHASE_PREPARE, Vote, max_faulty, quorum_size, verify_certificate

from consensus.messages import NewView, PrePrepare, ViewChange
from consensus.replica import NORMAL, VIEW_TIMEOUT_TICKS
from tests.sim.cluster import Simulation
from tests.sim.network import LinkFaults
from tests.sim.scenarios import Scenario

NEVER = 10**9


def quiet(n: int = 4, byzantine: int | None = None, seed: int = 1) -> Simulation:
    return Simulation(seed, n, scenario=Scenario(LinkFaults(max_delay=1), [], heal_tick=NEVER, byzantine=byzantine))


def run_until(sim: Simulation, done, limit: int = 2000) -> None:
    for _ in range(limit):
        sim.tick_once()
        assert not sim.violations, sim.violations
        if done():
            return
    raise AssertionError(f"condition not reached in {limit} ticks; heights {[n.committed_height for n in sim.nodes]}")


def heights(sim: Simulation) -> list[int]:
    return [n.committed_height for n in sim.nodes]


def record_messages(sim: Simulation) -> list:
    """Wrap the network so the test sees every message sent: (src, message)."""
    seen: list = []
    send_to = sim.network.send_to

    def spy(src, dst, message):
        seen.append((src, dst, message))
        send_to(src, dst, message)

    sim.network.send_to = spy
    return seen


def test_normal_case_4_2_pre_prepare_prepare_commit():
    sim = quiet(4)
    sent = record_messages(sim)
    run_until(sim, lambda: min(heights(sim)) >= 3)
    primary = sim.validators[0]
    pps = [m for _, _, m in sent if isinstance(m, PrePrepare)]
    assert pps and all(m.primary == primary and m.view == 0 for m in pps)  # only the primary of view 0 pre-prepares
    prepares = [m for _, _, m in sent if isinstance(m, Vote) and m.phase == PHASE_PREPARE]
    assert all(p.validator != primary for p in prepares)  # §4.2: backups prepare, the primary does not
    for node in sim.nodes:
        for height, (block, cert) in enumerate(node.store, start=1):
            assert block.height == height and cert.block_hash == block.block_hash  # seq = height, digest = block hash
            assert len(cert.votes) >= quorum_size(4) == 2 * max_faulty(4) + 1
            verify_certificate(cert, sim.validators, sim.chain_id, height, block.block_hash)
            if height > 1:  # the certificate of each block rides in the next one
                assert block.last_commit is not None and block.last_commit.height == height - 1
    assert len({n.store[2][0].block_hash for n in sim.nodes}) == 1


def test_primary_crash_triggers_view_change_4_4():
    sim = quiet(4)
    run_until(sim, lambda: min(heights(sim)) >= 2)
    sim.nodes[0].crash()  # the primary of view 0
    before = max(heights(sim))
    run_until(sim, lambda: min(h for i, h in enumerate(heights(sim)) if i != 0) >= before + 3)
    for node in sim.nodes[1:]:
        assert node.replica.view == 1 and node.replica.mode == NORMAL  # primary = view mod n = validator 1
        assert node.replica.counters.get("new_views", 0) >= 1
    newest = sim.nodes[1].store[-1][0]
    assert newest.header.view == 1 and newest.header.proposer == sim.validators[1]


def test_view_timer_backs_off_exponentially_4_5_2():
    sim = quiet(4)
    run_until(sim, lambda: min(heights(sim)) >= 1)
    sim.nodes[0].crash()
    base = sim.network.link_filter
    # No NEW-VIEW ever arrives, so each view change fails and the next timer doubles.
    sim.network.link_filter = lambda s, d, m: base(s, d, m) and not isinstance(m, NewView)
    r = sim.nodes[2].replica
    starts = []
    for _ in range(VIEW_TIMEOUT_TICKS * 100):
        view = r.view
        sim.tick_once()
        if r.view != view:
            starts.append(sim.now)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert len(gaps) >= 3 and gaps[1] > gaps[0] and gaps[2] > gaps[1]  # 2T, 4T, 8T ...
    assert gaps[-1] == gaps[-2]  # capped
    sim.network.link_filter = base
    sim.nodes[0].start()
    run_until(sim, lambda: min(heights(sim)) >= 3, limit=4000)  # and it recovers once NEW-VIEWs get through


def test_equivocating_primary_cannot_split_the_honest_replicas():
    sim = quiet(4, byzantine=0, seed=7)  # validator 0, primary of view 0, sends two blocks per height
    sent = record_messages(sim)
    run_until(sim, lambda: min(heights(sim)[1:]) >= 4, limit=4000)
    digests: dict[tuple[int, int], set] = {}
    for src, _, m in sent:
        if src == 0 and isinstance(m, PrePrepare):
            digests.setdefault((m.view, m.height), set()).add(m.digest)
    assert any(len(d) > 1 for d in digests.values())  # it really equivocated
    for height in range(1, 5):  # and the honest replicas still agree (checker 1 ran on every commit too)
        assert len({n.store[height - 1][0].block_hash for n in sim.nodes[1:]}) == 1


def test_prepared_but_uncommitted_block_survives_the_view_change_4_4():
    sim = quiet(4)
    run_until(sim, lambda: min(heights(sim)) >= 2)
    lucky = 3
    # From now on COMMITs reach only replica 3: everyone prepares the next block, only 3 commits it.
    base = sim.network.link_filter
    sim.network.link_filter = lambda s, d, m: base(s, d, m) and not (
        isinstance(m, Vote) and m.phase == PHASE_COMMIT and d != lucky)
    h = heights(sim)[lucky] + 1
    run_until(sim, lambda: heights(sim)[lucky] >= h)
    committed = sim.nodes[lucky].store[h - 1][0].block_hash
    assert all(n.committed_height < h for i, n in enumerate(sim.nodes) if i != lucky)
    sim.nodes[lucky].crash()  # the only replica that knows it committed is gone
    sent = record_messages(sim)
    run_until(sim, lambda: any(isinstance(m, NewView) for _, _, m in sent), limit=3000)  # the others time out
    sim.network.link_filter = base  # COMMITs flow again
    run_until(sim, lambda: all(n.committed_height >= h for i, n in enumerate(sim.nodes) if i != lucky))
    vcs = [m for _, _, m in sent if isinstance(m, ViewChange) and m.committed_height == h - 1]
    assert any(pc.digest == committed for vc in vcs for pc in vc.prepared)  # carried as a prepared certificate
    nv = next(m for _, _, m in sent if isinstance(m, NewView))
    assert nv.pre_prepare.digest == committed  # re-proposed, not replaced
    for i, node in enumerate(sim.nodes):
        if i != lucky:
            assert node.store[h - 1][0].block_hash == committed


def test_lagging_replica_catches_up_with_certified_blocks():
    sim = quiet(4)
    base = sim.network.link_filter
    sim.network.link_filter = lambda s, d, m: base(s, d, m) and s != 3 and d != 3
    run_until(sim, lambda: min(heights(sim)[:3]) >= 8)
    assert sim.nodes[3].committed_height == 0
    sim.network.link_filter = base
    run_until(sim, lambda: heights(sim)[3] >= heights(sim)[0] >= 10)
    r = sim.nodes[3].replica
    assert r.counters.get("fetch_requests", 0) >= 1 and r.counters.get("caught_up", 0) >= 5
    assert [b.block_hash for b, _ in sim.nodes[3].store[:8]] == [b.block_hash for b, _ in sim.nodes[0].store[:8]]


def test_restart_mid_round_resends_the_same_pre_prepare():
    sim = quiet(4)
    sent = record_messages(sim)
    run_until(sim, lambda: min(heights(sim)) >= 2)
    primary = sim.nodes[0]
    h = primary.committed_height + 1
    run_until(sim, lambda: any(isinstance(m, PrePrepare) and m.height == h for s, _, m in sent if s == 0))
    primary.crash()  # everything not persisted is lost
    primary.start()
    run_until(sim, lambda: min(heights(sim)) >= h + 1)
    digests = {m.digest for s, _, m in sent if s == 0 and isinstance(m, PrePrepare) and m.height == h and m.view == 0}
    assert len(digests) == 1  # the restarted primary re-sent what it had signed, never a new block


def test_restarted_backup_refuses_to_prepare_a_conflicting_block():
    sim = quiet(4)
    sent = record_messages(sim)
    run_until(sim, lambda: min(heights(sim)) >= 1)
    h = 2
    run_until(sim, lambda: any(isinstance(m, Vote) and m.phase == PHASE_PREPARE and m.height == h for s, _, m in sent if s == 1))
    backup = sim.nodes[1]
    backup.crash()
    backup.start()
    # The primary's key signs a second block for the same (view, height): a lie the backup must not sign for.
    pp = next(m for _, _, m in sent if isinstance(m, PrePrepare) and m.height == h)
    twin_block = sim.nodes[0].build_block(type("R", (), {"view": 0, "height": h, "prev_hash": pp.block.header.prev_hash,
                                                         "last_commit": pp.block.last_commit})())
    other = PrePrepare.create(sim.keys[0], sim.chain_id, 0, twin_block)
    assert other.digest != pp.digest
    backup.replica.step(other)
    backup.pump()
    assert backup.replica.counters.get("refused.conflicting_signature", 0) == 1
    run_until(sim, lambda: min(heights(sim)) >= h + 1)
    prepares = {m.block_hash for s, _, m in sent if s == 1 and isinstance(m, Vote) and m.phase == PHASE_PREPARE
                and m.height == h and m.view == 0}
    assert prepares == {pp.digest}
