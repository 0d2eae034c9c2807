"""Serving state sync to newcomers: snapshot offers and trie nodes, within a per-peer budget.

How it works: every node serves (validators and observers alike); nothing extra is
written for it. State-trie nodes are content-addressed (ledger.state), and pruning
(ledger.state_prune) keeps the states of the latest two snapshot heights, so a
snapshot is simply a height: the latest multiple of ``[statesync] snapshot_interval``
at or below the head (so peers offer the same height and a newcomer can fetch one
root from all of them), and one that was offered stays servable for another interval.
A height the store has pruned anyway (a smaller interval configured on a pruned
store) is not offered. Nodes go out as their encoding, without the stored birth height.

``offer`` builds an ``Offer`` from the block store: block h, its certificate and
receipts as stored, and the header + certificate before every validator-set change up
to h + 1 (``BlockStore.get_set_proof``, which also finds those a state-synced node
keeps below its base). ``answer_nodes`` reads the requested nodes one at a time as
stored, while the peer's byte bucket is out of debt and the answer is under
``MAX_NODES_ANSWER_BYTES``, charging each node's real size right after reading it, so
a peer gets at most ``serve_bytes_per_second`` (the catch-up budget's rate, its own
bucket) plus one answer, whatever it asks. Offers cost more reads and are rare, so they
have their own small bucket (``OFFERS_PER_SECOND``). Refusals return a reason that the
runtime reports to the transport (``note_drop``), which disconnects a peer that keeps
being refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ledger.storage.blockstore import BlockStore
from ledger.storage.kv import KVStore
from ledger.state_prune import read_pruned_below
from ledger.state_trie import node_payload
from ledger.storage.schema import receipts_key, state_node_key
from ledger.validator_set import ValidatorSchedule
from node.statesync.wire import MAX_NODES_ANSWER_BYTES, MAX_OFFER_SET_PROOFS, SNAPSHOT_INTERVAL, Nodes, Offer, SetProof
from p2p.limits import Clock, TokenBucket, TransportLimits

#: Offers one peer may ask for per second on average, and at once.
OFFERS_PER_SECOND = 0.5
OFFER_BURST = 4.0
#: Peers whose serving state is kept (newcomers come and go; the oldest is forgotten first).
MAX_SERVED_PEERS = 256

REASON_OFFER_BUDGET = "over_offer_budget"
REASON_NODE_BUDGET = "over_node_budget"
REASON_NO_SNAPSHOT = "no_snapshot"


def snapshot_height(head: int, interval: int) -> int:
    """The height offered by a node whose head is ``head``: the latest multiple of ``interval`` (0: none yet)."""
    return head - head % interval if interval > 0 else 0


class _PeerBudget:
    __slots__ = ("bytes", "offers")

    def __init__(self, limits: TransportLimits, clock: Clock) -> None:
        self.bytes = TokenBucket(limits.serve_bytes_per_second, limits.serve_byte_burst, clock)
        self.offers = TokenBucket(OFFERS_PER_SECOND, OFFER_BURST, clock)


class SnapshotServer:
    """Answers OfferRequests and NodesRequests from one node's store (see the module docstring)."""

    def __init__(self, limits: TransportLimits, kv: KVStore, blocks: BlockStore,
                 schedule: Callable[[], ValidatorSchedule], interval: int = SNAPSHOT_INTERVAL,
                 clock: Clock = time.monotonic) -> None:
        self.limits, self.kv, self.blocks, self.schedule = limits, kv, blocks, schedule
        self.interval = interval
        self._clock = clock
        self._peers: dict[bytes, _PeerBudget] = {}
        self.nodes_served = 0
        self.bytes_served = 0
        self.offers_served = 0

    def _budget(self, peer: bytes) -> _PeerBudget:
        budget = self._peers.get(peer)
        if budget is None:
            while len(self._peers) >= MAX_SERVED_PEERS:
                del self._peers[next(iter(self._peers))]
            budget = self._peers[peer] = _PeerBudget(self.limits, self._clock)
        return budget

    def may_serve_nodes(self, peer: bytes) -> bool:
        """Cheap check before a nodes request is decoded."""
        return self._budget(peer).bytes.has_tokens()

    def offer(self, peer: bytes) -> tuple[Offer | None, str]:
        """(the offer to send, "") or (None, refusal reason)."""
        if not self._budget(peer).offers.take(1):
            return None, REASON_OFFER_BUDGET
        height = snapshot_height(self.blocks.height, self.interval)
        if height < max(self.blocks.base, 1, read_pruned_below(self.kv)):
            return Offer(0), ""  # nothing to offer yet (or our base or pruning is above the snapshot point)
        block = self.blocks.get_stored_pair(height)
        receipts = self.kv.get(receipts_key(height))
        if block is None or receipts is None:
            return Offer(0), ""
        self.blocks.get_receipts(height)  # checks them against the header before they go out
        proofs = []
        for start, keys in self.schedule().entries[1:]:
            if start > height + 1:
                break
            pair = self.blocks.get_set_proof(start - 1)
            if pair is None:
                return Offer(0), ""  # cannot prove the set chain to this height
            proofs.append(SetProof(start, keys, pair[0], pair[1]))
        if len(proofs) > MAX_OFFER_SET_PROOFS:
            return Offer(0), ""
        self.offers_served += 1
        return Offer(height, block[0], block[1], receipts, tuple(proofs)), ""

    def answer_nodes(self, peer: bytes, hashes: tuple[bytes, ...]) -> tuple[Nodes | None, str]:
        """(the stored bytes of a prefix of ``hashes``, "") or (None, refusal reason)."""
        budget = self._budget(peer).bytes
        items: list[bytes] = []
        size = 0
        for node_hash in hashes:
            if not budget.has_tokens():
                break
            stored = self.kv.get(state_node_key(node_hash))
            data = node_payload(stored) if stored else b""
            if items and size + len(data) > MAX_NODES_ANSWER_BYTES:
                break
            budget.charge(len(data) + 1)
            items.append(data)
            size += len(data)
        if not items:
            return None, REASON_NODE_BUDGET
        self.nodes_served += len(items)
        self.bytes_served += size
        return Nodes(tuple(items)), ""
