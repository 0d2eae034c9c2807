"""Catch-up: fetch committed blocks from several peers at once and apply them in order.

How it works: this is the consensus core's one catch-up owner, driven only through the
replica's inputs, so the simulator and the node take the same path. The replica
raises ``known_height`` whenever it sees evidence (messages or certificates) of heights
above its own and calls ``pump`` on that evidence and on every tick. While it is
behind, ``pump`` keeps up to ``MAX_INFLIGHT_REQUESTS`` requests of
``BLOCKS_PER_REQUEST`` blocks out at a time, spread round-robin over the peers the
runtime can reach, and re-asks another peer when an answer is ``timeout_ticks`` late.
It returns the requests; the replica puts them in ``Ready.fetch`` and the runtime
sends them. Answers (``Blocks`` messages, fed to ``Replica.step``) may arrive in any
order; they wait in a bounded buffer keyed by height and ``take_next`` hands them to
the replica one height at a time, which checks each block's certificate against the
validator set before committing it. So a replica thousands of blocks behind streams
them in at the speed of execution and disk, never trusting a peer for anything a
certificate does not prove.

Peers serve catch-up within a per-peer budget (node.catchup: bytes and blocks per
second, no height re-sent to the same node within ``serve_dedup_window_seconds``).
The pacing here stays inside it: few requests are out, spread over every reachable
peer, and a request is re-asked only after ``timeout_ticks`` (the node sets it longer
than the serving side's duplicate window) and from another peer, so an honest lagging
node is never refused as a duplicate; an answer cut short by a budget leaves a gap
that the next ``pump`` asks for again.

A peer that prunes old blocks (``[storage] retain_blocks``) answers nothing for heights
below its base. Its silence times the request out like any late answer; the request
goes to another peer, and the silent one is not asked for heights up to that request
again while some other peer is not known to lack them (``lacks``), so a node far behind
finds the peers that still hold its heights within a few timeouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.types import Block, CommitCertificate

from consensus.messages import MAX_BLOCKS_PER_RESPONSE

#: Blocks asked for in one request (the most one answer may carry).
BLOCKS_PER_REQUEST = MAX_BLOCKS_PER_RESPONSE
#: Requests outstanding at once, across all peers.
MAX_INFLIGHT_REQUESTS = 6
#: Blocks held while waiting for a gap to fill; answers beyond the window are dropped.
MAX_BUFFERED_BLOCKS = BLOCKS_PER_REQUEST * MAX_INFLIGHT_REQUESTS * 2
#: An unanswered request is given to another peer after this many ticks (the pure
#: core's default, for the simulator; the node converts its wall-clock timeout).
CATCHUP_TIMEOUT_TICKS = 10

Request = tuple[bytes, int, int]  # (peer, from_height, count)


@dataclass
class CatchUp:
    timeout_ticks: int = CATCHUP_TIMEOUT_TICKS
    inflight: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # from_height -> (peer, sent at tick)
    buffer: dict[int, tuple[Block, CommitCertificate]] = field(default_factory=dict)
    received_blocks: int = 0
    requests_sent: int = 0
    requested_up_to: int = 0
    #: peer -> the highest request start it let time out. A peer that prunes old blocks (or
    #: state-synced) answers nothing below its base, so it is not asked again for heights up
    #: to there while another peer may have them; forgotten once those heights are applied.
    lacks: dict[bytes, int] = field(default_factory=dict)
    _next_peer: int = 0

    def pump(self, committed: int, known: int, peers: list[bytes], now: int) -> list[Request]:
        """The requests to send now for heights committed+1 .. known."""
        out: list[Request] = []
        for start in [s for s in self.inflight if s + BLOCKS_PER_REQUEST - 1 <= committed]:
            del self.inflight[start]  # everything it asked for is applied
        if known <= committed or not peers:
            return out
        self.lacks = {p: h for p, h in self.lacks.items() if h > committed}
        late = [(start, peer) for start, (peer, sent) in self.inflight.items() if now - sent >= self.timeout_ticks]
        for start, peer in late:  # every silence first, so no re-ask goes to a peer that just failed higher
            self.lacks[peer] = max(self.lacks.get(peer, 0), start)
        for start, peer in late:
            out.append(self._ask(start, peers, now, avoid=peer))
        following = committed + 1
        if following not in self.buffer and not any(s <= following < s + BLOCKS_PER_REQUEST for s in self.inflight):
            out.append(self._ask(following, peers, now))  # a gap (short or lost answer) blocks everything after it
        self.requested_up_to = max(self.requested_up_to, committed)
        while len(self.inflight) < MAX_INFLIGHT_REQUESTS:
            start = self.requested_up_to + 1
            if start > min(known, committed + MAX_BUFFERED_BLOCKS):
                break
            out.append(self._ask(start, peers, now))
        return out

    def _ask(self, start: int, peers: list[bytes], now: int, avoid: bytes | None = None) -> Request:
        others = [p for p in peers if p != avoid]
        choices = [p for p in others if self.lacks.get(p, 0) < start] or others or peers
        peer = choices[self._next_peer % len(choices)]
        self._next_peer += 1
        self.inflight[start] = (peer, now)
        self.requested_up_to = max(self.requested_up_to, start + BLOCKS_PER_REQUEST - 1)
        self.requests_sent += 1
        return peer, start, BLOCKS_PER_REQUEST

    def on_blocks(self, items: list[tuple[Block, CommitCertificate]] | tuple, committed: int) -> None:
        """Buffer an answer (any order); ``take_next`` then yields the consecutive heights."""
        for block, cert in items:
            height = block.height
            if committed < height <= committed + MAX_BUFFERED_BLOCKS and height not in self.buffer:
                self.buffer[height] = (block, cert)
                self.received_blocks += 1
        if items:
            self.inflight.pop(items[0][0].height, None)

    def take_next(self, committed: int) -> tuple[Block, CommitCertificate] | None:
        """The buffered block for height committed+1, if held (dropping what is now stale)."""
        for stale in [h for h in self.buffer if h <= committed]:
            del self.buffer[stale]
        return self.buffer.pop(committed + 1, None)
