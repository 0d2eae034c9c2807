"""Websocket connections and subscriptions of the RPC server.

How it works: each ``/ws`` client is one ``WsConnection``: a reader (in
node/rpc/server.py) hands its frames to the dispatcher, and one writer task drains the
connection's outbound queue. Everything queued for a client is bytes, and the
connection counts them from the moment an answer or a notification is queued until the
writer has handed it to the socket: ``buffered_bytes`` never exceeds
``ws_outbound_buffer_bytes`` (nor the queue ``ws_outbound_queue_len`` messages). What
would not fit closes the connection with 1008 and a reason naming the limit, whether it
is a notification (the publisher never waits on a client, so one slow consumer cannot
stall block commits) or an answer to a client that sends requests and never reads its
answers. Beyond this count aiohttp's write buffer holds at most its high-water mark
(64 KiB) per connection, and the kernel's socket buffer is the kernel's.

A client that stopped reading altogether cannot even take the close frame: a watchdog
drops its transport after ``ws_close_timeout_seconds``. A writer that fails for any
reason drops the transport too, so a connection is never left open with nobody writing.

``SubscriptionHub`` maps subscription ids to (connection, topic, filter).
``publish(topic, payload, match)`` serialises the payload once and offers a
``chain_subscription`` notification to every subscriber whose filter ``match`` accepts.
``subscription_methods(topics)`` builds the ``chain_subscribe``/``chain_unsubscribe``
route-table entries for the node's topics.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from aiohttp import WSCloseCode, WSMsgType, web

from node.rpc.jsonrpc import (
    INVALID_PARAMS,
    CallContext,
    Method,
    Param,
    RpcConfigError,
    RpcError,
    dump_json,
    encode_response,
    limit_error,
)
from node.rpc.types import ANY, ParamType, ParamTypeError, Str

log = logging.getLogger("shopchain.rpc")

#: Longest close reason the websocket protocol allows (125-byte control frame - code).
MAX_CLOSE_REASON_BYTES = 123
#: Method name of the notifications carrying subscription results.
NOTIFICATION_METHOD = "chain_subscription"

_CLOSE = object()  # writer-queue sentinel: stop writing and close


class LimitedWebSocket(web.WebSocketResponse):
    """aiohttp closes an oversized frame with 1009 and no reason; we add the reason."""

    def __init__(self, *, frame_limit: int, **kwargs: Any) -> None:
        super().__init__(max_msg_size=frame_limit, **kwargs)
        self.frame_limit = frame_limit

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = f"message exceeds max_ws_frame_bytes={self.frame_limit}".encode()
        return await super().close(code=code, message=message, drain=drain)


class OutboundPool:
    """Bytes waiting for all websocket clients of one server, against one total limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class WsConnection:
    """One websocket client: its outbound queue (bounded in messages and in bytes),
    writer task and subscriptions."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, queue_len: int, buffer_bytes: int,
                 close_timeout_seconds: float, pool: OutboundPool | None = None) -> None:
        self.ws = ws
        self.remote = request.remote
        self._transport = request.transport
        self._close_timeout_seconds = close_timeout_seconds
        self._watchdog: asyncio.TimerHandle | None = None
        self.queue_len, self.buffer_limit = queue_len, buffer_bytes
        self.pool = pool if pool is not None else OutboundPool(buffer_bytes)
        self.queue: asyncio.Queue[Any] = asyncio.Queue()  # bounded by push(), never by put()
        #: Bytes queued or being written; ``max_buffered_bytes`` is its high-water mark.
        self.buffered_bytes = 0
        self.max_buffered_bytes = 0
        self.subscriptions: dict[str, tuple[str, Any]] = {}  # id -> (topic, filter)
        self.close_request: tuple[int, str] | None = None

    def push(self, data: bytes) -> bool:
        """Queue an answer or a notification without waiting; False (nothing queued) if the
        client is closing or so far behind that ``data`` would exceed a limit."""
        if self.close_request is not None:
            return False
        size = len(data)
        if (self.buffered_bytes + size > self.buffer_limit or self.pool.used + size > self.pool.limit
                or self.queue.qsize() >= self.queue_len):
            return False
        self.buffered_bytes += size
        self.pool.used += size
        self.max_buffered_bytes = max(self.max_buffered_bytes, self.buffered_bytes)
        self.queue.put_nowait(data)
        return True

    def _written(self, size: int) -> None:
        self.buffered_bytes -= size
        self.pool.used -= size

    def backlog(self) -> str:
        """What is waiting, in words, for close reasons and logs."""
        return f"{self.queue.qsize()} messages, {self.buffered_bytes} bytes waiting"

    def request_close(self, code: int, reason: str) -> None:
        """Drop what is queued and have the writer close with ``code`` and ``reason``.

        If the writer is stuck sending to a client that stopped reading, the closing
        handshake can never start; a watchdog drops the transport after the close
        timeout instead.
        """
        if self.close_request is not None:
            return
        self.close_request = (code, reason)
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not _CLOSE:
                self._written(len(item))
        self.queue.put_nowait(_CLOSE)
        self._watchdog = asyncio.get_running_loop().call_later(self._close_timeout_seconds, self.abort)

    def abort(self, why: str = "closing handshake did not finish in time") -> None:
        """Drop the TCP connection at once, unsent data included (close() would wait
        to flush a buffer that a stalled client never drains)."""
        if self._transport is not None and not self._transport.is_closing():
            log.warning("dropping websocket client %s: %s", self.remote, why)
            self._transport.abort()

    def finish(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()

    async def run_writer(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if item is _CLOSE:
                    break
                try:
                    await self.ws.send_frame(item, WSMsgType.TEXT)
                finally:
                    self._written(len(item))
        except (ConnectionError, RuntimeError):
            return  # the transport is gone; the reader notices too
        except Exception:  # noqa: BLE001 - a dead writer must not leave the client hanging
            log.exception("websocket writer for %s failed", self.remote)
            self.abort("its writer failed")
            return
        if self.close_request is not None and not self.ws.closed:
            code, reason = self.close_request
            message = reason.encode()[:MAX_CLOSE_REASON_BYTES]
            try:
                await asyncio.wait_for(self.ws.close(code=code, message=message), self._close_timeout_seconds)
            except (TimeoutError, ConnectionError):
                self.abort()


class SubscriptionHub:
    """Subscriptions of all websocket connections, indexed by topic for publishing."""

    def __init__(self, max_per_connection: int, on_slow_consumer: Callable[[WsConnection, int], None]) -> None:
        self.max_per_connection = max_per_connection
        self._by_topic: dict[str, dict[str, tuple[WsConnection, Any]]] = {}
        self._on_slow_consumer = on_slow_consumer

    def count(self) -> int:
        return sum(len(subs) for subs in self._by_topic.values())

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._by_topic.get(topic))

    def subscribe(self, conn: WsConnection, topic: str, filter: Any) -> str:
        if len(conn.subscriptions) >= self.max_per_connection:
            raise limit_error(
                "max_subscriptions_per_connection",
                self.max_per_connection,
                len(conn.subscriptions) + 1,
                f"this connection already holds {len(conn.subscriptions)} subscriptions, "
                f"the limit is {self.max_per_connection}; unsubscribe first",
            )
        sub_id = "0x" + secrets.token_hex(16)
        conn.subscriptions[sub_id] = (topic, filter)
        self._by_topic.setdefault(topic, {})[sub_id] = (conn, filter)
        return sub_id

    def unsubscribe(self, conn: WsConnection, sub_id: str) -> bool:
        """False when the id is unknown or belongs to another connection."""
        entry = conn.subscriptions.pop(sub_id, None)
        if entry is None:
            return False
        topic_subs = self._by_topic.get(entry[0], {})
        topic_subs.pop(sub_id, None)
        if not topic_subs:
            self._by_topic.pop(entry[0], None)
        return True

    def drop(self, conn: WsConnection) -> None:
        for sub_id in list(conn.subscriptions):
            self.unsubscribe(conn, sub_id)

    def publish(self, topic: str, payload: Any, match: Callable[[Any], bool] | None = None) -> int:
        """Offer ``payload`` to the topic's subscribers; returns how many got it queued."""
        subs = self._by_topic.get(topic)
        if not subs:
            return 0
        result_text = dump_json(payload)  # once, however many subscribers
        delivered = 0
        for sub_id, (conn, sub_filter) in list(subs.items()):
            if match is not None:
                try:
                    if not match(sub_filter):
                        continue
                except Exception:  # noqa: BLE001 - one bad filter must not stop the others
                    log.exception("subscription filter %r of topic %s raised", sub_filter, topic)
                    continue
            data = encode_response(
                f'{{"jsonrpc":"2.0","method":"{NOTIFICATION_METHOD}",'
                f'"params":{{"subscription":"{sub_id}","result":{result_text}}}}}'
            )
            if conn.push(data):
                delivered += 1
            elif conn.close_request is None:
                self.drop(conn)
                self._on_slow_consumer(conn, len(data))
        return delivered


