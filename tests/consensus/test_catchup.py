"""Catch-up scheduling (consensus/catchup.py), driven without sockets or clocks: time is ticks."""

from __future__ import annotations

from consensus.catchup import BLOCKS_PER_REQUEST, MAX_INFLIGHT_REQUESTS, CatchUp

TIMEOUT = 7


class FakeBlock:
    def __init__(self, height: int) -> None:
        self.height = height


def answer(start: int, count: int = BLOCKS_PER_REQUEST):
    return [(FakeBlock(h), None) for h in range(start, start + count)]


def drain(sync: CatchUp, chain: list[int], valid=lambda h: True) -> int:
    """Apply buffered heights in order, as Replica.on_blocks does; returns how many."""
    applied = 0
    while (item := sync.take_next(len(chain))) is not None:
        if not valid(item[0].height):
            break
        chain.append(item[0].height)
        applied += 1
    return applied


def test_requests_spread_over_peers_and_stay_bounded():
    sync = CatchUp(TIMEOUT)
    sent = sync.pump(committed=10, known=1000, peers=[b"a", b"b", b"c"], now=0)
    assert len(sent) == MAX_INFLIGHT_REQUESTS
    assert [s for _, s, _ in sent] == [11 + i * BLOCKS_PER_REQUEST for i in range(MAX_INFLIGHT_REQUESTS)]
    assert {p for p, _, _ in sent} == {b"a", b"b", b"c"} and {c for _, _, c in sent} == {BLOCKS_PER_REQUEST}
    assert sync.pump(committed=10, known=1000, peers=[b"a"], now=TIMEOUT - 1) == []  # all out and on time


def test_nothing_is_asked_when_not_behind_or_nobody_is_reachable():
    sync = CatchUp(TIMEOUT)
    assert sync.pump(committed=10, known=10, peers=[b"a"], now=0) == []
    assert sync.pump(committed=10, known=50, peers=[], now=0) == []


def test_out_of_order_answers_are_applied_in_height_order():
    sync, chain = CatchUp(TIMEOUT), []
    sync.pump(committed=0, known=100, peers=[b"a", b"b"], now=0)
    sync.on_blocks(answer(33), committed=0)
    assert drain(sync, chain) == 0  # height 1 is still missing
    sync.on_blocks(answer(1), committed=0)
    assert drain(sync, chain) == 64
    assert chain == list(range(1, 65))


def test_late_requests_go_to_another_peer_and_gaps_are_asked_again():
    sync, chain = CatchUp(TIMEOUT), []
    sent = sync.pump(committed=0, known=40, peers=[b"a", b"b"], now=0)
    first_peer = sent[0][0]
    retry = [r for r in sync.pump(committed=0, known=40, peers=[b"a", b"b"], now=TIMEOUT) if r[1] == 1]
    assert retry and retry[0][0] != first_peer
    # A short answer leaves a gap at 5: the next pump asks for it again.
    sync.on_blocks(answer(1, 4), committed=0)
    drain(sync, chain)
    again = sync.pump(committed=4, known=40, peers=[b"a", b"b"], now=TIMEOUT + 1)
    assert any(start == 5 for _, start, _ in again)


def test_a_rejected_block_stops_delivery_and_is_dropped():
    sync, chain = CatchUp(TIMEOUT), []
    sync.on_blocks(answer(1, 5), committed=0)
    assert drain(sync, chain, valid=lambda h: h != 3) == 2 and chain == [1, 2]
    assert 3 not in sync.buffer


def test_peers_that_let_a_range_time_out_are_not_asked_for_it_again_while_others_may_hold_it():
    """Peers b and c prune old blocks and never answer below 500; a holds everything. After one
    timeout each, every request at or below what they failed goes to a."""
    sync, chain = CatchUp(TIMEOUT), []
    peers = [b"a", b"b", b"c"]
    now, asked_of_pruned = 0, []
    sent = sync.pump(committed=0, known=400, peers=peers, now=now)
    for _round in range(12):
        for peer, start, count in sent:
            if peer == b"a":
                sync.on_blocks(answer(start, count), committed=len(chain))
            else:
                asked_of_pruned.append((peer, start))
        drain(sync, chain)
        now += TIMEOUT
        sent = sync.pump(committed=len(chain), known=400, peers=peers, now=now)
        if len(chain) >= 400:
            break
    assert chain[:400] == list(range(1, 401))
    for peer in (b"b", b"c"):  # each asked again only for heights above the ones it let time out
        starts = [s for p, s in asked_of_pruned if p == peer]
        assert starts == sorted(set(starts)), (peer, starts)
    assert len(asked_of_pruned) <= 2 * MAX_INFLIGHT_REQUESTS
