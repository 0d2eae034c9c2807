"""Rejoining after a restart or a rebuild (issue 13 items 2 and 3), on the core alone and in a quiet sim.

The unit tests drive one replica by hand with real signatures; the scenario tests run a
quiet simulated cluster (checkers on) through the reported situations: a validator
restarted in view 0 while the others run a later view, one rebuilt from an empty
store, and then a second crash, which must not stall the chain.
"""

from __future__ import annotations

from ledger.crypto import SigningKey, sha256
from ledger.merkle import EMPTY_ROOT
from ledger.types import PHASE_COMMIT, PHASE_PREPARE, ZERO_HASH, Block, BlockHeader, CommitCertificate, Vote

from consensus.certs import primary_of
from consensus.messages import NewView, PrePrepare
from consensus.ready import RECORD_VIEW, Record
from consensus.rejoin import PHASE_CERTIFIED_VIEW
from consensus.replica import NORMAL, VIEW_CHANGE, VIEW_TIMEOUT_TICKS, Replica
from consensus.transitions import STARTUP_LISTEN_TICKS
from tests.sim.cluster import Simulation
from tests.sim.network import LinkFaults
from tests.sim.scenarios import Scenario

CHAIN = "shopchain-test"
KEYS = [SigningKey.from_label(f"rejoin-test-{i}") for i in range(4)]
VALS = [k.public_key for k in KEYS]
GENESIS = sha256(b"genesis")
NEVER = 10**9


class Accept:
    def validate_block(self, block: Block) -> bool:
        return True


def replica(i: int = 1, records=()) -> Replica:
    return Replica(chain_id=CHAIN, key=KEYS[i], validators=VALS, block_validator=Accept(), committed_hash=GENESIS,
                   records=list(records))


def chain(views: list[int]) -> list[tuple[Block, CommitCertificate]]:
    """Blocks 1..len(views), block h proposed and certified in views[h-1] by validators 0, 2 and 3."""
    out: list[tuple[Block, CommitCertificate]] = []
    prev, last = GENESIS, None
    for height, view in enumerate(views, start=1):
        header = BlockHeader(CHAIN, height, prev, height, primary_of(view, VALS), view, EMPTY_ROOT, ZERO_HASH, ZERO_HASH,
                             ZERO_HASH, ZERO_HASH if last is None else last.cert_hash)
        block = Block(header, (), last)
        votes = [Vote.create(KEYS[i], CHAIN, PHASE_COMMIT, view, height, block.block_hash) for i in (0, 2, 3)]
        last = CommitCertificate.from_votes(votes)
        out.append((block, last))
        prev = block.block_hash
    return out


def drain(r: Replica) -> list:
    out = []
    while r.has_ready():
        out.append(r.ready())
        r.advance()
    return out


def persisted(readies) -> list[Record]:
    return [rec for rd in readies for rec in rd.persist]


def test_a_replica_in_an_old_view_enters_the_view_of_a_certified_block_and_keeps_it_across_a_restart():
    r = replica(1)
    drain(r)
    for block, cert in chain([0, 5]):
        assert r.deliver_committed(block, cert)
    assert (r.view, r.mode, r.view_start_height) == (5, NORMAL, 3)
    assert r.counters["certified_views"] == 1
    records = persisted(drain(r))
    view_records = [rec for rec in records if rec.kind == RECORD_VIEW]
    assert [(rec.view, rec.height, rec.phase) for rec in view_records] == [(5, 3, PHASE_CERTIFIED_VIEW)]
    again = Replica(chain_id=CHAIN, key=KEYS[1], validators=VALS, block_validator=Accept(), committed_height=2,
                    committed_hash=chain([0, 5])[1][0].block_hash, last_certificate=chain([0, 5])[1][1],
                    records=records)
    assert (again.view, again.mode, again.view_start_height) == (5, NORMAL, 3)


def test_it_then_votes_in_that_view():
    r = replica(2)
    drain(r)
    blocks = chain([5, 5])
    for block, cert in blocks[:1]:
        r.deliver_committed(block, cert)
    drain(r)
    nxt = blocks[1][0]
    r.step(PrePrepare.create(KEYS[primary_of(5, list(range(4)))], CHAIN, 5, nxt))
    votes = [m for rd in drain(r) for _, m in rd.messages if isinstance(m, Vote)]
    assert [(v.phase, v.view, v.height) for v in votes] == [(PHASE_PREPARE, 5, 2)]
    assert r.counters["votes_cast"] == 1


