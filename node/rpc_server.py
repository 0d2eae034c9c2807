"""The node's HTTP face: JSON-RPC at /rpc and /ws, Prometheus at /metrics, /healthz.

How it works: ``RpcServer`` owns one ``Dispatcher`` (node/jsonrpc.py) built from the
node's route table plus the built-in ``rpc.discover``; transports only move bytes to
it and enforce the limits that only a transport can see.

- ``POST /rpc``: the body is read in chunks up to ``max_body_bytes`` (past it: HTTP 413
  with a JSON-RPC error body); the response is the dispatcher's text, or HTTP 204 when
  the specification says nothing is returned (notifications).
- ``GET /ws``: at most ``max_ws_connections`` at once (past it: HTTP 503 before the
  upgrade). Each connection has a reader (frames above ``max_ws_frame_bytes`` close it
  with 1009 and a reason), at most ``ws_inflight_per_connection`` calls in flight, and
  one writer task draining a bounded outbound queue. Responses wait for room in the
  queue (back-pressure on that client only); subscription notifications never wait:
  if a connection's queue is full, the publisher drops that connection with close
  code 1008 and a reason, so one slow consumer cannot stall block commits. A client
  that stopped reading altogether cannot even take the close frame: a watchdog drops
  its transport after ``ws_close_timeout_seconds``.
- ``SubscriptionHub`` maps subscription ids to (connection, topic, filter).
  ``publish(topic, payload, match)`` serialises the payload once and offers a
  ``chain_subscription`` notification to every subscriber whose filter ``match`` accepts.
  ``subscription_methods(topics)`` builds the ``chain_subscribe``/``chain_unsubscribe``
  route-table entries for the node's topics.
- CORS is off unless origins are configured; then allowed origins get CORS headers and
  preflights are answered. Browsers' websocket upgrades carry an Origin and are held to
  the same list (a page on another site must not drive a node's websocket).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import secrets
from dataclasses import dataclass, fields
from importlib import metadata
from typing import Any, Awaitable, Callable, Sequence

from aiohttp import WSCloseCode, WSMsgType, web

from node.jsonrpc import (
    CALL_TIMEOUT_SECONDS,
    INVALID_PARAMS,
    LIMIT_EXCEEDED,
    MAX_BATCH_LEN,
    CallContext,
    Dispatcher,
    Method,
    Param,
    RpcConfigError,
    RpcError,
    dump_json,
    error_response,
)
from node.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from node.metrics import Registry
from node.openrpc import META_SCHEMA_URL, build_document
from node.rpc_types import ANY, ParamType, ParamTypeError, Str

log = logging.getLogger("shopchain.rpc")

# --- transport limits (defaults of RpcLimits) ------------------------------------------
#: Largest HTTP request body (config key rpc.max_body_bytes has the same default).
MAX_BODY_BYTES = 1024 * 1024
#: Most websocket connections open at once.
MAX_WS_CONNECTIONS = 256
#: Most live subscriptions one websocket connection may hold (rpc.max_subscriptions).
MAX_SUBSCRIPTIONS_PER_CONNECTION = 32
#: Largest websocket message a client may send (one request or batch).
MAX_WS_FRAME_BYTES = 1024 * 1024
#: Messages waiting to be written to one websocket client; a subscriber that falls
#: further behind than this is disconnected.
WS_OUTBOUND_QUEUE_LEN = 1024
#: Calls one websocket connection may have running at once; the reader stops
#: reading (TCP back-pressure) until one finishes.
WS_INFLIGHT_PER_CONNECTION = 16
#: Seconds a closing handshake may take before the transport is dropped.
WS_CLOSE_TIMEOUT_SECONDS = 5.0
#: Seconds between server pings (dead peers are noticed and dropped).
WS_HEARTBEAT_SECONDS = 30.0
#: Longest close reason the websocket protocol allows (125-byte control frame - code).
MAX_CLOSE_REASON_BYTES = 123

#: Method name of the notifications carrying subscription results.
NOTIFICATION_METHOD = "chain_subscription"
#: Bucket bounds (seconds) of the RPC latency histogram.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_CLOSE = object()  # writer-queue sentinel: stop writing and close


@dataclass(frozen=True)
class RpcLimits:
    """Every limit of the RPC server; the node fills it from its config file."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_batch_len: int = MAX_BATCH_LEN
    call_timeout_seconds: float = CALL_TIMEOUT_SECONDS
    max_ws_connections: int = MAX_WS_CONNECTIONS
    max_subscriptions_per_connection: int = MAX_SUBSCRIPTIONS_PER_CONNECTION
    max_ws_frame_bytes: int = MAX_WS_FRAME_BYTES
    ws_outbound_queue_len: int = WS_OUTBOUND_QUEUE_LEN
    ws_inflight_per_connection: int = WS_INFLIGHT_PER_CONNECTION
    ws_close_timeout_seconds: float = WS_CLOSE_TIMEOUT_SECONDS
    ws_heartbeat_seconds: float = WS_HEARTBEAT_SECONDS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise RpcConfigError(f"RpcLimits.{f.name} must be a positive number, found {value!r}")


