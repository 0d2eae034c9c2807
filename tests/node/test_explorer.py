"""The explorer's routes and the read-only RPC methods it relies on, without a browser.

chain_getEvents runs against a small in-memory stand-in for the node's block store (the
handler only reads ``height`` and ``get_receipts``), through the real dispatcher, so
param validation and paging are what a client gets.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

import node.rpc.methods as rpc_methods
from devnet.genesis import create_devnet
from ledger.types import Event, Receipt
from node.rpc.explorer import CSP, ExplorerAssetError, add_explorer_routes, load_assets
from node.rpc.jsonrpc import CallContext
from node.rpc.methods import make_routes
from node.rpc.server import RpcServer

UNIT_A = "0x" + "ab" * 32
UNIT_B = "0x" + "cd" * 32


class FakeBlocks:
    """Receipts by height, as the node's BlockStore answers them."""

    def __init__(self, receipts: dict[int, list[Receipt]], height: int) -> None:
        self.receipts = receipts
        self.height = height

    def get_receipts(self, height: int) -> list[Receipt] | None:
        return self.receipts.get(height, [])


def receipt(n: int, *events: Event) -> Receipt:
    return Receipt(bytes([n]) * 32, 0, 1000, None, None, list(events))


@pytest.fixture
def server(tmp_path):
    layout = create_devnet(str(tmp_path / "d"), 4, p2p_port=40000, rpc_port=40100, seed="explorer-unit")
    receipts = {
        2: [receipt(1, Event("orders", "OrderPlaced", {"order": 7, "buyer": b"\x01" * 32}))],
        3: [receipt(2, Event("warranty", "UnitRegistered", {"unit": bytes.fromhex(UNIT_A[2:])}),
                    Event("warranty", "UnitRegistered", {"unit": bytes.fromhex(UNIT_B[2:])}))],
        5: [receipt(3, Event("orders", "Shipped", {"order": 7})),
            receipt(4, Event("warranty", "WarrantyActivated", {"unit": bytes.fromhex(UNIT_A[2:]), "order": 7}))],
        9: [receipt(5, Event("orders", "OrderPlaced", {"order": 8}))],
    }
    fake = SimpleNamespace(blocks=FakeBlocks(receipts, 10), genesis=layout.genesis)
    return RpcServer(make_routes(fake))  # type: ignore[arg-type]