def test_a_view_change_to_the_certified_view_ends_but_one_to_a_higher_view_keeps_its_promise():
    waiting = replica(1)
    drain(waiting)
    for _ in range(STARTUP_LISTEN_TICKS + VIEW_TIMEOUT_TICKS):
        waiting.tick()
    assert (waiting.view, waiting.mode) == (1, VIEW_CHANGE)
    ahead = Replica(chain_id=CHAIN, key=KEYS[1], validators=VALS, block_validator=Accept(), committed_hash=GENESIS,
                    records=persisted(drain(waiting)))
    block, cert = chain([1])[0]
    waiting.deliver_committed(block, cert)
    assert (waiting.view, waiting.mode) == (1, NORMAL)  # view 1 runs: a certificate of it proves so
    block0, cert0 = chain([0])[0]
    ahead.deliver_committed(block0, cert0)
    assert (ahead.view, ahead.mode) == (1, VIEW_CHANGE)  # signed a VIEW-CHANGE for 1: never back to 0


def test_pre_prepares_below_the_views_first_height_are_refused():
    # Entered view 2 by a NEW-VIEW whose first height is 3 while still at height 1 (lagging).
    r = replica(1, records=[Record(RECORD_VIEW, 2, 3, 4, sha256(b"new-view"))])
    assert (r.view, r.height, r.view_start_height) == (2, 1, 3)
    header = BlockHeader(CHAIN, 1, GENESIS, 9, VALS[2], 2, EMPTY_ROOT, ZERO_HASH, ZERO_HASH, ZERO_HASH, ZERO_HASH)
    r.step(PrePrepare.create(KEYS[2], CHAIN, 2, Block(header, (), None)))
    assert not [m for rd in drain(r) for _, m in rd.messages if isinstance(m, Vote)]
    assert r.counters["dropped.below_view_start"] == 1


def test_a_replica_started_without_records_listens_until_it_has_caught_up():
    r = replica(0)  # the primary of view 0, e.g. rebuilt from an empty store while the chain is at height 2
    drain(r)
    blocks = chain([0, 0, 0])
    r.step(Vote.create(KEYS[2], CHAIN, PHASE_COMMIT, 0, 3, blocks[2][0].block_hash))  # evidence of height 2
    for _ in range(STARTUP_LISTEN_TICKS + VIEW_TIMEOUT_TICKS):
        r.tick()
        assert all(rd.propose_request is None for rd in drain(r))
    assert r.mode == NORMAL  # and it suspected no one meanwhile
    for block, cert in blocks[:2]:
        r.deliver_committed(block, cert)
    r.tick()
    requests = [rd.propose_request for rd in drain(r) if rd.propose_request is not None]
    assert [(q.view, q.height) for q in requests] == [(0, 3)]


