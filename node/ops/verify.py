"""Full offline verification of a node's chain: every block re-checked from genesis.

How it works: with the node stopped, ``verify_home`` opens its LevelDB store read-only
in spirit (it writes nothing) and replays the chain on a fresh in-memory ``Chain``
built from genesis.json alone. For each height it checks, in this order: the block
is stored at its height and indexed by its hash; it links to the previous block
(``prev_hash``); its tx root and last-commit hash match its contents; the certificate
it carries for the previous block and its own stored certificate are valid quorums
of the genesis validator set for the right hashes; then it re-executes the block
(``Chain.check_block``: proposer, timestamps, signatures, state and receipts roots)
and compares the re-executed receipts and state root with what the store holds. The
first disagreement stops the run and is reported with its height; nothing before it
is in doubt. The genesis state itself is rebuilt and its root compared first.

A store filled by state sync, or pruned by ``[storage] retain_blocks``, holds no block
below its base height: it is verified from the base instead (``replay_from_base``: the
validator-set chain from genesis to the base, the base block's certificate, every trie
node of the base state by hash), and the report names the base, so an operator sees
exactly what was checked. When state pruning removed the base's state, "the base" is
the oldest held height whose state is still stored (``replay_start``).

Once every block agrees, the store's own state at the head is checked: the stored
trie is walked from the head's (re-executed) state root, every node checked against
its hash, in step with the flat latest-value table that reads are served from
(``StateStore.check_flat_table``); a flat value that is not the trie's, a flat entry
the trie lacks, or a trie entry the flat table lacks is reported by key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ledger.errors import ChainError, CorruptionError, ValidationError
from ledger.genesis import Genesis
from ledger.state import StateStore
from ledger.state_prune import read_pruned_below
from ledger.state_trie import Branch, decode_node, node_payload
from ledger.storage import schema
from ledger.storage.blockstore import BlockStore
from ledger.storage.kv import KVStore, MemoryKV
from ledger.storage.leveldb import LevelDBKV
from ledger.types import verify_certificate
from node.core.chain import Chain
from node.ops.home import load_home
from ledger.hexfmt import to_hex

if TYPE_CHECKING:
    from node.statesync.wire import SetProof, VerifiedOffer

Progress = Callable[[int], None]


class StoreVerifyError(ChainError):
    """The store cannot be verified at all (missing, locked).

    Not ``VerifyError``: that name is the contract VM's bytecode verifier error
    (``contracts_vm.errors.VerifyError``).
    """


@dataclass
class VerifyReport:
    chain_id: str
    head: int
    checked: int = 0
    txs: int = 0
    bad_height: int | None = None
    problem: str | None = None
    seconds: float = 0.0
    #: The oldest height held (a state-synced or pruned store): blocks are checked from here, not genesis.
    base: int = 0
    #: The base was moved by block pruning ([storage] retain_blocks), not set by a state sync.
    pruned: bool = False
    #: The height whose stored state replay starts from (the base, or later when its state was pruned).
    replayed_from: int = 0
    #: Entries of the flat state table proved equal to the trie at the head.
    state_entries: int = 0
    state_seconds: float = 0.0
    #: The first state key (hex) where the flat table and the trie disagree.
    bad_state_key: str | None = None
    checks: list[str] = field(default_factory=lambda: ["hash links", "tx roots", "certificates",
                                                       "state and receipts roots by re-execution",
                                                       "flat state table against the state trie"])

    @property
    def ok(self) -> bool:
        return self.bad_height is None

    def to_json(self) -> dict:
        return {"ok": self.ok, "chain_id": self.chain_id, "head": self.head, "base": self.base,
                "pruned": self.pruned, "replayed_from": self.replayed_from,
                "checked_blocks": self.checked,
                "transactions": self.txs, "bad_height": self.bad_height, "problem": self.problem,
                "seconds": round(self.seconds, 3), "state_entries": self.state_entries,
                "state_seconds": round(self.state_seconds, 3), "bad_state_key": self.bad_state_key,
                "checks": self.checks}


def check_block_at(stored: BlockStore, replay: Chain, height: int, chain_id: str) -> int:
    """Verify stored block ``height`` against the replay and commit it there; returns its tx count.

    Certificates are checked against the sets the replay's own state schedules (re-executed
    from genesis, so they are the network's), the previous block's against its own height's.

    Raises ValidationError naming what is wrong.
    """
    block = stored.get_block(height)
    if block is None:
        raise ValidationError(f"block {height} is missing")
    if block.height != height:
        raise ValidationError(f"the block stored at height {height} says it is height {block.height}")
    index = stored.kv.get(schema.block_hash_key(block.block_hash))
    if index is None or schema.decode_height(index) != height:
        raise ValidationError("the block's hash index is missing or points elsewhere")
    if block.header.prev_hash != replay.head_hash():
        raise ValidationError("prev_hash does not link to the previous block")
    block.check_shape()
    if block.last_commit is not None:
        verify_certificate(block.last_commit, list(replay.validators_at(height - 1)), chain_id, height - 1,
                           replay.head_hash())
    elif height > 1:
        raise ValidationError("the block carries no certificate of the previous block")
    cert = stored.get_certificate(height)
    if cert is None:
        raise ValidationError("its commit certificate is missing")
    verify_certificate(cert, list(replay.validators_at(height)), chain_id, height, block.block_hash)
    reason = replay.check_block(block, None)
    if reason is not None:
        raise ValidationError(f"re-execution disagrees: {reason}")
    outcome = replay.commit(block, cert)
    receipts = stored.get_receipts(height)
    if receipts is None or [r.encode() for r in receipts] != [r.encode() for r in outcome.receipts]:
        raise ValidationError("the stored receipts differ from re-execution")
    if stored.get_state_root(height) != outcome.state_root:
        raise ValidationError("the stored state root differs from re-execution")
    return len(block.txs)


def verify_store(kv: KVStore, genesis: Genesis, progress: Progress | None = None,
                 up_to: int | None = None) -> VerifyReport:
    """Verify any KVStore holding a chain of ``genesis`` (used by verify_home and tests)."""
    started = time.monotonic()
    stored = BlockStore(kv)
    head = stored.height if up_to is None else min(up_to, stored.height)
    report = VerifyReport(genesis.chain_id, head, base=stored.base, pruned=stored.pruned())
    try:
        if stored.genesis_hash() != genesis.genesis_hash:
            raise ValidationError("the store belongs to another genesis")
        start = report.replayed_from = replay_start(kv, stored) if stored.base else 0
        if stored.base:
            report.checks = [f"validator-set chain from genesis to the base {start}",
                             f"base block {start} certificate and receipts",
                             f"every state-trie node at the base {start} against its hash",
                             *report.checks]
            replay = replay_from_base(kv, stored, genesis, start)
        else:
            replay = Chain(MemoryKV(), genesis)
            if stored.get_state_root(0) != replay.state.root:
                raise ValidationError("the genesis state root differs from genesis.json rebuilt")
    except ChainError as exc:
        report.bad_height, report.problem = stored.base, str(exc)
        report.seconds = time.monotonic() - started
        return report
    for height in range(start + 1, head + 1):
        try:
            report.txs += check_block_at(stored, replay, height, genesis.chain_id)
        except ChainError as exc:
            report.bad_height, report.problem = height, str(exc)
            break
        report.checked += 1
        if progress is not None:
            progress(1)
    if report.ok:
        check_state_at_head(kv, stored, report)
    report.seconds = time.monotonic() - started
    return report


def replay_start(kv: KVStore, stored: BlockStore) -> int:
    """The height a store with a base (state-synced or pruned) is verified from: the base, or the
    oldest held height after it whose state is still stored, when state pruning removed the
    base's. The stored state of that height is the one replay starts from."""
    # States below the state pruner's marker may be partly deleted (a prune step can stop mid-row),
    # so even a present root node proves nothing there; at and above it every state is whole.
    for height in range(max(stored.base, read_pruned_below(kv)), stored.height + 1):
        root = stored.get_state_root(height)
        if root is not None and kv.get(schema.state_node_key(root)) is not None:
            return height
    return stored.base


