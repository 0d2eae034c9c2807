"""Snapshots: a node's whole LevelDB store in one file, and back into a fresh home.

How it works: ``export_snapshot`` needs the node stopped (LevelDB allows one process
per store, so opening it fails clearly while the node runs) and then streams every
key in key order, except this validator's own consensus records and mempool journal
(what one validator signed must never be copied into another), as zlib-compressed
length-prefixed records. The file is::

    MAGIC (8 bytes) | header length (4 bytes, big-endian) | header (JSON) | body

The header names the format, chain id, genesis hash, height, head block hash, state
root, number of entries and the SHA-256 of the body; it is written first with fixed
width placeholders and rewritten in place once the body is done, and the file is
written under a temporary name and renamed, so a half-written snapshot never has the
final name.

``import_snapshot`` refuses a file whose genesis is not the home's, checks the body's
checksum before writing anything, writes into a scratch directory next to the data
dir, then verifies what it wrote (head block and certificate against the genesis
validator set, hash links of the newest blocks, the head state root present) and only
then moves it into place. The node then starts at the snapshot's height and fetches
the rest with ordinary block sync. ``shopchain node verify`` re-executes everything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ledger.errors import ChainError, StorageError
from ledger.genesis import Genesis
from ledger.state import StateStore
from ledger.storage import schema
from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV
from ledger.validator_set import check_header_sets
from node.core.chain import schedule_in
from node.ops.home import load_home
from ledger.hexfmt import to_hex

MAGIC = b"SHOPSNP1"
FORMAT = "shopchain-snapshot/1"
#: Namespaces never exported: this validator's signed-message records, mempool journal and
#: mailbox of sealed envelopes (node-local, not chain data).
EXCLUDED_PREFIXES = (schema.CONSENSUS, schema.MEMPOOL, schema.MAILBOX)
#: Largest header accepted on import.
MAX_HEADER_BYTES = 64 * 1024
#: Records written to LevelDB per batch during import.
IMPORT_BATCH_ENTRIES = 10_000
#: Bytes read per chunk when checksumming and decompressing.
CHUNK_BYTES = 1024 * 1024
#: zlib level of the body (6: the usual speed/size balance).
COMPRESSION_LEVEL = 6
#: Largest key and value in a record (the KVStore limits).
MAX_RECORD_KEY_BYTES = 1024
MAX_RECORD_VALUE_BYTES = 64 * 1024 * 1024

_RECORD = struct.Struct(">HI")  # key length, value length
_HEADER_LEN = struct.Struct(">I")
_ENTRY_DIGITS = 20  # fixed width of the entry count placeholder

Progress = Callable[[int], None]


class SnapshotError(ChainError):
    """A snapshot cannot be written, read or used; the message says why and what to do."""


class SnapshotInvalid(SnapshotError):
    """The snapshot is damaged, of another chain, or does not verify: it must not be used."""


@dataclass(frozen=True)
class SnapshotHeader:
    chain_id: str
    genesis_hash: str
    height: int
    head_hash: str
    state_root: str
    created_ms: int
    entries: int
    body_sha256: str

    def encode(self) -> bytes:
        doc = {"format": FORMAT, "chain_id": self.chain_id, "genesis_hash": self.genesis_hash, "height": self.height,
               "head_hash": self.head_hash, "state_root": self.state_root, "created_ms": self.created_ms,
               "entries": str(self.entries).zfill(_ENTRY_DIGITS), "body_sha256": self.body_sha256}
        return json.dumps(doc, sort_keys=True).encode()

    def to_json(self) -> dict:
        return {"chain_id": self.chain_id, "genesis_hash": self.genesis_hash, "height": self.height,
                "head_hash": self.head_hash, "state_root": self.state_root, "created_ms": self.created_ms,
                "entries": self.entries, "body_sha256": self.body_sha256}


def _open_store(home: str, create: bool = False) -> tuple[LevelDBKV, Genesis, str]:
    config, _key, genesis = load_home(home)
    data_dir = config.path("node", "data_dir")
    try:
        kv = LevelDBKV(data_dir, create=create)
    except StorageError as exc:
        raise SnapshotError(f"{exc} (snapshots need the node stopped: `shopchain devnet down` or stop "
                            f"`shopchain node start`, then run this again)") from None
    return kv, genesis, data_dir


def _records(kv: LevelDBKV) -> Iterator[tuple[bytes, bytes]]:
    for key, value in kv.iterate():
        if not key.startswith(EXCLUDED_PREFIXES):
            yield key, value


def export_snapshot(home: str, out_path: str, progress: Progress | None = None, overwrite: bool = False) -> SnapshotHeader:
    """Write the stopped node's store to ``out_path``; returns the header written."""
    if os.path.exists(out_path) and not overwrite:
        raise SnapshotError(f"{out_path} already exists; choose another file or pass --force")
    kv, genesis, _ = _open_store(home)
    tmp_path = out_path + ".partial"
    try:
        blocks = BlockStore(kv)
        if blocks.genesis_hash() is None:
            raise SnapshotError(f"the store of {home} is empty; start the node once so it writes its genesis state")
        if blocks.genesis_hash() != genesis.genesis_hash:
            raise SnapshotError(f"the store of {home} belongs to another genesis than its genesis.json")
        blocks.check_integrity()
        height = blocks.height
        head = blocks.get_block(height) if height else None
        header = SnapshotHeader(genesis.chain_id, to_hex(genesis.genesis_hash), height,
                                to_hex(head.block_hash if head else genesis.genesis_hash),
                                to_hex(blocks.get_state_root(height)), int(time.time() * 1000), 0, "0" * 64)
        with open(tmp_path, "wb") as fh:
            placeholder = header.encode()
            fh.write(MAGIC + _HEADER_LEN.pack(len(placeholder)) + placeholder)
            digest, entries = _write_body(fh, _records(kv), progress)
            final = SnapshotHeader(**{**header.__dict__, "entries": entries, "body_sha256": digest})
            encoded = final.encode()
            if len(encoded) != len(placeholder):
                raise SnapshotError("internal error: the snapshot header changed size")  # fixed-width fields
            fh.seek(len(MAGIC) + _HEADER_LEN.size)
            fh.write(encoded)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_path, out_path)
        return final
    finally:
        kv.close()
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def _write_body(fh: BinaryIO, records: Iterator[tuple[bytes, bytes]], progress: Progress | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    compressor = zlib.compressobj(COMPRESSION_LEVEL)
    entries = 0
    for key, value in records:
        chunk = compressor.compress(_RECORD.pack(len(key), len(value)) + key + value)
        if chunk:
            digest.update(chunk)
            fh.write(chunk)
        entries += 1
        if progress is not None:
            progress(1)
    tail = compressor.flush()
    digest.update(tail)
    fh.write(tail)
    return digest.hexdigest(), entries


def read_header(path: str) -> tuple[SnapshotHeader, int]:
    """The header and the offset where the body starts; SnapshotError if this is no snapshot."""
    with open(path, "rb") as fh:
        start = fh.read(len(MAGIC) + _HEADER_LEN.size)
        if len(start) < len(MAGIC) + _HEADER_LEN.size or not start.startswith(MAGIC):
            raise SnapshotError(f"{path} is not a shopchain snapshot (expected it to start with {MAGIC!r})")
        (size,) = _HEADER_LEN.unpack(start[len(MAGIC):])
        if size > MAX_HEADER_BYTES:
            raise SnapshotError(f"{path}: header of {size} bytes exceeds {MAX_HEADER_BYTES}; the file is damaged")
        try:
            doc = json.loads(fh.read(size))
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, this shopchain reads {FORMAT!r}")
            header = SnapshotHeader(doc["chain_id"], doc["genesis_hash"], int(doc["height"]), doc["head_hash"],
                                    doc["state_root"], int(doc["created_ms"]), int(doc["entries"]),
                                    doc["body_sha256"])
        except (ValueError, KeyError, TypeError) as exc:
            raise SnapshotError(f"{path}: the snapshot header is unreadable: {exc}") from None
    return header, len(start) + size


def check_body(path: str, header: SnapshotHeader, offset: int, progress: Progress | None = None) -> None:
    """Raise SnapshotError unless the body's SHA-256 is the header's."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(offset)
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    if digest.hexdigest() != header.body_sha256:
        raise SnapshotInvalid(f"{path}: checksum mismatch (header says {header.body_sha256[:16]}, the body hashes to "
                            f"{digest.hexdigest()[:16]}); the file is damaged or truncated: export it again")


def _iter_body(path: str, offset: int) -> Iterator[tuple[bytes, bytes]]:
    decompressor = zlib.decompressobj()
    buffer = b""
    with open(path, "rb") as fh:
        fh.seek(offset)
        while True:
            chunk = fh.read(CHUNK_BYTES)
            buffer += decompressor.decompress(chunk) if chunk else decompressor.flush()
            pos = 0
            while len(buffer) - pos >= _RECORD.size:
                klen, vlen = _RECORD.unpack_from(buffer, pos)
                if not 0 < klen <= MAX_RECORD_KEY_BYTES or vlen > MAX_RECORD_VALUE_BYTES:
                    raise SnapshotInvalid(f"{path}: a record has impossible sizes ({klen}, {vlen}); the file is damaged")
                end = pos + _RECORD.size + klen + vlen
                if end > len(buffer):
                    break
                key = buffer[pos + _RECORD.size: pos + _RECORD.size + klen]
                yield key, buffer[pos + _RECORD.size + klen: end]
                pos = end
            buffer = buffer[pos:]
            if not chunk:
                if buffer:
                    raise SnapshotInvalid(f"{path}: the body ends inside a record; the file is truncated")
                return


def verify_imported(kv: LevelDBKV, genesis: Genesis, header: SnapshotHeader) -> None:
    """Check what an import wrote before it is used (raise SnapshotError)."""
    blocks = BlockStore(kv)
    try:
        if blocks.genesis_hash() != genesis.genesis_hash:
            raise SnapshotInvalid("the imported store names another genesis")
        if blocks.height != header.height:
            raise SnapshotInvalid(f"the imported store's head is {blocks.height}, the header says {header.height}")
        blocks.check_integrity()
        root = blocks.get_state_root(blocks.height)
        if to_hex(root) != header.state_root:
            raise SnapshotInvalid("the imported head state root differs from the header's")
        StateStore(kv, root)  # raises unless the root node is present
        if blocks.height:
            head = blocks.get_block(blocks.height)
            if to_hex(head.block_hash) != header.head_hash:
                raise SnapshotInvalid("the imported head block differs from the header's")
            # Walk the chain of sets from genesis: every set proven by the one before it. A store
            # filled by state sync starts at its base, proven from genesis by the set proofs it kept.
            schedule = schedule_in(StateStore(kv, root), genesis)
            if blocks.base:
                from node.ops.verify import prove_base, replay_start
                prove_base(kv, blocks, genesis, replay_start(kv, blocks))
            for height in range(max(blocks.base, 1), blocks.height + 1):
                block, cert = blocks.get_block(height), blocks.get_certificate(height)
                if block is None or cert is None:
                    raise SnapshotInvalid(f"the imported store lacks block {height} or its certificate")
                check_header_sets(block.header, cert, schedule, genesis.chain_id)
    except SnapshotError:
        raise
    except ChainError as exc:
        raise SnapshotInvalid(f"the imported store does not verify: {exc}") from None


def import_snapshot(home: str, path: str, progress: Progress | None = None) -> SnapshotHeader:
    """Load a snapshot into the (empty) store of an initialised home."""
    header, offset = read_header(path)
    config, _key, genesis = load_home(home)
    if header.genesis_hash != to_hex(genesis.genesis_hash) or header.chain_id != genesis.chain_id:
        raise SnapshotInvalid(f"{path} is a snapshot of chain {header.chain_id} genesis {header.genesis_hash[:18]}, "
                            f"but {home} runs {genesis.chain_id} genesis 0x{genesis.genesis_hash.hex()[:16]}; "
                            f"use a snapshot of this network")
    data_dir = config.path("node", "data_dir")
    if os.path.isdir(data_dir) and os.listdir(data_dir):
        raise SnapshotError(f"{data_dir} already holds a store; stop the node and move it away first "
                            f"(import only fills an empty data directory)")
    check_body(path, header, offset)
    scratch = data_dir.rstrip(os.sep) + ".importing"
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    kv = LevelDBKV(scratch, create=True)
    try:
        batch: list[tuple[bytes, bytes | None]] = []
        count = 0
        for key, value in _iter_body(path, offset):
            if key.startswith(EXCLUDED_PREFIXES):
                raise SnapshotInvalid(f"{path} carries a consensus or mempool record; refusing it")
            batch.append((key, value))
            count += 1
            if len(batch) >= IMPORT_BATCH_ENTRIES:
                kv.write(batch, sync=False)
                batch = []
            if progress is not None:
                progress(1)
        if batch:
            kv.write(batch, sync=False)
        if count != header.entries:
            raise SnapshotInvalid(f"{path} holds {count} entries, its header says {header.entries}")
        kv.write([], sync=True)
        verify_imported(kv, genesis, header)
    except BaseException:
        kv.close()
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    kv.close()
    if os.path.isdir(data_dir):
        os.rmdir(data_dir)  # empty, checked above
    os.replace(scratch, data_dir)
    return header
