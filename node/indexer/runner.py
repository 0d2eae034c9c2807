"""The indexer's runner: feeds a sink from the node's block store or from a remote node.

How it works: a ``Source`` says how high the chain is and hands out committed blocks
with their receipts: ``StoreSource`` reads the node's own BlockStore (the source of
truth: after any crash the index just catches up from it), ``RpcSource`` pulls the
stored bytes from any node with ``chain_getRawBlocks`` and checks each block's
transaction and receipts roots before indexing it. ``Indexer.step`` moves the index
on by one bounded batch (``batch_blocks``, at most sink.MAX_BLOCKS_PER_TRANSACTION), in
one SQL transaction with the new height, so a kill at any moment loses at most the
batch in flight, which the next start writes again; ``catch_up`` repeats steps until
the head. ``IndexerThread`` runs that inside the node, off the event loop: the node
calls ``notify()`` after each commit, the thread wakes, catches up and sleeps again,
so consensus never waits on SQL. A failing database is logged and retried with a
backoff; it never stops the node.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ledger.errors import ChainError, DecodeError
from ledger.types import Block, Receipt, compute_receipts_root, compute_tx_root
from node.indexer.sink import MAX_BLOCKS_PER_TRANSACTION, BatchItem, IndexerError, SqlSink

log = logging.getLogger("shopchain.indexer")

#: Blocks the in-node indexer writes per SQL transaction: smaller than the cap, so a
#: catch-up yields the GIL to the event loop between batches more often.
IN_NODE_BATCH_BLOCKS = 50
#: Longest the in-node indexer sleeps without a commit notification (it re-checks the head).
IDLE_CHECK_S = 1.0
#: How often a remote indexer asks the node for its head when it is caught up.
REMOTE_POLL_S = 0.5
#: First and longest wait before retrying after a failed batch (doubles in between).
RETRY_FIRST_S, RETRY_MAX_S = 0.5, 30.0
#: Most blocks one chain_getRawBlocks answer is asked for (the node may send fewer).
RPC_BLOCKS_PER_CALL = 32
#: Most committed blocks, and transactions in them, the node hands the in-node indexer in memory
#: (beyond either: read from the store), so a stalled database cannot make the node hold much.
MAX_OFFERED_BLOCKS, MAX_OFFERED_TXS = 256, 20_000


class Source(Protocol):
    chain_id: str

    def head(self) -> int: ...
    def base(self) -> int: ...
    def fetch(self, start: int, stop: int) -> list[BatchItem]: ...


class StoreSource:
    """Blocks of the node's own store (a BlockStore; reads are safe beside the node's writes).

    The node also hands over each block it commits (``offer``, from the event loop): those
    are indexed from memory, which skips decoding and re-verifying them from the store,
    about half of the indexer's work. At most ``MAX_OFFERED_BLOCKS`` wait; anything else
    (a restart, a backlog) is read from the store, the source of truth either way."""

    def __init__(self, blocks: Any, chain_id: str, genesis_hash: str | None = None) -> None:
        self.blocks, self.chain_id, self.genesis_hash = blocks, chain_id, genesis_hash
        self._offered: dict[int, BatchItem] = {}
        self._offered_txs = 0
        self._lock = threading.Lock()

    def head(self) -> int:
        return self.blocks.height

    def base(self) -> int:
        return getattr(self.blocks, "base", 0)

    def offer(self, block: Block, receipts: Sequence[Receipt]) -> None:
        """A block the node just committed (with its receipts, as stored); dropped when too many wait."""
        with self._lock:
            if len(self._offered) < MAX_OFFERED_BLOCKS and self._offered_txs + len(block.txs) <= MAX_OFFERED_TXS:
                self._offered[block.height] = (block, receipts)
                self._offered_txs += len(block.txs)

    def fetch(self, start: int, stop: int) -> list[BatchItem]:
        out = []
        with self._lock:
            for old in [h for h in self._offered if h < start]:
                del self._offered[old]  # indexed already (or before this index's start)
            offered = {h: self._offered.pop(h) for h in range(start, stop + 1) if h in self._offered}
            self._offered_txs = sum(len(b.txs) for b, _ in self._offered.values())
        for height in range(start, stop + 1):
            if height in offered:
                out.append(offered[height])
                continue
            block, receipts = self.blocks.get_block(height), self.blocks.get_receipts(height)
            if block is None or receipts is None:
                raise IndexerError(f"block {height} is not in the block store (head {self.head()}, base "
                                   f"{self.base()}): the store pruned it before it was indexed; index from a node "
                                   f"that keeps it (shopchain indexer run --from URL)")
            out.append((block, receipts))
        return out


class RpcSource:
    """Blocks of a remote node, fetched as stored bytes with ``chain_getRawBlocks``."""

    def __init__(self, client: Any) -> None:
        self.client = client
        status = client.request("chain_status")
        self.chain_id: str = status["chain_id"]
        self.genesis_hash: str | None = status.get("genesis_hash")
        self._base = int(status.get("base_height") or 0)

    def head(self) -> int:
        return int(self.client.request("chain_status")["height"])

    def base(self) -> int:
        return self._base

    def fetch(self, start: int, stop: int) -> list[BatchItem]:
        out: list[BatchItem] = []
        height = start
        while height <= stop:
            answer = self.client.request("chain_getRawBlocks", height, min(RPC_BLOCKS_PER_CALL, stop - height + 1))
            items = answer.get("blocks") or []
            if not items:
                raise IndexerError(f"the node sent no block at height {height} (its head: {answer.get('head')})")
            for item in items:
                out.append(_decode_item(item, height))
                height += 1
        return out


def _decode_item(item: dict, expected: int) -> BatchItem:
    """One chain_getRawBlocks entry, checked: the height asked for, roots matching the header."""
    try:
        block = Block.decode(bytes.fromhex(item["block"][2:]))
        receipts = [Receipt.decode(bytes.fromhex(r[2:])) for r in item["receipts"]]
    except (KeyError, TypeError, ValueError, DecodeError, ChainError) as exc:
        raise IndexerError(f"chain_getRawBlocks: block {expected} is malformed: {exc}") from None
    if block.height != expected:
        raise IndexerError(f"chain_getRawBlocks: expected block {expected}, found block {block.height}")
    if compute_tx_root(block.txs) != block.header.tx_root:
        raise IndexerError(f"chain_getRawBlocks: block {expected}'s transactions do not hash to its tx root")
    if compute_receipts_root(receipts) != block.header.receipts_root:
        raise IndexerError(f"chain_getRawBlocks: block {expected}'s receipts do not hash to its receipts root")
    return block, receipts


class Indexer:
    """One sink fed from one source, in bounded batches."""

    def __init__(self, sink: SqlSink, source: Source, batch_blocks: int = MAX_BLOCKS_PER_TRANSACTION,
                 on_batch: Callable[[int, int], None] | None = None) -> None:
        if not 1 <= batch_blocks <= MAX_BLOCKS_PER_TRANSACTION:
            raise IndexerError(f"batch size: expected 1..{MAX_BLOCKS_PER_TRANSACTION} blocks per SQL transaction, "
                               f"found {batch_blocks}")
        self.sink, self.source, self.batch_blocks, self.on_batch = sink, source, batch_blocks, on_batch
        self.height: int | None = None
        self.head = 0

    def start(self) -> int:
        """Open the sink for the source's chain; returns the height already indexed."""
        self.height = self.sink.open(self.source.chain_id, getattr(self.source, "genesis_hash", None))
        return self.height

    @property
    def lag(self) -> int:
        """Blocks committed (as last seen) but not yet indexed."""
        return max(0, self.head - (self.height or 0))

    def step(self) -> int:
        """Index at most one batch; returns how many blocks it indexed (0: caught up)."""
        height = self.start() if self.height is None else self.height
        self.head = self.source.head()
        first = max(height + 1, self.source.base() or 1)
        if first > self.head:
            return 0
        stop = min(self.head, first + self.batch_blocks - 1)
        self.height = self.sink.write(self.source.fetch(first, stop))
        if self.on_batch is not None:
            self.on_batch(self.height, self.head)
        return stop - first + 1

    def catch_up(self, until: int | None = None, stop: threading.Event | None = None) -> int:
        """Index until the head (or ``until``); returns the indexed height."""
        while not (stop is not None and stop.is_set()):
            if until is not None and (self.height or 0) >= until:
                break
            if self.step() == 0:
                break
        return self.height or 0

    def follow(self, stop: threading.Event, wake: threading.Event | None = None, idle_s: float = REMOTE_POLL_S,
               until: int | None = None) -> int:
        """Catch up, then keep up until ``stop`` is set (or ``until`` is reached); failed batches are retried."""
        retry = RETRY_FIRST_S
        while not stop.is_set():
            try:
                self.catch_up(until, stop)
                retry = RETRY_FIRST_S
            except (IndexerError, ChainError, OSError) as exc:
                log.warning("indexer batch failed; retrying", extra={"error": str(exc), "retry_s": retry,
                                                                     "height": self.height})
                if stop.wait(retry):
                    break
                retry = min(retry * 2, RETRY_MAX_S)
                continue
            except Exception as exc:  # a database driver's own error (sqlite3, psycopg): retried the same way
                log.warning("indexer database error; retrying", extra={"error": repr(exc), "retry_s": retry})
                if stop.wait(retry):
                    break
                retry = min(retry * 2, RETRY_MAX_S)
                continue
            if until is not None and (self.height or 0) >= until:
                break
            if wake is not None:
                wake.wait(idle_s)
                wake.clear()
            else:
                stop.wait(idle_s)
        return self.height or 0


class IndexerThread:
    """The in-node indexer: a daemon thread that catches up after each commit."""

    def __init__(self, indexer: Indexer) -> None:
        self.indexer = indexer
        self._stop, self._wake = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="shopchain-indexer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self, block: Block | None = None, receipts: Sequence[Receipt] | None = None) -> None:
        """A block was committed: hand it over (when the source takes it) and wake the thread (cheap)."""
        offer = getattr(self.indexer.source, "offer", None)
        if block is not None and receipts is not None and offer is not None:
            offer(block, receipts)
        self._wake.set()

    def _run(self) -> None:
        retry = RETRY_FIRST_S
        while not self._stop.is_set():
            try:
                self.indexer.start()
                break
            except Exception as exc:
                log.error("indexer cannot open its database; retrying", extra={"error": str(exc), "retry_s": retry})
                if self._stop.wait(retry):
                    return
                retry = min(retry * 2, RETRY_MAX_S)
        self.indexer.follow(self._stop, self._wake, IDLE_CHECK_S)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop after the batch in flight (its transaction commits or rolls back whole) and close the sink."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self.indexer.sink.close()
