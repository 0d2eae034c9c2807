"""Block sync scheduling, driven without sockets or clocks."""

from __future__ import annotations

from node.core.sync import BLOCKS_PER_REQUEST, MAX_INFLIGHT_REQUESTS, REQUEST_TIMEOUT_S, BlockSync


class FakeBlock:
    def __init__(self, height: int) -> None:
        self.height = height


def make(valid=lambda h: True):
    sent, chain = [], []

    def deliver(block, cert):
        if not valid(block.height):
            return False
        chain.append(block.height)
        return True

    sync = BlockSync(lambda peer, start, count: sent.append((peer, start, count)), deliver)
    return sync, sent, chain


def answer(start: int, count: int = BLOCKS_PER_REQUEST):
    return [(FakeBlock(h), None) for h in range(start, start + count)]


def test_requests_spread_over_peers_and_stay_bounded():
    sync, sent, _ = make()
    sync.pump(committed=10, known=1000, peers=[b"a", b"b", b"c"], now=0.0)
    assert len(sent) == MAX_INFLIGHT_REQUESTS
    assert [s for _, s, _ in sent] == [11 + i * BLOCKS_PER_REQUEST for i in range(MAX_INFLIGHT_REQUESTS)]
    assert {p for p, _, _ in sent} == {b"a", b"b", b"c"}
    sync.pump(committed=10, known=1000, peers=[b"a"], now=0.5)
    assert len(sent) == MAX_INFLIGHT_REQUESTS  # nothing new while all are outstanding and on time


def test_out_of_order_answers_are_applied_in_height_order():
    sync, sent, chain = make()
    sync.pump(committed=0, known=100, peers=[b"a", b"b"], now=0.0)
    sync.on_blocks(answer(33), committed=0)
    assert sync.drain(lambda: len(chain)) == 0  # height 1 is still missing
    sync.on_blocks(answer(1), committed=0)
    assert sync.drain(lambda: len(chain)) == 64
    assert chain == list(range(1, 65))


def test_late_requests_go_to_another_peer_and_gaps_are_asked_again():
    sync, sent, chain = make()
    sync.pump(committed=0, known=40, peers=[b"a", b"b"], now=0.0)
    first_peer = sent[0][0]
    sync.pump(committed=0, known=40, peers=[b"a", b"b"], now=REQUEST_TIMEOUT_S + 0.1)
    retry = [r for r in sent[2:] if r[1] == 1]
    assert retry and retry[0][0] != first_peer
    # A short answer leaves a gap at 5: the next pump asks for it again.
    sync.on_blocks(answer(1, 4), committed=0)
    sync.drain(lambda: len(chain))
    before = len(sent)
    sync.pump(committed=4, known=40, peers=[b"a", b"b"], now=REQUEST_TIMEOUT_S + 0.2)
    assert any(start == 5 for _, start, _ in sent[before:])


def test_a_rejected_block_stops_delivery_and_is_dropped():
    sync, _, chain = make(valid=lambda h: h != 3)
    sync.on_blocks(answer(1, 5), committed=0)
    assert sync.drain(lambda: len(chain)) == 2 and chain == [1, 2]
    assert 3 not in sync.buffer
