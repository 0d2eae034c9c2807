"""A guard for aiohttp servers: connection caps and timeouts for slow or idle clients.

Why: aiohttp bounds the size of request lines and headers (``max_line_size``,
``max_field_size``) and closes idle keep-alive connections (``keepalive_timeout``), but it
has no timeout for a client that sends its headers or its body slowly (slowloris) and no
cap on connections, total or per remote address. Verified against aiohttp 3.14:
``RequestHandler`` only has the keep-alive timer, and ``TCPSite`` hands every accepted
socket to it.

How it works: ``GuardedSite`` is a drop-in for ``web.TCPSite``. Its listening socket
hands each new connection to a small proxy protocol in front of aiohttp's
``RequestHandler``; the proxy forwards every callback and keeps one timer per
connection, whose meaning depends on the connection's phase:

    ============  ==========================================  ==============================
    phase         from -> to                                  past the limit
    ============  ==========================================  ==============================
    (accept)      over ``max_connections`` in total or        the oldest connection still in
                  ``max_connections_per_address`` from one    HEADERS or IDLE (of that address
                  remote host                                 for the per-address cap) is
                                                              closed to make room; if every
                                                              one is in a handler, HTTP 503
                                                              with a one-line reason, closed;
                                                              aiohttp never sees it
    HEADERS       connection start, or the first byte after   HTTP 408 with a reason, closed
                  an idle spell -> aiohttp calls the handler
                  (``header_timeout_seconds``)
    BODY          handler start -> request payload complete   the payload stream raises
                  (``body_timeout_seconds``)                  ``HTTPRequestTimeout`` in the
                                                              handler (its answer is sent),
                                                              the connection is dropped
                                                              ``CLOSE_GRACE_SECONDS`` later
    HANDLER       the handler runs (a websocket stays here    no timer: the application's
                  for its whole life)                         own limits and heartbeats
    IDLE          handler returned -> next byte               closed
                  (``idle_timeout_seconds``)
    ============  ==========================================  ==============================

The handler's start and end are seen by wrapping the runner's ``web.Server.request_handler``
once, when the site starts. Every refusal and timeout is reported to ``on_limit(limit,
remote)`` so the owner can count it in its metrics.

Use (the RPC server does exactly this; the p2p transport should do the same)::

    limits = GuardLimits(max_connections=64, max_connections_per_address=8,
                         header_timeout_seconds=5, body_timeout_seconds=10,
                         idle_timeout_seconds=60)
    runner = web.AppRunner(app, **limits.handler_kwargs())
    await runner.setup()
    site = GuardedSite(runner, host, port, limits=limits, ssl_context=ssl_server,
                       on_limit=lambda limit, remote: rejected.labels(limit).inc())
    await site.start()        # OSError (e.g. EADDRINUSE) as TCPSite would raise it
    ...
    await runner.cleanup()    # stops the site like any other

For the p2p listener (p2p/transport.py), which binds its own socket, that means replacing
``web.SockSite(self._runner, self._socket, ssl_context=...)`` with
``GuardedSite(self._runner, sock=self._socket, limits=..., ssl_context=...)`` and passing
``**limits.handler_kwargs()`` to its ``AppRunner``; validators are few, so small caps (a
handful per address, a few dozen in total) fit. With TLS the timers and caps
start after the handshake; the handshake itself is bounded by ``header_timeout_seconds``
(``ssl_handshake_timeout``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, fields
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiohttp.web_runner import BaseRunner, BaseSite

from ledger.errors import ChainError, InvariantError

log = logging.getLogger("shopchain.http_guard")

#: Defaults of GuardLimits (an owner sets its own; the RPC server's come from config).
MAX_CONNECTIONS = 1024
MAX_CONNECTIONS_PER_ADDRESS = 64
HEADER_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 30.0
IDLE_TIMEOUT_SECONDS = 60.0
#: Seconds a handler has to answer after its body timed out before the socket is dropped;
#: also how long a refused or timed-out client has to take its 503/408 before an abort.
CLOSE_GRACE_SECONDS = 2.0

_HEADERS, _BODY, _HANDLER, _IDLE, _CLOSING = "headers", "body", "handler", "idle", "closing"

OnLimit = Callable[[str, str], None]


class GuardConfigError(ChainError, ValueError):
    """A GuardLimits value is out of range (found at construction)."""


class BodyTimeout(web.HTTPRequestTimeout, asyncio.TimeoutError):
    """Raised from the request payload when the body did not arrive in time.

    An ``HTTPException``, so a handler that lets it through answers 408 with its text; also
    a ``TimeoutError``, so aiohttp's lingering read after the handler ends it quietly (any
    other exception there is logged as unhandled) and then closes the connection.
    """


@dataclass(frozen=True)
class GuardLimits:
    """The limits one listening socket enforces; every value must be positive."""

    max_connections: int = MAX_CONNECTIONS
    max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS
    header_timeout_seconds: float = HEADER_TIMEOUT_SECONDS
    body_timeout_seconds: float = BODY_TIMEOUT_SECONDS
    idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise GuardConfigError(f"GuardLimits.{f.name} must be a positive number, found {value!r}")

    def handler_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``web.AppRunner``/``ServerRunner``: aiohttp's own keep-alive
        timer a little after the guard's idle timeout, as a second line behind it."""
        return {"keepalive_timeout": self.idle_timeout_seconds + CLOSE_GRACE_SECONDS}


