"""An in-memory key-value store that fails the way disks do, for the simulator.

How it works: ``FaultyKV`` is the live view the node reads and writes, plus an undo
log of the writes since the last synced one. A synced write makes everything written
so far durable (LevelDB's log is flushed in order, so a sync also covers earlier
unsynced batches) and clears the log. ``crash(power_loss)`` reopens the store: after a
process kill it keeps everything (the OS still holds unsynced writes), after a power
loss it rolls the unsynced writes back. Seeded faults, each off unless a scenario turns it on:

- ``fail_writes``: a write raises StorageError before changing anything (disk full,
  read-only), as LevelDB does for a failed batch;
- ``corrupt_reads``: a value read comes back with one byte flipped (a bad sector or
  bit rot); the store's own checks must turn it into CorruptionError, never into a
  silently different state.

Both draw from the simulation's seeded RNG, so a seed replays exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from ledger.errors import StorageError
from ledger.storage.kv import MemoryKV


class FaultyKV(MemoryKV):
    def __init__(self, rng: random.Random, data: dict[bytes, bytes] | None = None) -> None:
        super().__init__()
        self.rng = rng
        if data:
            self._data = dict(data)
            self._sorted = False
        self.undo: list[tuple[bytes, bytes | None]] = []  # (key, value before) of unsynced writes
        self.fail_writes = 0.0
        self.corrupt_reads = 0.0
        self.faults: dict[str, int] = {"failed_writes": 0, "corrupted_reads": 0, "lost_writes": 0}

    def write(self, batch: Iterable[tuple[bytes, bytes | None]], sync: bool = True) -> None:
        if self.fail_writes and self.rng.random() < self.fail_writes:
            self.faults["failed_writes"] += 1
            raise StorageError("simulated write failure: No space left on device")
        batch = list(batch)
        if sync:
            self.undo.clear()
        else:
            self.undo.extend((key, self._data.get(key)) for key, _ in batch)
        super().write(batch, sync)

    def get(self, key: bytes) -> bytes | None:
        value = super().get(key)
        return self._maybe_corrupt(value)

    def iterate(self, prefix: bytes = b"", start: bytes | None = None, stop: bytes | None = None,
                reverse: bool = False) -> Iterator[tuple[bytes, bytes]]:
        for key, value in super().iterate(prefix, start, stop, reverse):
            yield key, self._maybe_corrupt(value)  # type: ignore[misc]

    def _maybe_corrupt(self, value: bytes | None) -> bytes | None:
        if value and self.corrupt_reads and self.rng.random() < self.corrupt_reads:
            self.faults["corrupted_reads"] += 1
            i = self.rng.randrange(len(value))
            return value[:i] + bytes([value[i] ^ (1 << self.rng.randrange(8))]) + value[i + 1:]
        return value

    def crash(self, power_loss: bool) -> None:
        """The process died: reopen with what the disk holds (faults end: the operator replaced it)."""
        if power_loss and self.undo:
            self.faults["lost_writes"] += len(self.undo)
            for key, before in reversed(self.undo):
                if before is None:
                    self._data.pop(key, None)
                else:
                    self._data[key] = before
            self._sorted = False
        self.undo.clear()
        self.closed = False
        self.fail_writes = self.corrupt_reads = 0.0
