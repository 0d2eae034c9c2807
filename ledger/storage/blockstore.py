"""The block store: committed blocks, certificates, receipts, indexes and head.

How it works: ``commit_block`` turns one committed block into ONE batch of key
writes (block, its certificate, its receipts, the state write-set, the tx index, the
hash index, the state root of that height and the new head pointer) and hands it to
the KVStore as a single atomic, synced write. LevelDB applies a batch all-or-nothing
(its write-ahead log record is checksummed and replayed whole or not at all), so after
``kill -9`` at any instant the head block is either fully present with everything it
needs or absent entirely.

Pruning (``prune_to``, ledger/storage/pruning.py, driven by ``[storage] retain_blocks``)
moves the base up in atomic batches, keeping the set proofs below it, so a pruned store
is read, checked and served exactly like a state-synced one.

Each commit also writes the block's header a second time, under ``K<height>``: a
compact header index of a few hundred bytes per block, so that walking the chain
never has to read block bodies.

Nothing is served that the store cannot vouch for. Every read checks what it returns
against what the commit recorded beside it, on the stored bytes before decoding: a
block's header bytes must equal the header index entry of its height (for a store
not yet indexed: hash to a hash-index entry naming that height), its transaction
bytes must hash to the header's tx root and its carried certificate to the
last-commit hash; a certificate must be for the block indexed at its height;
receipts must hash to that header's receipts root; a transaction or receipt found
through the tx index must carry the id it was looked up by. Under that, the LevelDB
backend verifies the CRC of every table block it reads from disk
(``LEVELDB_VERIFY_CHECKSUMS``), which catches a byte flipped on disk before any
decoding; the checks here also catch a value rewritten through the API, which CRCs
cannot. A failed check raises CorruptionError naming the key, the height and the
recovery steps (``CORRUPTION_RECOVERY``), and tells ``on_corruption`` first so a
running node halts instead of answering from a store it cannot trust.

``check_integrity`` runs at open. It walks the header index from 1 (a state-synced
store: from its base, ``BASE_KEY``, the oldest block it holds) to the head with
one iterator (and the state roots with a second, in step), decoding only headers:
every height is present, every header's hash is in the hash index at its height,
every ``prev_hash`` is the previous header's hash, and the state root recorded for
every height is its header's. The newest ``INTEGRITY_CHECK_DEPTH`` blocks are read
whole (the read checks above, plus certificate and receipts present). Older block
bodies are not read at open; they are checked whenever they are read, and in full
by ``shopchain node verify``. Measured by ``python -m bench.storage`` on the shared
2-core development VM: 0.6 s for 100,000 blocks when the machine is quiet, 1.6 s
under the other engineers' load (a raw plyvel iteration of the same keys: 0.1 to
0.4 s), 6 to 16 us a block whatever the blocks' size, since bodies are not read (see
docs/operator-guide.md). A store written before the header index is indexed by its
first open, which reads and checks every block once (1.9 to 6.6 s for those 100,000
blocks of 4 transactions).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import msgpack

from ledger import encoding
from ledger.errors import CorruptionError, DecodeError, StorageError
from ledger.storage import schema
from ledger.storage.kv import CORRUPTION_RECOVERY, KVStore
from ledger.merkle import merkle_root
from ledger.types import (
    HEADER_FIELD_COUNT,
    MAX_BLOCK_TXS,
    TAG_BLOCK,
    TAG_HEADER,
    ZERO_HASH,
    Block,
    CommitCertificate,
    Receipt,
    SignedTx,
    compute_receipts_root,
)

#: How many of the newest blocks ``check_integrity`` also reads whole (certificate,
#: receipts, transactions) at every open; the header chain is always walked in full.
INTEGRITY_CHECK_DEPTH = 64
#: Header-index entries written per batch when an open builds the index for an older store.
HEADER_BACKFILL_BATCH = 10_000
#: Fields of an encoded block (tag, header, txs, last commit) and of its header.
BLOCK_FIELDS = 4
HEADER_FIELDS = HEADER_FIELD_COUNT
# Positions in BlockHeader.to_list().
_H_HEIGHT, _H_PREV_HASH, _H_TX_ROOT, _H_RECEIPTS_ROOT, _H_STATE_ROOT, _H_LAST_COMMIT_HASH = 2, 3, 7, 8, 9, 11
_NIL = msgpack.packb(None)

_TX_LOCATION = struct.Struct(">QI")

StateOps = Iterable[tuple[bytes, bytes | None]]


class BlockStore:
    """Reads and atomic commits of blocks over any KVStore."""

    def __init__(self, kv: KVStore) -> None:
        self.kv = kv
        self._head: int | None = None
        self._base: int | None = None
        self._head_cache: Block | None = None
        #: Called with every CorruptionError a read is about to raise (a node halts on it).
        self.on_corruption: Callable[[CorruptionError], None] | None = None

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

    @property
    def base(self) -> int:
        """The oldest height held: 0 from genesis, else the state-sync snapshot height (nothing below it)."""
        if self._base is None:
            raw = self.kv.get(schema.BASE_KEY)
            self._base = 0 if raw is None else schema.decode_height(raw)
        return self._base

    def pruned(self) -> bool:
        """Whether block pruning moved the base (else a base above 0 is a state sync's)."""
        return self.kv.get(schema.PRUNED_KEY) is not None

    def below_base(self, height: int) -> str | None:
        """Why ``height`` cannot be read here (it is below the base), or None if it is held."""
        base = self.base
        if base and height < base:
            if self.pruned():
                why = f"it prunes old blocks ([storage] retain_blocks) and holds blocks and receipts from height {base} on"
            else:
                why = f"it joined by state sync at height {base} and holds blocks, receipts and state from height {base} on"
            return (f"height {height} is below this node's base: {why} only (the oldest height held is {base}); "
                    f"ask a node that keeps the chain from genesis (an archive node, retain_blocks = 0)")
        return None

    @staticmethod
    def base_batch(genesis_hash: bytes, block: Block, cert: CommitCertificate, receipts: list[Receipt],
                   set_proofs: Iterable[tuple[int, bytes, bytes]]) -> list[tuple[bytes, bytes | None]]:
        """The writes that make a store holding the complete state of ``block`` start there (state sync):
        the block as base and head, plus (height, header, certificate) of each set change below it."""
        batch = BlockStore.block_batch(block, cert, receipts)
        batch += [(schema.GENESIS_HASH_KEY, genesis_hash),
                  (schema.SCHEMA_VERSION_KEY, encoding.encode(schema.SCHEMA_VERSION)),
                  (schema.BASE_KEY, schema.encode_height(block.height))]
        for height, header, cert_bytes in set_proofs:
            if height < block.height:
                batch.append((schema.set_proof_key(height), encoding.encode([header, cert_bytes])))
        return batch

    def get_set_proof(self, height: int) -> tuple[bytes, bytes] | None:
        """(header, certificate) bytes of block ``height`` proving a set change: held, or kept below the base."""
        if height >= max(self.base, 1):
            header, cert = self._indexed_header(height), self._get(schema.cert_key(height))
            if header is None or cert is None:
                return None
            self.get_certificate(height)  # checks it is for the header held at that height
            return header, cert
        raw = self._get(schema.set_proof_key(height))
        if raw is None:
            return None
        pair = self._decode(raw, f"set proof {height}", encoding.decode)
        if type(pair) is not list or len(pair) != 2 or not all(type(x) is bytes for x in pair):
            raise self._fail(f"the set proof stored for height {height} is not a [header, certificate] pair")
        return pair[0], pair[1]

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
            (schema.header_key(height), block.header.encode()),
            (schema.cert_key(height), cert.encode()),
            (schema.receipts_key(height), encoding.encode([r.to_list() for r in receipts])),
            (schema.block_hash_key(block.block_hash), hkey),
            (schema.state_root_key(height), block.header.state_root),
            (schema.HEAD_KEY, hkey),
        ]
        for index, tx in enumerate(block.txs):
            batch.append((schema.tx_index_key(tx.tx_id), _TX_LOCATION.pack(height, index)))
        return batch

    # --- pruning ----------------------------------------------------------------------

    def prune_to(self, retain_height: int, set_changes: Iterable[int] = (),
                 max_blocks: int | None = None, sync: bool = False) -> int:
        """One atomic, bounded batch deleting the oldest blocks towards ``retain_height``; returns the
        new base (``ledger.storage.pruning.prune_to``)."""
        from ledger.storage.pruning import prune_batch

        self._base = prune_batch(self, retain_height, set_changes, max_blocks, sync)
        return self._base

    # --- reads: every value is checked before it is returned -------------------------

    def _report(self, exc: CorruptionError) -> CorruptionError:
        if self.on_corruption is not None:
            self.on_corruption(exc)
        return exc

    def _fail(self, problem: str) -> CorruptionError:
        """A CorruptionError for ``problem``, already reported to ``on_corruption``; raise it."""
        return self._report(CorruptionError(problem, CORRUPTION_RECOVERY))

    def _get(self, key: bytes) -> bytes | None:
        try:
            return self.kv.get(key)
        except CorruptionError as exc:  # the backend's own checks (LevelDB CRCs) failed
            raise self._report(exc) from None

    def _decode(self, raw: bytes, what: str, decoder: Callable[[bytes], Any]) -> Any:
        try:
            return decoder(raw)
        except DecodeError as exc:
            raise self._fail(f"stored {what} does not decode: {exc}") from None

    def _check_indexed(self, block_hash: bytes, height: int, key: bytes) -> None:
        """The hash index must map ``block_hash`` to ``height``: the commit wrote exactly that."""
        index = self._get(schema.block_hash_key(block_hash))
        if index != schema.encode_height(height):
            found = "nothing" if index is None else f"height {schema.decode_height(index)}"
            raise self._fail(
                f"block {height} (key {key.hex()}) has a header hashing to {block_hash.hex()}, which the hash index "
                f"maps to {found}: the stored block is not the block committed at height {height}")

    def _indexed_header(self, height: int) -> bytes | None:
        """The header index entry of ``height`` (the header bytes the commit wrote), if present."""
        return self._get(schema.header_key(height))

    def _verified_header(self, height: int) -> tuple[bytes, list] | None:
        """Block hash and header fields of the block committed at ``height``, checked against the hash index.

        Read from the compact header index; a store written before it existed falls
        back to the block itself (its first open builds the index).
        """
        if self._head_cache is not None and self._head_cache.height == height:
            return self._head_cache.block_hash, self._head_cache.header.to_list()
        key = schema.header_key(height)
        header_bytes = self._get(key)
        try:
            if header_bytes is None:
                key = schema.block_key(height)
                raw = self._get(key)
                if raw is None:
                    return None
                header_bytes, fields = split_header(raw)
            else:
                fields = decode_header(header_bytes)
        except DecodeError as exc:
            raise self._fail(f"stored header {height} (key {key.hex()}) does not decode: {exc}") from None
        if fields[_H_HEIGHT] != height:
            raise self._fail(f"the header stored at height {height} says it is height {fields[_H_HEIGHT]}")
        block_hash = hashlib.sha256(header_bytes).digest()
        self._check_indexed(block_hash, height, key)
        return block_hash, fields

    def get_block(self, height: int) -> Block | None:
        """The block at ``height`` (None if absent); CorruptionError if it is not the committed one.

        The checks run on the stored bytes before decoding (header bytes against the
        header index, transaction and certificate slices against the header's roots),
        which costs hashing only; re-encoding the decoded block to check it would cost
        more than decoding it.
        """
        if self._head_cache is not None and self._head_cache.height == height:
            return self._head_cache
        raw = self._checked_block_bytes(height)
        if raw is None:
            return None
        key = schema.block_key(height)
        block: Block = self._decode(raw, f"block {height} (key {key.hex()})", Block.decode)
        if block.last_commit is not None and block.last_commit.height != height - 1:
            raise self._fail(f"stored block {height} carries a certificate for height {block.last_commit.height}")
        return block

    def _checked_block_bytes(self, height: int) -> bytes | None:
        """The stored bytes of block ``height``, checked against the header index and its own roots."""
        key = schema.block_key(height)
        raw = self._get(key)
        if raw is None:
            return None
        header_bytes, fields = self._check_block_bytes(height, key, raw)
        indexed = self._indexed_header(height)
        if indexed is None:  # a store from before the header index, not yet opened by check_integrity
            self._check_indexed(hashlib.sha256(header_bytes).digest(), height, key)
        elif indexed != header_bytes:
            raise self._fail(f"block {height} (key {key.hex()}) has a header that differs from the one the header "
                             f"index recorded at its commit: the stored block is not the block committed there")
        return raw

    def get_stored_pair(self, height: int) -> tuple[bytes, bytes] | None:
        """The stored bytes of block ``height`` and of its certificate, checked as ``get_block`` and
        ``get_certificate`` check them, for catch-up to serve without re-encoding.

        Serving bytes as they are must not mean serving what the store cannot vouch
        for: a damaged block raises CorruptionError here exactly as it would on a read.
        """
        block = self._checked_block_bytes(height)
        cert_raw = self._get(schema.cert_key(height))
        if block is None or cert_raw is None:
            return None
        self.get_certificate(height)  # decodes and checks it is for this block
        return block, cert_raw

    def get_block_by_hash(self, block_hash: bytes) -> Block | None:
        raw = self._get(schema.block_hash_key(block_hash))
        if raw is None:
            return None
        height = schema.decode_height(raw)
        block = self.get_block(height)
        if block is None or block.block_hash != block_hash:
            raise self._fail(f"the hash index maps block {block_hash.hex()} to height {height}, "
                             f"which holds {'nothing' if block is None else 'another block'}")
        return block

    def get_certificate(self, height: int) -> CommitCertificate | None:
        """The commit certificate of block ``height``; CorruptionError unless it is for that block."""
        key = schema.cert_key(height)
        raw = self._get(key)
        if raw is None:
            return None
        cert: CommitCertificate = self._decode(raw, f"certificate {height} (key {key.hex()})", CommitCertificate.decode)
        header = self._verified_header(height)
        if header is None:
            raise self._fail(f"certificate {height} is stored but block {height} is missing")
        if cert.height != height or cert.block_hash != header[0]:
            raise self._fail(f"the certificate stored at height {height} is for another block (key {key.hex()}: "
                             f"it certifies {cert.block_hash.hex()[:16]} at height {cert.height}, the block stored "
                             f"there is {header[0].hex()[:16]})")
        return cert

    def get_receipts(self, height: int) -> list[Receipt] | None:
        """The receipts of block ``height``; CorruptionError unless they hash to its receipts root."""
        key = schema.receipts_key(height)
        raw = self._get(key)
        if raw is None:
            return None
        items = self._decode(raw, f"receipts {height} (key {key.hex()})", encoding.decode)
        try:
            receipts = [Receipt.from_list(item) for item in items]
        except (DecodeError, TypeError) as exc:
            raise self._fail(f"stored receipts {height} (key {key.hex()}) are malformed: {exc}") from None
        header = self._verified_header(height)
        if header is None:
            raise self._fail(f"receipts {height} are stored but block {height} is missing")
        if compute_receipts_root(receipts) != header[1][_H_RECEIPTS_ROOT]:
            raise self._fail(f"the receipts stored at height {height} (key {key.hex()}) do not hash to "
                             f"the receipts root of block {height}")
        return receipts

    def get_state_root(self, height: int) -> bytes | None:
        return self._get(schema.state_root_key(height))

    def get_tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        raw = self._get(schema.tx_index_key(tx_id))
        if raw is None:
            return None
        if len(raw) != _TX_LOCATION.size:
            raise self._fail(f"the tx index entry of {tx_id.hex()} is {len(raw)} bytes, expected {_TX_LOCATION.size}")
        return _TX_LOCATION.unpack(raw)

    def _held_tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        """The tx index entry of ``tx_id`` if its block is still held (pruning deletes entries with
        their blocks; one left over below the base is not corruption, just pruned)."""
        loc = self.get_tx_location(tx_id)
        if loc is None or (self.base and loc[0] < self.base):
            return None
        return loc

    def get_tx(self, tx_id: bytes) -> tuple[SignedTx, int, int] | None:
        """The transaction with its (height, index), if committed and held."""
        loc = self._held_tx_location(tx_id)
        if loc is None:
            return None
        block = self.get_block(loc[0])
        if block is None or loc[1] >= len(block.txs):
            raise self._fail(f"tx index points at block {loc[0]} position {loc[1]}, which is missing")
        tx = block.txs[loc[1]]
        if tx.tx_id != tx_id:
            raise self._fail(f"the tx index maps {tx_id.hex()} to block {loc[0]} position {loc[1]}, "
                             f"which holds transaction {tx.tx_id.hex()}")
        return tx, loc[0], loc[1]

    def get_receipt(self, tx_id: bytes) -> tuple[Receipt, int, int] | None:
        loc = self._held_tx_location(tx_id)
        if loc is None:
            return None
        receipts = self.get_receipts(loc[0])
        if receipts is None or loc[1] >= len(receipts):
            raise self._fail(f"tx index points at receipts of block {loc[0]} position {loc[1]}, which are missing")
        receipt = receipts[loc[1]]
        if receipt.tx_id != tx_id:
            raise self._fail(f"the tx index maps {tx_id.hex()} to receipt {loc[1]} of block {loc[0]}, "
                             f"which is the receipt of {receipt.tx_id.hex()}")
        return receipt, loc[0], loc[1]

    def iter_blocks(self, start: int, stop: int) -> Iterator[Block]:
        """Blocks start..stop-1 in height order (stops early at a gap)."""
        for height in range(start, stop):
            block = self.get_block(height)
            if block is None:
                return
            yield block

    # --- integrity ----------------------------------------------------------------

    def check_integrity(self, depth: int = INTEGRITY_CHECK_DEPTH) -> None:
        """Raise CorruptionError if the stored chain contradicts itself (run at every open)."""
        if self.genesis_hash() is None:
            if self._get(schema.HEAD_KEY) is not None:
                raise self._fail("the head pointer exists but the genesis hash is missing")
            return
        head, base = self.height, self.base
        if base == 0 and self.get_state_root(0) is None:
            raise self._fail("the genesis state root is missing")
        if base > head:
            raise self._fail(f"the base height {base} is above the head {head}")
        self.check_header_chain(head, base)
        for height in range(head, max(base - 1, 0, head - depth), -1):
            block = self.get_block(height)  # checks the hash index and the tx root
            if block is None:
                raise self._fail(f"block {height} is missing (head is {head})")
            if self._get(schema.cert_key(height)) is None:
                raise self._fail(f"the certificate of block {height} is missing")
            self.get_certificate(height)  # checks it is for this block
            if self._get(schema.receipts_key(height)) is None:
                raise self._fail(f"the receipts of block {height} are missing")
        if self._get(schema.block_key(head + 1)) is not None:
            raise self._fail(f"block {head + 1} is present above the head {head}")

    def check_header_chain(self, head: int, base: int = 0) -> None:
        """Walk headers max(base, 1)..head in key order with one iterator over the compact header index.

        Checks that each height is present, each header hashes to a hash-index entry
        for its height, each ``prev_hash`` is the previous header's hash, and the state
        root recorded for each height is its header's (a second iterator, in step).
        Heights missing from the header index (a store written before it existed) are
        read from the block itself, fully checked (tx root and last-commit hash
        too), and their index entries written, in batches of ``HEADER_BACKFILL_BATCH``.
        """
        first = max(base, 1)
        roots = iter(self._iterate(schema.STATE_ROOT, schema.state_root_key(first)))
        headers = iter(self._iterate(schema.HEADER, schema.header_key(first), schema.header_key(head + 1)))
        backfill: list[tuple[bytes, bytes | None]] = []
        pending = next(headers, None)
        prev_hash: bytes | None = None
        for height in range(first, head + 1):
            if pending is not None and pending[0] == schema.header_key(height):
                key, header_bytes = pending
                pending = next(headers, None)
                try:
                    fields = decode_header(header_bytes)
                except DecodeError as exc:
                    raise self._fail(f"stored header {height} (key {key.hex()}) does not decode: {exc}") from None
            else:
                key = schema.block_key(height)
                header_bytes, fields = self._header_from_block(height)
                backfill.append((schema.header_key(height), header_bytes))
            if fields[_H_HEIGHT] != height:
                raise self._fail(f"the header stored at height {height} says it is height {fields[_H_HEIGHT]}")
            block_hash = hashlib.sha256(header_bytes).digest()
            self._check_indexed(block_hash, height, key)
            if prev_hash is not None and fields[_H_PREV_HASH] != prev_hash:
                raise self._fail(f"block {height} does not link to block {height - 1} (prev_hash mismatch)")
            root_key, root = next(roots, (None, None))
            if root_key != schema.state_root_key(height) or root != fields[_H_STATE_ROOT]:
                raise self._fail(f"the state root recorded for height {height} differs from its header")
            prev_hash = block_hash
            if len(backfill) >= HEADER_BACKFILL_BATCH:
                self.kv.write(backfill, sync=True)
                backfill = []
        if pending is not None:
            raise self._fail(f"a header (key {pending[0].hex()}) is stored above the head {head}")
        if backfill:
            self.kv.write(backfill, sync=True)

    def _header_from_block(self, height: int) -> tuple[bytes, list]:
        """Header bytes and fields of stored block ``height``, its body checked against them."""
        key = schema.block_key(height)
        raw = self._get(key)
        if raw is None:
            raise self._fail(f"block {height} is missing (head is {self.height})")
        return self._check_block_bytes(height, key, raw)

    def _check_block_bytes(self, height: int, key: bytes, raw: bytes) -> tuple[bytes, list]:
        """Header bytes and fields of an encoded block whose height, transactions and certificate match its header."""
        try:
            header_bytes, fields, txs, last_commit = scan_block(raw)
        except DecodeError as exc:
            raise self._fail(f"stored block {height} (key {key.hex()}) does not decode: {exc}") from None
        if fields[_H_HEIGHT] != height:
            raise self._fail(f"the block stored at height {height} says it is height {fields[_H_HEIGHT]}")
        if merkle_root(txs) != fields[_H_TX_ROOT]:
            raise self._fail(f"stored block {height} (key {key.hex()}): its transactions do not hash to its tx_root")
        if compute_last_commit_hash(last_commit) != fields[_H_LAST_COMMIT_HASH]:
            raise self._fail(f"stored block {height} (key {key.hex()}): its carried certificate does not hash "
                             f"to its last_commit_hash")
        return header_bytes, fields

    def _iterate(self, prefix: bytes, start: bytes, stop: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        try:
            yield from self.kv.iterate(prefix=prefix, start=start, stop=stop)
        except CorruptionError as exc:
            raise self._report(exc) from None


def decode_header(header_bytes: bytes) -> list:
    """The fields of an encoded header (as stored in the header index); DecodeError if malformed."""
    try:
        fields = msgpack.unpackb(header_bytes, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises assorted types on damaged bytes
        raise DecodeError(f"block header is not valid msgpack ({type(exc).__name__})") from None
    _check_header_fields(fields)
    return fields


def split_header(raw: bytes) -> tuple[bytes, list]:
    """The header bytes and header fields of an encoded block, without decoding its transactions."""
    unpacker = _block_unpacker(raw)
    return _unpack_header(unpacker, raw)


def scan_block(raw: bytes) -> tuple[bytes, list, list[bytes], bytes]:
    """Header bytes, header fields, each transaction's bytes and the last-commit bytes of an encoded block.

    The open check runs this for every block, so nothing is turned into objects but
    the header's fields: transactions and the certificate are skipped over by the C
    parser and returned as slices of ``raw``, which is what the header's tx root and
    last-commit hash commit to. Raises DecodeError when the bytes are not shaped
    like a block.
    """
    unpacker = _block_unpacker(raw)
    header_bytes, fields = _unpack_header(unpacker, raw)
    try:
        count = unpacker.read_array_header()
        if count > MAX_BLOCK_TXS:
            raise DecodeError(f"block txs: expected at most {MAX_BLOCK_TXS}, found {count}")
        txs = []
        start = unpacker.tell()
        for _ in range(count):
            unpacker.skip()
            end = unpacker.tell()
            txs.append(raw[start:end])
            start = end
        unpacker.skip()
        end = unpacker.tell()
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises assorted types on damaged bytes
        raise DecodeError(f"block body is not valid msgpack ({type(exc).__name__})") from None
    if end != len(raw):
        raise DecodeError(f"block has {len(raw) - end} bytes after its last field")
    return header_bytes, fields, txs, raw[start:end]


def compute_last_commit_hash(last_commit_bytes: bytes) -> bytes:
    """What ``header.last_commit_hash`` is for these encoded last-commit bytes (nil: no certificate)."""
    return ZERO_HASH if last_commit_bytes == _NIL else hashlib.sha256(last_commit_bytes).digest()


def _block_unpacker(raw: bytes) -> msgpack.Unpacker:
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=max(len(raw), 1))
    unpacker.feed(raw)
    return unpacker


def _unpack_header(unpacker: msgpack.Unpacker, raw: bytes) -> tuple[bytes, list]:
    try:
        if unpacker.read_array_header() != BLOCK_FIELDS or unpacker.unpack() != TAG_BLOCK:
            raise DecodeError(f"expected an array of {BLOCK_FIELDS} starting with {TAG_BLOCK!r}")
        start = unpacker.tell()
        fields = unpacker.unpack()
        end = unpacker.tell()
    except DecodeError:
        raise
    except Exception as exc:  # msgpack raises assorted types on damaged bytes
        raise DecodeError(f"block header is not valid msgpack ({type(exc).__name__})") from None
    _check_header_fields(fields)
    return raw[start:end], fields


def _check_header_fields(fields: object) -> None:
    if (type(fields) is not list or len(fields) != HEADER_FIELDS or fields[0] != TAG_HEADER
            or type(fields[_H_HEIGHT]) is not int
            or any(type(fields[i]) is not bytes for i in (_H_PREV_HASH, _H_TX_ROOT, _H_RECEIPTS_ROOT,
                                                          _H_STATE_ROOT, _H_LAST_COMMIT_HASH))):
        raise DecodeError(f"block header: expected [{TAG_HEADER!r}, ...] of {HEADER_FIELDS} fields")
