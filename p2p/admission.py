"""Who may hold a connection slot before the signed handshake, from TCP accept on.

How this works: the transport's listening socket is served by ``asyncio`` directly
(``listen``), with aiohttp's request handler wrapped in ``_GuardedProtocol``. So the
``AdmissionGuard`` sees every connection the moment it is accepted, before a single
HTTP byte (and, with TLS, right after the TLS handshake, which asyncio itself bounds by
the same deadline). Each new connection is *unauthenticated* until its upgrade request
has proven a validator key (``p2p.handshake.check_upgrade``, one signature verify):

* it is cut when ``pre_auth_timeout_seconds`` pass after accept (silent sockets,
  slowloris headers, a stalled upgrade);
* at most ``max_unauthenticated_per_address`` from one remote address and
  ``max_unauthenticated_connections`` overall exist at once; a new one beyond either
  cap *evicts the oldest* instead of being refused. Refusing would let whoever holds
  the slots lock validators out (on a devnet every peer is 127.0.0.1); evicting means an
  attacker must open connections faster than an honest dialer sends its few-hundred-byte
  upgrade request, which on any link takes milliseconds;
* failed upgrade attempts are rate-limited per (non-loopback) address, so a remote
  stranger cannot make us verify signatures at will.

Once authenticated, the connection leaves the unauthenticated pool (so it can no longer
be evicted) and is the one pending connection of its key: a newer authenticated upgrade
by the same validator replaces an older pending one. Only validators get there, so the
pending-handshake slots can only ever be held by validators, one each.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections import OrderedDict
from typing import Any, Callable, Collection, Mapping

from p2p.handshake import CLOSE_RATE_LIMITED, HandshakeError, P2PError, UpgradeClaim, check_upgrade, parse_upgrade
from p2p.limits import Clock, TokenBucket, TransportLimits

logger = logging.getLogger("shopchain.p2p")

Count = Callable[[str, int], None]


def remote_address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class _Unauthenticated:
    __slots__ = ("address", "timer")

    def __init__(self, address: str, timer: asyncio.TimerHandle) -> None:
        self.address = address
        self.timer = timer


class AdmissionGuard:
    """Deadlines, caps and per-key pending slots for connections before the signed handshake."""

    def __init__(self, limits: TransportLimits, clock: Clock, count: Count) -> None:
        self.limits = limits
        self._clock = clock
        self._count = count
        #: transport -> entry, in accept order (the first is the oldest, evicted first).
        self._unauthenticated: OrderedDict[asyncio.BaseTransport, _Unauthenticated] = OrderedDict()
        self._per_address: dict[str, int] = {}
        self._accepted_at: dict[asyncio.BaseTransport, float] = {}
        self._pending_by_key: dict[bytes, asyncio.BaseTransport] = {}
        self._failed: OrderedDict[str, TokenBucket] = OrderedDict()
        self.last_upgrade_us: dict[bytes, int] = {}

    @property
    def pre_auth_seconds(self) -> float:
        """The deadline from accept to a proven key (the whole handshake deadline if shorter)."""
        return min(self.limits.pre_auth_timeout_seconds, self.limits.handshake_timeout_seconds)

    # ----- the accept side -------------------------------------------------------------

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``create_server`` that reports accepts and losses to us."""
        return lambda: _GuardedProtocol(factory(), self)

    def on_accept(self, transport: asyncio.BaseTransport) -> None:
        address = remote_address(transport)
        now = self._clock()
        self._accepted_at[transport] = now
        if self._per_address.get(address, 0) >= self.limits.max_unauthenticated_per_address:
            self._evict(next(t for t, e in self._unauthenticated.items() if e.address == address))
        if len(self._unauthenticated) >= self.limits.max_unauthenticated_connections:
            self._evict(next(iter(self._unauthenticated)))
        timer = asyncio.get_running_loop().call_later(self.pre_auth_seconds, self._expire, transport)
        self._unauthenticated[transport] = _Unauthenticated(address, timer)
        self._per_address[address] = self._per_address.get(address, 0) + 1

    def on_lost(self, transport: asyncio.BaseTransport) -> None:
        self._leave_unauthenticated(transport)
        self._accepted_at.pop(transport, None)
        for key, held in list(self._pending_by_key.items()):
            if held is transport:
                del self._pending_by_key[key]

    def _leave_unauthenticated(self, transport: asyncio.BaseTransport) -> None:
        entry = self._unauthenticated.pop(transport, None)
        if entry is None:
            return
        entry.timer.cancel()
        left = self._per_address.get(entry.address, 1) - 1
        if left > 0:
            self._per_address[entry.address] = left
        else:
            self._per_address.pop(entry.address, None)

    def _evict(self, transport: asyncio.BaseTransport) -> None:
        self._count("pre_auth_evictions", 1)
        self._leave_unauthenticated(transport)
        transport.abort()

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        if transport in self._unauthenticated:
            self._count("pre_auth_timeouts", 1)
            logger.debug("p2p connection from %s did not authenticate within %.1fs of accept; cut",
                        self._unauthenticated[transport].address, self.pre_auth_seconds)
            self._leave_unauthenticated(transport)
            transport.abort()

    # ----- the upgrade request -----------------------------------------------------------

    @property
    def unauthenticated(self) -> int:
        return len(self._unauthenticated)

    def check_upgrade(self, headers: Mapping[str, str], address: str, chain_id: str, own_key: bytes,
                      validators: Collection[bytes], now_us: int) -> UpgradeClaim:
        """The verified claim of one upgrade request, or HandshakeError. An address that failed
        too often lately is refused before any parsing or signature work."""
        bucket = self._failed.get(address)
        if bucket is not None and not bucket.has_tokens():
            self._count("upgrades_rate_limited", 1)
            raise HandshakeError(CLOSE_RATE_LIMITED, "too many failed upgrade attempts from this address; retry later")
        claim = parse_upgrade(headers)
        check_upgrade(claim, chain_id, own_key, validators, now_us,
                      int(self.limits.upgrade_auth_max_skew_seconds * 1_000_000),
                      self.last_upgrade_us.get(claim.dialer_key, 0))
        return claim

    def note_failure(self, address: str) -> None:
        """Count a failed upgrade from ``address`` against its allowance."""
        if is_loopback(address):
            return
        bucket = self._failed.pop(address, None)
        if bucket is None:
            bucket = TokenBucket(self.limits.failed_upgrades_per_second, self.limits.failed_upgrade_burst, self._clock)
        self._failed[address] = bucket  # most recently seen last
        bucket.take(1)
        while len(self._failed) > self.limits.max_tracked_addresses:
            self._failed.popitem(last=False)

    def authenticated(self, transport: asyncio.BaseTransport | None, key: bytes, time_us: int) -> float:
        """The upgrade of ``transport`` proved ``key``: take it out of the evictable pool and make it
        the key's one pending connection (cutting an older one). Returns seconds left of the
        handshake deadline, which runs from accept."""
        self.last_upgrade_us[key] = max(time_us, self.last_upgrade_us.get(key, 0))
        if transport is None:
            return self.limits.handshake_timeout_seconds
        self._leave_unauthenticated(transport)
        older = self._pending_by_key.get(key)
        if older is not None and older is not transport:
            self._count("pending_replaced", 1)
            older.abort()
        self._pending_by_key[key] = transport
        accepted = self._accepted_at.get(transport, self._clock())
        return max(0.0, accepted + self.limits.handshake_timeout_seconds - self._clock())

    def handshake_done(self, transport: asyncio.BaseTransport | None, key: bytes) -> None:
        """The signed handshake on ``transport`` ended (either way): it no longer holds the key's slot."""
        if transport is not None and self._pending_by_key.get(key) is transport:
            del self._pending_by_key[key]


class _GuardedProtocol(asyncio.Protocol):
    """Forwards everything to aiohttp's handler, telling the guard about accept and loss."""

    __slots__ = ("_inner", "_guard", "_transport")

    def __init__(self, inner: asyncio.Protocol, guard: AdmissionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._guard.on_accept(transport)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.on_lost(self._transport)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket we own, so the real port is known when 0 was requested."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, address = infos[0]
    sock = socket.socket(family, socktype, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise P2PError(f"cannot listen on {host}:{port}: {exc}") from None
    sock.setblocking(False)
    return sock


async def listen(guard: AdmissionGuard, factory: Callable[[], Any], sock: socket.socket,
                 ssl_context: ssl.SSLContext | None) -> asyncio.AbstractServer:
    """Serve ``sock`` with aiohttp's protocol ``factory`` under ``guard``; TLS handshakes get the
    pre-auth deadline too (asyncio cuts them), so a silent TLS client holds nothing for long."""
    options: dict[str, Any] = {}
    if ssl_context is not None:
        options = {"ssl": ssl_context, "ssl_handshake_timeout": guard.pre_auth_seconds}
    return await asyncio.get_running_loop().create_server(guard.wrap(factory), sock=sock, **options)
