"""Fetching a certified state trie from peers into an empty store, crash-safely.

How it works: ``StateFetcher`` is the newcomer's side, with no sockets and no clock
(the runner, node.statesync.run, passes ``now`` and does the I/O), so it is tested
deterministically. ``begin`` takes an offer proven from genesis (wire.verify_offer)
and records it under ``schema.STATESYNC_KEY`` (synced) before anything else is
written. From then on:

* ``requests`` hands out batches of up to ``MAX_NODES_PER_REQUEST`` missing node
  hashes, one request outstanding per peer and at most ``MAX_INFLIGHT_REQUESTS`` in
  all; a request unanswered for ``request_timeout_s`` goes back to the frontier and
  to another peer. The frontier is a stack (depth first from the certified root), so
  it stays a few thousand hashes however big the state.
* ``on_nodes`` checks every returned node against the hash it was asked for
  (``ledger.state_trie.decode_node``: a branch hashes as a branch, a leaf as a leaf).
  The root is the certified header's state root, and each branch names its children
  by hash, so every chunk is verified against the certified root. One bad node, an
  answer longer than asked or one nobody asked for: the whole answer is refused, its
  hashes go back to the frontier and the peer is never asked again (the runner also
  reports it to the transport). An empty item means the peer lacks that node: it
  goes back to the frontier and that peer is not asked again for this snapshot.
  Accepted nodes are written in one batch per answer with, for each leaf, its entry
  of the flat value table (``ledger.state``), then their children join the frontier.
* Written progress survives a crash: a node is only written once verified, and
  before its children are asked for, so after a restart ``resume`` rebuilds the
  frontier by walking what is present from the root (re-checking each node's hash).
* ``finish`` runs once nothing is missing: the flat table is proven equal to the
  trie (``StateStore.check_flat_table``, an authenticated walk of every branch), the
  validator schedule read from the fetched state must name the sets the certified
  header names, and then ONE synced batch writes block h as the store's base and
  head (block, certificate, receipts, indexes, state root, ``BASE_KEY``, the set
  proofs) and deletes the progress record. Until that batch, the store has no
  genesis hash and a node refuses to open it (node.core.chain), so a half-fetched
  state is never taken for a complete one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.errors import ChainError, CorruptionError
from ledger.genesis import Genesis
from ledger.state import StateStore
from ledger.state_proof import EMPTY_ROOT
from ledger.state_trie import Branch, decode_node, node_payload, stored_node
from ledger.storage.blockstore import BlockStore
from ledger.storage.kv import KVStore
from ledger.storage.schema import STATESYNC_KEY, encode_height, state_node_key, state_value_key
from ledger.validator_set import check_header_sets
from node.core.chain import schedule_in
from node.statesync.wire import (
    MAX_NODES_PER_REQUEST,
    REQUEST_TIMEOUT_S,
    Nodes,
    NodesRequest,
    Offer,
    VerifiedOffer,
    decode_message,
    verify_offer,
)

#: Node requests outstanding at once across all peers (one per peer at most).
MAX_INFLIGHT_REQUESTS = 8
#: Most hashes the frontier may hold; depth-first it holds about 16 per trie level per
#: request in flight, so reaching this means a malformed trie, not a big state.
MAX_FRONTIER_HASHES = 1_000_000

REASON_BAD_NODE = "bad_state_node"
#: Why a peer that answered honestly but lacked a node is not asked again (it may catch up: see ``forgive``).
REASON_LACKS = "lacks nodes of this snapshot"
REASON_UNSOLICITED = "unsolicited_state_nodes"
REASON_TOO_MANY = "state_nodes_not_asked_for"


class StateSyncError(ChainError):
    """State sync cannot go on; the message says why and what to do."""


@dataclass
class FetchStats:
    nodes: int = 0
    bytes: int = 0
    leaves: int = 0
    refused_answers: int = 0
    timeouts: int = 0
    missing: int = 0


@dataclass
class StateFetcher:
    kv: KVStore
    genesis: Genesis
    request_timeout_s: float = REQUEST_TIMEOUT_S
    target: VerifiedOffer | None = None
    frontier: list[bytes] = field(default_factory=list)
    inflight: dict[bytes, tuple[tuple[bytes, ...], float]] = field(default_factory=dict)  # peer -> (hashes, sent)
    excluded: dict[bytes, str] = field(default_factory=dict)  # peer -> why it is not asked any more
    stats: FetchStats = field(default_factory=FetchStats)
    _pending: set[bytes] = field(default_factory=set)  # hashes in the frontier or in flight

    # --- starting and resuming -----------------------------------------------------

    def begin(self, offer: VerifiedOffer) -> None:
        """Record ``offer`` as the snapshot being fetched (synced), then ask for its root."""
        if self.kv.get(STATESYNC_KEY) is not None or self.kv.get(state_node_key(offer.state_root)) is not None:
            raise StateSyncError("state sync asked to begin on a store that already holds a sync in progress")
        self.kv.write([(STATESYNC_KEY, offer.offer.encode())], sync=True)
        self.target = offer
        self._push(offer.state_root)

    def resume(self) -> bool:
        """Continue a sync a previous run recorded; False if there is none. Rebuilds the frontier
        by walking the nodes already present from the root, checking each against its hash."""
        raw = self.kv.get(STATESYNC_KEY)
        if raw is None:
            return False
        message = decode_message(raw)
        if not isinstance(message, Offer):
            raise StateSyncError("the recorded state-sync progress is not an offer; empty the data directory")
        self.target = verify_offer(message, self.genesis)
        stack = [self.target.state_root]
        while stack:
            node_hash = stack.pop()
            data = self.kv.get(state_node_key(node_hash))
            if data is None:
                self._push(node_hash)
                continue
            try:
                node = decode_node(node_hash, node_payload(data))
            except CorruptionError:
                self._push(node_hash)  # damaged on disk: fetch it again (the write overwrites it)
                continue
            stack.extend(self._children(node))
        return True

    @staticmethod
    def _children(node: object) -> list[bytes]:
        if type(node) is not Branch:
            return []
        out = [child for child in node.children if child]
        if node.here:
            out.append(node.here)
        return out

    def _push(self, node_hash: bytes) -> None:
        if node_hash in self._pending or node_hash == EMPTY_ROOT:
            return
        if len(self.frontier) >= MAX_FRONTIER_HASHES:
            raise StateSyncError(f"the state trie's frontier exceeds {MAX_FRONTIER_HASHES} hashes; the snapshot is "
                                 f"malformed")
        self.frontier.append(node_hash)
        self._pending.add(node_hash)

    # --- requests and answers -----------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.target is not None and not self.frontier and not self.inflight

    def usable(self, peers: list[bytes]) -> list[bytes]:
        return [p for p in peers if p not in self.excluded]

    def forgive(self) -> int:
        """Ask again the peers that only lacked nodes (never those that sent bad ones); returns how many."""
        lacking = [p for p, why in self.excluded.items() if why == REASON_LACKS]
        for peer in lacking:
            del self.excluded[peer]
        return len(lacking)

    def requests(self, peers: list[bytes], now: float) -> list[tuple[bytes, NodesRequest]]:
        """The requests to send now to ``peers`` (the connected ones)."""
        for peer, (hashes, sent) in list(self.inflight.items()):
            if now - sent >= self.request_timeout_s or peer not in peers:
                del self.inflight[peer]
                self._requeue(hashes)
                self.stats.timeouts += 1
        out: list[tuple[bytes, NodesRequest]] = []
        for peer in self.usable(peers):
            if not self.frontier or len(self.inflight) >= MAX_INFLIGHT_REQUESTS:
                break
            if peer in self.inflight:
                continue
            batch = tuple(self.frontier[-MAX_NODES_PER_REQUEST:][::-1])
            del self.frontier[-len(batch):]
            self.inflight[peer] = (batch, now)
            out.append((peer, NodesRequest(batch)))
        return out

    def _requeue(self, hashes: tuple[bytes, ...]) -> None:
        for node_hash in reversed(hashes):
            self.frontier.append(node_hash)  # still in _pending

    def on_nodes(self, peer: bytes, answer: Nodes) -> str:
        """Take an answer; "" if accepted, else the refusal reason (the peer is excluded)."""
        request = self.inflight.pop(peer, None)
        if request is None:
            return self._refuse(peer, REASON_UNSOLICITED, ())
        hashes = request[0]
        if len(answer.items) > len(hashes):
            return self._refuse(peer, REASON_TOO_MANY, hashes)
        nodes = []
        for node_hash, data in zip(hashes, answer.items):
            if not data:
                continue
            try:
                nodes.append((node_hash, data, decode_node(node_hash, data)))
            except CorruptionError:
                return self._refuse(peer, REASON_BAD_NODE, hashes)
        batch: list[tuple[bytes, bytes | None]] = []
        birth = encode_height(self.target.height)  # type: ignore[union-attr]  # the store starts at the snapshot
        for node_hash, data, node in nodes:
            batch.append((state_node_key(node_hash), stored_node(birth, data)))
            if type(node) is not Branch:
                batch.append((state_value_key(node.key), node.value))  # type: ignore[union-attr]
                self.stats.leaves += 1
            self.stats.nodes += 1
            self.stats.bytes += len(data)
        if batch:
            self.kv.write(batch, sync=False)  # LevelDB keeps a prefix of unsynced writes: parents before children
        answered = set()
        for node_hash, _data, node in nodes:
            answered.add(node_hash)
            self._pending.discard(node_hash)
            for child in self._children(node):
                self._push(child)
        lacking = [h for h in hashes if h not in answered]
        if any(not data for data in answer.items):
            self.stats.missing += 1
            self.excluded[peer] = REASON_LACKS
        self._requeue(tuple(lacking))
        return ""

    def _refuse(self, peer: bytes, reason: str, hashes: tuple[bytes, ...]) -> str:
        self.stats.refused_answers += 1
        self.excluded[peer] = reason
        self._requeue(hashes)
        return reason

    # --- completion ---------------------------------------------------------------------

    def finish(self) -> VerifiedOffer:
        """Prove the fetched state complete and make the store start at the snapshot block (one synced batch)."""
        target = self.target
        if target is None or not self.done:
            raise StateSyncError("state sync asked to finish before every node of the snapshot is present")
        try:
            state = StateStore(self.kv, target.state_root)
            state.check_flat_table()
            schedule = schedule_in(state, self.genesis)
            check_header_sets(target.block.header, target.cert, schedule, self.genesis.chain_id)
        except ChainError as exc:
            raise StateSyncError(f"the fetched state of height {target.height} does not verify: {exc}; empty the "
                                 f"data directory and sync again") from None
        proofs = [(p.from_height - 1, p.header, p.cert) for p in target.offer.set_proofs]
        batch = BlockStore.base_batch(self.genesis.genesis_hash, target.block, target.cert, target.receipts, proofs)
        batch.append((STATESYNC_KEY, None))
        self.kv.write(batch, sync=True)
        return target


def encode_progress(fetcher: StateFetcher) -> dict:
    """A small JSON-able summary of a fetch, for logs."""
    target = fetcher.target
    return {"height": target.height if target else None, "nodes": fetcher.stats.nodes, "bytes": fetcher.stats.bytes,
            "frontier": len(fetcher.frontier), "inflight": len(fetcher.inflight),
            "refused": fetcher.stats.refused_answers, "excluded": len(fetcher.excluded)}

