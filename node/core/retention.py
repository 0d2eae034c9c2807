"""Block retention: which old blocks a node may delete, like CometBFT's retain height.

How it works: ``[storage] retain_blocks`` = R keeps the newest R blocks (0 = keep
every block, an archive node). ``BlockRetention.retain_height(head)`` is the oldest
height to keep after committing ``head``: head - R + 1, lowered to what others still
need from this node:

- state sync: this node offers newcomers the state at the latest multiple of
  ``[statesync] snapshot_interval`` (node/statesync/serve.py), and a newcomer then
  block-syncs from that height. A newcomer that picked the previous snapshot just
  before a new one appeared is still fetching it, so blocks are kept from the
  second-latest snapshot height (no pruning at all before there are two).
- catch-up: a lagging validator asks its peers for blocks from its own height. R is
  never below ``MIN_RETAIN_BLOCKS`` (the config refuses less), so an outage of that
  many blocks is always served by every peer; a peer asking below this node's base
  gets no blocks and asks another (node/catchup.py), and a newcomer further behind
  uses an archive peer or state sync.

``Chain.commit`` then calls ``BlockStore.prune_to`` once per commit, which deletes at
most ``ledger.storage.pruning.PRUNE_BATCH_BLOCKS`` blocks in one atomic batch: a node that turns retention on
with a long history drains the backlog over the next commits instead of stalling one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import ChainError

#: Smallest ``[storage] retain_blocks`` other than 0: at one block a second, a validator
#: that was down for a quarter of an hour still finds every block it lacks on every peer.
MIN_RETAIN_BLOCKS = 1_000
#: Largest ``[storage] retain_blocks`` (a config range bound, not a protocol limit).
MAX_RETAIN_BLOCKS = 10**12


@dataclass(frozen=True)
class BlockRetention:
    """How many blocks to keep and what must not be pruned (see the module docstring)."""

    retain_blocks: int = 0
    snapshot_interval: int = 0
    #: The floor the node enforces; tests and benchmarks lower it to exercise pruning on short chains.
    min_retain_blocks: int = MIN_RETAIN_BLOCKS

    def __post_init__(self) -> None:
        if self.retain_blocks and self.retain_blocks < self.min_retain_blocks:
            raise ChainError(f"retain_blocks: expected 0 (keep every block) or at least {self.min_retain_blocks} "
                             f"(peers' catch-up needs that many), found {self.retain_blocks}")
        if self.snapshot_interval < 0:
            raise ChainError(f"snapshot_interval: expected a non-negative integer, found {self.snapshot_interval}")

    @property
    def enabled(self) -> bool:
        return self.retain_blocks > 0

    def retain_height(self, head: int) -> int:
        """The oldest height to keep once ``head`` is committed (0: keep everything)."""
        if not self.enabled or head < 1:
            return 0
        keep_from = head - self.retain_blocks + 1
        if self.snapshot_interval:
            latest = head - head % self.snapshot_interval
            keep_from = min(keep_from, latest - self.snapshot_interval)  # the second-latest snapshot
        return max(keep_from, 0)
