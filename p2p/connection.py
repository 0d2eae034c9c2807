"""One authenticated websocket to one validator: a bounded send queue and a writer task.

How this works: after the handshake the transport wraps the websocket (server or
client side, aiohttp gives both the same interface) in a ``Connection``. ``enqueue`` is
synchronous and never waits: it appends to a deque bounded in messages and in bytes and
wakes the writer task, or returns False when either bound would be crossed (the caller
learns at once that the message was not accepted; nothing acknowledged is dropped
silently). The writer task sends one frame at a time; aiohttp's write waits for the
socket buffer to drain, which is the backpressure that lets the queue fill when a peer
reads slowly. The writer also paces itself just under the peer's inbound rate limits
(``OutboundPacer``), so honest load meets that same backpressure rather than a flood
disconnect. A single write that blocks longer than the stall timeout means the peer
stopped reading, and the connection is closed so its queue stops pinning memory.

Messages still queued when a connection closes are discarded and counted: they were
accepted for *this* connection, which no longer exists; PBFT recovers lost messages
through its own timers and block sync.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import Any, Callable

from aiohttp import WSCloseCode

from p2p.handshake import CLOSE_FRAME_TOO_LARGE, CLOSE_PROTOCOL, CLOSE_STALLED, short_key
from p2p.limits import MAX_CLOSE_REASON_BYTES, OutboundPacer, TransportLimits

logger = logging.getLogger("shopchain.p2p")


#: Close codes that only describe what happened locally and must never be sent (RFC 6455 7.4.1).
_NEVER_SENT_CODES = frozenset({1005, 1006, 1015})


def clip_reason(reason: str) -> bytes:
    """A close reason that fits the websocket close frame, cut on a UTF-8 boundary."""
    data = reason.encode("utf-8")
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return data
    return data[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")


class Connection:
    """An established, authenticated websocket with its bounded outbound queue."""

    def __init__(self, ws: Any, peer_key: bytes, outbound: bool, limits: TransportLimits,
                 count: Callable[[str, int], None], pacer: OutboundPacer) -> None:
        self.ws = ws
        self.pacer = pacer
        self.peer_key = peer_key
        self.outbound = outbound
        self.limits = limits
        self._count = count
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self._wake = asyncio.Event()
        self.closing = False
        #: (code, reason, by_peer) once known: who ended the connection and why.
        self.close_info: tuple[int, str, bool] | None = None
        self._close_started = False
        # Kept so a close that cannot complete (the peer stopped reading, so even the
        # close frame cannot be written) can still cut the socket; asyncio's graceful
        # close would otherwise wait for the full send buffer forever.
        self._socket = ws.get_extra_info("socket")
        self._writer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Connection({short_key(self.peer_key)}.., {'out' if self.outbound else 'in'})"

    def enqueue(self, data: bytes) -> bool:
        """Queue one frame; False if closing or if the queue is at either bound."""
        if self.closing:
            return False
        if (len(self.queue) >= self.limits.max_send_queue_messages
                or self.queued_bytes + len(data) > self.limits.max_send_queue_bytes):
            return False
        self.queue.append(data)
        self.queued_bytes += len(data)
        self._wake.set()
        return True

    def start_writer(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name=f"p2p-writer-{short_key(self.peer_key)}")

    async def _write_loop(self) -> None:
        while not self.closing:
            if not self.queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self.pacer.delay(len(self.queue[0]))
            if wait > 0:
                self._count("pacing_waits", 1)
                await asyncio.sleep(wait)
                continue
            data = self.queue.popleft()
            self.queued_bytes -= len(data)
            try:
                await asyncio.wait_for(self.ws.send_bytes(data), self.limits.send_stall_timeout_seconds)
            except asyncio.TimeoutError:
                self._count("stalled_disconnects", 1)
                logger.warning("p2p peer=%s stopped reading: one frame blocked for more than %.1fs; closing",
                               short_key(self.peer_key), self.limits.send_stall_timeout_seconds)
                # Not even a close frame can be written into a full buffer: cut the socket.
                self.mark_closing(CLOSE_STALLED, "send stalled: you stopped reading")
                self.abort()
                return
            except (ConnectionError, RuntimeError, OSError) as exc:
                # The socket died under us (1006 is never sent, only recorded); cutting it
                # wakes the reader, which ends the connection.
                self.mark_closing(WSCloseCode.ABNORMAL_CLOSURE, f"write failed: {exc}")
                self.abort()
                return
            self._count("messages_sent", 1)
            self._count("bytes_sent", len(data))

    def mark_closing(self, code: int, reason: str) -> None:
        """Stop accepting frames and fix why we close (unless a reason is already known)."""
        if self.close_info is None:
            self.close_info = (int(code), reason, False)
        self.closing = True
        self._wake.set()

    async def close(self, code: int, reason: str, send: bool = True) -> None:
        """Close once with ``code``/``reason`` (sent to the peer unless the socket is dead)."""
        self.mark_closing(code, reason)
        if self._close_started:
            return
        self._close_started = True
        if int(code) in _NEVER_SENT_CODES:
            self.abort()
            return
        message = clip_reason(reason) if send else b""
        try:
            await asyncio.wait_for(self.ws.close(code=int(code), message=message), self.limits.close_timeout_seconds)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError, OSError):
            self.abort()
        except asyncio.CancelledError:
            # aiohttp shares one drain future between writers; once a stalled write was
            # cancelled, a later close sees that cancellation without anyone cancelling us.
            self.abort()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    def abort(self) -> None:
        """Cut the TCP connection now; the reader then sees it end."""
        if self._socket is None:
            return
        try:
            self._socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already gone
        except TypeError:
            # uvloop hands out socket look-alikes that refuse shutdown(); shutting down a
            # duplicate descriptor of the same socket has the same effect on the connection.
            try:
                with socket.fromfd(self._socket.fileno(), self._socket.family, self._socket.type) as dup:
                    dup.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def note_peer_close(self, code: int | None, reason: str) -> None:
        """Remember that the peer ended the connection (unless we already decided to)."""
        if self.close_info is None:
            self.close_info = (int(code) if code is not None else int(WSCloseCode.ABNORMAL_CLOSURE), reason, True)

    def note_read_error(self, exc: object) -> str:
        """Record why reading failed; returns the counter it belongs to."""
        code = getattr(exc, "code", None)
        if code == CLOSE_FRAME_TOO_LARGE:
            # aiohttp already sent close 1009 to the peer.
            self.close_info = (CLOSE_FRAME_TOO_LARGE, f"frame over {self.limits.max_frame_bytes} bytes", False)
            logger.warning("p2p peer=%s sent a frame over %d bytes; closed", short_key(self.peer_key),
                           self.limits.max_frame_bytes)
            return "frames_too_large"
        # A heartbeat timeout or a broken socket, rather than bad input.
        self.close_info = (int(code or CLOSE_PROTOCOL), f"read error: {type(exc).__name__}: {exc}", False)
        logger.warning("p2p peer=%s read error: %s", short_key(self.peer_key), exc)
        return "read_errors"

    def discard_queue(self) -> int:
        """Drop what is still queued (the connection is closing); return how many frames."""
        self.mark_closing(WSCloseCode.GOING_AWAY, "connection ended")
        discarded = len(self.queue)
        self.queue.clear()
        self.queued_bytes = 0
        return discarded

    async def finish(self) -> None:
        """Stop the writer task."""
        self.closing = True
        self._wake.set()
        if self._writer is not None:
            self._writer.cancel()
            # return_exceptions: the writer already reported its own failure; a cancel of
            # *this* task still propagates.
            await asyncio.gather(self._writer, return_exceptions=True)
