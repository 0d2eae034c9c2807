"""Checks after a fault run, on the stores of stopped nodes and over RPC of running ones.

How this works: ``read_store`` opens a stopped node's LevelDB (the node holds the lock
while it runs) and collects its chain (block hash and state root per height), every
signature it can find, and the transaction ids of its blocks. Signatures come from the
node's consensus records (what it signed itself, persisted before sending, under
``node.core.records.RECORD_PREFIX``), from the PREPAREs inside the prepared certificates it
kept, and from the COMMIT votes of every stored certificate, both the block's own and
the ``last_commit`` carried in the next block; each certificate is checked against the
validator set of its height (the schedule in the node's head state, walked from genesis
with every header's set hashes). ``find_equivocations`` groups all of them
by (validator, view, height, phase) over all nodes: two digests in one group is a
safety violation by that validator.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass, field

from consensus import PreparedCert, Record
from consensus.ready import RECORD_PREPARED, RECORD_SIGNED
from ledger.genesis import Genesis
from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV
from ledger.state import StateStore
from ledger.types import PHASE_COMMIT, CommitCertificate
from ledger.validator_set import check_header_sets
from node.core.chain import schedule_in
from node.ops.home import load_home
from node.core.records import RECORD_PREFIX

Slot = tuple[bytes, int, int, int]  # (validator, view, height, phase)


@dataclass
class StoreView:
    name: str
    height: int
    hashes: dict[int, bytes] = field(default_factory=dict)
    state_roots: dict[int, bytes] = field(default_factory=dict)
    tx_ids: list[bytes] = field(default_factory=list)
    signatures: dict[Slot, set[bytes]] = field(default_factory=lambda: collections.defaultdict(set))
    records: int = 0
    bad_certificates: list[str] = field(default_factory=list)


def _add_cert(view: StoreView, cert: CommitCertificate) -> None:
    for vote in cert.votes:
        view.signatures[(vote.validator, cert.view, cert.height, PHASE_COMMIT)].add(cert.block_hash)


def read_store(name: str, data_dir: str, genesis: Genesis) -> StoreView:
    """Everything the checks need from one stopped node's store."""
    kv = LevelDBKV(data_dir, create=False)
    try:
        store = BlockStore(kv)
        store.check_integrity()
        view = StoreView(name, store.height)
        head = store.get_block(store.height) if store.height else None
        # the schedule the head state holds has every set ever scheduled; each certificate is
        # checked against the set of its height, and each header against the sets it names
        schedule = schedule_in(StateStore(kv, head.header.state_root), genesis) if head else None
        for height in range(1, store.height + 1):
            block = store.get_block(height)
            cert = store.get_certificate(height)
            assert block is not None and cert is not None, f"{name}: block {height} or its certificate is missing"
            view.hashes[height] = block.block_hash
            view.state_roots[height] = block.header.state_root
            view.tx_ids.extend(tx.tx_id for tx in block.txs)
            try:
                check_header_sets(block.header, cert, schedule, genesis.chain_id)
            except Exception as exc:  # noqa: BLE001 - reported, not raised: the checker lists every problem
                view.bad_certificates.append(f"{name} height {height}: {exc}")
            _add_cert(view, cert)
            if block.last_commit is not None:
                _add_cert(view, block.last_commit)
        me = None
        for _, raw in kv.iterate(prefix=RECORD_PREFIX):
            record = Record.decode(raw)
            view.records += 1
            if record.kind == RECORD_SIGNED:
                if me is None:
                    me = _owner(data_dir, genesis)
                view.signatures[(me, record.view, record.height, record.phase)].add(record.digest)
            elif record.kind == RECORD_PREPARED and isinstance(record.message, PreparedCert):
                for vote in record.message.prepares:
                    view.signatures[(vote.validator, vote.view, vote.height, vote.phase)].add(vote.block_hash)
        return view
    finally:
        kv.close()


def _owner(data_dir: str, genesis: Genesis) -> bytes:
    """The validator key of the home that holds ``data_dir`` (data_dir is <home>/data)."""
    _, key, _ = load_home(os.path.dirname(os.path.abspath(data_dir)))
    return key.public_key


def find_equivocations(views: list[StoreView]) -> list[str]:
    """Every (validator, view, height, phase) for which two different digests were signed."""
    merged: dict[Slot, set[bytes]] = collections.defaultdict(set)
    for view in views:
        for slot, digests in view.signatures.items():
            merged[slot] |= digests
    return [f"validator {v.hex()[:8]} signed {len(d)} digests for view {vw} height {h} phase {p}"
            for (v, vw, h, p), d in sorted(merged.items()) if len(d) > 1]


def check_agreement(views: list[StoreView]) -> list[str]:
    """Problems if any two nodes differ on a block or state root at a height both hold."""
    problems = []
    for a in views:
        for b in views:
            if a.name >= b.name:
                continue
            for height in range(1, min(a.height, b.height) + 1):
                if a.hashes[height] != b.hashes[height] or a.state_roots[height] != b.state_roots[height]:
                    problems.append(f"{a.name} and {b.name} differ at height {height}")
                    break
    return problems


def check_exactly_once(view: StoreView, acked: list[str]) -> list[str]:
    """Problems if an acknowledged transaction is missing or anything is committed twice."""
    counts = collections.Counter("0x" + t.hex() for t in view.tx_ids)
    missing = [t for t in acked if counts[t] == 0]
    doubled = [t for t, c in counts.items() if c > 1]
    problems = []
    if missing:
        problems.append(f"{len(missing)} acknowledged transactions never committed on {view.name}, e.g. {missing[:3]}")
    if doubled:
        problems.append(f"{len(doubled)} transactions committed more than once on {view.name}, e.g. {doubled[:3]}")
    return problems


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (nearest rank) or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]
