"""Proposal previews: backups execute the next block while the primary does.

How it works: execution depends only on the committed state, the block's height and
timestamp and its transactions in order (``node.core.executor``). So before the primary
executes a block it is about to propose, it broadcasts a preview of exactly those
inputs: view, height, parent hash, timestamp and the transaction ids. A backup whose
head is that parent and whose mempool holds every listed transaction executes them at
once and keeps the outcome under (height, timestamp, transaction root). When the
PRE-PREPARE arrives, validation finds the outcome ready instead of executing then.

Without previews the primary executes while the backups wait for its PRE-PREPARE, and
then the backups execute while the primary waits for their votes: on a shared machine
(a devnet) half the cores idle through the first phase, and on separate machines the
two executions add up in every height's latency. With previews they overlap.

A preview is only a hint. The PRE-PREPARE is still checked in full and its roots must
equal the outcome's; an outcome whose inputs differ from the block's cannot be found
under the block's key (the transaction root commits to the transactions' bytes in order,
co-signatures included, so a backup holding another copy of a listed id simply misses). A backup
takes previews only from the primary of its current view, for the height above its
own head, at most ``MAX_PREVIEWS_PER_HEIGHT`` per height, so a faulty primary can make
it execute a few blocks' worth of work per height and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import encoding
from ledger.errors import DecodeError
from ledger.types import HASH_BYTES

#: First field of an encoded preview, so no other message decodes as one.
PREVIEW_TAG = "preview"
#: Most transaction ids one preview may list (the largest max_block_txs a config allows).
MAX_PREVIEW_TXS = 10_000
#: Previews a backup executes for one height; later ones are ignored.
MAX_PREVIEWS_PER_HEIGHT = 2
#: How long the primary lets its event loop write the preview before it starts executing
#: (executing blocks the loop, and the preview must be on the wire first).
PREVIEW_LEAD_S = 0.001


@dataclass(frozen=True)
class Preview:
    view: int
    height: int
    prev_hash: bytes
    timestamp_ms: int
    tx_ids: tuple[bytes, ...]

    def encode(self) -> bytes:
        return encoding.encode([PREVIEW_TAG, self.view, self.height, self.prev_hash, self.timestamp_ms,
                                list(self.tx_ids)])

    @classmethod
    def decode(cls, data: bytes) -> "Preview":
        """The preview in ``data``; DecodeError says what was expected and what was found."""
        fields = encoding.decode(data)
        if not isinstance(fields, list) or len(fields) != 6 or fields[0] != PREVIEW_TAG:
            raise DecodeError(f"expected a preview [{PREVIEW_TAG!r}, view, height, prev_hash, timestamp_ms, tx_ids], "
                              f"found {type(fields).__name__} of {len(fields) if isinstance(fields, list) else 0} items")
        _, view, height, prev_hash, timestamp_ms, tx_ids = fields
        for name, value in (("view", view), ("height", height), ("timestamp_ms", timestamp_ms)):
            if type(value) is not int or value < 0:
                raise DecodeError(f"preview {name}: expected a non-negative integer, found {value!r:.40}")
        if type(prev_hash) is not bytes or len(prev_hash) != HASH_BYTES:
            raise DecodeError(f"preview prev_hash: expected {HASH_BYTES} bytes, found {prev_hash!r:.40}")
        if not isinstance(tx_ids, list) or len(tx_ids) > MAX_PREVIEW_TXS:
            raise DecodeError(f"preview tx_ids: expected a list of at most {MAX_PREVIEW_TXS} ids, "
                              f"found {len(tx_ids) if isinstance(tx_ids, list) else type(tx_ids).__name__}")
        if any(type(t) is not bytes or len(t) != HASH_BYTES for t in tx_ids):
            raise DecodeError(f"preview tx_ids: expected {HASH_BYTES}-byte ids")
        return cls(view, height, prev_hash, timestamp_ms, tuple(tx_ids))
