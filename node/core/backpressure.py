"""Admission backpressure: refuse new client work before its queueing delay explodes.

Past saturation an open mempool only makes things worse: every transaction admitted
costs a signature verification and gossip now, waits behind everything already
pending, and its latency grows without bound while throughput falls (the CPU goes to
admitting work that cannot be served in time). So a node refuses a client's new
transaction, cheaply and before any decoding or signature check, while the pool
already holds more than it can commit within ``max_queue_ms``; the client is told how
long to wait (``retry_after_ms``). What was acknowledged is never dropped: only new
submissions are refused, and gossip from peers and the node's own journal are not
subject to it (another node acknowledged those).

How it works: ``DrainRate`` remembers the (timestamp, transaction count) of the last
``DRAIN_WINDOW_BLOCKS`` committed blocks. Block timestamps are consensus time (the
primary's clock, checked by every validator), so the estimate needs no clock of its
own and is the same in a simulation as on a real network. The drain rate is the
transactions of the window after its first block over the time they spanned; the
expected wait of a newcomer is ``pending / rate``. Below ``MIN_BUSY_PENDING`` pending
transactions a node never says busy: an idle chain's sparse blocks say nothing about
what it could commit, and a burst of a few blocks' worth is what a pool is for.
"""

from __future__ import annotations

from collections import deque

#: Committed blocks whose timestamps and sizes make the drain-rate estimate.
DRAIN_WINDOW_BLOCKS = 16
#: Below this many pending transactions admission never refuses as busy.
MIN_BUSY_PENDING = 1000
#: Default bound on the expected queueing delay of a new transaction (``[mempool] max_queue_ms``).
MAX_QUEUE_MS = 2000
#: Bounds of the retry hint given to a refused client.
MIN_RETRY_AFTER_MS = 50
MAX_RETRY_AFTER_MS = 10_000


class DrainRate:
    """How fast this chain has been committing transactions lately (see the module docstring)."""

    def __init__(self, window: int = DRAIN_WINDOW_BLOCKS) -> None:
        self._blocks: deque[tuple[int, int]] = deque(maxlen=window)

    def committed(self, timestamp_ms: int, txs: int) -> None:
        """Record a committed block's consensus time and transaction count."""
        self._blocks.append((timestamp_ms, txs))

    def per_second(self) -> float | None:
        """Transactions per second over the window, or None before two blocks with time between them."""
        if len(self._blocks) < 2:
            return None
        span_ms = self._blocks[-1][0] - self._blocks[0][0]
        if span_ms <= 0:
            return None
        txs = sum(count for _, count in list(self._blocks)[1:])
        return txs * 1000.0 / span_ms


def busy_refusal(pending: int, rate: float | None, max_queue_ms: int) -> tuple[str, int] | None:
    """(message, retry_after_ms) when a new transaction would wait more than ``max_queue_ms``, else None.

    ``max_queue_ms`` 0 turns backpressure off; so does a rate not yet known.
    """
    if max_queue_ms <= 0 or pending < MIN_BUSY_PENDING or not rate:
        return None
    wait_ms = pending * 1000.0 / rate
    if wait_ms <= max_queue_ms:
        return None
    retry_after = int(min(MAX_RETRY_AFTER_MS, max(MIN_RETRY_AFTER_MS, wait_ms - max_queue_ms)))
    message = (f"the node is busy: {pending:,} transactions are pending, about {wait_ms / 1000:.1f} s of work at "
               f"the recent commit rate of {rate:,.0f} tx/s, and new transactions are admitted only while that "
               f"is under {max_queue_ms / 1000:.1f} s; retry after {retry_after} ms (the same signed bytes are "
               f"safe to send again)")
    return message, retry_after
