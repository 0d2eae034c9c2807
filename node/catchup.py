"""Serving catch-up blocks to peers within a per-peer budget, and classifying peer frames.

How this works: a BLOCK-REQUEST is cheap to send and expensive to answer (up to 32
blocks read from disk and sent), so answering is budgeted per peer, and every check
happens before the work it protects:

1. ``frame_class`` tells the transport, from a frame's first bytes and without
   decoding it, whether it is consensus, catch-up or gossip, so each class is charged
   to its own per-peer budget (``p2p.budgets``) and a flood of block requests cannot
   use up the budget of the same peer's votes.
2. ``CatchupServer.may_serve`` is checked before a block request is even decoded: a
   peer whose serving budget is spent is refused at the cost of two bucket reads.
3. ``CatchupServer.answer`` refuses requests above our head, and heights already sent
   to the same peer within ``serve_dedup_window_seconds`` (an honest node re-asks only
   after its own request timeout; a flood re-asks at once), then reads one block at a
   time, each only while the peer's byte and block buckets are out of debt, and
   charges each block's real size right after reading it. So a peer is served at most
   ``serve_bytes_per_second`` / ``serve_blocks_per_second`` plus one block, whatever it asks.

``transport_limits`` maps the operator's ``[p2p]`` config keys onto ``TransportLimits``
(bursts are twice the configured per-second rates).

Blocks are served as the stored bytes (``BlockStore.get_stored_pair``, which checks
them as every read does, so a damaged block halts the node instead of going out),
never decoded and re-encoded. Each refusal
returns a reason that the runtime counts in
``shopchain_p2p_dropped_messages_total{reason}`` and reports to the transport, which
disconnects and bans a peer that keeps being refused. A request for heights below this
node's base (blocks pruned by ``[storage] retain_blocks``, or before a state-sync
snapshot) is not refused as misbehaviour: the peer cannot know our base. It gets no
blocks, and its catch-up re-asks the request of another peer once it times out.
"""

from __future__ import annotations

import ssl

import time
from typing import Callable, Mapping

from consensus.messages import TAG_BLOCK_REQUEST, TAG_BLOCKS
from ledger import encoding
from node.ops.config import ConfigError, NodeConfig
from p2p.limits import CLASS_CATCHUP, CLASS_GOSSIP, Clock, LimitsError, TokenBucket, TransportLimits

#: A lagging node re-asks another peer for blocks it asked for this long ago (the
#: consensus core's catch-up counts it in ticks: ceil(this / tick_ms)). Longer than the
#: serving side's duplicate window, so an honest node's re-ask is never refused.
CATCHUP_REQUEST_TIMEOUT_MS = 2000

#: Refusal reasons (the ``reason`` label of the drop metric).
REASON_SERVE_BUDGET = "over_serve_budget"
REASON_DUPLICATE = "duplicate_block_request"
REASON_BEYOND_HEAD = "block_request_beyond_head"
REASON_NOTHING = "block_request_unservable"

#: A canonical array of n items starts with the byte 0x90 + n (n < 16), then its first
#: item; every catch-up message starts with its tag, so these prefixes identify them.
_BLOCK_REQUEST_PREFIX = bytes([0x93]) + encoding.encode(TAG_BLOCK_REQUEST)
_BLOCKS_PREFIX = bytes([0x92]) + encoding.encode(TAG_BLOCKS)
_TAG_BLOCKS_ENCODED = encoding.Encoded(encoding.encode(TAG_BLOCKS))

ReadPair = Callable[[int], "tuple[bytes, bytes] | None"]


def is_block_request(body: bytes) -> bool:
    """Whether a consensus-envelope body is a BLOCK-REQUEST (by its prefix, not decoded)."""
    return body.startswith(_BLOCK_REQUEST_PREFIX)


def frame_class(data: bytes, envelopes: Mapping[int, str], consensus_envelope: int) -> str:
    """The budget class of one peer frame: ``envelopes`` maps the first byte to a class;
    inside the consensus envelope, BLOCK-REQUEST and BLOCKS are catch-up. Unknown
    envelopes count as gossip (the runtime drops them at once)."""
    if not data:
        return CLASS_GOSSIP
    kind = data[0]
    if kind == consensus_envelope and (data.startswith(_BLOCK_REQUEST_PREFIX, 1) or data.startswith(_BLOCKS_PREFIX, 1)):
        return CLASS_CATCHUP
    return envelopes.get(kind, CLASS_GOSSIP)


def tls_contexts(cfg: NodeConfig) -> tuple[ssl.SSLContext | None, ssl.SSLContext | None]:
    """(server, client) TLS contexts of ``[p2p] tls`` (None, None when it is off)."""
    if not cfg.get("p2p", "tls"):
        return None, None
    from p2p.tls import client_ssl_context, server_ssl_context

    paths = [cfg.path("p2p", n) for n in ("ca_cert", "cert", "cert_key")]
    return server_ssl_context(*paths), client_ssl_context(*paths)


