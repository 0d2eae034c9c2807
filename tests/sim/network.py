"""The simulated network: one seeded RNG decides every drop, delay and duplicate.

How it works: ``send`` turns a message into deliveries, one per recipient instance
(a validator key may run on two instances under Twins), each put on a heap keyed by
(delivery tick, sequence number) so that ties break in send order. Before queueing, a
delivery must pass the current ``link_filter`` (partitions, one-way cuts, Twins'
per-view partitions) and survive the drop probability; a random delay reorders
messages, and a duplicate is queued with its own delay. Nothing here reads a clock.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any, Callable

#: Longest a message may spend in flight, in ticks (reordering happens below this).
MAX_DELAY_TICKS = 12
#: Messages in flight at most; beyond it the network drops (a real link buffer is finite).
MAX_IN_FLIGHT = 200_000


@dataclass
class LinkFaults:
    drop: float = 0.0
    duplicate: float = 0.0
    max_delay: int = 2


class Network:
    def __init__(self, rng: random.Random, instances_of: Callable[[bytes], list[int]], instance_count: int) -> None:
        self.rng = rng
        self.instances_of = instances_of
        self.instance_count = instance_count
        self.faults = LinkFaults()
        # link_filter(src, dst, message) -> bool: may this delivery happen right now?
        self.link_filter: Callable[[int, int, Any], bool] = lambda src, dst, message: True
        self.queue: list[tuple[int, int, int, int, Any]] = []
        self.now = 0
        self._seq = 0
        self.sent = 0
        self.dropped = 0

    def send(self, src: int, to: bytes | None, message: Any) -> None:
        targets = range(self.instance_count) if to is None else self.instances_of(to)
        for dst in targets:
            if dst != src:
                self.send_to(src, dst, message)

    def send_to(self, src: int, dst: int, message: Any) -> None:
        self.sent += 1
        f = self.faults
        if not self.link_filter(src, dst, message) or len(self.queue) >= MAX_IN_FLIGHT:
            self.dropped += 1
            return
        if f.drop and self.rng.random() < f.drop:
            self.dropped += 1
            return
        self._push(src, dst, message, self.rng.randint(1, max(1, f.max_delay)))
        if f.duplicate and self.rng.random() < f.duplicate:
            self._push(src, dst, message, self.rng.randint(1, max(1, f.max_delay)))

    def _push(self, src: int, dst: int, message: Any, delay: int) -> None:
        self._seq += 1
        heapq.heappush(self.queue, (self.now + min(delay, MAX_DELAY_TICKS), self._seq, src, dst, message))

    def due(self) -> list[tuple[int, int, Any]]:
        """Pop every delivery due at or before now, in (tick, send order)."""
        out = []
        while self.queue and self.queue[0][0] <= self.now:
            _, _, src, dst, message = heapq.heappop(self.queue)
            out.append((src, dst, message))
        return out
