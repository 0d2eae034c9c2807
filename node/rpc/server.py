"""The node's HTTP face: JSON-RPC at /rpc and /ws, Prometheus at /metrics, /healthz.

How it works: ``RpcServer`` owns one ``Dispatcher`` (node/rpc/jsonrpc.py) built from the
node's route table plus the built-in ``rpc.discover``; transports only move bytes to
it and enforce the limits that only a transport can see.

- The listening socket is a ``GuardedSite`` (p2p/http_guard.py, via ``make_runner`` and
  ``make_site``): at most ``max_connections`` TCP connections, ``max_connections_per_address``
  from one host (past them: 503 and closed), and headers, bodies and idle keep-alive
  spells each have a timeout (slowloris clients are answered 408 and closed).
- ``POST /rpc``: the body is read in chunks up to ``max_body_bytes`` (past it: HTTP 413
  with a JSON-RPC error body; too slow: 408 with one); the response is the dispatcher's
  text as UTF-8 (``encode_response``), or HTTP 204 when the specification says nothing
  is returned (notifications).
- ``GET /ws``: at most ``max_ws_connections`` at once (past it: HTTP 503 before the
  upgrade). Each connection has a reader (frames above ``max_ws_frame_bytes`` close it
  with 1009 and a reason), at most ``ws_inflight_per_connection`` calls in flight, and
  one writer task draining an outbound queue bounded in messages and in bytes, per
  connection and for all connections together (node/rpc/ws.py). Neither answers nor
  notifications ever wait for room: what does not fit closes that connection with 1008
  and a reason naming the limit, so a client that sends requests and never reads, or a
  subscriber that falls behind, costs at most ``ws_outbound_buffer_bytes``.
- Every call runs under the work budgets of node/rpc/budget.py (scans are sliced and
  bounded, batches too), so heavy legal requests cannot hold the event loop that
  consensus shares.
- CORS is off unless origins are configured; then allowed origins get CORS headers and
  preflights are answered. Browsers' websocket upgrades carry an Origin and are held to
  the same list (a page on another site must not drive a node's websocket).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from dataclasses import dataclass, fields
from importlib import metadata
from typing import Any, Awaitable, Callable, Sequence

from aiohttp import WSCloseCode, WSMsgType, web
from prometheus_client import CollectorRegistry

from node.rpc.jsonrpc import (
    CALL_TIMEOUT_SECONDS,
    MAX_BATCH_LEN,
    MAX_RESPONSE_BYTES,
    CallContext,
    Dispatcher,
    Method,
    RpcConfigError,
    dump_json,
    encode_response,
    error_response,
    limit_error,
)
from node.ops.metric_defs import LATENCY_BUCKETS, RPC_METRICS  # noqa: F401 - LATENCY_BUCKETS was defined here
from node.ops.metric_defs import register as register_metrics
from node.ops.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from node.ops.metrics import new_registry
from node.ops.metrics import render as render_metrics
from node.rpc.openrpc import build_document
from node.rpc.result_schemas import OPENRPC_DOCUMENT
from node.rpc.budget import (
    BATCH_WORK_BUDGET_SECONDS,
    CALL_WORK_BUDGET_SECONDS,
    MAX_CONCURRENT_HEAVY_CALLS,
    WORK_SLICE_SECONDS,
)
from node.rpc.ws import (  # noqa: F401 - Topic and subscription_methods are part of this module's API
    NOTIFICATION_METHOD,
    OutboundPool,
    SubscriptionHub,
    Topic,
    WsConnection,
    ConnectionSubscriptions,
    LimitedWebSocket,
    subscription_methods,
)
from p2p.http_guard import BodyTimeout, GuardedSite, GuardLimits

log = logging.getLogger("shopchain.rpc")

# --- transport limits (defaults of RpcLimits) ------------------------------------------
#: Largest HTTP request body (config key rpc.max_body_bytes has the same default).
MAX_BODY_BYTES = 1024 * 1024
#: Most TCP connections (HTTP and websocket) open at once (rpc.max_connections).
MAX_CONNECTIONS = 512
#: Most TCP connections from one remote address (rpc.max_connections_per_address).
MAX_CONNECTIONS_PER_ADDRESS = 64
#: Seconds a client has to send a request's headers (rpc.header_timeout_ms): slowloris.
HEADER_TIMEOUT_SECONDS = 10.0
#: Seconds a client has to send a request's body once its headers are in (rpc.body_timeout_ms).
BODY_TIMEOUT_SECONDS = 30.0
#: Seconds a keep-alive connection may sit idle between requests (rpc.idle_timeout_ms).
IDLE_TIMEOUT_SECONDS = 60.0
#: Most websocket connections open at once.
MAX_WS_CONNECTIONS = 256
#: Most live subscriptions one websocket connection may hold (rpc.max_subscriptions).
MAX_SUBSCRIPTIONS_PER_CONNECTION = 32
#: Largest websocket message a client may send (one request or batch).
MAX_WS_FRAME_BYTES = 1024 * 1024
#: Messages waiting to be written to one websocket client; past it the client is
#: disconnected as a slow consumer.
WS_OUTBOUND_QUEUE_LEN = 1024
#: Bytes waiting to be written to one websocket client (answers and notifications);
#: past it the client is disconnected (rpc.ws_outbound_buffer_bytes). At least
#: max_response_bytes, so one answer always fits.
WS_OUTBOUND_BUFFER_BYTES = 16 * 1024 * 1024
#: Bytes waiting for all websocket clients together; a client whose output would pass it
#: is disconnected (rpc.ws_outbound_total_bytes). This bounds the node's memory under a
#: flood of clients that never read.
WS_OUTBOUND_TOTAL_BYTES = 128 * 1024 * 1024
#: Calls one websocket connection may have running at once; the reader stops
#: reading (TCP back-pressure) until one finishes.
WS_INFLIGHT_PER_CONNECTION = 16
#: Seconds a closing handshake may take before the transport is dropped.
WS_CLOSE_TIMEOUT_SECONDS = 5.0
#: Seconds between server pings (dead peers are noticed and dropped).
WS_HEARTBEAT_SECONDS = 30.0

@dataclass(frozen=True)
class RpcLimits:
    """Every limit of the RPC server; the node fills it from its config file."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_batch_len: int = MAX_BATCH_LEN
    call_timeout_seconds: float = CALL_TIMEOUT_SECONDS
    max_response_bytes: int = MAX_RESPONSE_BYTES
    max_connections: int = MAX_CONNECTIONS
    max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS
    header_timeout_seconds: float = HEADER_TIMEOUT_SECONDS
    body_timeout_seconds: float = BODY_TIMEOUT_SECONDS
    idle_timeout_seconds: float = IDLE_TIMEOUT_SECONDS
    call_work_budget_seconds: float = CALL_WORK_BUDGET_SECONDS
    batch_work_budget_seconds: float = BATCH_WORK_BUDGET_SECONDS
    work_slice_seconds: float = WORK_SLICE_SECONDS
    max_concurrent_heavy_calls: int = MAX_CONCURRENT_HEAVY_CALLS
    max_ws_connections: int = MAX_WS_CONNECTIONS
    max_subscriptions_per_connection: int = MAX_SUBSCRIPTIONS_PER_CONNECTION
    max_ws_frame_bytes: int = MAX_WS_FRAME_BYTES
    ws_outbound_queue_len: int = WS_OUTBOUND_QUEUE_LEN
    ws_outbound_buffer_bytes: int = WS_OUTBOUND_BUFFER_BYTES
    ws_outbound_total_bytes: int = WS_OUTBOUND_TOTAL_BYTES
    ws_inflight_per_connection: int = WS_INFLIGHT_PER_CONNECTION
    ws_close_timeout_seconds: float = WS_CLOSE_TIMEOUT_SECONDS
    ws_heartbeat_seconds: float = WS_HEARTBEAT_SECONDS

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise RpcConfigError(f"RpcLimits.{f.name} must be a positive number, found {value!r}")
        if not self.max_response_bytes <= self.ws_outbound_buffer_bytes <= self.ws_outbound_total_bytes:
            raise RpcConfigError(
                "expected max_response_bytes <= ws_outbound_buffer_bytes <= ws_outbound_total_bytes "
                "(a websocket must be able to hold one answer), found "
                f"{self.max_response_bytes}, {self.ws_outbound_buffer_bytes}, {self.ws_outbound_total_bytes}")

    def guard_limits(self) -> GuardLimits:
        """The connection guard's share of these limits (p2p/http_guard.py)."""
        return GuardLimits(self.max_connections, self.max_connections_per_address, self.header_timeout_seconds,
                           self.body_timeout_seconds, self.idle_timeout_seconds)


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
        metrics: CollectorRegistry | None = None,
        health: HealthCheck | None = None,
        cors_origins: Sequence[str] = (),
        *,
        strict_names: bool = True,
        title: str = "shopchain JSON-RPC API",
    ) -> None:
        self.limits = limits if limits is not None else RpcLimits()
        self.metrics = metrics if metrics is not None else new_registry()
        self.health = health
        self.cors_origins = frozenset(cors_origins)
        discover = Method(
            "rpc.discover",
            self._rpc_discover,
            result="The OpenRPC document of every method this server offers.",
            result_schema=OPENRPC_DOCUMENT,
            summary="Describe this service (OpenRPC service discovery).",
        )
        self.routes: list[Method] = [discover, *routes]
        self.dispatcher = Dispatcher(
            self.routes,
            max_batch_len=self.limits.max_batch_len,
            call_timeout_seconds=self.limits.call_timeout_seconds,
            max_response_bytes=self.limits.max_response_bytes,
            call_work_seconds=self.limits.call_work_budget_seconds,
            batch_work_seconds=self.limits.batch_work_budget_seconds,
            work_slice_seconds=self.limits.work_slice_seconds,
            max_concurrent_heavy=self.limits.max_concurrent_heavy_calls,
            observer=self._observe,
            namespaced=strict_names,
        )
        self._document = build_document(self.routes, title, _package_version())
        self.hub = SubscriptionHub(self.limits.max_subscriptions_per_connection, self._drop_slow_consumer)
        self._connections: set[WsConnection] = set()
        self.ws_pool = OutboundPool(self.limits.ws_outbound_total_bytes)
        f = register_metrics(self.metrics, RPC_METRICS, {
            "shopchain_rpc_ws_connections": lambda: len(self._connections),
            "shopchain_rpc_subscriptions": self.hub.count,
        })
        self._m_requests = f["shopchain_rpc_requests_total"]
        self._m_latency = f["shopchain_rpc_request_duration_seconds"]
        self._m_rejected = f["shopchain_rpc_limit_rejections_total"]
        self._m_disconnects = f["shopchain_rpc_ws_disconnects_total"]
        self._m_notifications = f["shopchain_rpc_notifications_total"]

    # --- public API for the node --------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.limits.max_body_bytes, middlewares=[self._cors_middleware])
        app.router.add_post("/rpc", self._handle_http)
        app.router.add_get("/ws", self._handle_ws)
        app.router.add_get("/metrics", self._handle_metrics)
        app.router.add_get("/healthz", self._handle_health)
        app.on_shutdown.append(self._on_shutdown)
        return app

    def make_runner(self, app: web.Application) -> web.AppRunner:
        """An AppRunner for ``app`` with aiohttp's keep-alive set to the idle timeout."""
        return web.AppRunner(app, access_log=None, **self.limits.guard_limits().handler_kwargs())

    def make_site(self, runner: web.AppRunner, host: str, port: int) -> GuardedSite:
        """The listening socket: a TCPSite with the connection caps and the header, body
        and idle timeouts of p2p/http_guard.py; refusals count in the rejection metric."""
        return GuardedSite(runner, host, port, limits=self.limits.guard_limits(), reuse_address=True,
                           on_limit=lambda limit, remote: self._m_rejected.labels(limit).inc())

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
        try:
            body = None if declared is not None and declared > limit else await _read_limited(request, limit)
        except BodyTimeout as exc:  # the connection guard's body timeout (p2p/http_guard.py)
            err = limit_error("body_timeout_ms", round(self.limits.body_timeout_seconds * 1000), None, exc.text or "")
            response = web.Response(status=408, text=dump_json(error_response(None, err)), content_type="application/json")
            response.force_close()
            return response
        if body is None:
            self._m_rejected.labels("max_body_bytes").inc()
            err = limit_error(
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
        return web.Response(body=encode_response(text), content_type="application/json", charset="utf-8")

    async def _handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=render_metrics(self.metrics), headers={"Content-Type": METRICS_CONTENT_TYPE})

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

    def _observe(self, transport: str, method: str, outcome: str, code: int | None, seconds: float | None) -> None:
        self._m_requests.labels(transport, method, outcome, "" if code is None else code).inc()
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
            err = limit_error(
                "max_ws_connections",
                self.limits.max_ws_connections,
                None,
                f"the node already serves {len(self._connections)} websocket connections, the limit; retry later",
            )
            return web.Response(status=503, text=dump_json(error_response(None, err)), content_type="application/json")
        ws = LimitedWebSocket(
            frame_limit=self.limits.max_ws_frame_bytes,
            heartbeat=self.limits.ws_heartbeat_seconds,
            timeout=self.limits.ws_close_timeout_seconds,
        )
        await ws.prepare(request)
        conn = WsConnection(ws, request, self.limits.ws_outbound_queue_len, self.limits.ws_outbound_buffer_bytes,
                            self.limits.ws_close_timeout_seconds, self.ws_pool)
        self._connections.add(conn)
        writer = asyncio.create_task(conn.run_writer())
        ctx = CallContext("ws", request.remote, ConnectionSubscriptions(self.hub, conn))
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
                answer = encode_response(text)
                if not conn.push(answer) and conn.close_request is None:
                    self._drop_slow_consumer(conn, len(answer))
        finally:
            slots.release()

    def _drop_slow_consumer(self, conn: WsConnection, size: int) -> None:
        """Close a client whose next ``size`` bytes do not fit, naming the limit it hit."""
        lim = self.limits
        if conn.queue.qsize() >= conn.queue_len:
            name, value = "ws_outbound_queue_len", lim.ws_outbound_queue_len
        elif conn.buffered_bytes + size > conn.buffer_limit:
            name, value = "ws_outbound_buffer_bytes", lim.ws_outbound_buffer_bytes
        else:
            name, value = "ws_outbound_total_bytes", lim.ws_outbound_total_bytes
        self._m_rejected.labels(name).inc()
        backlog = conn.backlog()
        log.warning("dropping slow websocket consumer %s: %s, over %s=%s", conn.remote, backlog, name, value)
        conn.request_close(
            WSCloseCode.POLICY_VIOLATION,
            f"slow consumer: over {name}={value} ({backlog}); read faster, resubscribe after reconnecting",
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