def _plain_response(status: str, reason: str) -> bytes:
    body = (reason + "\n").encode()
    head = (f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


class _Connection:
    """One admitted connection: its phase and its single timer."""

    __slots__ = ("guard", "transport", "remote", "phase", "timer", "request", "lost", "discarding")

    def __init__(self, guard: "ConnectionGuard", transport: asyncio.Transport, remote: str) -> None:
        self.guard, self.transport, self.remote = guard, transport, remote
        self.phase = _HEADERS
        self.timer: asyncio.TimerHandle | None = None
        self.request: web.BaseRequest | None = None
        self.lost = False
        self.discarding = False  # answered by the guard itself: what the client still sends is dropped
        self.arm(guard.limits.header_timeout_seconds)

    def arm(self, seconds: float | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = None if seconds is None else asyncio.get_running_loop().call_later(seconds, self.expire)

    def on_data(self) -> None:
        if self.phase == _IDLE:
            self.phase = _HEADERS
            self.arm(self.guard.limits.header_timeout_seconds)

    def on_request_start(self, request: web.BaseRequest) -> None:
        if self.phase == _CLOSING:
            return
        self.request = request
        if request.content.is_eof():
            self.phase = _HANDLER
            self.arm(None)
        else:
            self.phase = _BODY
            self.arm(self.guard.limits.body_timeout_seconds)

    def on_request_end(self) -> None:
        self.request = None
        if self.phase != _CLOSING:
            self.phase = _IDLE
            self.arm(self.guard.limits.idle_timeout_seconds)

    def expire(self) -> None:
        self.timer = None
        if self.lost:
            return
        limits = self.guard.limits
        if self.phase == _HEADERS:
            reason = (f"request headers not complete within header_timeout_seconds="
                      f"{limits.header_timeout_seconds}; send the whole request at once")
            self.guard.report("header_timeout", self.remote)
            self.close_with(_plain_response("408 Request Timeout", reason))
        elif self.phase == _BODY and self.request is not None and not self.request.content.is_eof():
            reason = (f"request body not complete within body_timeout_seconds={limits.body_timeout_seconds}; "
                      "send the whole body at once")
            self.guard.report("body_timeout", self.remote)
            error = BodyTimeout(text=reason)
            error.force_close()
            self.request.content.set_exception(error)
            self.phase = _CLOSING
            self.arm(CLOSE_GRACE_SECONDS)
        elif self.phase == _BODY:  # the body arrived in time; the handler is working
            self.phase = _HANDLER
        elif self.phase == _IDLE:
            self.guard.report("idle_timeout", self.remote)
            self.transport.close()
        elif self.phase == _CLOSING:
            self.transport.abort()

    def close_with(self, response: bytes) -> None:
        """Answer and close gracefully ("lingering close"): send the response and a FIN, then drop
        what the client still sends until it closes too. Closing at once with its unread bytes
        in our receive buffer would make the kernel send a reset, which can destroy the response
        before the client reads it. The grace timer aborts a client that never stops."""
        self.phase = _CLOSING
        self.discarding = True
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:
            self.transport.close()
        self.arm(CLOSE_GRACE_SECONDS)  # a client that does not read cannot keep it open


class _GuardedProtocol(asyncio.Protocol):
    """Stands in front of aiohttp's RequestHandler and forwards every callback."""

    def __init__(self, guard: "ConnectionGuard", factory: Callable[[], asyncio.Protocol]) -> None:
        self._guard, self._factory = guard, factory
        self._inner: Any = None
        self._conn: _Connection | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        conn = self._guard.admit(transport)  # type: ignore[arg-type]
        if conn is None:
            return
        self._conn = conn
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            if self._conn.discarding:  # type: ignore[union-attr]
                return
            self._conn.on_data()  # type: ignore[union-attr]
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._conn is not None and self._conn.discarding:
            return None  # the client closed its side after our answer: the transport closes
        return self._inner.eof_received() if self._inner is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._guard.release(self._conn)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class ConnectionGuard:
    """The bookkeeping of one listening socket: open connections by remote address."""

    def __init__(self, limits: GuardLimits, on_limit: OnLimit | None = None) -> None:
        self.limits = limits
        self._on_limit = on_limit
        self._by_transport: dict[asyncio.BaseTransport, _Connection] = {}
        self._per_address: dict[str, int] = {}

    @property
    def connection_count(self) -> int:
        return len(self._by_transport)

    def connections_from(self, remote: str) -> int:
        return self._per_address.get(remote, 0)

    def report(self, limit: str, remote: str) -> None:
        log.info("http guard: %s from %s", limit, remote)
        if self._on_limit is not None:
            self._on_limit(limit, remote)

    def admit(self, transport: asyncio.Transport) -> _Connection | None:
        """Register a new connection, or answer 503 and close it when a cap is reached."""
        peer = transport.get_extra_info("peername")
        remote = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else str(peer or "")
        limits = self.limits
        reason = None
        if len(self._by_transport) >= limits.max_connections:
            limit, reason = "max_connections", (f"the server already has {len(self._by_transport)} connections "
                                                f"open, the limit (max_connections={limits.max_connections}); retry later")
        elif self._per_address.get(remote, 0) >= limits.max_connections_per_address:
            limit, reason = "max_connections_per_address", (
                f"{remote} already has {self._per_address[remote]} connections open, the limit "
                f"(max_connections_per_address={limits.max_connections_per_address}); reuse a connection")
        if reason is not None and self._evict_for(remote if limit == "max_connections_per_address" else None):
            reason = None
        if reason is not None:
            self.report(limit, remote)
            transport.write(_plain_response("503 Service Unavailable", reason))
            transport.close()
            asyncio.get_running_loop().call_later(CLOSE_GRACE_SECONDS, transport.abort)
            return None
        conn = _Connection(self, transport, remote)
        self._by_transport[transport] = conn
        self._per_address[remote] = self._per_address.get(remote, 0) + 1
        return conn

    def _evict_for(self, remote: str | None) -> bool:
        """Make room by closing the oldest connection that is not serving a request.

        Refusing the newcomer at a full cap would let anyone who holds connections open
        (slowloris, idle keep-alives) lock every other client out, and on one host or
        behind one proxy all clients share an address. A connection still sending its
        headers or idle between requests holds a slot without doing work, so it yields it
        (oldest first); connections in a handler (requests, websockets) never do.
        """
        for conn in self._by_transport.values():  # insertion order: oldest first
            if conn.phase in (_HEADERS, _IDLE) and (remote is None or conn.remote == remote):
                self.report("evicted", conn.remote)
                if conn.phase == _HEADERS:
                    conn.close_with(_plain_response(
                        "503 Service Unavailable", "connection closed for a newer one: the connection cap is "
                        "full and this one had not sent a complete request; send the whole request at once"))
                else:
                    conn.transport.close()
                self.release(conn)
                return True
        return False

    def release(self, conn: _Connection) -> None:
        conn.lost = True
        conn.arm(None)
        if self._by_transport.pop(conn.transport, None) is not None:
            left = self._per_address[conn.remote] - 1
            if left:
                self._per_address[conn.remote] = left
            else:
                del self._per_address[conn.remote]

    def protocol_factory(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """Wrap a protocol factory (e.g. a ``web.Server``) for ``loop.create_server``."""
        return lambda: _GuardedProtocol(self, factory)

    def wrap_handler(self, handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
                     ) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
        """A request handler that tells the guard when each request starts and ends."""

        async def guarded(request: web.BaseRequest) -> web.StreamResponse:
            conn = self._by_transport.get(request.transport)  # type: ignore[arg-type]
            if conn is None:  # a connection of another site sharing this runner
                return await handler(request)
            conn.on_request_start(request)
            try:
                return await handler(request)
            finally:
                conn.on_request_end()

        return guarded


class GuardedSite(BaseSite):
    """``web.TCPSite`` with a ``ConnectionGuard`` in front of every accepted connection."""

    __slots__ = ("_host", "_port", "_bound_port", "_reuse_address", "_sock", "guard")

    def __init__(self, runner: BaseRunner, host: str | None = None, port: int = 0, *, limits: GuardLimits,
                 sock: socket.socket | None = None, ssl_context: Any = None, backlog: int = 128,
                 reuse_address: bool | None = None, on_limit: OnLimit | None = None) -> None:
        """Listen on ``host:port``, or on ``sock`` (already bound and listening) when given."""
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        if (sock is None) == (host is None):
            raise GuardConfigError("GuardedSite needs either host and port or a bound socket, not both")
        self._host, self._port, self._bound_port = host, port, port
        self._sock = sock
        self._reuse_address = reuse_address
        self.guard = ConnectionGuard(limits, on_limit)

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._bound_port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        host = self._host if self._sock is None else self._sock.getsockname()[0]
        return f"{scheme}://{host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        if server is None:
            raise InvariantError("runner.setup() must run before the site starts")
        if not getattr(server.request_handler, "_guarded_by", None) is self.guard:
            server.request_handler = self.guard.wrap_handler(server.request_handler)
            server.request_handler._guarded_by = self.guard  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()
        handshake = self.guard.limits.header_timeout_seconds if self._ssl_context else None
        factory = self.guard.protocol_factory(server)
        if self._sock is not None:
            self._server = await loop.create_server(factory, sock=self._sock, ssl=self._ssl_context,
                                                    backlog=self._backlog, ssl_handshake_timeout=handshake)
        else:
            self._server = await loop.create_server(factory, self._host, self._port, ssl=self._ssl_context,
                                                    backlog=self._backlog, reuse_address=self._reuse_address,
                                                    ssl_handshake_timeout=handshake)
        if self._server.sockets:
            self._bound_port = self._server.sockets[0].getsockname()[1]
