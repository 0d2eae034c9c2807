"""Transaction gossip between validators: batch, flush, re-broadcast, and admit what peers send.

How it works: every transaction this node admits (from a client, or re-admitted from
the mempool journal at start) is queued and flushed to every peer ``GOSSIP_FLUSH_MS``
later in batches of at most ``MAX_GOSSIP_BATCH``, so a burst of submissions costs a
few frames rather than one per transaction. Each tick re-broadcasts up to
``MAX_REGOSSIP_PER_TICK`` transactions that have waited long without committing
(``Mempool.due_for_regossip``), which heals a batch lost to a broken link. A batch
from a peer is decoded once and each transaction goes through the same admission as a
client's; refusals are counted by reason (duplicates, the normal case, are not).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ledger import encoding
from ledger.errors import DecodeError
from node.core.mempool import Mempool, MempoolError

#: Most raw transactions in one gossip message.
MAX_GOSSIP_BATCH = 512
#: How long admitted transactions wait to be gossiped together.
GOSSIP_FLUSH_MS = 5
#: Most transactions re-broadcast per tick.
MAX_REGOSSIP_PER_TICK = 256


class Gossip:
    """The outgoing queue and the incoming admission of gossiped transactions."""

    def __init__(self, mempool: Mempool, on_refusal: Callable[[str], None], on_bad_batch: Callable[[], None]) -> None:
        self.mempool = mempool
        self._on_refusal, self._on_bad_batch = on_refusal, on_bad_batch
        self.queue: list[bytes] = []
        self.broadcast: Callable[[bytes], None] | None = None  # set once the transport runs
        self._scheduled = False

    def send_soon(self, raw: bytes) -> None:
        """Queue one admitted transaction; the flush runs ``GOSSIP_FLUSH_MS`` later (needs a running loop)."""
        self.queue.append(raw)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(GOSSIP_FLUSH_MS / 1000, self.flush)

    def flush(self) -> None:
        self._scheduled = False
        while self.queue and self.broadcast is not None:
            batch, self.queue = self.queue[:MAX_GOSSIP_BATCH], self.queue[MAX_GOSSIP_BATCH:]
            self.broadcast(encoding.encode(batch))

    def regossip(self) -> None:
        due = self.mempool.due_for_regossip(time.monotonic(), MAX_REGOSSIP_PER_TICK)
        if due:
            self.queue.extend(tx.encode() for tx in due)
            self.flush()

    def receive(self, data: bytes) -> None:
        """A peer's batch: admit each transaction as a client's would be."""
        try:
            batch = encoding.decode(data)
        except DecodeError:
            self._on_bad_batch()
            return
        if not isinstance(batch, list) or len(batch) > MAX_GOSSIP_BATCH:
            self._on_bad_batch()
            return
        for raw in batch:
            if type(raw) is not bytes:
                continue
            try:
                self.mempool.admit(raw, time.monotonic())
            except MempoolError as exc:
                if exc.reason != "duplicate":
                    self._on_refusal(exc.reason)