def transport_limits(cfg: NodeConfig) -> TransportLimits:
    """The transport limits of this node: module defaults, tuned by the ``[p2p]`` keys."""
    def rate(name: str) -> float:
        return float(cfg.get("p2p", name))
    try:
        return TransportLimits(
            pre_auth_timeout_seconds=cfg.get("p2p", "pre_auth_timeout_ms") / 1000,
            handshake_timeout_seconds=cfg.get("p2p", "handshake_timeout_ms") / 1000,
            connect_timeout_seconds=cfg.get("p2p", "connect_timeout_ms") / 1000,
            backoff_cap_seconds=cfg.get("p2p", "redial_max_ms") / 1000,
            max_unauthenticated_connections=cfg.get("p2p", "max_unauthenticated_connections"),
            max_unauthenticated_per_address=cfg.get("p2p", "max_unauthenticated_per_address"),
            flood_ban_seconds=cfg.get("p2p", "flood_ban_ms") / 1000,
            consensus_messages_per_second=rate("consensus_messages_per_second"),
            consensus_message_burst=2 * rate("consensus_messages_per_second"),
            catchup_messages_per_second=rate("catchup_messages_per_second"),
            catchup_message_burst=2 * rate("catchup_messages_per_second"),
            gossip_messages_per_second=rate("gossip_messages_per_second"),
            gossip_message_burst=2 * rate("gossip_messages_per_second"),
            serve_bytes_per_second=rate("serve_bytes_per_second"),
            serve_byte_burst=2 * rate("serve_bytes_per_second"),
            serve_blocks_per_second=rate("serve_blocks_per_second"),
            serve_block_burst=2 * rate("serve_blocks_per_second"))
    except LimitsError as exc:
        raise ConfigError(f"[p2p]: {exc}") from None


def encode_blocks(pairs: list[tuple[bytes, bytes]]) -> bytes:
    """The canonical BLOCKS message of already-encoded (block, certificate) pairs; the same
    bytes ``consensus.Blocks(...).encode()`` gives for the decoded values."""
    items = [encoding.encode_array_of_encoded([block, cert]) for block, cert in pairs]
    return encoding.encode_array([_TAG_BLOCKS_ENCODED, encoding.Encoded(encoding.encode_array_of_encoded(items))])


class _PeerServing:
    __slots__ = ("bytes", "blocks", "recent")

    def __init__(self, limits: TransportLimits, clock: Clock) -> None:
        self.bytes = TokenBucket(limits.serve_bytes_per_second, limits.serve_byte_burst, clock)
        self.blocks = TokenBucket(limits.serve_blocks_per_second, limits.serve_block_burst, clock)
        #: height -> when it was last sent to this peer; entries older than the window are
        #: pruned, so it holds at most what the block budget lets through in one window.
        self.recent: dict[int, float] = {}

    def within_budget(self) -> bool:
        return self.bytes.has_tokens() and self.blocks.has_tokens()

    def prune(self, now: float, window: float) -> None:
        if self.recent:
            self.recent = {h: t for h, t in self.recent.items() if now - t < window}


class CatchupServer:
    """Answers BLOCK-REQUESTs within each peer's serving budget (see the module docstring)."""

    #: The transport budget class its refusals are reported under.
    budget_class = CLASS_CATCHUP

    def __init__(self, limits: TransportLimits, read_pair: ReadPair, max_answer_bytes: int,
                 clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self._read_pair = read_pair
        self.max_answer_bytes = max_answer_bytes
        self._clock = clock
        self._peers: dict[bytes, _PeerServing] = {}
        self.blocks_served = 0
        self.bytes_served = 0
        #: Requests for heights this node no longer holds (block retention), answered with nothing.
        self.below_base_requests = 0

    def _state(self, peer: bytes) -> _PeerServing:
        state = self._peers.get(peer)
        if state is None:
            state = self._peers[peer] = _PeerServing(self.limits, self._clock)
        return state

    def forget(self, keep: set[bytes]) -> None:
        """Drop the state of peers no longer in the validator set."""
        self._peers = {k: v for k, v in self._peers.items() if k in keep}

    def may_serve(self, peer: bytes) -> bool:
        """Cheap check before a request is decoded: is anything left of this peer's budget?"""
        return self._state(peer).within_budget()

    def refuse_before_decoding(self, peer: bytes, body: bytes) -> str:
        """For a consensus-envelope body: the refusal reason if it is a block request this
        peer has no serving budget left for, else "" (decode and handle it)."""
        if is_block_request(body) and not self.may_serve(peer):
            return REASON_SERVE_BUDGET
        return ""

    def answer(self, peer: bytes, from_height: int, count: int, head: int) -> tuple[bytes | None, str]:
        """(encoded BLOCKS message, "") for what may be served now, or (None, refusal reason)."""
        if from_height > head or from_height < 1:
            return None, REASON_BEYOND_HEAD
        state = self._state(peer)
        now = self._clock()
        state.prune(now, self.limits.serve_dedup_window_seconds)
        if from_height in state.recent:
            return None, REASON_DUPLICATE
        pairs: list[tuple[bytes, bytes]] = []
        size = 0
        refusal = REASON_NOTHING
        for height in range(from_height, min(head, from_height + count - 1) + 1):
            if height in state.recent:
                break  # overlaps what this peer got moments ago: it has the rest
            if not state.within_budget():
                refusal = REASON_SERVE_BUDGET
                break
            pair = self._read_pair(height)
            if pair is None:
                if not pairs:
                    # At or below our head yet not held: below our base (pruned, or before the snapshot
                    # we state-synced from). The peer cannot know our base, so this is no offence: answer
                    # nothing and let its request time out to another peer (consensus.catchup re-asks one
                    # that is not us).
                    self.below_base_requests += 1
                    return None, ""
                break
            n = len(pair[0]) + len(pair[1])
            if pairs and size + n > self.max_answer_bytes:
                break
            state.bytes.charge(n)
            state.blocks.charge(1)
            state.recent[height] = now
            pairs.append(pair)
            size += n
        if not pairs:
            return None, refusal
        self.blocks_served += len(pairs)
        self.bytes_served += size
        return encode_blocks(pairs), ""
