"""Block pruning: the oldest blocks of a store deleted in bounded, atomic batches that move its base.

How it works: ``prune_batch`` (called through ``BlockStore.prune_to``) takes the oldest
held heights, at most ``PRUNE_BATCH_BLOCKS`` of them and stopping once the batch holds
``PRUNE_BATCH_KEYS`` deletions, and builds ONE batch that deletes, for each, the block,
its header index entry, certificate, receipts, hash index entry and the tx index
entries its receipts name, and that writes the new ``BASE_KEY`` (the oldest block held)
and ``PRUNED_KEY`` (the base was moved by pruning, so reads below it say "pruned", not
"state-synced"). LevelDB applies a batch all-or-nothing, so ``kill -9`` mid-prune leaves
the base where the last whole batch put it, with nothing torn on either side of it.

The header and certificate of each validator-set change among the pruned heights are
kept under ``SET_PROOF``, exactly as a state sync keeps them below its base, so
``get_set_proof``, state-sync offers and ``node verify`` still prove every set from
genesis: a pruned store is read, checked and served like a state-synced one.

The compact header index is pruned too. Keeping it would cost ~300 bytes a block
forever, and it is the one thing the open check walks in full, so every open would
grow with the chain's age; without certificates or state, an old header proves nothing
a client asks for that the kept set proofs do not. State roots (``S<height>``, 41 bytes
a block) and state are the state layer's (state pruning) and are left alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ledger import encoding
from ledger.errors import DecodeError, StorageError
from ledger.storage import schema
from ledger.storage.blockstore import BlockStore, decode_header
from ledger.types import ZERO_HASH

#: Most blocks one prune batch deletes: a batch of about 5 + (the block's transactions)
#: deletions each, small enough that the commit after it never waits long.
PRUNE_BATCH_BLOCKS = 64
#: A prune batch stops taking blocks once it holds this many deletions (64 full blocks of
#: thousands of transactions would otherwise make one batch of a hundred thousand keys).
PRUNE_BATCH_KEYS = 20_000
# Positions in BlockHeader.to_list() of the set that certifies the block and of the next one.
_H_VSET, _H_NEXT_VSET = 10, 12


def prune_batch(store: BlockStore, retain_height: int, set_changes: Iterable[int] = (),
                max_blocks: int | None = None, sync: bool = False) -> int:
    """Write one prune batch (see the module docstring) and return the new base; call again until
    it is ``retain_height``. ``set_changes``: heights whose header names the next height's new
    validator set (the caller's schedule; a header naming a different next set is kept anyway).
    ``max_blocks`` defaults to ``PRUNE_BATCH_BLOCKS``; ``sync`` is off by default, as a prune lost
    to a power cut is redone by the next one. Use ``BlockStore.prune_to``, which keeps its cached
    base in step."""
    max_blocks = PRUNE_BATCH_BLOCKS if max_blocks is None else max_blocks
    if max_blocks < 1:
        raise StorageError(f"prune batch: expected at least 1 block, found {max_blocks}")
    head, base = store.height, store.base
    if retain_height > head:
        raise StorageError(f"cannot prune to height {retain_height}: the head is {head} and the head block "
                           f"is always kept")
    first = max(base, 1)
    stop = min(retain_height, first + max_blocks)
    if stop <= first:
        return base
    keep = set(set_changes)
    batch: list[tuple[bytes, bytes | None]] = []
    height = first
    while height < stop and len(batch) < PRUNE_BATCH_KEYS:
        batch += _prune_ops(store, height, height in keep)
        height += 1
    stop = height
    batch += [(schema.BASE_KEY, schema.encode_height(stop)), (schema.PRUNED_KEY, schema.encode_height(stop))]
    store.kv.write(batch, sync=sync)
    return stop

def _prune_ops(store: BlockStore, height: int, set_change: bool) -> list[tuple[bytes, bytes | None]]:
    """The deletions (and the set proof kept, if any) that take block ``height`` out of the store."""
    header = store._indexed_header(height)
    if header is None:
        header, fields = store._header_from_block(height)
    else:
        try:
            fields = decode_header(header)
        except DecodeError as exc:
            raise store._fail(f"stored header {height} does not decode: {exc}") from None
    ops: list[tuple[bytes, bytes | None]] = [
        (schema.block_key(height), None), (schema.header_key(height), None), (schema.cert_key(height), None),
        (schema.receipts_key(height), None), (schema.block_hash_key(hashlib.sha256(header).digest()), None)]
    for tx_id in _receipt_tx_ids(store, height):
        location = store.get_tx_location(tx_id)
        if location is not None and location[0] == height:  # never an entry a later block owns
            ops.append((schema.tx_index_key(tx_id), None))
    if set_change or fields[_H_NEXT_VSET] not in (fields[_H_VSET], ZERO_HASH):
        cert = store._get(schema.cert_key(height))
        if cert is None:
            raise store._fail(f"the certificate of block {height}, a validator-set change kept as a set proof, "
                             f"is missing")
        store.get_certificate(height)  # checks it is for this block before it is kept
        ops.append((schema.set_proof_key(height), encoding.encode([header, cert])))
    return ops

def _receipt_tx_ids(store: BlockStore, height: int) -> list[bytes]:
    """The transaction ids of block ``height``, from its receipts (cheaper than decoding the block)."""
    raw = store._get(schema.receipts_key(height))
    if raw is None:
        raise store._fail(f"the receipts of block {height} are missing, so its tx index entries cannot be found")
    items = store._decode(raw, f"receipts {height}", encoding.decode)
    if type(items) is not list or not all(type(i) is list and len(i) > 1 and type(i[1]) is bytes for i in items):
        raise store._fail(f"stored receipts {height} are malformed: expected a list of receipts")
    return [item[1] for item in items]
