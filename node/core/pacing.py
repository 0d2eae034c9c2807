"""Block sizing: a primary proposes no more than it can execute well within the view timeout.

How it works: under overload the mempool holds more than one height can carry, and a
block of ``max_block_txs`` placements can take longer to execute on a busy machine
than the backups' view timer allows; the backups then vote the primary out, the
height is redone, and throughput collapses exactly when it is needed. So the primary
keeps a moving average of how long its own block executions took per transaction
(wall time, which includes whatever else competes for the machine) and caps the next
block at ``budget / average`` transactions, where the budget is ``VIEW_TIMEOUT_SHARE``
of the view timeout. Only the primary's choice of which pending transactions to
include changes; validation does not depend on it.
"""

from __future__ import annotations

#: Share of the view timeout the primary's own execution of a block may take.
VIEW_TIMEOUT_SHARE = 1 / 16
#: Weight of the newest block in the moving average.
SMOOTHING = 0.3
#: Blocks with fewer transactions than this say little about the per-transaction cost
#: (fixed costs dominate), so they do not move the average.
MIN_SAMPLE_TXS = 10
#: The cap never goes below this many transactions (progress even on a very slow node).
MIN_BLOCK_TXS = 50


class BlockSizer:
    """The most transactions the next block should carry (see the module docstring)."""

    def __init__(self, view_timeout_ms: int, max_txs: int) -> None:
        self.budget_us = view_timeout_ms * 1000 * VIEW_TIMEOUT_SHARE
        self.max_txs = max_txs
        self.us_per_tx: float | None = None

    def observe(self, txs: int, seconds: float) -> None:
        """Record that executing a block of ``txs`` transactions took ``seconds``."""
        if txs < MIN_SAMPLE_TXS:
            return
        sample = seconds * 1e6 / txs
        self.us_per_tx = sample if self.us_per_tx is None else (1 - SMOOTHING) * self.us_per_tx + SMOOTHING * sample

    def limit(self) -> int:
        if self.us_per_tx is None:
            return self.max_txs
        return max(min(self.max_txs, MIN_BLOCK_TXS), min(self.max_txs, int(self.budget_us / self.us_per_tx)))
