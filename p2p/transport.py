"""The validator-to-validator transport: a full mesh of authenticated aiohttp websockets.

How this works:

* Every node listens on its p2p address (one aiohttp server, route ``ROUTE``) and, for
  every peer whose public key is *higher* than its own, runs a dial loop. So each pair
  of validators has exactly one connection, opened by the lower key; the listener
  refuses a dial in the wrong direction. If a dialer reconnects while the listener still
  holds its old (half-dead) connection, the new authenticated one replaces the old.
* Before any data, both sides run the signed-challenge handshake (``p2p.handshake``)
  within ``handshake_timeout_seconds``; the dialer's key must be in the validator set
  (the keys of ``peers``) and the listener's key must be the one dialed. Optional mutual
  TLS (``p2p.tls``) runs underneath.
* After the handshake each websocket binary frame is exactly one message: the bytes the
  caller passed to ``send``, with no envelope (message kinds, including transaction
  gossip, are the runtime's own encoding). ``on_message(peer_key, data)`` receives every
  frame tagged with the *authenticated* key of the connection it came on, never a key
  claimed inside the message.
* ``send`` never blocks: it queues on the peer's bounded queue and returns True, or
  returns False (and counts why) when the peer is not connected or its queue is full.
  We do not drop older queued messages to make room: they were already accepted.
  Sending to our own key is an error: the runtime delivers those without the network.
* Outbound frames are paced just under the peer's inbound limits (all validators run
  the same limits), so honest load shows up as a full queue, not as a flood.
* Inbound frames pass a per-peer flood bucket (messages and bytes per second; over it:
  close 4029 and a ban that grows per offence). Given ``classify(frame) -> class``,
  they are then charged to per-class budgets of messages and handler time
  (``p2p.budgets``) before being handled; over-budget frames are dropped and reported
  to ``on_drop(peer, class, reason)``, a peer that stays over budget is banned too. A
  frame over ``max_frame_bytes`` closes that connection (1009). None affects other peers.
* Before any websocket exists, ``p2p.admission`` bounds every accepted TCP connection
  (deadline from accept, caps with oldest-first eviction) and the dialer proves its key
  in the upgrade request (``p2p.handshake.check_upgrade``), so strangers never hold a
  pending handshake slot, and each validator holds at most one.

Dial loops reconnect with capped exponential backoff and jitter (``limits.Backoff``).
Messages from one peer arrive in order, at most once: nothing is retransmitted across a
reconnect (PBFT's timers and block sync recover lost messages). Clocks and the random
source (backoff jitter) are injectable for tests.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import socket
import ssl
import time
from typing import Awaitable, Callable, Iterable, Mapping

import aiohttp
from aiohttp import WSMsgType, web

from ledger.crypto import SigningKey
from ledger.errors import InvariantError
from p2p.admission import AdmissionGuard, bind, listen
from p2p.budgets import PeerBudgets, Verdict
from p2p.connection import Connection, clip_reason
from p2p.handshake import (
    CLOSE_BANNED,
    CLOSE_GOING_AWAY,
    CLOSE_HANDSHAKE_TIMEOUT,
    CLOSE_PROTOCOL,
    CLOSE_RATE_LIMITED,
    CLOSE_REMOVED,
    CLOSE_REPLACED,
    HEADER_REFUSAL,
    DialerHandshake,
    HandshakeError,
    HandshakeResult,
    ListenerHandshake,
    P2PError,
    is_dialer,
    parse_refusal,
    refusal_header,
    short_key,
    upgrade_headers,
)
from p2p.limits import Backoff, Clock, InboundLimiter, OutboundPacer, RandomSource, TokenBucket, TransportLimits
from p2p.peers import COUNTERS, FrameTooLargeError, PeerState, PeerStatus, check_peer_keys, handshake_frame

logger = logging.getLogger("shopchain.p2p")

#: The websocket path validators connect to.
ROUTE = "/shopchain/p2p/v1"

OnMessage = Callable[[bytes, bytes], "Awaitable[None] | None"]
Classify = Callable[[bytes], str]
OnDrop = Callable[[bytes, str, str], None]
#: Consecutive dropped frames after which the read loop yields once to the event loop.
_DROPS_BETWEEN_YIELDS = 64

__all__ = ["ROUTE", "FrameTooLargeError", "PeerStatus", "Transport"]


def _one_shot(response: web.Response) -> web.Response:
    """A refusal that closes its TCP connection: one signed upgrade per connection, so a retry
    (the dialer's, or aiohttp's resend on a pooled connection) pays for a new one and signs anew."""
    response.force_close()
    return response


class Transport:
    """Authenticated full-mesh messaging between validators (see the module docstring)."""

    def __init__(self, node_key: SigningKey, chain_id: str, listen_host: str, listen_port: int,
                 peers: Mapping[bytes, str], on_message: OnMessage, *,
                 ssl_server: ssl.SSLContext | None = None, ssl_client: ssl.SSLContext | None = None,
                 limits: TransportLimits | None = None, clock: Clock = time.monotonic,
                 rand: RandomSource = random.random, classify: Classify | None = None,
                 on_drop: OnDrop | None = None, wall_clock: Clock = time.time) -> None:
        self.node_key = node_key
        self.public_key = node_key.public_key
        self.chain_id = chain_id
        self.listen_host = listen_host
        self._requested_port = listen_port
        self._on_message = on_message
        self._ssl_server = ssl_server
        self._ssl_client = ssl_client
        self.limits = limits or TransportLimits()
        self._clock = clock
        self._rand = rand
        self._classify = classify
        self._on_drop = on_drop
        self._wall_clock = wall_clock
        self._peers: dict[bytes, PeerState] = {}
        self._counters = dict.fromkeys(COUNTERS, 0)
        self._guard = AdmissionGuard(self.limits, clock, self._count)
        self._refusal_log = TokenBucket(1.0, 10.0, clock)
        self._pending_handshakes = 0
        self._running = False
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self._socket: socket.socket | None = None
        self._session: aiohttp.ClientSession | None = None
        self._changed = asyncio.Event()
        # aiohttp refuses frames of max_msg_size bytes and more; ours is an inclusive limit.
        self._max_msg_size = self.limits.max_frame_bytes + 1
        self._bound_port: int | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._apply_peers(peers)

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on the p2p address and start dialing the peers with higher keys."""
        if self._running:
            raise P2PError("transport already started")
        self._changed = asyncio.Event()
        app = web.Application(client_max_size=1024)
        app.router.add_get(ROUTE, self._handle_inbound)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=self.limits.close_timeout_seconds)
        await self._runner.setup()
        try:
            self._socket = bind(self.listen_host, self._requested_port)
            if self._runner.server is None:
                raise InvariantError("the p2p runner has no server after setup()")
            self._server = await listen(self._guard, self._runner.server, self._socket, self._ssl_server)
        except BaseException:
            await self._runner.cleanup()
            self._runner = None
            if self._socket is not None:
                self._socket.close()
                self._socket = None
            raise
        self._bound_port = self._socket.getsockname()[1]
        # No pooled connections: each upgrade is signed for one attempt, and aiohttp resends a
        # request unchanged when a pooled connection turns out dead, which the listener refuses
        # as a replay of the timestamp it already saw.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                              timeout=aiohttp.ClientTimeout(
                                                  total=None, connect=self.limits.connect_timeout_seconds))
        self._running = True
        for peer in self._peers.values():
            self._ensure_dialing(peer)
        logger.info("p2p listening on %s:%d as %s.. with %d peers", self.listen_host, self.listen_port,
                    short_key(self.public_key), len(self._peers))

    async def stop(self) -> None:
        """Close every connection (1001 going away), stop dialing and listening."""
        if not self._running:
            return
        self._running = False
        for peer in self._peers.values():
            if peer.connection is not None:
                peer.connection.mark_closing(CLOSE_GOING_AWAY, "node shutting down")
        tasks = [p.dial_task for p in self._peers.values() if p.dial_task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conns = [p.connection for p in self._peers.values() if p.connection is not None]
        await asyncio.gather(*(c.close(CLOSE_GOING_AWAY, "node shutting down") for c in conns), return_exceptions=True)
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._runner = self._session = self._socket = None
        for peer in self._peers.values():
            peer.dial_task = None
            peer.connection = None
        self._notify()

    @property
    def listen_port(self) -> int:
        """The bound port (the real one when 0 was requested; kept after ``stop``)."""
        return self._bound_port if self._bound_port is not None else self._requested_port

    def set_peers(self, peers: Mapping[bytes, str]) -> None:
        """Replace the validator set and addresses (e.g. after an on-chain change).

        Removed validators are disconnected (close code 4032); new ones are dialed.
        """
        check_peer_keys(peers)
        removed = [p for key, p in self._peers.items() if key not in peers]
        for peer in removed:
            del self._peers[peer.key]
            if peer.connection is not None:  # fix the reason before cancelling the dial task closes it
                peer.connection.mark_closing(CLOSE_REMOVED, "removed from the validator set")
            if peer.dial_task is not None:
                peer.dial_task.cancel()
            if peer.connection is not None:
                task = asyncio.get_running_loop().create_task(
                    peer.connection.close(CLOSE_REMOVED, "removed from the validator set"))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        self._apply_peers(peers)
        if self._running:
            for peer in self._peers.values():
                self._ensure_dialing(peer)

    def _apply_peers(self, peers: Mapping[bytes, str]) -> None:
        check_peer_keys(peers)
        for key, address in peers.items():
            if key == self.public_key:
                continue  # the caller may pass the whole validator set; we never dial ourselves
            if key in self._peers:
                self._peers[key].address = address
            else:
                # Buckets live with the peer, not the connection, so reconnecting resets nothing.
                self._peers[key] = PeerState(key, address, Backoff.from_limits(self.limits, self._rand),
                                             InboundLimiter(self.limits, self._clock),
                                             OutboundPacer(self.limits, self._clock),
                                             PeerBudgets(self.limits, self._clock))

    # ----- sending ---------------------------------------------------------------------

    def send(self, peer: bytes, data: bytes) -> bool:
        """Queue ``data`` as one frame to ``peer``; never blocks.

        Returns False when the peer is unknown, not connected or its queue is full
        (counted in ``stats()``). Raises on a message to ourselves or over the frame size.
        """
        if peer == self.public_key:
            raise P2PError("a node does not send to itself over the network; deliver it locally")
        if len(data) > self.limits.max_frame_bytes:
            raise FrameTooLargeError(f"message of {len(data)} bytes exceeds the frame limit of {self.limits.max_frame_bytes}")
        state = self._peers.get(peer)
        conn = state.connection if state is not None else None
        if conn is None or conn.closing:
            self._counters["send_rejected_not_connected"] += 1
            return False
        if not conn.enqueue(bytes(data)):
            self._counters["send_rejected_queue_full"] += 1
            return False
        return True

    def broadcast(self, data: bytes) -> int:
        """Send to every peer (never to ourselves); returns how many queues accepted it."""
        if len(data) > self.limits.max_frame_bytes:
            raise FrameTooLargeError(f"message of {len(data)} bytes exceeds the frame limit of {self.limits.max_frame_bytes}")
        return sum(self.send(key, data) for key in list(self._peers))

    # ----- observing -------------------------------------------------------------------

    def connected_peers(self) -> list[bytes]:
        return sorted(k for k, p in self._peers.items() if p.connection is not None and not p.connection.closing)

    def counters(self) -> dict[str, int]:
        """Running totals since start (connections, refusals, timeouts, bytes), for /metrics."""
        return dict(self._counters)

    def stats(self) -> dict[str, int]:
        """Counters since start plus current gauges, for the metrics endpoint."""
        out = self.counters()
        out["peers_known"] = len(self._peers)
        out["peers_connected"] = len(self.connected_peers())
        out["queued_messages"] = sum(len(p.connection.queue) for p in self._peers.values() if p.connection)
        out["queued_bytes"] = sum(p.connection.queued_bytes for p in self._peers.values() if p.connection)
        out["pending_handshakes"] = self._pending_handshakes
        out["unauthenticated_connections"] = self._guard.unauthenticated
        return out

    def peer_status(self) -> list[PeerStatus]:
        return [
            PeerStatus(p.key, p.address, p.connection is not None and not p.connection.closing,
                       is_dialer(self.public_key, p.key),
                       len(p.connection.queue) if p.connection else 0,
                       p.connection.queued_bytes if p.connection else 0,
                       p.backoff.failures, p.last_error, p.last_close_code)
            for _, p in sorted(self._peers.items())
        ]

    async def wait_connected(self, peers: Iterable[bytes] | None = None, timeout: float | None = None) -> bool:
        """Wait until every given peer (default: all) is connected; False on timeout."""
        wanted = set(peers) if peers is not None else None
        return await self._wait_until(
            lambda: (wanted if wanted is not None else set(self._peers)) <= set(self.connected_peers()), timeout)

    async def wait_disconnected(self, peer: bytes, timeout: float | None = None) -> bool:
        """Wait until ``peer`` has no live connection; False on timeout."""
        return await self._wait_until(lambda: peer not in self.connected_peers(), timeout)

    async def _wait_until(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    await self._changed.wait()
        except TimeoutError:
            return False
        return True

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _count(self, name: str, amount: int) -> None:
        self._counters[name] += amount

    # ----- accepting -------------------------------------------------------------------

    async def _handle_inbound(self, request: web.Request) -> web.StreamResponse:
        if not self._running:
            return _one_shot(web.Response(status=503, text="node is shutting down"))
        transport = request.transport
        address = request.remote or "?"
        try:
            claim = self._guard.check_upgrade(request.headers, address, self.chain_id, self.public_key, self._peers,
                                              int(self._wall_clock() * 1_000_000))
            self._check_not_banned(claim.dialer_key)
        except HandshakeError as error:
            return self._refuse_upgrade(address, error)
        if self._pending_handshakes >= self.limits.max_pending_handshakes:
            self._counters["busy_refusals"] += 1
            return _one_shot(web.Response(status=503, text="too many connections in handshake; retry later"))
        remaining = self._guard.authenticated(transport, claim.dialer_key, claim.time_us)
        ws = web.WebSocketResponse(max_msg_size=self._max_msg_size, heartbeat=self.limits.heartbeat_seconds,
                                   timeout=self.limits.close_timeout_seconds, compress=False)
        self._pending_handshakes += 1  # released by _listener_steps, before any refusal is sent
        try:
            await ws.prepare(request)
        except BaseException:
            self._pending_handshakes -= 1
            self._guard.handshake_done(transport, claim.dialer_key)
            raise
        try:
            result = await self._run_handshake(ws, self._listener_steps(ws, claim.dialer_key), address, remaining)
        finally:
            self._guard.handshake_done(transport, claim.dialer_key)
        if isinstance(result, HandshakeResult):
            peer = self._peers.get(result.peer_key)
            pacer = peer.pacer if peer is not None else OutboundPacer(self.limits, self._clock)
            await self._serve(Connection(ws, result.peer_key, False, self.limits, self._count, pacer))
        return ws

    def _check_not_banned(self, key: bytes) -> None:
        peer = self._peers.get(key)
        if peer is not None and (remaining := peer.banned_until - self._clock()) > 0:
            raise HandshakeError(CLOSE_BANNED, f"refused for {remaining:.0f}s more after exceeding the rate limit")

    def _refuse_upgrade(self, address: str, error: HandshakeError) -> web.Response:
        """HTTP 403 before any websocket exists; the header carries the close code and reason."""
        self._counters["upgrades_refused"] += 1
        self._counters["handshakes_refused"] += 1
        if error.code not in (CLOSE_BANNED, CLOSE_RATE_LIMITED):
            self._guard.note_failure(address)
        # Strangers can make us refuse at line rate: warn at most about once a second.
        (logger.warning if self._refusal_log.take(1) else logger.debug)("p2p upgrade from %s refused: %s", address, error)
        return _one_shot(web.Response(status=403, text=error.reason, headers={HEADER_REFUSAL: refusal_header(error)}))

    async def _listener_steps(self, ws: web.WebSocketResponse, upgraded_as: bytes) -> HandshakeResult:
        try:
            handshake = ListenerHandshake(self.node_key, self.chain_id, self._peers)
            challenge = handshake.on_hello(await handshake_frame(ws))
            if handshake.claimed_key != upgraded_as:
                raise HandshakeError(CLOSE_PROTOCOL, "HELLO names another key than the upgrade request")
            await ws.send_bytes(challenge)
            ready, result = handshake.on_auth(await handshake_frame(ws))
            await ws.send_bytes(ready)
            return result
        finally:
            self._pending_handshakes -= 1

    async def _run_handshake(self, ws, steps: Awaitable[HandshakeResult], who: str,
                             timeout: float | None = None) -> HandshakeResult | HandshakeError:
        """Run one side's handshake steps under the timeout (what is left of the deadline that
        started at accept, for the listener); on failure close with the reason and return it."""
        try:
            async with asyncio.timeout(self.limits.handshake_timeout_seconds if timeout is None else timeout):
                return await steps
        except TimeoutError:
            self._counters["handshake_timeouts"] += 1
            error = HandshakeError(CLOSE_HANDSHAKE_TIMEOUT,
                                   f"handshake not completed within {self.limits.handshake_timeout_seconds}s")
        except HandshakeError as exc:
            error = exc
        except (ConnectionError, OSError, RuntimeError, aiohttp.ClientError) as exc:
            error = HandshakeError(CLOSE_PROTOCOL, f"connection failed during handshake: {exc}", by_peer=True)
        if error.by_peer:
            self._counters["handshakes_refused_by_peer"] += 1
            logger.warning("p2p handshake with %s ended by the peer: %s", who, error)
        else:
            self._counters["handshakes_refused"] += 1
            logger.warning("p2p handshake with %s refused: %s", who, error)
            try:
                await asyncio.wait_for(ws.close(code=error.code, message=clip_reason(error.reason)),
                                       self.limits.close_timeout_seconds)
            except (asyncio.TimeoutError, ConnectionError, RuntimeError, OSError):
                pass
        return error

    # ----- dialing ---------------------------------------------------------------------

    def _ensure_dialing(self, peer: PeerState) -> None:
        if not is_dialer(self.public_key, peer.key):
            return
        if peer.dial_task is None or peer.dial_task.done():
            peer.dial_task = asyncio.get_running_loop().create_task(self._dial_loop(peer), name=f"p2p-dial-{short_key(peer.key)}")

    async def _dial_loop(self, peer: PeerState) -> None:
        while self._running and self._peers.get(peer.key) is peer:
            if (banned := peer.banned_until - self._clock()) > 0:
                # Waiting out our own ban is not a failed dial: growing the backoff here
                # left the link down up to a whole cap after the ban ended (seen in the soak).
                await asyncio.sleep(min(max(banned, peer.backoff.base / 2), peer.backoff.cap))
                continue
            try:
                conn = await self._dial(peer)
            except Exception:  # a bug must not end reconnection to this peer for good
                logger.exception("p2p dial %s.. failed unexpectedly", short_key(peer.key))
                self._counters["dial_failures"] += 1
                conn = None
            if conn is not None:
                peer.backoff.reset()
                await self._serve(conn)
            if self._running:
                await asyncio.sleep(peer.backoff.next_delay())

    async def _dial(self, peer: PeerState) -> Connection | None:
        self._counters["dial_attempts"] += 1
        url = f"{'wss' if self._ssl_client is not None else 'ws'}://{peer.address}{ROUTE}"
        options = {"ssl": self._ssl_client} if self._ssl_client is not None else {}
        if self._session is None:
            raise InvariantError("dialling before Transport.start() opened the client session")
        peer.last_upgrade_sent_us = max(int(self._wall_clock() * 1_000_000), peer.last_upgrade_sent_us + 1)
        headers = upgrade_headers(self.node_key, self.chain_id, peer.key, peer.last_upgrade_sent_us)
        try:
            ws = await asyncio.wait_for(self._session.ws_connect(
                url, max_msg_size=self._max_msg_size, heartbeat=self.limits.heartbeat_seconds, headers=headers,
                compress=0, timeout=aiohttp.ClientWSTimeout(ws_close=self.limits.close_timeout_seconds), **options),
                self.limits.connect_timeout_seconds)
        except aiohttp.WSServerHandshakeError as exc:  # refused before any websocket; the reason is a header
            self._counters["handshakes_refused_by_peer"] += 1
            refusal = parse_refusal((exc.headers or {}).get(HEADER_REFUSAL), exc.status)
            logger.warning("p2p upgrade to %s.. refused: %s", short_key(peer.key), refusal)
            return self._dial_refused(peer, refusal)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            self._counters["dial_failures"] += 1
            peer.last_error = f"cannot connect to {peer.address}: {type(exc).__name__}: {exc}"
            # Say it once per outage at INFO; the retries that follow only at DEBUG.
            log = logger.info if peer.backoff.failures == 0 else logger.debug
            log("p2p dial %s.. failed: %s", short_key(peer.key), peer.last_error)
            return None
        handshake = DialerHandshake(self.node_key, self.chain_id, peer.key)
        result = await self._run_handshake(ws, self._dialer_steps(ws, handshake), peer.address)
        if isinstance(result, HandshakeError):
            await ws.close()
            return self._dial_refused(peer, result)
        return Connection(ws, peer.key, True, self.limits, self._count, peer.pacer)

    def _dial_refused(self, peer: PeerState, error: HandshakeError) -> None:
        self._counters["dial_failures"] += 1
        peer.last_error = str(error)
        peer.last_close_code = error.code

    async def _dialer_steps(self, ws: aiohttp.ClientWebSocketResponse, handshake: DialerHandshake) -> HandshakeResult:
        await ws.send_bytes(handshake.hello())
        await ws.send_bytes(handshake.on_challenge(await handshake_frame(ws)))
        return handshake.on_ready(await handshake_frame(ws))

    # ----- serving an authenticated connection -----------------------------------------

    async def _serve(self, conn: Connection) -> None:
        """Register ``conn`` as the peer's connection, read until it closes, unregister."""
        peer = self._peers.get(conn.peer_key)
        if not self._running:
            await conn.close(CLOSE_GOING_AWAY, "node shutting down")
            return
        if peer is None:
            await conn.close(CLOSE_REMOVED, "not in the validator set any more")
            return
        old, peer.connection = peer.connection, conn
        if old is not None:
            await old.close(CLOSE_REPLACED, "replaced by a newer connection from the same validator")
        self._counters["connections_outbound" if conn.outbound else "connections_inbound"] += 1
        peer.last_error = ""
        logger.info("p2p connected to %s.. (%s)", short_key(conn.peer_key), "outbound" if conn.outbound else "inbound")
        conn.start_writer()
        self._notify()
        try:
            await self._read_loop(conn, peer)
        finally:
            # Unregister and report first (synchronously), so that anyone woken by the
            # change sees the final status; then finish the close on the wire.
            conn.mark_closing(CLOSE_GOING_AWAY, "connection ended")
            code, reason, by_peer = conn.close_info or (CLOSE_GOING_AWAY, "connection ended", False)
            ended = f"{'peer closed' if by_peer else 'closed'}: {reason} (code {code})"
            if peer.connection is conn:  # else a newer connection replaced it and owns the status
                peer.connection = None
                peer.last_close_code = code
                peer.last_error = ended
            self._counters["connections_closed"] += 1
            self._counters["queued_discarded_on_close"] += conn.discard_queue()
            logger.info("p2p disconnected from %s..: %s", short_key(conn.peer_key), ended)
            self._notify()
            await conn.close(code, reason, send=not by_peer)
            await conn.finish()

    async def _read_loop(self, conn: Connection, peer: PeerState) -> None:
        """Deliver frames until the connection ends; our own reasons to end it are only
        marked here, and ``_serve`` unregisters the peer before sending the close frame."""
        ws = conn.ws
        drops_in_a_row = 0
        while not conn.closing:
            msg = await ws.receive()
            if msg.type is WSMsgType.BINARY:
                data: bytes = msg.data
                if not peer.limiter.admit(len(data)):
                    self._counters["rate_limit_disconnects"] += 1
                    self._ban(peer)
                    conn.mark_closing(CLOSE_RATE_LIMITED, "inbound rate limit exceeded")
                    return
                self._counters["messages_received"] += 1
                self._counters["bytes_received"] += len(data)
                if self._classify is None:
                    await self._deliver(conn.peer_key, data)
                    continue
                cls = self._classify(data)
                verdict = peer.budgets.admit(cls)
                if not verdict.deliver:
                    self._dropped(peer, cls, verdict)
                    drops_in_a_row += 1
                    if drops_in_a_row % _DROPS_BETWEEN_YIELDS == 0:
                        await asyncio.sleep(0)
                    continue
                drops_in_a_row = 0
                started = time.perf_counter()
                await self._deliver(conn.peer_key, data)
                peer.budgets.charge(cls, time.perf_counter() - started)
            elif msg.type is WSMsgType.TEXT:
                self._counters["protocol_violations"] += 1
                conn.mark_closing(CLOSE_PROTOCOL, "text frames are not part of the protocol")
                return
            elif msg.type is WSMsgType.ERROR:
                self._counters[conn.note_read_error(msg.data)] += 1
                return
            else:  # CLOSE, CLOSING, CLOSED
                if msg.type is WSMsgType.CLOSE:
                    conn.note_peer_close(msg.data, msg.extra or "")
                else:
                    conn.note_peer_close(ws.close_code, "connection lost")
                return

    def _ban(self, peer: PeerState, why: str = "exceeded the inbound rate limit") -> None:
        """Refuse the peer for a ban that doubles with each offence (``PeerBudgets.ban_seconds``)."""
        seconds = peer.budgets.ban_seconds()
        peer.banned_until = self._clock() + seconds
        peer.budgets.refill_drops()
        logger.warning("p2p peer=%s %s; disconnected and refused for %.0fs", short_key(peer.key), why, seconds)

    def note_drop(self, peer_key: bytes, cls: str, reason: str) -> None:
        """The runtime refused a frame of ``peer_key`` over one of its own budgets (e.g. serving
        catch-up): count it like a transport drop, so a persistent offender is disconnected."""
        peer = self._peers.get(peer_key)
        if peer is not None:
            self._dropped(peer, cls, peer.budgets.note_drop(cls, reason))

    def _dropped(self, peer: PeerState, cls: str, verdict: Verdict) -> None:
        self._counters["budget_drops"] += 1
        if self._on_drop is not None:
            self._on_drop(peer.key, cls, verdict.reason)
        conn = peer.connection
        if verdict.disconnect and conn is not None and not conn.closing:
            self._counters["budget_disconnects"] += 1
            self._ban(peer, f"stayed over its {cls} budget ({verdict.reason})")
            conn.mark_closing(CLOSE_RATE_LIMITED, f"over the {cls} budget: {verdict.reason}")

    async def _deliver(self, peer_key: bytes, data: bytes) -> None:
        # Awaiting the handler means a slow runtime slows reading from this peer, which
        # pushes back through TCP to its send queue instead of buffering here.
        try:
            result = self._on_message(peer_key, data)
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            self._counters["handler_errors"] += 1
            logger.exception("p2p on_message handler failed for a message from %s..", short_key(peer_key))