def _limit_error(limit: str, maximum: float, found: float | None, message: str) -> RpcError:
    data: dict[str, Any] = {"limit": limit, "max": maximum}
    if found is not None:
        data["found"] = found
    return RpcError(LIMIT_EXCEEDED, message, data)


class _LimitedWebSocket(web.WebSocketResponse):
    """aiohttp closes an oversized frame with 1009 and no reason; we add the reason."""

    def __init__(self, *, frame_limit: int, **kwargs: Any) -> None:
        super().__init__(max_msg_size=frame_limit, **kwargs)
        self.frame_limit = frame_limit

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not message:
            message = f"message exceeds max_ws_frame_bytes={self.frame_limit}".encode()
        return await super().close(code=code, message=message, drain=drain)


class WsConnection:
    """One websocket client: its outbound queue, writer task and subscriptions."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, queue_len: int, close_timeout_seconds: float) -> None:
        self.ws = ws
        self.remote = request.remote
        self._transport = request.transport
        self._close_timeout_seconds = close_timeout_seconds
        self._watchdog: asyncio.TimerHandle | None = None
        self.queue: asyncio.Queue[Any] = asyncio.Queue(queue_len)
        self.subscriptions: dict[str, tuple[str, Any]] = {}  # id -> (topic, filter)
        self.close_request: tuple[int, str] | None = None

    def offer(self, text: str) -> bool:
        """Queue a notification without waiting; False if the client is too far behind."""
        if self.close_request is not None:
            return False
        try:
            self.queue.put_nowait(text)
            return True
        except asyncio.QueueFull:
            return False

    async def send(self, text: str) -> None:
        """Queue a response, waiting for room (back-pressure on this client only)."""
        if self.close_request is None:
            await self.queue.put(text)

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
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSE)
        self._watchdog = asyncio.get_running_loop().call_later(self._close_timeout_seconds, self.abort)

    def abort(self) -> None:
        """Drop the TCP connection at once, unsent data included (close() would wait
        to flush a buffer that a stalled client never drains)."""
        if self._transport is not None and not self._transport.is_closing():
            log.warning("dropping websocket client %s: closing handshake did not finish in time", self.remote)
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
                await self.ws.send_str(item)
        except (ConnectionError, RuntimeError):
            return  # the transport is gone; the reader notices too
        if self.close_request is not None and not self.ws.closed:
            code, reason = self.close_request
            message = reason.encode()[:MAX_CLOSE_REASON_BYTES]
            try:
                await asyncio.wait_for(self.ws.close(code=code, message=message), self._close_timeout_seconds)
            except (TimeoutError, ConnectionError):
                self.abort()


class SubscriptionHub:
    """Subscriptions of all websocket connections, indexed by topic for publishing."""

    def __init__(self, max_per_connection: int, on_slow_consumer: Callable[[WsConnection], None]) -> None:
        self.max_per_connection = max_per_connection
        self._by_topic: dict[str, dict[str, tuple[WsConnection, Any]]] = {}
        self._on_slow_consumer = on_slow_consumer

    def count(self) -> int:
        return sum(len(subs) for subs in self._by_topic.values())

    def has_subscribers(self, topic: str) -> bool:
        return bool(self._by_topic.get(topic))

    def subscribe(self, conn: WsConnection, topic: str, filter: Any) -> str:
        if len(conn.subscriptions) >= self.max_per_connection:
            raise _limit_error(
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
            text = (
                f'{{"jsonrpc":"2.0","method":"{NOTIFICATION_METHOD}",'
                f'"params":{{"subscription":"{sub_id}","result":{result_text}}}}}'
            )
            if conn.offer(text):
                delivered += 1
            elif conn.close_request is None:
                self.drop(conn)
                self._on_slow_consumer(conn)
        return delivered


class _ConnectionSubscriptions:
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


HealthCheck = Callable[[], "dict[str, Any] | Awaitable[dict[str, Any]]"]


def _package_version() -> str:
    try:
        return metadata.version("shopchain")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class RpcServer:
    """JSON-RPC over HTTP and websocket, metrics and health, for one node."""

    def __init__(
        self,
        routes: Sequence[Method],
        limits: RpcLimits | None = None,
        metrics: Registry | None = None,
        health: HealthCheck | None = None,
        cors_origins: Sequence[str] = (),
        *,
        strict_names: bool = True,
        title: str = "shopchain JSON-RPC API",
    ) -> None:
        self.limits = limits if limits is not None else RpcLimits()
        self.metrics = metrics if metrics is not None else Registry()
        self.health = health
        self.cors_origins = frozenset(cors_origins)
        discover = Method(
            "rpc.discover",
            self._rpc_discover,
            result="The OpenRPC document of every method this server offers.",
            result_schema={"$ref": META_SCHEMA_URL},
            summary="Describe this service (OpenRPC service discovery).",
        )
        self.routes: list[Method] = [discover, *routes]
        self.dispatcher = Dispatcher(
            self.routes,
            max_batch_len=self.limits.max_batch_len,
            call_timeout_seconds=self.limits.call_timeout_seconds,
            observer=self._observe,
            namespaced=strict_names,
        )
        self._document = build_document(self.routes, title, _package_version())
        self.hub = SubscriptionHub(self.limits.max_subscriptions_per_connection, self._drop_slow_consumer)
        self._connections: set[WsConnection] = set()
        m = self.metrics
        self._m_requests = m.counter(
            "shopchain_rpc_requests_total", "JSON-RPC request objects handled, by outcome.", ("transport", "method", "outcome")
        )
        self._m_latency = m.histogram(
            "shopchain_rpc_request_duration_seconds",
            "Time spent in RPC method handlers.",
            ("transport", "method"),
            LATENCY_BUCKETS,
        )
        self._m_rejected = m.counter(
            "shopchain_rpc_limit_rejections_total", "Requests or connections refused by a transport limit.", ("limit",)
        )
        self._m_disconnects = m.counter(
            "shopchain_rpc_ws_disconnects_total", "Websocket connections closed, by reason.", ("reason",)
        )
        self._m_notifications = m.counter(
            "shopchain_rpc_notifications_total", "Subscription notifications queued, by topic.", ("topic",)
        )
        self._m_connections = m.gauge("shopchain_rpc_ws_connections", "Websocket connections open.")
        self._m_connections.set_function(lambda: len(self._connections))
        self._m_subscriptions = m.gauge("shopchain_rpc_subscriptions", "Live websocket subscriptions.")
        self._m_subscriptions.set_function(self.hub.count)

    # --- public API for the node --------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.limits.max_body_bytes, middlewares=[self._cors_middleware])
        app.router.add_post("/rpc", self._handle_http)
        app.router.add_get("/ws", self._handle_ws)
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/healthz", self._handle_health)
        app.on_shutdown.append(self._on_shutdown)
        return app

    def has_subscribers(self, topic: str) -> bool:
        """Whether publishing to ``topic`` could reach anyone (so payloads need building)."""
        return self.hub.has_subscribers(topic)

    async def publish(self, topic: str, payload: Any, match: Callable[[Any], bool] | None = None) -> int:
        """Notify every subscriber of ``topic`` whose filter ``match`` accepts (all when
        match is None). Never waits on a client; returns how many were queued."""
        delivered = self.hub.publish(topic, payload, match)
        if delivered:
            self._m_notifications.labels(topic).inc(delivered)
        return delivered

    @property
    def openrpc_document(self) -> dict[str, Any]:
        return self._document

    # --- HTTP ---------------------------------------------------------------------------

    async def _handle_http(self, request: web.Request) -> web.Response:
        limit = self.limits.max_body_bytes
        declared = request.content_length
        body = None if declared is not None and declared > limit else await _read_limited(request, limit)
        if body is None:
            self._m_rejected.labels("max_body_bytes").inc()
            err = _limit_error(
                "max_body_bytes",
                limit,
                declared,
                f"request body of {declared if declared is not None else 'more than ' + str(limit)} bytes "
                f"exceeds the limit of {limit} bytes",
            )
            return web.Response(status=413, text=dump_json(error_response(None, err)), content_type="application/json")
        text = await self.dispatcher.handle(body, CallContext("http", request.remote))
        if text is None:
            return web.Response(status=204)
        return web.Response(text=text, content_type="application/json")

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render().encode(), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _handle_health(self, request: web.Request) -> web.Response:
        if self.health is None:
            report: dict[str, Any] = {"healthy": True}
        else:
            try:
                report = self.health()
                if inspect.isawaitable(report):
                    report = await report
                if not isinstance(report, dict):
                    raise TypeError(f"health check must return a dict, returned {type(report).__name__}")
            except Exception:  # noqa: BLE001 - a failing probe means unhealthy, not a 500
                log.exception("health check failed")
                report = {"healthy": False, "error": "health check raised; see the node log"}
        status = 200 if report.get("healthy") is True else 503
        return web.Response(status=status, text=dump_json(report), content_type="application/json")

    def _observe(self, transport: str, method: str, outcome: str, seconds: float | None) -> None:
        self._m_requests.labels(transport, method, outcome).inc()
        if seconds is not None:
            self._m_latency.labels(transport, method).observe(seconds)

    async def _rpc_discover(self, ctx: CallContext) -> dict[str, Any]:
        """Returns the OpenRPC document of this service."""
        return self._document

    # --- websocket ----------------------------------------------------------------------

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_allowed(origin, request.host):
            self._m_rejected.labels("ws_origin").inc()
            return web.Response(status=403, text=f"origin {origin!r} is not in the node's allowed origins")
        if len(self._connections) >= self.limits.max_ws_connections:
            self._m_rejected.labels("max_ws_connections").inc()
            err = _limit_error(
                "max_ws_connections",
                self.limits.max_ws_connections,
                None,
                f"the node already serves {len(self._connections)} websocket connections, the limit; retry later",
            )
            return web.Response(status=503, text=dump_json(error_response(None, err)), content_type="application/json")
        ws = _LimitedWebSocket(
            frame_limit=self.limits.max_ws_frame_bytes,
            heartbeat=self.limits.ws_heartbeat_seconds,
            timeout=self.limits.ws_close_timeout_seconds,
        )
        await ws.prepare(request)
        conn = WsConnection(ws, request, self.limits.ws_outbound_queue_len, self.limits.ws_close_timeout_seconds)
        self._connections.add(conn)
        writer = asyncio.create_task(conn.run_writer())
        ctx = CallContext("ws", request.remote, _ConnectionSubscriptions(self.hub, conn))
        slots = asyncio.Semaphore(self.limits.ws_inflight_per_connection)
        inflight: set[asyncio.Task[None]] = set()
        reason = "client_closed"
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await slots.acquire()
                    task = asyncio.create_task(self._ws_call(msg.data, ctx, conn, slots))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                elif msg.type is WSMsgType.ERROR:
                    too_big = getattr(msg.data, "code", None) == WSCloseCode.MESSAGE_TOO_BIG
                    reason = "frame_too_big" if too_big else "protocol_error"
                    break
        finally:
            if conn.close_request is not None and conn.close_request[0] == WSCloseCode.POLICY_VIOLATION:
                reason = "slow_consumer"
            elif conn.close_request is not None:
                reason = "server_shutdown"
            for task in list(inflight):
                task.cancel()
            self.hub.drop(conn)
            self._connections.discard(conn)
            self._m_disconnects.labels(reason).inc()
            conn.request_close(WSCloseCode.GOING_AWAY, "connection ending")
            try:
                await asyncio.wait_for(writer, self.limits.ws_close_timeout_seconds)
            except TimeoutError:
                conn.abort()
            finally:
                conn.finish()
        return ws

    async def _ws_call(self, data: str | bytes, ctx: CallContext, conn: WsConnection, slots: asyncio.Semaphore) -> None:
        try:
            text = await self.dispatcher.handle(data, ctx)
            if text is not None:
                await conn.send(text)
        finally:
            slots.release()

    def _drop_slow_consumer(self, conn: WsConnection) -> None:
        self._m_rejected.labels("ws_outbound_queue_len").inc()
        log.warning("dropping slow websocket consumer %s: outbound queue full", conn.remote)
        conn.request_close(
            WSCloseCode.POLICY_VIOLATION,
            f"slow consumer: {self.limits.ws_outbound_queue_len} messages waiting (ws_outbound_queue_len); "
            "resubscribe after reconnecting",
        )

    async def _on_shutdown(self, app: web.Application) -> None:
        for conn in list(self._connections):
            conn.request_close(WSCloseCode.GOING_AWAY, "node shutting down")

    # --- CORS ---------------------------------------------------------------------------

    def _origin_allowed(self, origin: str, host: str | None = None) -> bool:
        """Configured origins, plus the node's own pages (the explorer): an Origin whose
        host:port is the Host the request was sent to is same-origin, not cross-site."""
        if "*" in self.cors_origins or origin in self.cors_origins:
            return True
        return host is not None and origin.split("://", 1)[-1] == host

    @web.middleware
    async def _cors_middleware(self, request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = bool(self.cors_origins) and origin is not None and self._origin_allowed(origin)
        if self.cors_origins and request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allowed:
                return web.Response(status=403, text=f"origin {origin!r} is not in the node's allowed origins")
            response: web.StreamResponse = web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                    "Access-Control-Allow-Headers": "Content-Type",
                    "Access-Control-Max-Age": "600",
                },
            )
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # 404, 405...: still tell the browser
                if allowed:
                    self._add_cors_headers(exc.headers, origin)  # type: ignore[arg-type]
                raise
        if allowed and not response.prepared:
            self._add_cors_headers(response.headers, origin)  # type: ignore[arg-type]
        return response

    @staticmethod
    def _add_cors_headers(headers: Any, origin: str) -> None:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it grows past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
