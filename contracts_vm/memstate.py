"""A dict-backed state with the overlay interface the VM needs (tests, tools, benches).

How it works: values live in a dict; every put/delete appends (key, previous value)
to a journal; ``checkpoint`` is the journal length and ``revert`` undoes entries back
to it. ``iterate`` sorts the matching keys, which is fine for the sizes tests and the
CLI use; the node uses ledger's authenticated state overlay with the same methods.
"""

from __future__ import annotations

from ledger.errors import StorageError


class MemoryState:
    def __init__(self, data: dict | None = None) -> None:
        self.data: dict[bytes, bytes] = dict(data or {})
        self._journal: list = []

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def has(self, key: bytes) -> bool:
        return key in self.data

    def put(self, key: bytes, value: bytes) -> None:
        if type(key) is not bytes or type(value) is not bytes:
            raise StorageError(f"state keys and values are bytes, found {type(key).__name__}, {type(value).__name__}")
        self._journal.append((key, self.data.get(key)))
        self.data[key] = value

    def delete(self, key: bytes) -> None:
        self._journal.append((key, self.data.get(key)))
        self.data.pop(key, None)

    def iterate(self, prefix: bytes, limit: int) -> list:
        keys = sorted(k for k in self.data if k.startswith(prefix))[:limit]
        return [(k, self.data[k]) for k in keys]

    def checkpoint(self) -> int:
        return len(self._journal)

    def revert(self, cp: int) -> None:
        if not 0 <= cp <= len(self._journal):
            raise StorageError(f"checkpoint {cp} outside 0..{len(self._journal)}")
        while len(self._journal) > cp:
            key, old = self._journal.pop()
            if old is None:
                self.data.pop(key, None)
            else:
                self.data[key] = old

    def snapshot(self) -> dict:
        return dict(self.data)
