"""The block store: committed blocks, certificates, receipts, indexes and head.

How it works: ``commit_block`` turns one committed block into ONE batch of key
writes (block, its certificate, its receipts, the state write-set, the tx index, the
hash index, the state root of that height and the new head pointer) and hands it to
the KVStore as a single atomic, synced write. LevelDB applies a batch all-or-nothing
(its write-ahead log record is checksummed and replayed whole or not at all), so after
``kill -9`` at any instant the head block is either fully present with everything it
needs or absent entirely.

``check_integrity`` runs at open: the head pointer must name a block that is present
with its certificate, receipts and state root, the block's hash must match the hash
index, the last ``INTEGRITY_CHECK_DEPTH`` blocks must link by ``prev_hash`` and each
certificate must be for its block. A full re-verification of every block is
``shopchain node verify``. Any contradiction raises CorruptionError naming the
problem and the recovery command; the node refuses to start rather than serve wrong
data.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from ledger import encoding
from ledger.errors import CorruptionError, DecodeError, StorageError
from ledger.storage import schema
from ledger.storage.kv import KVStore
from ledger.types import Block, CommitCertificate, Receipt, SignedTx

#: How many of the newest blocks ``check_integrity`` re-links at every open.
INTEGRITY_CHECK_DEPTH = 64

_TX_LOCATION = struct.Struct(">QI")

StateOps = Iterable[tuple[bytes, bytes | None]]


class BlockStore:
    """Reads and atomic commits of blocks over any KVStore."""

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv
        self._head: int | None = None
        self._head_cache: Block | None = None

    # --- head and genesis ---------------------------------------------------------

    @property
    def height(self) -> int:
        """Height of the last committed block (0 = only genesis state)."""
        if self._head is None:
            raw = self.kv.get(schema.HEAD_KEY)
            self._head = 0 if raw is None else schema.decode_height(raw)
        return self._head

    def genesis_hash(self) -> bytes | None:
        return self.kv.get(schema.GENESIS_HASH_KEY)

    def init_genesis(self, genesis_hash: bytes, state_ops: StateOps, state_root: bytes) -> None:
        """Write the genesis state and its hash in one batch; refuse a different genesis."""
        existing = self.genesis_hash()
        if existing is not None:
            if existing != genesis_hash:
                raise StorageError(
                    f"this store belongs to genesis {existing.hex()[:16]}, not {genesis_hash.hex()[:16]}; "
                    f"use a fresh home or the matching genesis file"
                )
            return
        batch = list(state_ops)
        batch += [
            (schema.GENESIS_HASH_KEY, genesis_hash),
            (schema.SCHEMA_VERSION_KEY, encoding.encode(schema.SCHEMA_VERSION)),
            (schema.state_root_key(0), state_root),
            (schema.HEAD_KEY, schema.encode_height(0)),
        ]
        self.kv.write(batch, sync=True)
        self._head = 0

    # --- commit -------------------------------------------------------------------

    def commit_block(
        self,
        block: Block,
        cert: CommitCertificate,
        receipts: list[Receipt],
        state_ops: StateOps,
        extra_ops: StateOps = (),
        sync: bool = True,
    ) -> None:
        """Persist a committed block and everything derived from it in one (synced) batch."""
        height = block.height
        if height != self.height + 1:
            raise StorageError(f"commit of block {height} out of order: the store's head is {self.height}")
        if cert.height != height or cert.block_hash != block.block_hash:
            raise StorageError(f"certificate is for height {cert.height}, not for block {height} it is stored with")
        if len(receipts) != len(block.txs):
            raise StorageError(f"block {height} has {len(block.txs)} transactions but {len(receipts)} receipts")
        if self.genesis_hash() is None:
            raise StorageError("the store has no genesis; run `shopchain node init` first")
        batch = self.block_batch(block, cert, receipts)
        batch.extend(state_ops)
        batch.extend(extra_ops)
        self.kv.write(batch, sync=sync)
        self._head = height
        self._head_cache = block

    @staticmethod
    def block_batch(block: Block, cert: CommitCertificate, receipts: list[Receipt]) -> list[tuple[bytes, bytes | None]]:
        """The non-state writes of one committed block (also used by snapshot import)."""
        height = block.height
        hkey = schema.encode_height(height)
        batch: list[tuple[bytes, bytes | None]] = [
            (schema.block_key(height), block.encode()),
            (schema.cert_key(height), cert.encode()),
            (schema.receipts_key(height), encoding.encode([r.to_list() for r in receipts])),
            (schema.block_hash_key(block.block_hash), hkey),
            (schema.state_root_key(height), block.header.state_root),
            (schema.HEAD_KEY, hkey),
        ]
        for index, tx in enumerate(block.txs):
            batch.append((schema.tx_index_key(tx.tx_id), _TX_LOCATION.pack(height, index)))
        return batch

    # --- reads ----------------------------------------------------------------------

    def _decode(self, raw: bytes, what: str, decoder):  # type: ignore[no-untyped-def]
        try:
            return decoder(raw)
        except DecodeError as exc:
            raise CorruptionError(f"stored {what} does not decode: {exc}") from None

    def get_block(self, height: int) -> Block | None:
        if self._head_cache is not None and self._head_cache.height == height:
            return self._head_cache
        raw = self.kv.get(schema.block_key(height))
        return None if raw is None else self._decode(raw, f"block {height}", Block.decode)

    def get_block_by_hash(self, block_hash: bytes) -> Block | None:
        raw = self.kv.get(schema.block_hash_key(block_hash))
        return None if raw is None else self.get_block(schema.decode_height(raw))

    def get_certificate(self, height: int) -> CommitCertificate | None:
        raw = self.kv.get(schema.cert_key(height))
        return None if raw is None else self._decode(raw, f"certificate {height}", CommitCertificate.decode)

    def get_receipts(self, height: int) -> list[Receipt] | None:
        raw = self.kv.get(schema.receipts_key(height))
        if raw is None:
            return None
        items = self._decode(raw, f"receipts {height}", encoding.decode)
        try:
            return [Receipt.from_list(item) for item in items]
        except (DecodeError, TypeError) as exc:
            raise CorruptionError(f"stored receipts {height} are malformed: {exc}") from None

    def get_state_root(self, height: int) -> bytes | None:
        return self.kv.get(schema.state_root_key(height))

    def get_tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        raw = self.kv.get(schema.tx_index_key(tx_id))
        return None if raw is None else _TX_LOCATION.unpack(raw)

    def get_tx(self, tx_id: bytes) -> tuple[SignedTx, int, int] | None:
        """The transaction with its (height, index), if committed."""
        loc = self.get_tx_location(tx_id)
        if loc is None:
            return None
        block = self.get_block(loc[0])
        if block is None or loc[1] >= len(block.txs):
            raise CorruptionError(f"tx index points at block {loc[0]} position {loc[1]}, which is missing")
        return block.txs[loc[1]], loc[0], loc[1]

    def get_receipt(self, tx_id: bytes) -> tuple[Receipt, int, int] | None:
        loc = self.get_tx_location(tx_id)
        if loc is None:
            return None
        receipts = self.get_receipts(loc[0])
        if receipts is None or loc[1] >= len(receipts):
            raise CorruptionError(f"tx index points at receipts of block {loc[0]} position {loc[1]}, which are missing")
        return receipts[loc[1]], loc[0], loc[1]

    def iter_blocks(self, start: int, stop: int) -> Iterator[Block]:
        """Blocks start..stop-1 in height order (stops early at a gap)."""
        for height in range(start, stop):
            block = self.get_block(height)
            if block is None:
                return
            yield block

    # --- integrity ----------------------------------------------------------------

    def check_integrity(self, depth: int = INTEGRITY_CHECK_DEPTH) -> None:
        """Raise CorruptionError if the newest ``depth`` blocks contradict each other."""
        if self.genesis_hash() is None:
            if self.kv.get(schema.HEAD_KEY) is not None:
                raise CorruptionError("the head pointer exists but the genesis hash is missing")
            return
        head = self.height
        if self.get_state_root(0) is None:
            raise CorruptionError("the genesis state root is missing")
        newer: Block | None = None
        for height in range(head, max(0, head - depth), -1):
            block = self.get_block(height)
            if block is None:
                raise CorruptionError(f"block {height} is missing (head is {head})")
            if block.height != height:
                raise CorruptionError(f"the block stored at height {height} says it is height {block.height}")
            cert = self.get_certificate(height)
            if cert is None:
                raise CorruptionError(f"the certificate of block {height} is missing")
            if cert.block_hash != block.block_hash or cert.height != height:
                raise CorruptionError(f"the certificate stored at height {height} is for another block")
            if self.get_receipts(height) is None:
                raise CorruptionError(f"the receipts of block {height} are missing")
            if self.get_state_root(height) != block.header.state_root:
                raise CorruptionError(f"the state root recorded for height {height} differs from its header")
            index = self.kv.get(schema.block_hash_key(block.block_hash))
            if index is None or schema.decode_height(index) != height:
                raise CorruptionError(f"the hash index of block {height} is missing or wrong")
            if newer is not None and newer.header.prev_hash != block.block_hash:
                raise CorruptionError(f"block {height + 1} does not link to block {height} (prev_hash mismatch)")
            newer = block
        if self.kv.get(schema.block_key(head + 1)) is not None:
            raise CorruptionError(f"block {head + 1} is present above the head {head}")
