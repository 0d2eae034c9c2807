"""The LevelDB backend (plyvel): the only module that imports plyvel.

How it works: a thin adapter from the KVStore interface onto plyvel. Batches are
applied with ``write_batch(transaction=True, sync=...)`` so a batch is atomic and, when
synced, durable once ``write`` returns: after ``kill -9`` the batch is either fully in
the log or not at all. Opening fails with a StorageError that says what to do when
another process holds the lock or the files are damaged.

Every read (``get`` and iterators) asks LevelDB to verify the CRC32C of each table
block it loads from disk (``LEVELDB_VERIFY_CHECKSUMS``), and the store is opened with
``paranoid_checks`` (table footers and index blocks are verified when a table opens,
and a damaged table stops compaction instead of being silently dropped). Blocks
already in LevelDB's block cache were checked when they were loaded, so the CRC costs
only on a cache miss: measured by ``python -m bench.storage`` (random gets of block
keys with a cold block cache, data in the page cache) 1.9 us a get against 1.0 us
without on a quiet machine (5.0 against 1.1 under load), i.e. 1 to 4 us per table
block loaded; it adds about 15% to the open check and nothing to reads served from
the cache. Kept on for every read, state included:
a few microseconds on a miss is small next to serving a flipped byte. A CRC catches a
byte flipped on disk, not a wrong value written through the API; the block store
checks hashes for that.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import plyvel

from ledger.errors import CorruptionError, StorageError
from ledger.storage.kv import CORRUPTION_RECOVERY, MAX_KEY_BYTES, MAX_VALUE_BYTES, check_batch, prefix_end

#: LevelDB block cache per open store.
LEVELDB_CACHE_BYTES = 64 * 1024 * 1024
#: Bloom filter bits per key: a read of an absent key (and of a state node not in the
#: cache) then costs one table lookup instead of one per level.
LEVELDB_BLOOM_BITS = 10
#: Table block compression. None: most bytes written are SHA-256 hashes (trie nodes,
#: ids, signatures) that snappy cannot shrink, yet compressing and decompressing them
#: was ~7% of a validator's CPU under load. LevelDB records the codec per block, so a
#: store written with snappy stays readable.
LEVELDB_COMPRESSION = None
#: Memtable size before LevelDB flushes to a table file.
LEVELDB_WRITE_BUFFER_BYTES = 16 * 1024 * 1024
#: Verify the CRC32C of every table block read from disk (reads and iterators). Off,
#: a flipped byte inside a table file is returned as data.
LEVELDB_VERIFY_CHECKSUMS = True


class LevelDBKV:
    """A KVStore on a LevelDB directory."""

    def __init__(self, path: str, create: bool = True, verify_checksums: bool = LEVELDB_VERIFY_CHECKSUMS) -> None:
        self.path = path
        self.verify_checksums = verify_checksums
        if create:
            os.makedirs(path, exist_ok=True)
        try:
            self._db = plyvel.DB(
                path,
                create_if_missing=create,
                paranoid_checks=True,
                lru_cache_size=LEVELDB_CACHE_BYTES,
                write_buffer_size=LEVELDB_WRITE_BUFFER_BYTES,
                bloom_filter_bits=LEVELDB_BLOOM_BITS,
                compression=LEVELDB_COMPRESSION,
            )
        except plyvel.IOError as exc:
            raise StorageError(
                f"cannot open the store at {path}: {exc}. Is another shopchain process using this home? "
                f"Stop it first (shopchain node status / devnet down)."
            ) from None
        except plyvel.CorruptionError as exc:
            raise CorruptionError(f"LevelDB reports corruption in {path}: {exc}", CORRUPTION_RECOVERY) from None
        except plyvel.Error as exc:
            raise StorageError(f"cannot open the store at {path}: {exc}") from None

    def get(self, key: bytes) -> bytes | None:
        try:
            return self._db.get(key, verify_checksums=self.verify_checksums)
        except RuntimeError as exc:  # plyvel raises RuntimeError on a closed DB
            raise StorageError(f"store at {self.path} is closed: {exc}") from None
        except (plyvel.CorruptionError, plyvel.IOError) as exc:  # IOError: e.g. a truncated table file
            raise CorruptionError(f"LevelDB read of key {key.hex()[:80]} in {self.path} failed: {exc}",
                                  CORRUPTION_RECOVERY) from None

    def iterate(
        self, prefix: bytes = b"", start: bytes | None = None, stop: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        low = max(prefix, start) if start is not None else prefix
        high = prefix_end(prefix)
        if stop is not None:
            high = stop if high is None else min(high, stop)
        kwargs: dict = {"reverse": reverse, "verify_checksums": self.verify_checksums}
        if low:
            kwargs["start"] = low
        if high is not None:
            kwargs["stop"] = high
        try:
            yield from self._db.iterator(**kwargs)
        except (plyvel.CorruptionError, plyvel.IOError) as exc:
            raise CorruptionError(f"LevelDB iteration from key {low.hex()[:80]} in {self.path} failed: {exc}",
                                  CORRUPTION_RECOVERY) from None

    def write(self, batch: Iterable[tuple[bytes, bytes | None]], sync: bool = True) -> None:
        # Entries are checked as they are added: with transaction=True an exception inside
        # the block discards the whole batch, so a bad entry still cannot half-apply it, and
        # a block's 15,000 entries are walked once instead of twice (check_batch, then put).
        try:
            with self._db.write_batch(transaction=True, sync=sync) as wb:
                put, delete = wb.put, wb.delete
                for key, value in batch:
                    if type(key) is not bytes or not 0 < len(key) <= MAX_KEY_BYTES:
                        check_batch([(key, value)])  # raises the error that names what is wrong
                    if value is None:
                        delete(key)
                    elif type(value) is bytes and len(value) <= MAX_VALUE_BYTES:
                        put(key, value)
                    else:
                        check_batch([(key, value)])
        except plyvel.IOError as exc:
            raise StorageError(f"write to {self.path} failed (disk full or read-only?): {exc}") from None
        except plyvel.CorruptionError as exc:  # e.g. a compaction met a damaged table; every later write fails too
            raise CorruptionError(f"LevelDB write to {self.path} failed: {exc}", CORRUPTION_RECOVERY) from None
        except RuntimeError as exc:
            raise StorageError(f"store at {self.path} is closed: {exc}") from None

    def compact(self) -> None:
        """Compact the whole key range now, so deleted and overwritten entries leave the table files
        (LevelDB otherwise reclaims them only as later writes trigger compactions)."""
        try:
            self._db.compact_range()
        except plyvel.IOError as exc:
            raise StorageError(f"compaction of {self.path} failed (disk full?): {exc}") from None

    def disk_bytes(self) -> int:
        """Bytes the store's files take on disk now."""
        return sum(entry.stat().st_size for entry in os.scandir(self.path) if entry.is_file())

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
