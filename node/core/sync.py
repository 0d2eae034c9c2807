"""Block sync: fetch committed blocks from several peers at once and apply them in order.

How it works: the consensus core notices when it is behind (messages or certificates
for heights above its own) and raises ``known_height``. While the node is more than
one block behind, ``BlockSync.pump`` keeps up to ``MAX_INFLIGHT_REQUESTS`` requests of
``BLOCKS_PER_REQUEST`` blocks out at a time, spread round-robin over the connected
peers, and re-asks another peer when an answer is late. Answers may arrive in any
order; they wait in a bounded buffer keyed by height and are handed to the core one
height at a time (``deliver``), which checks each block's certificate against the
validator set before the node executes and stores it. So a node that is thousands of
blocks behind streams them in at the speed of execution and disk, never trusting a
peer for anything a certificate does not prove.

Peers serve catch-up within a per-peer budget (``node.catchup``: bytes and blocks per
second, no height re-sent to the same node within 1.5 s). The pacing here stays inside
it: at most ``MAX_INFLIGHT_REQUESTS`` requests are out, spread over every connected
peer, and a request is re-asked only after ``REQUEST_TIMEOUT_S`` (longer than the
serving side's duplicate window) and from another peer, so an honest lagging node is
never refused as a duplicate; an answer cut short by a budget leaves a gap that the
next ``pump`` asks for again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.types import Block, CommitCertificate

#: Blocks asked for in one request (the core's limit per answer).
BLOCKS_PER_REQUEST = 32
#: Requests outstanding at once, across all peers.
MAX_INFLIGHT_REQUESTS = 6
#: Blocks held while waiting for a gap to fill; answers beyond the window are dropped.
MAX_BUFFERED_BLOCKS = BLOCKS_PER_REQUEST * MAX_INFLIGHT_REQUESTS * 2
#: An unanswered request is given to another peer after this long.
REQUEST_TIMEOUT_S = 2.0


@dataclass
class BlockSync:
    send_request: Callable[[bytes, int, int], None]   # (peer, from_height, count)
    deliver: Callable[[Block, CommitCertificate], bool]
    inflight: dict[int, tuple[bytes, float]] = field(default_factory=dict)  # from_height -> (peer, sent at)
    buffer: dict[int, tuple[Block, CommitCertificate]] = field(default_factory=dict)
    received_blocks: int = 0
    requests_sent: int = 0
    requested_up_to: int = 0
    _next_peer: int = 0

    def pump(self, committed: int, known: int, peers: list[bytes], now: float) -> None:
        """Top up outstanding requests for heights committed+1 .. known."""
        for start in [s for s in self.inflight if s + BLOCKS_PER_REQUEST - 1 <= committed]:
            del self.inflight[start]  # everything it asked for is applied
        if known <= committed or not peers:
            return
        for start, (peer, sent) in list(self.inflight.items()):
            if now - sent >= REQUEST_TIMEOUT_S:
                self._ask(start, peers, now, avoid=peer)
        following = committed + 1
        if following not in self.buffer and not any(s <= following < s + BLOCKS_PER_REQUEST for s in self.inflight):
            self._ask(following, peers, now)  # a gap (short or lost answer) blocks everything after it
        self.requested_up_to = max(self.requested_up_to, committed)
        while len(self.inflight) < MAX_INFLIGHT_REQUESTS:
            start = self.requested_up_to + 1
            if start > min(known, committed + MAX_BUFFERED_BLOCKS):
                break
            self._ask(start, peers, now)

    def _ask(self, start: int, peers: list[bytes], now: float, avoid: bytes | None = None) -> None:
        choices = [p for p in peers if p != avoid] or peers
        peer = choices[self._next_peer % len(choices)]
        self._next_peer += 1
        self.inflight[start] = (peer, now)
        self.requested_up_to = max(self.requested_up_to, start + BLOCKS_PER_REQUEST - 1)
        self.requests_sent += 1
        self.send_request(peer, start, BLOCKS_PER_REQUEST)

    def on_blocks(self, items: list[tuple[Block, CommitCertificate]], committed: int) -> None:
        """Buffer an answer (any order), then deliver every consecutive height we hold."""
        for block, cert in items:
            height = block.height
            if committed < height <= committed + MAX_BUFFERED_BLOCKS and height not in self.buffer:
                self.buffer[height] = (block, cert)
                self.received_blocks += 1
        if items:
            self.inflight.pop(items[0][0].height, None)

    def drain(self, committed_height: Callable[[], int]) -> int:
        """Hand buffered blocks to the core in height order; returns how many were accepted."""
        applied = 0
        while True:
            height = committed_height() + 1
            item = self.buffer.pop(height, None)
            if item is None:
                break
            if not self.deliver(*item):
                break  # a bad block or certificate: drop it and ask again later
            applied += 1
        for stale in [h for h in self.buffer if h <= committed_height()]:
            del self.buffer[stale]
        return applied
