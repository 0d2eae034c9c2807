"""The node runtime: wires the node core, p2p, RPC and metrics on one event loop.

How it works: everything runs on one asyncio loop, so the core (node/core/engine.py:
chain, mempool, consensus records and replica, and the Ready loop) is only ever
touched by one task at a time and needs no locks. This module only connects it to the
world: peer frames (``_on_peer_message``) go to the core's ``step``, the gossip wing
(node/gossip.py) or the proposer's preview check; the tick timer (``_tick_loop``, every
``tick_ms``) calls the core's ``tick`` with the peers the transport cannot reach; the
core's outputs come back through the ``CoreHost`` callbacks below (send, serve,
asked_to_propose, committed, on_halt). When the core asks for a block, node/proposer.py
decides when to build it (``batch_wait_ms``, ``empty_block_interval_ms``, previews).
RPC handlers read the node through node/reads.py's NodeView, never this object.

Peer messages carry a one-byte envelope: consensus messages, a batch of gossiped raw
transactions, a proposal preview (node.core.preview), a sealed mailbox envelope
(node/mailbox.py: admitted like a client's, broadcast once when new here, expired
ones swept every tick), or state sync (node.statesync:
this node serves snapshot offers and trie nodes to newcomers; ``run_node`` first runs
a newcomer's own state sync when ``[statesync] enable`` is set on an empty store).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

from consensus import CachingVerifier, ProposeRequest, decode_message, encode_message
from ledger.errors import ChainError, DecodeError, StorageError
from ledger.hexfmt import to_hex
from ledger.storage.leveldb import LevelDBKV
from ledger.types import Block, CommitCertificate, SignedTx
from node.catchup import CATCHUP_REQUEST_TIMEOUT_MS, CatchupServer, frame_class, tls_contexts, transport_limits
from node.core.chain import BlockLimits
from node.core.engine import CoreSettings, NodeCore
from node.core.executor import BlockOutcome
from node.core.mempool import MempoolError, MempoolLimits
from node.core.pacing import BlockSizer
from node.core.retention import BlockRetention
from node.envelopes import (ENVELOPE_CLASSES, ENVELOPE_CONSENSUS, ENVELOPE_MAILBOX, ENVELOPE_PREVIEW,
                            ENVELOPE_STATESYNC, ENVELOPE_TXS)
from node.gossip import Gossip
from node.mailbox import Mailbox, MailboxError
from node.indexer.runner import IndexerThread, Indexer, StoreSource
from node.indexer.sink import IndexerError, open_sink
from node.ops.config import ConfigError, index_db_url, parse_peer_addresses, rpc_limits
from node.ops.home import load_home
from node.ops.logs import setup_logging
from node.ops.metrics import new_registry
from node.process import event_loop_factory, listen_error
from node.proposer import Proposer, now_ms
from node.reads import NodeReads, attach_metrics
from node.rpc.explorer import add_explorer_routes
from node.rpc.methods import TOPIC_BLOCKS, TOPIC_EVENTS, event_matches, make_routes
from node.rpc.server import RpcServer
from node.rpc.views import block_json, value_to_json
from node.statesync.run import state_sync_if_needed
from node.statesync.serve import REASON_NODE_BUDGET, SnapshotServer
from node.statesync.wire import NODES_REQUEST_PREFIX, NodesRequest, OfferRequest, SyncProtocolError
from node.statesync.wire import decode_message as decode_statesync
from p2p.limits import CLASS_CATCHUP
from p2p.transport import Transport

log = logging.getLogger("shopchain.node")

#: Most blocks sent in one catch-up answer (also capped by bytes below).
MAX_SERVE_BLOCKS = 32
#: Most bytes of blocks in one catch-up answer (below the p2p frame limit).
MAX_SERVE_BYTES = 4 * 1024 * 1024


class Node:
    """One validator: open with ``Node(home)``, run with ``await node.run()``."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.config, self.key, self.genesis = load_home(home)
        cfg = self.config
        self.me = self.key.public_key
        self.node_id = f"{cfg.get('node', 'moniker')}/{self.me.hex()[:8]}"
        self.configured_peers = self._configured_peers()  # a bad entry is refused before the store opens
        self.kv = LevelDBKV(cfg.path("node", "data_dir"))
        self.sync_writes = cfg.get("storage", "sync")
        settings = CoreSettings(
            BlockLimits(cfg.get("consensus", "max_block_txs"), cfg.get("consensus", "max_block_bytes"),
                        cfg.get("consensus", "max_block_gas")),
            MempoolLimits(max_txs=cfg.get("mempool", "max_txs"), max_per_sender=cfg.get("mempool", "max_per_sender"),
                          nonce_window=cfg.get("mempool", "nonce_window"),
                          max_args_bytes=cfg.get("mempool", "max_args_bytes"),
                          max_queue_ms=cfg.get("mempool", "max_queue_ms")),
            view_timeout_ticks=cfg.get("consensus", "view_timeout_ticks"),
            catchup_timeout_ticks=-(-CATCHUP_REQUEST_TIMEOUT_MS // cfg.get("consensus", "tick_ms")),
            sync_writes=self.sync_writes, observer=cfg.get("node", "observer"),
            retain_states=cfg.get("storage", "retain_states"),
            snapshot_interval=cfg.get("statesync", "snapshot_interval"),
            retention=BlockRetention(cfg.get("storage", "retain_blocks"), cfg.get("statesync", "snapshot_interval")))
        try:
            self.core = NodeCore(self.kv, self.genesis, self.key, self, now_ms, settings, CachingVerifier())
        except BaseException:
            self.kv.close()
            raise
        self.chain, self.mempool, self.replica = self.core.chain, self.core.mempool, self.core.replica
        self._peer_set, self._member_nodes = self.chain.peer_keys(), self.chain.member_nodes()
        self.peer_addresses = self._peer_addresses()
        self.limits = settings.block_limits
        self.transport: Transport | None = None
        self.reads = NodeReads(self.genesis, self.node_id, self.chain, self.mempool, self.replica,
                               self._connected_peers, lambda: self.halted, self.submit_transaction)
        self.indexer = self._make_indexer()
        self.reads.event_index = self.indexer.indexer if self.indexer is not None else None
        if self.indexer is not None:
            indexer = self.indexer.indexer
            self.chain.prune_floor = lambda: (indexer.height or 0) + 1  # keep blocks until indexed
        self.mailbox = Mailbox(self.kv, self.genesis.chain_id, self.reads.signer_account, self.reads.enc_key_of,
                               lambda: int(time.time() * 1000), self.sync_writes)
        self.metrics = new_registry()  # this node's own: never prometheus_client's global one
        self._attach_metrics()
        self._mailbox_peers: set[bytes] = set()   # connected validators already sent the recent envelopes
        self.reads.attach_mailbox(self.mailbox, self._broadcast_envelope,
                                  lambda reason: self.m_mailbox_refusals.labels("client", reason).inc())
        self.rpc = RpcServer(make_routes(self.reads), rpc_limits(cfg), self.metrics, self.reads.health,
                             cfg.get("rpc", "cors_origins"))
        sizer = BlockSizer(cfg.get("consensus", "tick_ms") * cfg.get("consensus", "view_timeout_ticks"),
                           self.limits.max_txs)
        self.proposer = Proposer(self.core, sizer, cfg.get("consensus", "batch_wait_ms"),
                                 cfg.get("consensus", "empty_block_interval_ms"), cfg.get("consensus", "preview_proposals"),
                                 busy=lambda: self.core.driving or self.halted is not None, after=self.proposer_done)
        self.gossip = Gossip(self.mempool, lambda reason: self.m_refusals.labels(reason).inc(),
                             lambda: self.m_dropped.labels("bad_gossip").inc())
        self._stop = asyncio.Event()
        self.gossip.queue.extend(self.core.reload_journal(time.monotonic()))
        if self.gossip.queue:
            log.info("re-admitted journaled transactions", extra={"count": len(self.gossip.queue)})
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task] = set()

    def _make_indexer(self) -> IndexerThread | None:
        """``[indexer]``: the SQL index fed from this node's block store on its own thread (node/indexer)."""
        if not self.config.get("indexer", "enabled"):
            return None
        try:
            sink = open_sink(index_db_url(self.config))
        except IndexerError as exc:
            self.kv.close()
            raise ConfigError(f"[indexer] db_url: {exc}") from None
        source = StoreSource(self.chain.blocks, self.genesis.chain_id, to_hex(self.genesis.genesis_hash))
        return IndexerThread(Indexer(sink, source, self.config.get("indexer", "batch_blocks")))

    def _connected_peers(self) -> list[bytes]:
        return self.transport.connected_peers() if self.transport is not None else []

    def _attach_metrics(self) -> None:
        f = attach_metrics(self.metrics, self.reads,
                           lambda: self.transport.stats() if self.transport else {},
                           lambda: self.transport.counters() if self.transport else {})
        self.m_refusals = f["shopchain_mempool_refusals_total"]
        self.m_txs = f["shopchain_txs_committed_total"]
        self.m_blocks = f["shopchain_blocks_committed_total"]
        self.m_interval = f["shopchain_block_interval_seconds"]
        self.m_dropped = f["shopchain_p2p_dropped_messages_total"]
        self.m_previews = f["shopchain_previews_total"]
        self.m_mailbox_refusals = f["shopchain_mailbox_refusals_total"]

    # --- transactions -----------------------------------------------------------------

    @property
    def halted(self) -> str | None:
        return self.core.halted_reason

    async def submit_transaction(self, raw: bytes) -> SignedTx:
        """Admit a client's transaction (MempoolError says why not), journal it, and gossip it."""
        try:
            tx = self.core.submit(raw, time.monotonic())
        except MempoolError as exc:
            self.m_refusals.labels(exc.reason).inc()
            raise
        self.gossip.send_soon(tx.encode())
        self.proposer.maybe_propose()
        return tx

    def _broadcast_envelope(self, raw: bytes) -> None:
        """A mailbox envelope new to this node goes to every validator once (peers do not forward it)."""
        if self.transport is not None:
            self.transport.broadcast(bytes([ENVELOPE_MAILBOX]) + raw)

    def _resync_mailboxes(self, connected: set[bytes]) -> None:
        """A validator that just (re)connected gets the newest envelopes it may have missed while away."""
        joined = connected - self._mailbox_peers
        self._mailbox_peers = connected
        if joined and self.transport is not None:
            recent = self.mailbox.recent()
            for peer in sorted(joined):
                for raw in recent:
                    self.transport.send(peer, bytes([ENVELOPE_MAILBOX]) + raw)

    def _on_peer_envelope(self, body: bytes) -> None:
        try:
            self.mailbox.post(body, from_client=False)
        except MailboxError as exc:
            self.m_mailbox_refusals.labels("peer", exc.reason).inc()

    # --- consensus driving --------------------------------------------------------------

    async def _on_peer_message(self, peer: bytes, data: bytes) -> None:
        if not data or self.halted:
            return
        kind, body = data[0], data[1:]
        if kind == ENVELOPE_TXS:
            self.gossip.receive(body)
            self.proposer.maybe_propose()
            return
        if kind == ENVELOPE_PREVIEW:
            outcome = self.proposer.on_preview(peer, body)
            if outcome == "bad_preview":
                self.m_dropped.labels(outcome).inc()
            elif outcome is not None:
                self.m_previews.labels(outcome).inc()
            return
        if kind == ENVELOPE_STATESYNC:
            self._on_statesync(peer, body)
            return
        if kind == ENVELOPE_MAILBOX:
            self._on_peer_envelope(body)
            return
        if kind != ENVELOPE_CONSENSUS:
            self.m_dropped.labels("unknown_envelope").inc()
            return
        refused = self.catchup.refuse_before_decoding(peer, body)
        if refused and self.transport is not None:
            self.transport.note_drop(peer, self.catchup.budget_class, refused)  # counted in m_dropped via on_drop
            return
        try:
            message = decode_message(body)
        except (DecodeError, ChainError):
            self.m_dropped.labels("undecodable").inc()
            return
        self.core.step(message, peer)
        self.proposer.maybe_propose()

    def _on_statesync(self, peer: bytes, body: bytes) -> None:
        """Serve a newcomer's state-sync request within its budget (node.statesync.serve)."""
        if self.transport is None:
            return
        if body.startswith(NODES_REQUEST_PREFIX) and not self.snapshots.may_serve_nodes(peer):
            self.transport.note_drop(peer, CLASS_CATCHUP, REASON_NODE_BUDGET)
            return
        try:
            message = decode_statesync(body)
        except SyncProtocolError:
            self.m_dropped.labels("undecodable").inc()
            return
        if isinstance(message, OfferRequest):
            answer, refused = self.snapshots.offer(peer)
        elif isinstance(message, NodesRequest):
            answer, refused = self.snapshots.answer_nodes(peer, message.hashes)
        else:
            answer, refused = None, "unsolicited_statesync_answer"
        if answer is not None:
            self.transport.send(peer, bytes([ENVELOPE_STATESYNC]) + answer.encode())
        elif refused:
            self.transport.note_drop(peer, CLASS_CATCHUP, refused)

    def _send(self, to: bytes | None, message: Any) -> None:
        if self.transport is None:
            return
        data = bytes([ENVELOPE_CONSENSUS]) + encode_message(message)
        if to is None:
            self.transport.broadcast(data)
        elif to != self.me:
            self.transport.send(to, data)

    # --- CoreHost: what the core hands the runtime ----------------------------------

    def send(self, to: bytes | None, message: Any) -> None:
        self._send(to, message)  # the fault tests' ByzantineNode overrides _send

    def serve(self, peer: bytes | None, from_height: int, count: int) -> None:
        self._serve(peer, from_height, count)

    def asked_to_propose(self, request: ProposeRequest) -> None:
        self.proposer.asked(request)

    def committed(self, block: Block, cert: CommitCertificate, outcome: BlockOutcome) -> None:
        interval = self.proposer.committed(time.monotonic())
        peer_set, nodes = self.chain.peer_keys(), self.chain.member_nodes()
        if peer_set != self._peer_set or nodes != self._member_nodes:  # a set change or a node (de)registered
            self._peer_set, self._member_nodes = peer_set, nodes
            self.peer_addresses = self._peer_addresses()
            if self.transport is not None:
                self.transport.set_peers(self.peer_addresses)
            log.info("peers changed", extra={"height": block.height, "peers": len(self.peer_addresses)})
        if self.indexer is not None:
            self.indexer.notify(block, outcome.receipts)
        self.m_blocks.inc()
        self.m_txs.inc(len(block.txs))
        self.m_interval.observe(interval)
        log.debug("committed", extra={"height": block.height, "txs": len(block.txs), "view": block.header.view})
        if self._loop is not None and (self.rpc.has_subscribers(TOPIC_BLOCKS) or self.rpc.has_subscribers(TOPIC_EVENTS)):
            task = self._loop.create_task(self._publish(block, outcome.receipts))
            self._tasks.add(task)  # keep a reference until done (the loop holds only a weak one)
            task.add_done_callback(self._tasks.discard)

    async def _publish(self, block: Block, receipts: list) -> None:
        if self.rpc.has_subscribers(TOPIC_BLOCKS):
            await self.rpc.publish(TOPIC_BLOCKS, block_json(block))
        if not self.rpc.has_subscribers(TOPIC_EVENTS):
            return  # building every event's JSON costs ~10 us per order placement
        for tx, receipt in zip(block.txs, receipts):
            for event in receipt.events:
                payload = {"height": block.height, "tx_id": to_hex(tx.tx_id), "contract": event.contract,
                           "name": event.name, "data": value_to_json(event.data)}
                await self.rpc.publish(TOPIC_EVENTS, payload,
                                       lambda f, c=event.contract, n=event.name: event_matches(f, c, n))

    def _serve(self, peer: bytes | None, from_height: int, count: int) -> None:
        """Answer a BLOCK-REQUEST within the peer's serving budget (``node.catchup``)."""
        if peer is None or self.transport is None:
            return
        answer, refused = self.catchup.answer(peer, from_height, min(count, MAX_SERVE_BLOCKS), self.chain.height)
        if answer is not None:
            self.transport.send(peer, bytes([ENVELOPE_CONSENSUS]) + answer)
        elif refused:
            self.transport.note_drop(peer, self.catchup.budget_class, refused)

    def proposer_done(self) -> None:
        self.proposer.maybe_propose()

    def on_halt(self, reason: str, cause: Exception) -> None:
        """CoreHost: the core stopped deciding; say why (a failed write: what to do) and stop serving."""
        if isinstance(cause, StorageError):
            reason = (f"{cause}. The node stopped without acknowledging anything it could not store; "
                      f"free disk space or make {self.config.path('node', 'data_dir')} writable, then start it again "
                      f"(shopchain node start --home {self.home})")
            self.core.halted_reason = reason
        log.critical("node halted", extra={"reason": reason})
        self._stop.set()

    # --- lifecycle ----------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        period = self.config.get("consensus", "tick_ms") / 1000
        while not self._stop.is_set():
            await asyncio.sleep(period)
            if self.halted:
                return
            connected = set(self.transport.connected_peers()) if self.transport else set()
            self.core.tick(frozenset(v for v in self.replica.validators if v not in connected))
            self.proposer.maybe_propose()
            self.gossip.regossip()
            self.mailbox.sweep()
            self._resync_mailboxes(connected)

    def _configured_peers(self) -> dict[bytes, str]:
        """``[p2p] peer_addresses``: addresses overriding a validator's, or peers that are not validators
        (an observer's node lists the validators it follows, a validator each observer it serves)."""
        peers = parse_peer_addresses(self.config.get("p2p", "peer_addresses"))
        if self.me in peers:
            raise ConfigError(f"[p2p] peer_addresses: {to_hex(self.me)} is this node's own key; "
                              f"list the other nodes' public keys")
        return peers

    def _peer_addresses(self) -> dict[bytes, str]:
        """Who to connect to (only these keys may connect, p2p/transport.py): the validators of the
        next height and every later scheduled one, at their addresses in the validator directory
        in state; for a current or future validator also the nodes organisations registered (the
        observers it serves); plus the configured peers. An observer connects to validators only."""
        directory = self.chain.validator_directory()
        peers = {key: directory[key]["p2p_address"] for key in sorted(self._peer_set)
                 if key != self.me and key in directory}
        if self.me in self._peer_set:
            peers.update({key: address for key, address in self._member_nodes.items()
                          if key != self.me and key not in peers})
        peers.update(self.configured_peers)
        return peers

    def _make_transport(self) -> Transport:
        """The p2p transport with this node's [p2p] limits, frame classes and catch-up server."""
        cfg = self.config
        ssl_server, ssl_client = tls_contexts(cfg)
        host, port = cfg.address("p2p")
        limits = transport_limits(cfg)
        self.catchup = CatchupServer(limits, self.chain.blocks.get_stored_pair, MAX_SERVE_BYTES)
        self.snapshots = SnapshotServer(limits, self.kv, self.chain.blocks, self.chain.schedule,
                                        cfg.get("statesync", "snapshot_interval"))
        return Transport(self.key, self.genesis.chain_id, host, port, self.peer_addresses, self._on_peer_message,
                         ssl_server=ssl_server, ssl_client=ssl_client, limits=limits,
                         classify=lambda data: frame_class(data, ENVELOPE_CLASSES, ENVELOPE_CONSENSUS),
                         on_drop=lambda peer, cls, reason: self.m_dropped.labels(f"{cls}_{reason}").inc())

    async def run(self, install_signals: bool = True) -> int:
        """Serve until SIGTERM/SIGINT (or a halt); returns the process exit code."""
        self._loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._stop.set)
        app = self.rpc.make_app()
        add_explorer_routes(app)
        runner = self.rpc.make_runner(app)
        await runner.setup()
        host, port = self.config.address("rpc")
        site = self.rpc.make_site(runner, host, port)
        self.transport = self._make_transport()
        self.proposer.loop = self._loop
        self.gossip.broadcast = lambda data: self.transport.broadcast(bytes([ENVELOPE_TXS]) + data)  # type: ignore[union-attr]
        self.proposer.broadcast = lambda data: self.transport.broadcast(bytes([ENVELOPE_PREVIEW]) + data)  # type: ignore[union-attr]
        try:
            async with listen_error("rpc", self.config):
                await site.start()
            async with listen_error("p2p", self.config):
                await self.transport.start()
            log.info("node started", extra={"height": self.chain.height, "rpc": f"{host}:{port}",
                                            "p2p": self.config.get("p2p", "listen"), "validators": len(self.replica.validators)})
            if self.indexer is not None:
                self.indexer.start()  # catches up from the store, then indexes each commit off the event loop
            ticker = asyncio.create_task(self._tick_loop())
            self.gossip.flush()
            self.core.drive()
            self.proposer.maybe_propose()
            await self._stop.wait()
            ticker.cancel()
        finally:
            log.info("node stopping", extra={"height": self.chain.height})
            self.proposer.stop()
            await self.transport.stop()
            await runner.cleanup()
            if self.indexer is not None:
                self.indexer.stop()  # before the store closes: the thread reads it
            self.kv.close()
        return 2 if self.halted else 0


def run_node(home: str) -> int:
    """Entry point of ``shopchain node start``."""
    config, key, genesis = load_home(home)
    setup_logging(f"{config.get('node', 'moniker')}/{key.public_key.hex()[:8]}", config.get("log", "level"),
                  config.get("log", "format"))
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(state_sync_if_needed(config, key, genesis))  # [statesync] enable on an empty store
    node = Node(home)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(node.run())
