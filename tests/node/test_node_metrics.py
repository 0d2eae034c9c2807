"""A real node's /metrics, read the way a Prometheus scraper reads it.

A node (one validator, not started: no p2p sockets) is built from a devnet home and its
RPC app is served in process; requests go over HTTP to /rpc and the exposition from
/metrics is parsed with prometheus_client's parser. What must hold: the families are
exactly the declared ones (node/ops/metric_defs.py), every counter's samples end in
``_total``, the process/GC/build-info metrics are there, and an answer is counted by
whose fault it was: NotFound is the client's, only an internal error the server's.
"""

from __future__ import annotations

import asyncio
import json
import platform
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from devnet.genesis import DEMO_ACCOUNTS, DEVNET_CHAIN_ID, Endpoint, write_consortium
from node.ops.metric_defs import ALL_METRICS
from node.ops.metrics import CONTENT_TYPE
from node.rpc.jsonrpc import INTERNAL_ERROR, INVALID_PARAMS
from node.service import Node
from tests.node.test_metrics import check_counters_end_in_total, check_histograms, parse_exposition, sample

pytestmark = pytest.mark.integration  # a real aiohttp server on loopback

NOT_FOUND = -32004  # node.rpc.methods.NOT_FOUND
REQUESTS = "shopchain_rpc_requests_total"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("node-metrics") / "net")
    layout = write_consortium(root, DEVNET_CHAIN_ID, [Endpoint("127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:2")],
                              "node-metrics", DEMO_ACCOUNTS, "test keys")
    node = Node(layout.node_homes[0])
    yield node
    node.kv.close()


def scrape_after(node: Node, calls: list[tuple[str, list]]) -> tuple[dict, list[dict], str]:
    """Send ``calls`` to /rpc one by one, then GET /metrics: (families, answers, content type)."""
    async def main() -> tuple[dict, list[dict], str]:
        async with TestClient(TestServer(node.rpc.make_app())) as client:
            answers = []
            for i, (method, params) in enumerate(calls):
                body = {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                async with client.post("/rpc", data=json.dumps(body)) as resp:
                    answers.append(await resp.json())
            async with client.get("/metrics") as resp:
                assert resp.status == 200
                return parse_exposition(await resp.text()), answers, resp.headers["Content-Type"]
    return asyncio.run(main())


def requests(families: dict, method: str, outcome: str, code: int | None = None) -> float:
    """A request-count sample, 0 when the series does not exist (yet)."""
    labels = {"transport": "http", "method": method, "outcome": outcome, "code": "" if code is None else str(code)}
    found = [s.value for s in families["shopchain_rpc_requests"].samples if s.name == REQUESTS and s.labels == labels]
    return found[0] if found else 0.0


def test_the_scrape_shows_exactly_the_declared_families_and_counters_end_in_total(node):
    families, _, content_type = scrape_after(node, [("chain_status", [])])
    assert content_type == CONTENT_TYPE
    exposed = {(f.name + "_total" if f.type == "counter" else f.name, f.type) for f in families.values()}
    assert exposed == {(d.name, d.kind) for d in ALL_METRICS}
    check_counters_end_in_total(families)
    check_histograms(families)
    for prefix in ("process_", "python_gc_"):
        assert any(name.startswith(prefix) and fam.samples for name, fam in families.items()), prefix
    assert sample(families, "process_cpu_seconds_total") > 0
    assert sample(families, "shopchain_build_info", version=node.rpc.openrpc_document["info"]["version"],
                  python=platform.python_version(), chain_id=DEVNET_CHAIN_ID) == 1
    assert len(families["shopchain_build_info"].samples) == 1
    # The running counts the issue found typed as gauges are counters read from the node.
    assert families["shopchain_view_changes"].type == "counter"
    assert sample(families, "shopchain_view_changes_total") == node.replica.counters.get("view_changes", 0)
    assert families["shopchain_preview_hits"].type == "counter"
    assert sample(families, "shopchain_preview_hits_total") == node.chain.speculation_hits
    assert sample(families, "shopchain_height") == node.chain.height


def test_not_found_is_a_client_error_not_a_server_error(node):
    unknown = "0x" + "ab" * 32
    before, _, _ = scrape_after(node, [])
    calls = [("chain_getReceipt", [unknown]), ("chain_getBlock", [node.chain.height + 5]),
             ("chain_getBlock", ["tall"])]
    after, answers, _ = scrape_after(node, calls)
    assert [a["error"]["code"] for a in answers] == [NOT_FOUND, NOT_FOUND, INVALID_PARAMS], answers
    grew = {key: requests(after, *key) - requests(before, *key) for key in [
        ("chain_getReceipt", "client_error", NOT_FOUND), ("chain_getBlock", "client_error", NOT_FOUND),
        ("chain_getBlock", "client_error", INVALID_PARAMS)]}
    assert set(grew.values()) == {1}, grew
    for method in ("chain_getReceipt", "chain_getBlock"):
        servers = [s for s in after["shopchain_rpc_requests"].samples
                   if s.labels["method"] == method and s.labels["outcome"] == "server_error"]
        assert servers == [], servers


def test_an_internal_error_is_a_server_error(node, monkeypatch):
    def broken() -> dict[str, Any]:
        raise RuntimeError("a bug in a read")

    before, _, _ = scrape_after(node, [])
    monkeypatch.setattr(node.reads, "status", broken)  # the route reads node.status() at call time
    after, answers, _ = scrape_after(node, [("chain_status", [])])
    assert answers[0]["error"]["code"] == INTERNAL_ERROR
    assert requests(after, "chain_status", "server_error", INTERNAL_ERROR) - \
        requests(before, "chain_status", "server_error", INTERNAL_ERROR) == 1
    assert requests(after, "chain_status", "client_error", INTERNAL_ERROR) == 0
