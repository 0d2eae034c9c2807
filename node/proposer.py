"""The primary's side of a height: when to build the block the core asked for, and previews.

How it works: when the consensus core asks this replica for a block
(``Ready.propose_request``), the service hands the request to ``Proposer.asked``.
``Proposer.maybe_propose`` then decides when to build it: once transactions are
executable it waits up to ``batch_wait_ms`` (from the first executable one) for a
fuller batch, unless the mempool already holds a block's worth; with nothing to
include it proposes an empty block only after ``empty_block_interval_ms`` of idleness
(idle blocks still advance the block time that deadlines count, and the backups' view
timer must not fire on an idle but healthy primary). A wait arms one loop timer that
re-enters ``maybe_propose``.

With previews on, the primary broadcasts the block's inputs (``node.core.preview``)
``PREVIEW_LEAD_S`` before executing it, so the backups execute it at the same time;
``on_preview`` is the backups' side, which executes a preview only when it comes from
the current primary for the next height on our head, and never trusts it (the
PRE-PREPARE's block is still checked in full).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from consensus import ProposeRequest
from ledger.errors import DecodeError
from ledger.types import SignedTx
from node.core.engine import NodeCore
from node.core.pacing import BlockSizer
from node.core.preview import MAX_PREVIEWS_PER_HEIGHT, PREVIEW_LEAD_S, Preview


def now_ms() -> int:
    return int(time.time() * 1000)


class Proposer:
    """Builds this replica's proposals on the event loop; ``busy()`` is true while the core must not be re-entered."""

    def __init__(self, core: NodeCore, sizer: BlockSizer, batch_wait_ms: int, empty_block_interval_ms: int,
                 previews: bool, busy: Callable[[], bool], after: Callable[[], None]) -> None:
        self.core, self.sizer = core, sizer
        self.chain, self.mempool, self.replica, self.limits = core.chain, core.mempool, core.replica, core.limits
        self.batch_wait_s = batch_wait_ms / 1000
        self.empty_interval_s = empty_block_interval_ms / 1000
        self.previews = previews
        self._busy, self._after = busy, after
        self.request: ProposeRequest | None = None
        self.broadcast: Callable[[bytes], None] | None = None  # set once the transport runs (previews go out)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._first_pending_at: float | None = None
        self.last_commit_at = time.monotonic()
        self._previews_seen: tuple[int, int] = (0, 0)  # (height, previews taken for it)

    def asked(self, request: ProposeRequest) -> None:
        self.request = request

    def committed(self, at: float) -> float:
        """A block was applied at monotonic time ``at``; returns the interval since the previous one."""
        interval = at - self.last_commit_at
        self.last_commit_at = at
        if not self.mempool.has_executable():
            # A backlog keeps its start time: transactions that waited through this
            # height go into the next block at once instead of waiting batch_wait_ms again
            # (under load that wait was a quarter of every height).
            self._first_pending_at = None
        return interval

    def maybe_propose(self) -> None:
        request = self.request
        if request is None or self._busy():
            return
        if request.height != self.chain.height + 1 or request.view != self.replica.view:
            self.request = None
            return
        now = time.monotonic()
        wait_s = None
        if self.mempool.has_executable():  # a nonce gap alone must not cause a stream of empty blocks
            if self._first_pending_at is None:
                self._first_pending_at = now
            waited = now - self._first_pending_at
            if len(self.mempool) < self.sizer.limit() and waited < self.batch_wait_s:
                wait_s = self.batch_wait_s - waited
        else:
            idle = now - self.last_commit_at
            if self.empty_interval_s == 0 or idle < self.empty_interval_s:
                if self.empty_interval_s == 0:
                    return
                wait_s = self.empty_interval_s - idle
        if wait_s is not None:
            if self.loop is not None and self._timer is None:
                self._timer = self.loop.call_later(wait_s, self._timer_fired)
            return
        self._build(request)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _timer_fired(self) -> None:
        self._timer = None
        self.maybe_propose()

    def _build(self, request: ProposeRequest) -> None:
        self.request = None
        txs = self.mempool.reap(self.sizer.limit(), self.limits.max_bytes, self.limits.max_gas)
        timestamp = self.chain.next_timestamp(now_ms())
        if txs and self.previews and self.broadcast is not None and self.loop is not None:
            preview = Preview(request.view, request.height, request.prev_hash, timestamp, tuple(t.tx_id for t in txs))
            self.broadcast(preview.encode())
            self.loop.call_later(PREVIEW_LEAD_S, self._propose, request, txs, timestamp)
        else:
            self._propose(request, txs, timestamp)

    def _propose(self, request: ProposeRequest, txs: list[SignedTx], timestamp: int) -> None:
        if self._busy():
            return
        started = time.perf_counter()
        block = self.core.build_block(request, txs, timestamp)
        if block is None:
            return  # the view moved on while the preview went out; the core asks again if it must
        self.sizer.observe(len(txs), time.perf_counter() - started)
        self.core.propose(block)
        self._after()

    def on_preview(self, peer: bytes, data: bytes) -> str | None:
        """A backup got the primary's preview: execute it now if it fits; returns the outcome for metrics."""
        if not self.previews:
            return None
        try:
            preview = Preview.decode(data)
        except DecodeError:
            return "bad_preview"
        height = self.chain.height + 1
        taken = self._previews_seen[1] if self._previews_seen[0] == height else 0
        if (peer != self.replica.primary or preview.view != self.replica.view or preview.height != height
                or preview.prev_hash != self.chain.head_hash() or taken >= MAX_PREVIEWS_PER_HEIGHT
                or len(preview.tx_ids) > self.limits.max_txs):
            return "ignored"
        self._previews_seen = (height, taken + 1)
        txs = [self.mempool.get(tx_id) for tx_id in preview.tx_ids]
        if any(tx is None for tx in txs):
            return "missing_txs"  # gossip has not brought them all yet
        return "executed" if self.chain.speculate(height, preview.timestamp_ms, txs) else None  # type: ignore[arg-type]
