"""The consensus core's durable records: what this replica signed, kept in the node's store.

How it works: the core hands the runtime ``Ready.persist`` records (consensus.ready)
that must be durable before any message that depends on them is sent. Each record is
stored under ``RECORD_PREFIX`` + an 8-byte sequence number, so a restart reads them
back in the order they were written and rebuilds the replica from them. Once a height
commits, ``deletions`` says which records ``compact_records`` no longer needs; the
service puts those deletions into the same atomic batch as the block, so the store
never holds a committed block without the records a restart needs, nor the reverse.
"""

from __future__ import annotations

from consensus import Record, compact_records
from ledger.storage import schema
from ledger.storage.kv import KVStore

RECORD_PREFIX = schema.consensus_key(b"rec/")


class RecordJournal:
    """The replica's records in ``kv``: load once at start, append before sending, compact on commit."""

    def __init__(self, kv: KVStore, sync: bool) -> None:
        self.kv, self.sync = kv, sync
        self.entries: list[tuple[bytes, Record]] = []
        self.next_seq = 0
        for key, raw in kv.iterate(prefix=RECORD_PREFIX):
            self.entries.append((key, Record.decode(raw)))
            self.next_seq = max(self.next_seq, int.from_bytes(key[len(RECORD_PREFIX):], "big") + 1)

    def records(self) -> list[Record]:
        return [r for _, r in self.entries]

    def append(self, records: list[Record]) -> None:
        """One (synced, if the node is configured so) write before anything signed leaves the process."""
        batch = []
        for record in records:
            key = RECORD_PREFIX + self.next_seq.to_bytes(8, "big")
            self.next_seq += 1
            self.entries.append((key, record))
            batch.append((key, record.encode()))
        self.kv.write(batch, sync=self.sync)

    def deletions(self, committed_height: int) -> list[tuple[bytes, None]]:
        """The records a restart no longer needs once ``committed_height`` is durable (forgotten here now)."""
        keep = {id(r) for r in compact_records(self.records(), committed_height)}
        gone = [(k, None) for k, r in self.entries if id(r) not in keep]
        self.entries = [(k, r) for k, r in self.entries if id(r) in keep]
        return gone