class ConnectionSubscriptions:
    """What ``CallContext.subscriptions`` is on a websocket: the hub bound to one connection."""

    def __init__(self, hub: SubscriptionHub, conn: WsConnection) -> None:
        self._hub, self._conn = hub, conn

    def subscribe(self, topic: str, filter: Any) -> str:
        return self._hub.subscribe(self._conn, topic, filter)

    def unsubscribe(self, sub_id: str) -> bool:
        return self._hub.unsubscribe(self._conn, sub_id)


@dataclass(frozen=True)
class Topic:
    """A stream the node publishes (new blocks, contract events)."""

    name: str
    description: str
    #: Validates and converts the filter a subscriber gives; ``publish(match=...)``
    #: receives the converted filter (or None when the subscriber gave none).
    filter: ParamType = ANY
    filter_description: str = "no filter: every item of the topic"
    #: JSON Schema of each notification's ``params.result`` (documented as x-notifications).
    payload_schema: dict[str, Any] = field(default_factory=lambda: {"description": "the topic's payload"})


def subscription_methods(topics: Sequence[Topic], namespace: str = "chain") -> list[Method]:
    """Route-table entries ``<namespace>_subscribe`` and ``<namespace>_unsubscribe``."""
    by_name = {t.name: t for t in topics}
    if len(by_name) != len(topics) or not topics:
        raise RpcConfigError(f"expected at least one topic with distinct names, found {[t.name for t in topics]}")

    async def subscribe(ctx: CallContext, topic: str, filter: Any = None) -> str:
        """Start a subscription; results arrive as chain_subscription notifications
        carrying the returned subscription id."""
        spec = by_name[topic]
        if filter is not None:
            try:
                filter = spec.filter.convert(filter)
            except ParamTypeError as exc:
                raise RpcError(
                    INVALID_PARAMS,
                    f"Invalid params: param 'filter' (position 1) for topic {topic!r}: "
                    f"expected {exc.expected}, found {exc.found}",
                    {"param": "filter", "expected": exc.expected, "found": exc.found},
                ) from None
        return ctx.subscriptions.subscribe(topic, filter)

    async def unsubscribe(ctx: CallContext, subscription: str) -> bool:
        """Stop a subscription of this connection; false if there was none with that id."""
        return ctx.subscriptions.unsubscribe(subscription)

    topic_help = "; ".join(f"{t.name}: {t.description} (filter: {t.filter_description})" for t in topics)
    return [
        Method(
            f"{namespace}_subscribe",
            subscribe,
            (
                Param("topic", Str(enum=list(by_name)), "What to subscribe to. " + topic_help),
                Param("filter", ANY, "Topic-specific filter; omit or null for everything.", required=False),
            ),
            result="Subscription id (0x-hex) named in every notification of this subscription.",
            result_schema={"type": "string", "pattern": "^0x[0-9a-f]{32}$"},
            notifications={t.name: t.payload_schema for t in topics},
            summary="Subscribe to a topic (websocket only).",
            websocket_only=True,
        ),
        Method(
            f"{namespace}_unsubscribe",
            unsubscribe,
            (Param("subscription", Str(max_len=66), "Id returned by the subscribe call."),),
            result="True if the subscription existed on this connection and is now gone.",
            result_schema={"type": "boolean"},
            summary="Cancel a subscription (websocket only).",
            websocket_only=True,
        ),
    ]


