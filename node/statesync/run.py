"""Running a state sync over p2p before the node starts.

How it works: ``run_node`` (node.service) calls ``state_sync_if_needed`` when
``[statesync] enable`` is set. With a store that already holds a chain it does
nothing; otherwise it opens the store, starts the p2p transport on the node's own
address and key (the validators accept it as they accept any observer they list in
``[p2p] peer_addresses``) and:

1. resumes a sync recorded by an earlier run, or asks every connected peer for its
   snapshot offer, waits ``discovery_timeout_ms`` (or until every connected peer has
   answered), proves each offer from genesis (wire.verify_offer) and picks the
   highest; a peer whose offer does not verify is reported to the transport and not
   used. If every answer says "no snapshot yet" (the chain is shorter than one
   snapshot interval) it returns and the node syncs from genesis as usual;
2. drives the ``StateFetcher`` (node.statesync.fetch) until the trie is complete:
   requests go out whenever an answer comes in and every ``POLL_S``; a refused
   answer is reported to the transport (``note_drop``, which disconnects a persistent
   offender) and its nodes are asked of another peer;
3. proves the state complete and writes the base block (``StateFetcher.finish``),
   stops the transport and closes the store. The node then opens the store at the
   base height and its ordinary catch-up fetches the blocks after it.

A crash anywhere leaves either the progress record (resumed by the next start) or
the finished store; never a store a node opens as if it were complete.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ledger.crypto import SigningKey
from ledger.genesis import Genesis
from ledger.storage.leveldb import LevelDBKV
from ledger.storage.schema import GENESIS_HASH_KEY
from node.catchup import frame_class, tls_contexts, transport_limits
from node.envelopes import ENVELOPE_CLASSES, ENVELOPE_CONSENSUS, ENVELOPE_STATESYNC
from node.ops.config import NodeConfig, parse_peer_addresses
from node.statesync.fetch import StateFetcher, StateSyncError, encode_progress
from node.statesync.wire import (
    Nodes,
    Offer,
    OfferRequest,
    SyncProtocolError,
    VerifiedOffer,
    decode_message,
    verify_offer,
)
from p2p.limits import CLASS_CATCHUP
from p2p.transport import Transport

log = logging.getLogger("shopchain.statesync")

#: How often the fetch loop re-checks timeouts and sends requests when no answer arrives.
POLL_S = 0.05
#: Seconds between progress log lines.
PROGRESS_LOG_S = 2.0
#: Longest a newcomer waits for its first peer connection before it says so in the log (it keeps waiting).
CONNECT_WARN_S = 10.0
#: Offers kept per discovery round (one per peer; more peers than this are not asked).
MAX_OFFERS = 64


def needs_state_sync(config: NodeConfig) -> bool:
    """Whether this node should state-sync: enabled, and its store is empty or holds a sync in progress."""
    if not config.get("statesync", "enable"):
        return False
    kv = LevelDBKV(config.path("node", "data_dir"))
    try:
        return kv.get(GENESIS_HASH_KEY) is None
    finally:
        kv.close()


class StateSyncRunner:
    """One state sync over p2p (see the module docstring)."""

    def __init__(self, config: NodeConfig, key: SigningKey, genesis: Genesis) -> None:
        self.config, self.key, self.genesis = config, key, genesis
        self.kv = LevelDBKV(config.path("node", "data_dir"))
        self.fetcher = StateFetcher(self.kv, genesis, config.get("statesync", "request_timeout_ms") / 1000)
        self.offers: dict[bytes, Offer] = {}
        self.transport: Transport | None = None
        self._wake = asyncio.Event()

    def _peers(self) -> dict[bytes, str]:
        peers = {v.public_key: v.p2p_address for v in self.genesis.validators if v.public_key != self.key.public_key}
        peers.update(parse_peer_addresses(self.config.get("p2p", "peer_addresses")))
        return peers

    def _make_transport(self) -> Transport:
        cfg = self.config
        ssl_server, ssl_client = tls_contexts(cfg)
        host, port = cfg.address("p2p")
        # The validators' consensus traffic keeps arriving meanwhile: charged to the same classes
        # a running node charges it to, so it never uses up the budget of the state-sync answers.
        return Transport(self.key, self.genesis.chain_id, host, port, self._peers(), self._on_message,
                         ssl_server=ssl_server, ssl_client=ssl_client, limits=transport_limits(cfg),
                         classify=lambda data: frame_class(data, ENVELOPE_CLASSES, ENVELOPE_CONSENSUS))

    def _send(self, peer: bytes, message: OfferRequest | object) -> None:
        if self.transport is not None:
            self.transport.send(peer, bytes([ENVELOPE_STATESYNC]) + message.encode())  # type: ignore[attr-defined]

    def _refuse(self, peer: bytes, reason: str, detail: str) -> None:
        log.warning("state sync: refused a peer's answer", extra={"peer": peer.hex()[:16], "reason": reason,
                                                                  "detail": detail[:200]})
        if self.transport is not None:
            self.transport.note_drop(peer, CLASS_CATCHUP, reason)

    def _on_message(self, peer: bytes, data: bytes) -> None:
        if data[:1] != bytes([ENVELOPE_STATESYNC]):
            return  # consensus and gossip from the validators: not for a node that is still syncing
        try:
            message = decode_message(data[1:])
        except SyncProtocolError as exc:
            self._refuse(peer, "bad_statesync_message", str(exc))
            return
        if isinstance(message, Offer):
            if peer in self.offers or len(self.offers) < MAX_OFFERS:
                self.offers[peer] = message
        elif isinstance(message, Nodes):
            reason = self.fetcher.on_nodes(peer, message)
            if reason:
                self._refuse(peer, reason, "an answer with a node that does not hash to what was asked, or unasked")
        self._wake.set()

    async def _discover(self, transport: Transport) -> VerifiedOffer | None:
        """The highest offer that verifies; None if every answering peer has no snapshot yet."""
        discovery_s = self.config.get("statesync", "discovery_timeout_ms") / 1000
        started = time.monotonic()
        while True:
            await transport.wait_connected(timeout=discovery_s)
            connected = transport.connected_peers()
            if not connected:
                if time.monotonic() - started > CONNECT_WARN_S:
                    log.warning("state sync: no peer connected yet; check [p2p] peer_addresses here and that the "
                                "validators list this node's key in theirs", extra={"peers": len(self._peers())})
                    started = time.monotonic()
                continue
            self.offers.clear()
            for peer in connected[:MAX_OFFERS]:
                self._send(peer, OfferRequest())
            deadline = time.monotonic() + discovery_s
            while time.monotonic() < deadline and not all(p in self.offers for p in transport.connected_peers()):
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    break
            best: VerifiedOffer | None = None
            for peer, offer in self.offers.items():
                if offer.height == 0:
                    continue
                try:
                    verified = verify_offer(offer, self.genesis)
                except SyncProtocolError as exc:
                    self._refuse(peer, "bad_snapshot_offer", str(exc))
                    continue
                if best is None or verified.height > best.height:
                    best = verified
            if best is not None:
                return best
            if self.offers:
                return None  # peers answered, none has a snapshot: the chain is young; sync from genesis
            log.info("state sync: no offer yet, asking again", extra={"connected": len(connected)})

    async def _fetch(self, transport: Transport) -> None:
        last_log = time.monotonic()
        while not self.fetcher.done:
            connected = transport.connected_peers()
            if connected and not self.fetcher.usable(connected) and not self.fetcher.inflight:
                forgiven = self.fetcher.forgive()
                if forgiven or time.monotonic() - last_log > PROGRESS_LOG_S:
                    log.warning("state sync: every connected peer is excluded; asking again those that only lacked "
                                "nodes (a peer that sent a bad node never is)",
                                extra={"forgiven": forgiven,
                                       "excluded": {k.hex()[:16]: v for k, v in self.fetcher.excluded.items()}})
            for peer, request in self.fetcher.requests(connected, time.monotonic()):
                self._send(peer, request)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_S)
            except TimeoutError:
                pass
            if time.monotonic() - last_log > PROGRESS_LOG_S:
                last_log = time.monotonic()
                log.info("state sync progress", extra=encode_progress(self.fetcher))

    async def run(self) -> VerifiedOffer | None:
        """Sync the state; returns the snapshot installed, or None when the node should sync from genesis."""
        started = time.monotonic()
        self.transport = transport = self._make_transport()
        try:
            await transport.start()
            if self.fetcher.resume():
                log.info("state sync: resuming", extra=encode_progress(self.fetcher))
            else:
                offer = await self._discover(transport)
                if offer is None:
                    log.info("state sync: no peer has a snapshot yet; syncing from genesis")
                    return None
                self.fetcher.begin(offer)
                log.info("state sync: fetching the state", extra={"height": offer.height,
                                                                 "state_root": offer.state_root.hex()})
            await self._fetch(transport)
            target = self.fetcher.finish()
            log.info("state sync complete", extra={**encode_progress(self.fetcher),
                                                   "seconds": round(time.monotonic() - started, 3)})
            return target
        finally:
            await transport.stop()
            self.kv.close()


async def state_sync_if_needed(config: NodeConfig, key: SigningKey, genesis: Genesis) -> VerifiedOffer | None:
    """Run a state sync when ``[statesync] enable`` is set and the store holds no chain yet."""
    if not needs_state_sync(config):
        return None
    try:
        return await StateSyncRunner(config, key, genesis).run()
    except SyncProtocolError as exc:
        raise StateSyncError(f"state sync failed: {exc}") from None