def call(server: RpcServer, method: str, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    reply = json.loads(asyncio.run(server.dispatcher.handle(body, CallContext("http"))))
    return reply.get("result"), reply.get("error")


def test_events_filter_by_contract_name_and_data(server):
    result, error = call(server, "chain_getEvents", "orders", None, 1, "latest")
    assert error is None
    assert [(e["height"], e["name"]) for e in result["events"]] == [(2, "OrderPlaced"), (5, "Shipped"), (9, "OrderPlaced")]
    assert result["from_height"] == 1 and result["to_height"] == 10 and result["next_from"] is None
    result, _ = call(server, "chain_getEvents", "", {"data": {"order": 7}})
    assert [(e["contract"], e["name"]) for e in result["events"]] == [
        ("orders", "OrderPlaced"), ("orders", "Shipped"), ("warranty", "WarrantyActivated")]
    assert result["events"][0]["data"]["buyer"] == "0x" + "01" * 32
    assert result["events"][1]["tx_id"] == "0x" + "03" * 32 and result["events"][2]["index"] == 1
    result, _ = call(server, "chain_getEvents", "warranty", {"name": "UnitRegistered", "data": {"unit": UNIT_B.upper().replace("0X", "0x")}})
    assert [e["data"]["unit"] for e in result["events"]] == [UNIT_B]
    result, _ = call(server, "chain_getEvents", "", {"name": ["Shipped", "WarrantyActivated"]}, 4, 5)
    assert [e["name"] for e in result["events"]] == ["Shipped", "WarrantyActivated"]


def test_events_are_paged_by_blocks_and_by_count(server, monkeypatch):
    monkeypatch.setattr(rpc_methods, "MAX_EVENT_SCAN_BLOCKS", 4)
    result, _ = call(server, "chain_getEvents", "orders", None, 1, "latest")
    assert result["to_height"] == 4 and result["next_from"] == 5
    assert [e["height"] for e in result["events"]] == [2]
    result, _ = call(server, "chain_getEvents", "orders", None, result["next_from"], "latest")
    assert result["to_height"] == 8 and result["next_from"] == 9 and [e["height"] for e in result["events"]] == [5]
    monkeypatch.setattr(rpc_methods, "MAX_EVENT_SCAN_BLOCKS", 100)
    monkeypatch.setattr(rpc_methods, "MAX_EVENTS_PER_CALL", 2)
    result, _ = call(server, "chain_getEvents", "", None)
    # It stops at the end of the block that reached the cap: whole blocks, never half of one.
    assert [e["height"] for e in result["events"]] == [2, 3, 3] and result["next_from"] == 4
    monkeypatch.setattr(rpc_methods, "MAX_EVENTS_PER_CALL", 500)
    monkeypatch.setattr(rpc_methods, "MAX_RECEIPTS_PER_EVENT_SCAN", 3)
    result, _ = call(server, "chain_getEvents", "", None, 3, "latest")
    assert [e["height"] for e in result["events"]] == [3, 3, 5, 5] and result["next_from"] == 6


def test_events_refuse_bad_ranges_and_filters(server):
    _, error = call(server, "chain_getEvents", "orders", None, 11, "latest")
    assert error["code"] == rpc_methods.NOT_FOUND and "not committed yet" in error["message"]
    _, error = call(server, "chain_getEvents", "orders", {"names": ["x"]})
    assert error["code"] == -32602 and '"name" and "data"' in error["message"]
    _, error = call(server, "chain_getEvents", "orders", {"name": 5})
    assert error["code"] == -32602 and "filters.name" in error["message"]
    _, error = call(server, "chain_getEvents", "orders", {"data": [1]})
    assert error["code"] == -32602 and "filters.data" in error["message"]
    result, error = call(server, "chain_getEvents", "orders", None, 9, 3)
    assert error is None and result["events"] == [] and result["next_from"] is None


def test_genesis_names_validators_and_members(server):
    result, error = call(server, "chain_getGenesis")
    assert error is None
    assert result["chain_id"] == "shopchain-devnet"
    assert [v["name"] for v in result["validators"]] == ["node0", "node1", "node2", "node3"]
    assert {o["id"] for o in result["organisations"]} >= {"platform", "acme"}
    assert any("MERCHANT" in a["roles"] for a in result["accounts"])
    assert result["genesis_hash"].startswith("0x") and len(result["genesis_hash"]) == 66


def run_app(scenario, cors_origins=()):
    async def main():
        server = RpcServer([], cors_origins=cors_origins)
        app = server.make_app()
        add_explorer_routes(app)
        async with TestClient(TestServer(app)) as client:
            await scenario(client)
    asyncio.run(main())


@pytest.mark.integration  # a real aiohttp server on loopback
def test_explorer_page_and_assets_are_served_with_a_strict_policy():
    async def scenario(client: TestClient) -> None:
        page = await client.get("/")
        assert page.status == 200 and page.content_type == "text/html"
        assert "shopchain explorer" in await page.text()
        assert page.headers["Content-Security-Policy"] == CSP and "connect-src 'self'" in CSP
        script = await client.get("/explorer/app.js")
        assert script.status == 200 and script.content_type == "text/javascript"
        assert "chain_subscribe" in await script.text()
        style = await client.get("/explorer/style.css")
        assert style.status == 200 and style.content_type == "text/css"
        for path in ("/explorer/missing.js", "/explorer/..%2fexplorer.py", "/explorer/"):
            assert (await client.get(path)).status == 404, path
        assert (await client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "rpc.discover"})).status == 200
    run_app(scenario)


@pytest.mark.integration  # a real aiohttp server on loopback
def test_only_same_origin_pages_may_open_the_websocket_without_cors():
    async def scenario(client: TestClient) -> None:
        own = f"http://{client.server.host}:{client.server.port}"
        async with client.ws_connect("/ws", headers={"Origin": own}) as ws:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "rpc.discover"})
            assert "result" in await ws.receive_json(timeout=10)
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await client.ws_connect("/ws", headers={"Origin": "http://evil.example"})
        assert refused.value.status == 403
    run_app(scenario)


def test_a_broken_installation_says_what_is_missing(tmp_path):
    with pytest.raises(ExplorerAssetError, match="no such directory"):
        load_assets(str(tmp_path / "absent"))
    (tmp_path / "app.js").write_text("1")
    with pytest.raises(ExplorerAssetError, match="index.html expected"):
        load_assets(str(tmp_path))
    (tmp_path / "index.html").write_text("<html></html>")
    (tmp_path / "notes.txt").write_text("not served")
    assert sorted(load_assets(str(tmp_path))) == ["app.js", "index.html"]


def test_the_assets_are_package_data_so_a_non_editable_install_ships_them():
    from importlib import resources

    shipped = {p.name for p in resources.files("node.rpc.explorer_static").iterdir()}
    assert {"index.html", "app.js", "style.css"} <= shipped