def prove_base(kv: KVStore, stored: BlockStore, genesis: Genesis,
               base: int | None = None) -> "tuple[VerifiedOffer, list[SetProof]]":
    """Prove a state-synced or pruned store's block ``base`` (default: its base) from genesis as state
    sync did: the set-change proofs it kept, then that block's certificate and receipts; its recorded
    state root must be the header's."""
    from node.core.chain import schedule_in
    from node.statesync.wire import Offer, SetProof, SyncProtocolError, verify_offer

    base = stored.base if base is None else base
    pair = stored.get_stored_pair(base)
    receipts = kv.get(schema.receipts_key(base))
    root = stored.get_state_root(base)
    if pair is None or receipts is None or root is None:
        raise ValidationError(f"the base block {base}, its certificate, receipts or state root is missing")
    proofs = []
    for start, keys in schedule_in(StateStore(kv, root), genesis).entries[1:]:
        if start > base + 1:
            break
        proof = stored.get_set_proof(start - 1)
        if proof is None:
            raise ValidationError(f"the proof of the validator-set change at height {start} is missing")
        proofs.append(SetProof(start, keys, proof[0], proof[1]))
    try:
        offer = verify_offer(Offer(base, pair[0], pair[1], receipts, tuple(proofs)), genesis)
    except SyncProtocolError as exc:
        raise ValidationError(str(exc)) from None
    if offer.state_root != root:
        raise ValidationError(f"the state root recorded for the base {base} is not its certified header's")
    return offer, proofs


