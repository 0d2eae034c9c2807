"""A LevelDB batch with a bad entry anywhere is refused whole, with an error naming the entry.

LevelDBKV.write checks each entry as it adds it to a transactional write batch (one
pass instead of two), so this pins down that a bad entry late in a batch still leaves
nothing of the batch behind.
"""

from __future__ import annotations

import pytest

from ledger.errors import StorageError
from ledger.storage.kv import MAX_KEY_BYTES, MAX_VALUE_BYTES, MemoryKV
from ledger.storage.leveldb import LevelDBKV


@pytest.fixture(params=["leveldb", "memory"])
def kv(request, tmp_path):
    store = LevelDBKV(str(tmp_path / "db")) if request.param == "leveldb" else MemoryKV()
    yield store
    store.close()


@pytest.mark.parametrize("bad, message", [
    (("text", b"v"), "batch key must be 1..1025 bytes, found 'text'"),
    ((b"", b"v"), "batch key must be 1..1025 bytes, found b''"),
    ((b"k" * (MAX_KEY_BYTES + 1), b"v"), "batch key must be 1..1025 bytes"),
    ((b"k", "text"), "batch value for b'k' must be bytes or None, found str"),
    ((b"k", b"\x00" * (MAX_VALUE_BYTES + 1)), f"value of {MAX_VALUE_BYTES + 1} bytes for b'k' exceeds"),
])
def test_a_bad_entry_late_in_a_batch_leaves_nothing_of_it(kv, bad, message) -> None:
    kv.write([(b"kept", b"1")])
    with pytest.raises(StorageError) as info:
        kv.write([(b"a", b"1"), (b"kept", None), (b"b", b"2"), bad])
    assert str(info.value).startswith(message)
    assert kv.get(b"a") is None and kv.get(b"b") is None and kv.get(b"kept") == b"1"
