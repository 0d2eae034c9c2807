"""The RPC server on a real loopback socket: HTTP, websocket, limits, metrics, CORS."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from node.rpc.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    REQUEST_TIMEOUT,
    WEBSOCKET_REQUIRED,
    CallContext,
    Method,
    RpcConfigError,
)
from node.ops.metrics import CONTENT_TYPE, new_registry
from node.rpc.server import RpcLimits, RpcServer, Topic, subscription_methods
from node.rpc.types import Object
from tests.node.test_jsonrpc import SPEC_EXAMPLES, demo_routes, strip_data
from tests.node.test_metrics import check_counters_end_in_total, check_histograms, parse_exposition, sample

pytestmark = pytest.mark.integration  # a real aiohttp server on loopback

TOPICS = [
    Topic("newHeads", "every committed block header"),
    Topic("events", "contract events", filter=Object(), filter_description='{"contract": name}'),
]


async def hang(ctx: CallContext) -> None:
    await asyncio.Event().wait()


async def boom(ctx: CallContext) -> None:
    raise KeyError("internal detail")


def routes() -> list[Method]:
    return [
        *demo_routes(),
        *subscription_methods(TOPICS),
        Method("test_hang", hang),
        Method("test_boom", boom),
    ]


Scenario = Callable[[RpcServer, TestClient], Awaitable[None]]


def serve(scenario: Scenario, limits: RpcLimits | None = None, **kwargs: Any) -> RpcServer:
    server = RpcServer(routes(), limits or RpcLimits(), new_registry(), strict_names=False, **kwargs)

    async def main() -> None:
        async with TestClient(TestServer(server.make_app())) as client:
            await scenario(server, client)

    asyncio.run(main())
    return server


async def rpc(client: TestClient, body: Any, **kwargs: Any) -> tuple[int, Any]:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    async with client.post("/rpc", data=data, headers={"Content-Type": "application/json"}, **kwargs) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)


def req(method: str, params: Any = None, id: Any = 1) -> dict[str, Any]:
    r: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": id}
    if params is not None:
        r["params"] = params
    return r


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


async def ws_call(ws: aiohttp.ClientWebSocketResponse, body: Any) -> Any:
    await ws.send_str(body if isinstance(body, str) else json.dumps(body))
    msg = await ws.receive(timeout=3)
    assert msg.type is WSMsgType.TEXT, msg
    return json.loads(msg.data)


# --- HTTP -----------------------------------------------------------------------------


def test_specification_examples_over_http() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        for name, request_text, expected in SPEC_EXAMPLES:
            status, body = await rpc(client, request_text)
            if expected is None:
                assert (status, body) == (204, None), name
            else:
                assert status == 200 and strip_data(body) == expected, name

    serve(scenario)


def test_server_keeps_serving_after_bad_input() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        bad_inputs: list[Any] = [b"\xff", "{", "[]", "[1]", "null", '"x"', "[" * 50_000, req("test_boom"), req("nope")]
        for body in bad_inputs:
            status, reply = await rpc(client, body)
            assert status == 200 and "error" in (reply[0] if isinstance(reply, list) else reply)
            assert (await rpc(client, req("subtract", [5, 3])))[1]["result"] == 2
        async with client.get("/rpc") as resp:
            assert resp.status == 405

    serve(scenario)


def test_internal_error_over_http_has_no_traceback() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.post("/rpc", data=json.dumps(req("test_boom"))) as resp:
            text = await resp.text()
        assert json.loads(text)["error"]["code"] == INTERNAL_ERROR
        assert "internal detail" not in text and "Traceback" not in text and "KeyError" not in text

    serve(scenario)


def test_body_size_limit_returns_413_with_a_jsonrpc_error() -> None:
    limit = 1024

    async def chunks() -> Any:
        for _ in range(4):
            yield b" " * 512

    async def scenario(server: RpcServer, client: TestClient) -> None:
        padded = json.dumps(req("get_data")) + " " * (limit - 60)
        assert len(padded) <= limit and (await rpc(client, padded))[1]["result"] == ["hello", 5]
        status, body = await rpc(client, " " * (limit + 1))  # declared Content-Length
        assert status == 413
        assert body["error"]["code"] == LIMIT_EXCEEDED and body["id"] is None
        assert body["error"]["data"] == {"limit": "max_body_bytes", "max": limit, "found": limit + 1}
        async with client.post("/rpc", data=chunks()) as resp:  # chunked: no declared length
            assert resp.status == 413
            assert (await resp.json())["error"]["data"]["limit"] == "max_body_bytes"
        assert (await rpc(client, req("subtract", [2, 1])))[1]["result"] == 1

    serve(scenario, RpcLimits(max_body_bytes=limit))


def test_batch_limit_and_call_timeout_over_http() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        _, body = await rpc(client, [req("get_data", id=i) for i in range(3)])
        assert body["error"]["code"] == LIMIT_EXCEEDED
        assert body["error"]["data"] == {"limit": "max_batch_len", "max": 2, "found": 3}
        _, body = await rpc(client, req("test_hang"))
        assert body["error"]["code"] == REQUEST_TIMEOUT
        assert (await rpc(client, req("subtract", {"minuend": 3, "subtrahend": 1})))[1]["result"] == 2

    serve(scenario, RpcLimits(max_batch_len=2, call_timeout_seconds=0.02))


def test_subscriptions_need_the_websocket() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        _, body = await rpc(client, req("chain_subscribe", ["newHeads"]))
        assert body["error"]["code"] == WEBSOCKET_REQUIRED

    serve(scenario)


def test_strict_names_by_default() -> None:
    with pytest.raises(RpcConfigError, match="namespace_verb"):
        RpcServer(demo_routes())
    RpcServer(subscription_methods(TOPICS))  # chain_subscribe / chain_unsubscribe are fine


# --- OpenRPC ----------------------------------------------------------------------------


def test_rpc_discover_lists_every_method_with_params() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        _, body = await rpc(client, req("rpc.discover"))
        doc = body["result"]
        assert doc["openrpc"].startswith("1.") and doc["info"]["title"]
        by_name = {m["name"]: m for m in doc["methods"]}
        assert list(by_name) == [m.name for m in server.routes]
        assert "rpc.discover" in by_name and "chain_subscribe" in by_name
        sub = by_name["subtract"]
        assert [(p["name"], p["required"], p["schema"]["type"]) for p in sub["params"]] == [
            ("minuend", True, "integer"), ("subtrahend", True, "integer")]
        assert sub["params"][0]["description"] == "number to subtract from"
        assert sub["result"]["description"] == "minuend - subtrahend" and sub["paramStructure"] == "either"
        assert [p["required"] for p in by_name["sum"]["params"]] == [True, True, False]
        subscribe = by_name["chain_subscribe"]
        assert subscribe["x-websocket-only"] is True
        assert subscribe["params"][0]["schema"]["enum"] == ["newHeads", "events"]
        assert "x-websocket-only" not in sub
        codes = {e["code"] for e in doc["components"]["errors"].values()}
        assert {-32700, -32600, -32601, -32602, -32603, -32000, -32001, -32002, -32005} <= codes
        json.dumps(doc, allow_nan=False)

    serve(scenario)


# --- websocket --------------------------------------------------------------------------


def test_websocket_serves_the_same_methods() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.ws_connect("/ws") as ws:
            assert await ws_call(ws, req("subtract", [42, 23])) == {"jsonrpc": "2.0", "result": 19, "id": 1}
            for name, request_text, expected in SPEC_EXAMPLES:
                if expected is None:
                    await ws.send_str(request_text)  # nothing comes back for notifications
                    continue
                assert strip_data(await ws_call(ws, request_text)) == expected, name
            # Had a notification been answered, this would read the wrong message.
            assert (await ws_call(ws, req("get_data", id="last")))["id"] == "last"

    serve(scenario)


def test_subscribe_publish_unsubscribe() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.ws_connect("/ws") as ws_a, client.ws_connect("/ws") as ws_b:
            heads = (await ws_call(ws_a, req("chain_subscribe", ["newHeads"])))["result"]
            ev_a = (await ws_call(ws_a, req("chain_subscribe", {"topic": "events", "filter": {"contract": "orders"}})))["result"]
            ev_b = (await ws_call(ws_b, req("chain_subscribe", ["events", {"contract": "reviews"}])))["result"]
            assert heads.startswith("0x") and len({heads, ev_a, ev_b}) == 3

            assert await server.publish("newHeads", {"height": 1, "hash": b"\xaa" * 2}) == 1
            msg = json.loads((await ws_a.receive(timeout=3)).data)
            assert msg == {"jsonrpc": "2.0", "method": "chain_subscription",
                           "params": {"subscription": heads, "result": {"height": 1, "hash": "0xaaaa"}}}

            def only(contract: str) -> Callable[[Any], bool]:
                return lambda f: f is None or f.get("contract") == contract

            assert await server.publish("events", {"contract": "reviews", "n": 1}, match=only("reviews")) == 1
            msg = json.loads((await ws_b.receive(timeout=3)).data)
            assert msg["params"] == {"subscription": ev_b, "result": {"contract": "reviews", "n": 1}}

            assert (await ws_call(ws_a, req("chain_unsubscribe", [heads])))["result"] is True
            assert (await ws_call(ws_a, req("chain_unsubscribe", [heads])))["result"] is False
            assert (await ws_call(ws_a, req("chain_unsubscribe", [ev_b])))["result"] is False  # not its own
            assert await server.publish("newHeads", {"height": 2}) == 0
            assert await server.publish("nobody", {}) == 0

            r = await ws_call(ws_a, req("chain_subscribe", ["blocks"]))
            assert r["error"]["code"] == INVALID_PARAMS and "one of 'newHeads', 'events'" in r["error"]["message"]
            r = await ws_call(ws_a, req("chain_subscribe", ["events", [1]]))
            assert r["error"]["code"] == INVALID_PARAMS
            assert "param 'filter' (position 1) for topic 'events': expected object, found array" in r["error"]["message"]
        await eventually(lambda: server.hub.count() == 0)  # closing drops subscriptions

    serve(scenario)


def test_subscription_limit_per_connection() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.ws_connect("/ws") as ws:
            ids = [(await ws_call(ws, req("chain_subscribe", ["newHeads"], id=i)))["result"] for i in range(2)]
            r = await ws_call(ws, req("chain_subscribe", ["newHeads"], id=3))
            assert r["error"]["code"] == LIMIT_EXCEEDED
            assert r["error"]["data"] == {"limit": "max_subscriptions_per_connection", "max": 2, "found": 3}
            assert (await ws_call(ws, req("chain_unsubscribe", [ids[0]])))["result"] is True
            assert "result" in await ws_call(ws, req("chain_subscribe", ["newHeads"], id=4))

    serve(scenario, RpcLimits(max_subscriptions_per_connection=2))


def test_connection_limit() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.ws_connect("/ws") as ws:
            with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
                await client.ws_connect("/ws")
            assert exc.value.status == 503
            assert (await ws_call(ws, req("get_data")))["result"] == ["hello", 5]
        await eventually(lambda: not server._connections)
        async with client.ws_connect("/ws") as ws:
            assert (await ws_call(ws, req("get_data")))["result"] == ["hello", 5]

    serve(scenario, RpcLimits(max_ws_connections=1))


def test_oversized_frame_closes_with_a_reason() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.ws_connect("/ws") as ws:
            await ws.send_str(json.dumps(req("sum", [1, 2], id="x" * 2000)))
            msg = await ws.receive(timeout=3)
            assert msg.type is WSMsgType.CLOSE and msg.data == WSCloseCode.MESSAGE_TOO_BIG
            assert msg.extra == "message exceeds max_ws_frame_bytes=1024"
        async with client.ws_connect("/ws") as ws:  # the server keeps serving
            assert (await ws_call(ws, req("sum", [1, 2])))["result"] == 3
        await eventually(lambda: not server._connections)
        text = await (await client.get("/metrics")).text()
        assert sample(parse_exposition(text), "shopchain_rpc_ws_disconnects_total", reason="frame_too_big") == 1

    serve(scenario, RpcLimits(max_ws_frame_bytes=1024))


def test_slow_consumer_is_disconnected_not_waited_for() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.ws_connect("/ws") as slow, client.ws_connect("/ws") as fine:
            await ws_call(slow, req("chain_subscribe", ["newHeads"]))
            await ws_call(fine, req("chain_subscribe", ["events"]))
            # Publishing never waits: ten notifications in one go overflow a queue of 4.
            delivered = [await server.publish("newHeads", {"height": h}) for h in range(10)]
            assert delivered == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
            msg = await slow.receive(timeout=3)
            assert msg.type is WSMsgType.CLOSE and msg.data == WSCloseCode.POLICY_VIOLATION
            assert msg.extra.startswith("slow consumer: over ws_outbound_queue_len=4 (4 messages, ")
            # The other connection is unaffected.
            assert await server.publish("events", {"n": 1}) == 1
            assert json.loads((await fine.receive(timeout=3)).data)["params"]["result"] == {"n": 1}
            assert (await ws_call(fine, req("get_data")))["result"] == ["hello", 5]
        await eventually(lambda: not server._connections)
        families = parse_exposition(await (await client.get("/metrics")).text())
        assert sample(families, "shopchain_rpc_ws_disconnects_total", reason="slow_consumer") == 1
        assert sample(families, "shopchain_rpc_limit_rejections_total", limit="ws_outbound_queue_len") == 1

    serve(scenario, RpcLimits(ws_outbound_queue_len=4))


def test_client_that_stops_reading_is_dropped_after_the_close_timeout(caplog: pytest.LogCaptureFixture) -> None:
    big = "x" * (256 * 1024)

    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.ws_connect("/ws") as ws:
            await ws_call(ws, req("chain_subscribe", ["newHeads"]))
            (conn,) = server._connections
            # Small fixed socket buffers (no autotuning), so what the kernel can hold
            # is bounded. From here on the client reads nothing: the buffers fill, the
            # writer blocks mid-send for good, and the queue (2) fills behind it.
            ws.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            conn._transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            for _ in range(100):
                if await server.publish("newHeads", big) == 0:
                    break
                await asyncio.sleep(0.005)
            else:
                pytest.fail("the outbound queue never filled")
            # The closing handshake cannot even start: the watchdog drops the transport.
            await eventually(lambda: not server._connections)
        assert any("closing handshake did not finish" in r.getMessage() for r in caplog.records)
        families = parse_exposition(await (await client.get("/metrics")).text())
        assert sample(families, "shopchain_rpc_ws_disconnects_total", reason="slow_consumer") == 1
        async with client.ws_connect("/ws") as ws:  # and the server keeps serving
            assert (await ws_call(ws, req("get_data")))["result"] == ["hello", 5]

    serve(scenario, RpcLimits(ws_outbound_queue_len=2, ws_close_timeout_seconds=0.1))


def test_websocket_origin_is_checked() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
            await client.ws_connect("/ws", headers={"Origin": "https://evil.example"})
        assert exc.value.status == 403
        async with client.ws_connect("/ws", headers={"Origin": "https://shop.example"}) as ws:
            assert (await ws_call(ws, req("get_data")))["result"] == ["hello", 5]

    serve(scenario, cors_origins=["https://shop.example"])


# --- metrics, health, CORS ---------------------------------------------------------------


def test_metrics_record_latency_and_outcomes() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        for _ in range(3):
            await rpc(client, req("subtract", [1, 1]))
        await rpc(client, req("subtract", ["x", 1]))
        await rpc(client, req("no_such"))
        await rpc(client, "{")
        await rpc(client, req("test_boom"))
        await rpc(client, req("test_hang"))
        await rpc(client, req("chain_subscribe", ["newHeads"]))
        async with client.ws_connect("/ws") as ws:
            await ws_call(ws, req("get_data"))
            await ws_call(ws, req("chain_subscribe", ["newHeads"]))
            async with client.get("/metrics") as resp:
                assert resp.headers["Content-Type"] == CONTENT_TYPE
                families = parse_exposition(await resp.text())
        check_histograms(families)
        check_counters_end_in_total(families)
        requests = "shopchain_rpc_requests_total"

        def count(transport: str, method: str, outcome: str, code: int | None = None) -> float:
            return sample(families, requests, transport=transport, method=method, outcome=outcome,
                          code="" if code is None else str(code))

        assert count("http", "subtract", "ok") == 3
        assert count("http", "subtract", "client_error", INVALID_PARAMS) == 1
        assert count("http", "unknown", "client_error", METHOD_NOT_FOUND) == 1
        assert count("http", "unknown", "client_error", PARSE_ERROR) == 1
        assert count("http", "chain_subscribe", "client_error", WEBSOCKET_REQUIRED) == 1
        assert count("http", "test_boom", "server_error", INTERNAL_ERROR) == 1  # the only server_error
        assert count("http", "test_hang", "timeout", REQUEST_TIMEOUT) == 1
        assert count("ws", "get_data", "ok") == 1
        outcomes = {s.labels["outcome"] for s in families["shopchain_rpc_requests"].samples}
        assert outcomes == {"ok", "client_error", "server_error", "timeout"}
        latency = "shopchain_rpc_request_duration_seconds"
        assert sample(families, latency + "_count", transport="http", method="subtract") == 3
        assert sample(families, latency + "_bucket", transport="http", method="subtract", le="+Inf") == 3
        assert sample(families, latency + "_sum", transport="http", method="subtract") > 0
        assert sample(families, "shopchain_rpc_ws_connections") == 1
        assert sample(families, "shopchain_rpc_subscriptions") == 1

    serve(scenario, RpcLimits(call_timeout_seconds=0.05))


@pytest.mark.parametrize(
    "health,status,body",
    [
        (None, 200, {"healthy": True}),
        (lambda: {"healthy": True, "height": 7}, 200, {"healthy": True, "height": 7}),
        (lambda: {"healthy": False, "reason": "no peers"}, 503, {"healthy": False, "reason": "no peers"}),
        (lambda: 1 / 0, 503, {"healthy": False, "error": "health check raised; see the node log"}),
    ],
)
def test_healthz(health: Any, status: int, body: dict[str, Any]) -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.get("/healthz") as resp:
            assert resp.status == status and await resp.json() == body

    serve(scenario, health=health)


def test_healthz_accepts_an_async_check() -> None:
    async def check() -> dict[str, Any]:
        return {"healthy": True, "async": True}

    async def scenario(server: RpcServer, client: TestClient) -> None:
        async with client.get("/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["async"] is True

    serve(scenario, health=check)


def test_cors_is_off_unless_configured() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        headers = {"Origin": "https://shop.example"}
        async with client.post("/rpc", data=json.dumps(req("get_data")), headers=headers) as resp:
            assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
        preflight = {**headers, "Access-Control-Request-Method": "POST"}
        async with client.options("/rpc", headers=preflight) as resp:
            assert resp.status == 405 and "Access-Control-Allow-Origin" not in resp.headers

    serve(scenario)


def test_cors_for_configured_origins_only() -> None:
    async def scenario(server: RpcServer, client: TestClient) -> None:
        good, bad = {"Origin": "https://shop.example"}, {"Origin": "https://evil.example"}
        async with client.post("/rpc", data=json.dumps(req("get_data")), headers=good) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"
            assert resp.headers["Vary"] == "Origin"
        async with client.post("/rpc", data=json.dumps(req("get_data")), headers=bad) as resp:
            assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers
        async with client.options("/rpc", headers={**good, "Access-Control-Request-Method": "POST"}) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
            assert "Content-Type" in resp.headers["Access-Control-Allow-Headers"]
        async with client.options("/rpc", headers={**bad, "Access-Control-Request-Method": "POST"}) as resp:
            assert resp.status == 403 and "Access-Control-Allow-Origin" not in resp.headers
        async with client.get("/healthz", headers=good) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        async with client.get("/nothing", headers=good) as resp:
            assert resp.status == 404  # errors pass through the middleware intact
            assert resp.headers["Access-Control-Allow-Origin"] == "https://shop.example"

    serve(scenario, cors_origins=["https://shop.example"])


def test_limits_are_validated() -> None:
    with pytest.raises(RpcConfigError, match="max_body_bytes must be a positive number, found 0"):
        RpcLimits(max_body_bytes=0)
    with pytest.raises(RpcConfigError, match="call_timeout_seconds"):
        RpcLimits(call_timeout_seconds=-1.0)