def replay_from_base(kv: KVStore, stored: BlockStore, genesis: Genesis, base: int | None = None) -> Chain:
    """A state-synced store (base > 0) holds no block below its base: prove the base from genesis the way
    state sync did (the set-change proofs it kept, the base block's certificate and receipts), copy the
    base state into memory checking every trie node against its hash, and return a Chain opened there
    to replay the blocks after it. ValidationError says what does not verify."""
    offer, proofs = prove_base(kv, stored, genesis, base)
    root = offer.state_root
    memory = MemoryKV()
    ops: list[tuple[bytes, bytes | None]] = []
    stack = [root]
    while stack:
        node_hash = stack.pop()
        data = kv.get(schema.state_node_key(node_hash))
        if data is None:
            raise ValidationError(f"state node {node_hash.hex()} of the base state is missing")
        node = decode_node(node_hash, node_payload(data))  # CorruptionError unless it hashes to what its parent names
        ops.append((schema.state_node_key(node_hash), data))
        if type(node) is Branch:
            stack.extend([c for c in node.children if c] + ([node.here] if node.here else []))
        else:
            ops.append((schema.state_value_key(node.key), node.value))
    memory.write(ops + BlockStore.base_batch(genesis.genesis_hash, offer.block, offer.cert, offer.receipts,
                                            [(p.from_height - 1, p.header, p.cert) for p in proofs]), sync=False)
    return Chain(memory, genesis)


def check_state_at_head(kv: KVStore, stored: BlockStore, report: VerifyReport) -> None:
    """Prove the flat state table equal to the stored trie at the head's state root."""
    started = time.monotonic()
    try:
        root = stored.get_state_root(report.head)
        if root is None:
            raise ValidationError(f"the state root of the head {report.head} is missing")
        report.state_entries = StateStore(kv, root).check_flat_table()
    except CorruptionError as exc:
        report.bad_height, report.problem = report.head, str(exc)
        key = getattr(exc, "state_key", None)
        report.bad_state_key = None if key is None else to_hex(key)
    except ChainError as exc:
        report.bad_height, report.problem = report.head, str(exc)
    report.state_seconds = time.monotonic() - started


def verify_home(home: str, progress_factory: Callable[[int], Progress] | None = None) -> VerifyReport:
    """Open the stopped node's store and verify it; ``progress_factory(total)`` gives a per-block callback."""
    config, _key, genesis = load_home(home)
    data_dir = config.path("node", "data_dir")
    try:
        kv = LevelDBKV(data_dir, create=False)
    except ChainError as exc:
        raise StoreVerifyError(f"{exc} (verification needs the node stopped and its data directory present)") from None
    try:
        total = BlockStore(kv).height
        progress = progress_factory(total) if progress_factory else None
        return verify_store(kv, genesis, progress)
    finally:
        kv.close()
