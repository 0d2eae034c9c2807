"""chain_getEvents from the SQL index: the same events as the block scan, paged in whole blocks,
continuing with the scan above the indexed height; and the remote source's checks of what it pulls."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

import node.rpc.methods as rpc_methods
from ledger.types import Receipt
from node.indexer.runner import Indexer, _decode_item
from node.indexer.sink import IndexerError, open_sink
from node.rpc.jsonrpc import CallContext
from node.rpc.methods import make_routes
from node.rpc.server import RpcServer
from node.rpc.views import hx
from tests.indexer.chainlog import story
from tests.indexer.test_sqlite import ListSource

INDEXED = 50


class StoryBlocks:
    """The story's blocks as the node's BlockStore answers them."""

    def __init__(self, blocks: list) -> None:
        self.blocks = blocks
        self.height = len(blocks)

    def get_receipts(self, height: int) -> list[Receipt] | None:
        return self.blocks[height - 1][1] if 1 <= height <= self.height else None


@pytest.fixture(scope="module")
def chain():
    c, ids = story()
    return c, c.blocks(), ids


@pytest.fixture
def servers(chain, tmp_path):
    _, blocks, _ = chain
    sink = open_sink(f"sqlite:///{tmp_path}/index.sqlite")
    source = ListSource(blocks)
    source.visible = INDEXED                  # the index lags the head by the rest
    indexer = Indexer(sink, source)
    indexer.catch_up()
    store = StoryBlocks(blocks)
    indexed = SimpleNamespace(blocks=store, event_index=indexer)
    scanning = SimpleNamespace(blocks=store)
    yield RpcServer(make_routes(indexed)), RpcServer(make_routes(scanning))  # type: ignore[arg-type]
    sink.close()


def call(server: RpcServer, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "chain_getEvents", "params": list(params)})
    reply = json.loads(asyncio.run(server.dispatcher.handle(body, CallContext("http"))))
    assert "error" not in reply, reply
    return reply["result"]


def every_page(server: RpcServer, contract, filters, start=1, end="latest"):
    events, pages, sources = [], 0, []
    while start is not None:
        page = call(server, contract, filters, start, end)
        events += page["events"]
        sources.append(page["source"])
        pages += 1
        start = page["next_from"]
    return events, sources


@pytest.mark.parametrize("contract, filters", [
    ("", None),
    ("orders", None),
    ("orders", {"name": ["OrderPlaced", "Refunded"]}),
    ("", {"data": {"order": 1}}),
    ("cases", {"name": "CaseOpened", "data": {"kind": "RETURN_REFUND", "line": 0}}),
    ("", {"data": {"order": "1"}}),           # text "1" is not the integer 1: no event has it
    ("warranty", {"data": {"accepted": True}}),
    ("orders", {"data": {"missing_field": None}}),
])
def test_index_and_scan_give_the_same_events(servers, contract, filters, monkeypatch):
    monkeypatch.setattr(rpc_methods, "MAX_EVENT_SCAN_BLOCKS", 10)
    indexed, scanning = servers
    from_index, sources = every_page(indexed, contract, filters)
    from_scan, scan_sources = every_page(scanning, contract, filters)
    assert from_index == from_scan
    assert set(scan_sources) == {"scan"}
    # the indexed part (1..50) is one page however long; the 21 blocks above it are scanned 10 at a time
    assert sources == ["index", "scan", "scan", "scan"]


def test_index_pages_end_with_whole_blocks_and_continue_exactly(servers, monkeypatch):
    monkeypatch.setattr(rpc_methods, "MAX_EVENTS_PER_CALL", 3)
    indexed, scanning = servers
    first = call(indexed, "", None, 1, INDEXED)
    heights = [e["height"] for e in first["events"]]
    assert first["source"] == "index" and first["to_height"] == heights[2] and heights[-1] == heights[2]
    assert first["next_from"] == first["to_height"] + 1 and first["indexed_height"] == INDEXED
    paged, _ = every_page(indexed, "", None, 1, INDEXED)
    whole, _ = every_page(scanning, "", None, 1, INDEXED)
    assert paged == whole and len(paged) > 3


def test_a_range_above_the_index_is_scanned(servers):
    indexed, _ = servers
    page = call(indexed, "orders", None, INDEXED + 1, "latest")
    assert page["source"] == "scan" and page["from_height"] == INDEXED + 1


def test_remote_blocks_are_checked_against_their_header(chain):
    _, blocks, _ = chain
    block, receipts = next((b, r) for b, r in blocks if r)
    item = {"block": hx(block.encode()), "receipts": [hx(r.encode()) for r in receipts]}
    assert _decode_item(item, block.height)[0] == block
    with pytest.raises(IndexerError, match=f"expected block {block.height + 1}, found block {block.height}"):
        _decode_item(item, block.height + 1)
    with pytest.raises(IndexerError, match="do not hash to its receipts root"):
        _decode_item({**item, "receipts": item["receipts"][:-1]}, block.height)
    with pytest.raises(IndexerError, match="is malformed"):
        _decode_item({"block": "0x00", "receipts": []}, block.height)


class RawStore(StoryBlocks):
    """The story's blocks as stored bytes too (chain_getRawBlocks reads get_stored_pair)."""

    def get_stored_pair(self, height: int):
        return (self.blocks[height - 1][0].encode(), b"cert") if 1 <= height <= self.height else None


def raw_call(server: RpcServer, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "chain_getRawBlocks", "params": list(params)})
    reply = json.loads(asyncio.run(server.dispatcher.handle(body, CallContext("http"))))
    return reply.get("result"), reply.get("error")


def test_raw_blocks_come_in_bounded_runs_that_decode_to_the_chain(chain, monkeypatch):
    _, blocks, _ = chain
    server = RpcServer(make_routes(SimpleNamespace(blocks=RawStore(blocks))))  # type: ignore[arg-type]
    answer, _ = raw_call(server, 2, 5)
    assert [item["height"] for item in answer["blocks"]] == [2, 3, 4, 5, 6] and answer["next_from"] == 7
    assert [_decode_item(item, item["height"]) for item in answer["blocks"]] == blocks[1:6]
    assert answer["head"] == len(blocks)
    last, _ = raw_call(server, len(blocks) - 1)
    assert len(last["blocks"]) == 2 and last["next_from"] is None
    monkeypatch.setattr(rpc_methods, "MAX_RAW_BYTES_PER_CALL", 1)
    one, _ = raw_call(server, 2, 5)
    assert [item["height"] for item in one["blocks"]] == [2] and one["next_from"] == 3  # always at least one
    _, error = raw_call(server, 1, rpc_methods.MAX_RAW_BLOCKS_PER_CALL + 1)
    assert error["code"] == -32602 and "count" in error["message"]
    _, error = raw_call(server, len(blocks) + 1)
    assert error["code"] == rpc_methods.NOT_FOUND and "not committed yet" in error["message"]


def test_an_index_of_a_state_synced_node_starts_at_its_base(chain, tmp_path):
    _, blocks, _ = chain
    source = ListSource(blocks)
    source.base = lambda: 30                   # the node holds blocks from its snapshot height on
    sink = open_sink(f"sqlite:///{tmp_path}/index.sqlite")
    Indexer(sink, source).catch_up()
    assert [r[0] for r in sink.rows("blocks")] == list(range(30, len(blocks) + 1))
    sink.close()
