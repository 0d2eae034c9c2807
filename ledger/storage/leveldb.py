"""The LevelDB backend (plyvel): the only module that imports plyvel.

How it works: a thin adapter from the KVStore interface onto plyvel. Batches are
applied with ``write_batch(transaction=True, sync=...)`` so a batch is atomic and, when
synced, durable once ``write`` returns: after ``kill -9`` the batch is either fully in
the log or not at all. Opening fails with a StorageError that says what to do when
another process holds the lock or the files are damaged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import plyvel

from ledger.errors import CorruptionError, StorageError
from ledger.storage.kv import check_batch, prefix_end

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


class LevelDBKV:
    """A KVStore on a LevelDB directory."""

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = path
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
            raise CorruptionError(f"LevelDB reports corruption in {path}: {exc}") from None
        except plyvel.Error as exc:
            raise StorageError(f"cannot open the store at {path}: {exc}") from None

    def get(self, key: bytes) -> bytes | None:
        try:
            return self._db.get(key)
        except RuntimeError as exc:  # plyvel raises RuntimeError on a closed DB
            raise StorageError(f"store at {self.path} is closed: {exc}") from None
        except plyvel.CorruptionError as exc:
            raise CorruptionError(f"LevelDB read of {key!r:.60} failed: {exc}") from None
        except plyvel.IOError as exc:  # e.g. a truncated table file: the data is gone, not just unreadable now
            raise CorruptionError(f"LevelDB read of {key!r:.60} failed: {exc}") from None

    def iterate(
        self, prefix: bytes = b"", start: bytes | None = None, stop: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        low = max(prefix, start) if start is not None else prefix
        high = prefix_end(prefix)
        if stop is not None:
            high = stop if high is None else min(high, stop)
        kwargs: dict = {"reverse": reverse}
        if low:
            kwargs["start"] = low
        if high is not None:
            kwargs["stop"] = high
        try:
            yield from self._db.iterator(**kwargs)
        except (plyvel.CorruptionError, plyvel.IOError) as exc:
            raise CorruptionError(f"LevelDB iteration failed: {exc}") from None

    def write(self, batch: Iterable[tuple[bytes, bytes | None]], sync: bool = True) -> None:
        checked = check_batch(batch)
        try:
            with self._db.write_batch(transaction=True, sync=sync) as wb:
                for key, value in checked:
                    if value is None:
                        wb.delete(key)
                    else:
                        wb.put(key, value)
        except plyvel.IOError as exc:
            raise StorageError(f"write to {self.path} failed (disk full or read-only?): {exc}") from None
        except plyvel.CorruptionError as exc:  # e.g. a compaction met a damaged table; every later write fails too
            raise CorruptionError(f"LevelDB write to {self.path} failed: {exc}") from None
        except RuntimeError as exc:
            raise StorageError(f"store at {self.path} is closed: {exc}") from None

    def close(self) -> None:
        if not self._db.closed:
            self._db.close()
