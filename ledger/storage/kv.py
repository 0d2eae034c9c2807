"""The KVStore interface and the in-memory backend.

How it works: every byte shopchain persists goes through four operations: ``get``,
ordered ``iterate`` over a key range, an atomic ``write`` of a batch of puts and
deletes, and ``close``. A batch is a plain list of ``(key, value)`` pairs where a
value of ``None`` deletes the key; it is applied all-or-nothing. The LevelDB backend
(``ledger.storage.leveldb``) is what a node runs on; ``MemoryKV`` here has the same
semantics for tests and the simulator, keeping keys sorted so iteration order
matches LevelDB's bytewise order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import Protocol

from ledger.errors import StorageError

Batch = list[tuple[bytes, bytes | None]]

#: Longest key accepted by any backend.
MAX_KEY_BYTES = 1025  # a 1,024-byte state key plus its one-byte namespace prefix
#: Largest single value accepted by any backend.
MAX_VALUE_BYTES = 64 * 1024 * 1024
#: What an operator does about a corrupted store; every CorruptionError of the storage
#: layer carries it. The damaged data cannot be repaired in place (there is no second
#: copy on this machine), so the store is replaced by a verified copy from the network.
CORRUPTION_RECOVERY = (
    "stop the node; `shopchain node verify --home HOME` shows the first bad height. Then move the data "
    "directory aside and either import a snapshot of a healthy node (`shopchain node export --home THEIR_HOME "
    "-o chain.snap` there, `shopchain node import --home HOME chain.snap` here) or start the node with an empty "
    "data directory so it resyncs every block from its peers (`shopchain node start --home HOME`)"
)


class KVStore(Protocol):
    """What every storage backend provides."""

    def get(self, key: bytes) -> bytes | None: ...

    def iterate(
        self, prefix: bytes = b"", start: bytes | None = None, stop: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]: ...

    def write(self, batch: Iterable[tuple[bytes, bytes | None]], sync: bool = True) -> None: ...

    def close(self) -> None: ...


def check_batch(batch: Iterable[tuple[bytes, bytes | None]]) -> Batch:
    """Validate a batch before any of it is applied, so a bad entry cannot half-apply it."""
    checked: Batch = []
    for key, value in batch:
        if type(key) is not bytes or not key or len(key) > MAX_KEY_BYTES:
            raise StorageError(f"batch key must be 1..{MAX_KEY_BYTES} bytes, found {key!r:.80}")
        if value is not None:
            if type(value) is not bytes:
                raise StorageError(f"batch value for {key!r:.80} must be bytes or None, found {type(value).__name__}")
            if len(value) > MAX_VALUE_BYTES:
                raise StorageError(f"value of {len(value)} bytes for {key!r:.80} exceeds {MAX_VALUE_BYTES}")
        checked.append((key, value))
    return checked


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None if unbounded)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


class MemoryKV:
    """A sorted in-memory store with LevelDB's semantics (used by tests and the simulator)."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._keys: list[bytes] = []  # sorted; rebuilt lazily after inserts
        self._sorted = True
        self.closed = False
        self.writes = 0

    def _check_open(self) -> None:
        if self.closed:
            raise StorageError("store is closed")

    def get(self, key: bytes) -> bytes | None:
        self._check_open()
        return self._data.get(key)

    def write(self, batch: Iterable[tuple[bytes, bytes | None]], sync: bool = True) -> None:
        self._check_open()
        for key, value in check_batch(batch):
            if value is None:
                if self._data.pop(key, None) is not None:
                    self._sorted = False
            else:
                if key not in self._data:
                    self._sorted = False
                self._data[key] = value
        self.writes += 1

    def _sorted_keys(self) -> list[bytes]:
        if not self._sorted:
            self._keys = sorted(self._data)
            self._sorted = True
        return self._keys

    def iterate(
        self, prefix: bytes = b"", start: bytes | None = None, stop: bytes | None = None, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        keys = self._sorted_keys()
        low = max(prefix, start) if start is not None else prefix
        high = prefix_end(prefix)
        if stop is not None:
            high = stop if high is None else min(high, stop)
        lo_index = bisect.bisect_left(keys, low)
        hi_index = len(keys) if high is None else bisect.bisect_left(keys, high)
        selected = keys[lo_index:hi_index]  # a snapshot: writes during iteration do not disturb it
        if reverse:
            selected.reverse()
        for key in selected:
            value = self._data.get(key)
            if value is not None:
                yield key, value

    def close(self) -> None:
        self.closed = True