def test_a_lost_primary_is_suspected_after_half_the_timer_one_never_reached_after_the_whole():
    for reached, expected in ((True, VIEW_TIMEOUT_TICKS // 2), (False, VIEW_TIMEOUT_TICKS)):
        r = replica(1, records=[Record(RECORD_VIEW, 0, 1, 4, sha256(b"started"))])  # a restart: no listening
        drain(r)
        if reached:
            r.peers_unreachable(frozenset())
            r.tick()
        ticks = 1 if reached else 0
        while r.mode == NORMAL:
            r.peers_unreachable(frozenset({VALS[0]}))
            r.tick()
            ticks += 1
            assert ticks <= VIEW_TIMEOUT_TICKS
        assert ticks == expected and r.view == 1


# --- in a quiet simulated cluster -------------------------------------------------


def quiet() -> Simulation:
    return Simulation(1, 4, scenario=Scenario(LinkFaults(max_delay=1), [], heal_tick=NEVER))


def run_until(sim: Simulation, done, limit: int = 3000) -> None:
    for _ in range(limit):
        sim.tick_once()
        assert not sim.violations, sim.violations
        if done():
            return
    raise AssertionError(f"not reached in {limit} ticks; heights {[n.committed_height for n in sim.nodes]}, "
                         f"views {[n.replica.view if n.up else None for n in sim.nodes]}")


def force_view_change_without(sim: Simulation, down: int) -> int:
    """Crash ``down``, mute the primaries of the next two views, return the view the others reach."""
    sim.nodes[down].crash()
    up = [n for n in sim.nodes if n.up]
    target = max(n.replica.view for n in up) + 2
    allowed = sim.network.link_filter
    sim.network.link_filter = lambda s, d, m: allowed(s, d, m) and not (
        isinstance(m, (PrePrepare, NewView)) and m.view < target)
    start = max(n.committed_height for n in up)
    run_until(sim, lambda: all(n.replica.view >= target and n.replica.mode == NORMAL for n in up)
              and min(n.committed_height for n in up) >= start + 2)
    sim.network.link_filter = allowed
    return target


def votes_of(sim: Simulation, index: int) -> list[int]:
    """Ticks at which instance ``index`` sends a vote of its own (spy on the network)."""
    ticks: list[int] = []
    send = sim.network.send
    key = sim.nodes[index].key.public_key

    def spy(src, to, message):
        if src == index and isinstance(message, Vote) and message.validator == key:
            ticks.append(sim.now)
        send(src, to, message)

    sim.network.send = spy
    return ticks


def rejoin(sim: Simulation, index: int, wipe: bool) -> None:
    """Restart ``index`` (optionally from an empty store): it votes within one view timeout of the head."""
    node = sim.nodes[index]
    if wipe:
        node.store, node.records = [], []
    ticks = votes_of(sim, index)
    node.start()
    others = [n for n in sim.nodes if n.up and n.index != index]
    run_until(sim, lambda: node.committed_height >= max(n.committed_height for n in others) - 1)
    at_head = sim.now
    run_until(sim, lambda: bool(ticks) and ticks[-1] >= at_head, limit=VIEW_TIMEOUT_TICKS)
    assert node.replica.view == max(n.replica.view for n in others) and node.replica.mode == NORMAL


def test_restart_in_an_old_view_then_a_rebuild_then_a_second_crash_does_not_stall():
    sim = quiet()
    run_until(sim, lambda: min(n.committed_height for n in sim.nodes) >= 3)
    view = force_view_change_without(sim, 3)
    assert view >= 2 and sim.nodes[3].committed_height < sim.nodes[0].committed_height
    rejoin(sim, 3, wipe=False)  # restarts in view 0 with its records
    force_view_change_without(sim, 2)
    rejoin(sim, 2, wipe=True)  # rebuilt from an empty store, views behind
    sim.nodes[1].crash()  # the second crash: 0, 2 and 3 must carry on
    start = sim.nodes[0].committed_height
    run_until(sim, lambda: all(n.committed_height >= start + 3 for n in sim.nodes if n.up), limit=VIEW_TIMEOUT_TICKS * 8)


# --- catch-up is owned by the core and driven through step/tick (consensus/catchup.py) ---


def test_catch_up_asks_reachable_peers_and_commits_answers_given_to_step_in_height_order():
    from consensus.catchup import BLOCKS_PER_REQUEST
    from consensus.messages import Blocks

    blocks = chain([0] * 40)
    r = replica(1)
    drain(r)
    r.peers_unreachable(frozenset({VALS[2]}))
    # Evidence of height 41 (a signed vote from a peer) makes it ask for 1..40.
    r.step(Vote.create(KEYS[0], CHAIN, PHASE_PREPARE, 0, 41, sha256(b"x")), sender=VALS[0])
    asked = [req for rd in drain(r) for req in rd.fetch]
    assert asked and {p for p, _, _ in asked} <= {VALS[0], VALS[3]}  # never the unreachable one, never itself
    assert sorted(s for _, s, _ in asked)[0] == 1 and {c for _, _, c in asked} == {BLOCKS_PER_REQUEST}
    # Answers arrive out of order: nothing commits until height 1 is there, then all of it in order.
    r.step(Blocks(tuple(blocks[32:40])), sender=VALS[3])
    assert r.committed_height == 0
    r.step(Blocks(tuple(blocks[0:32])), sender=VALS[0])
    committed = [b.height for rd in drain(r) for b, _ in rd.committed]
    assert committed == list(range(1, 41)) and r.committed_height == 40


def test_a_late_catch_up_request_is_re_asked_from_another_peer_after_the_timeout():
    chain([0] * 3)
    r = Replica(chain_id=CHAIN, key=KEYS[1], validators=VALS, block_validator=Accept(), committed_hash=GENESIS,
                catchup_timeout_ticks=5)
    drain(r)
    r.step(Vote.create(KEYS[0], CHAIN, PHASE_PREPARE, 0, 10, sha256(b"x")), sender=VALS[0])
    first = [req for rd in drain(r) for req in rd.fetch if req[1] == 1]
    for _ in range(4):
        r.tick()
    assert not [req for rd in drain(r) for req in rd.fetch if req[1] == 1]  # still on time
    r.tick()
    again = [req for rd in drain(r) for req in rd.fetch if req[1] == 1]
    assert again and again[0][0] != first[0][0]
