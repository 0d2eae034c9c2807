"""The SQLite sink and the runner, in-process: rows of a commerce chain, exactly-once writes, the views' answers."""

from __future__ import annotations

import dataclasses
import json
import os
import re

import pytest

from node.indexer import schema
from node.indexer.rows import attribute_text, block_rows
from node.indexer.runner import Indexer
from node.indexer.sink import MAX_BLOCKS_PER_TRANSACTION, IndexerError, SqliteSink, open_sink
from tests.commerce_harness import DAY
from tests.indexer.chainlog import CHAIN_ID, MODEL_A, MODEL_B, PRICE, PRODUCT_1, RecordingChain, story
from node.rpc.views import hx


class ListSource:
    """A chain held in a list (what a block store or a remote node would hand out)."""

    def __init__(self, blocks: list, chain_id: str = CHAIN_ID) -> None:
        self.blocks, self.chain_id, self.visible = blocks, chain_id, len(blocks)

    def head(self) -> int:
        return self.visible

    def base(self) -> int:
        return 0

    def fetch(self, start: int, stop: int) -> list:
        return self.blocks[start - 1:stop]


@pytest.fixture(scope="module")
def chain():
    c, ids = story()
    return c, c.blocks(), ids


@pytest.fixture()
def sink(tmp_path):
    s = open_sink(f"sqlite:///{tmp_path}/index.sqlite")
    yield s
    s.close()


def test_rows_of_a_block_mirror_its_transactions_receipts_and_events(chain):
    c, blocks, _ = chain
    rows = [block_rows(b, r) for b, r in blocks]
    assert sum(len(r.tx_results) for r in rows) == len(c.records)
    failed = [t for r in rows for t in r.tx_results if t[8] == 0]
    assert len(failed) == 1 and failed[0][6] == "confirm" and failed[0][13].startswith("RequireFailed")
    placed = [e for r in rows for e in r.events if e[5] == "OrderPlaced"]
    assert [json.loads(e[6])["order"] for e in placed] == [1, 2, 3, 4]
    attrs = {(a[3], a[4]) for r in rows for a in r.attributes if (a[0], a[1], a[2]) == placed[0][:3]}
    assert ("amount", str(2 * PRICE)) in attrs and ("order", "1") in attrs
    assert attribute_text(True) == "true" and attribute_text([1, "a"]) == '[1,"a"]' and attribute_text(None) is None


def test_index_catches_up_in_bounded_batches_and_restarts_where_it_stopped(chain, tmp_path):
    _, blocks, _ = chain
    url = f"sqlite:///{tmp_path}/index.sqlite"
    source = ListSource(blocks)
    source.visible = 30                      # the node's head while the indexer first runs
    seen = []
    first = Indexer(open_sink(url), source, batch_blocks=8, on_batch=lambda h, head: seen.append(h))
    assert first.start() == 0
    assert first.catch_up() == 30 and seen == [8, 16, 24, 30] and first.lag == 0
    first.sink.close()
    source.visible = len(blocks)             # more blocks committed while it was down
    second = Indexer(open_sink(url), source, batch_blocks=MAX_BLOCKS_PER_TRANSACTION)
    assert second.start() == 30
    assert second.catch_up() == len(blocks)
    assert [r[0] for r in second.sink.rows("blocks")] == list(range(1, len(blocks) + 1))
    assert second.sink.rows("indexer_state")[0][2:4] == (CHAIN_ID, len(blocks))
    second.sink.close()
    with pytest.raises(IndexerError, match="1..200 blocks"):
        Indexer(open_sink(url), source, batch_blocks=MAX_BLOCKS_PER_TRANSACTION + 1)


def test_a_batch_must_continue_the_index_exactly(chain, sink):
    _, blocks, _ = chain
    sink.open(CHAIN_ID)
    sink.write(blocks[:10])
    for bad in (blocks[9:12], blocks[11:13], blocks[:3]):
        with pytest.raises(IndexerError, match="the index is at height 10: the next batch must start with height 11"):
            sink.write(bad)
    with pytest.raises(IndexerError, match="consecutive blocks: block 13 does not follow block 11"):
        sink.write([blocks[10], blocks[12]])
    with pytest.raises(IndexerError, match="at most 200 blocks"):
        sink.write(blocks * 3)
    assert sink.indexed_height() == 10 and len(sink.rows("blocks")) == 10


def test_a_fork_or_another_chain_is_refused(chain, tmp_path, sink):
    _, blocks, _ = chain
    sink.open(CHAIN_ID)
    sink.write(blocks[:5])
    other = RecordingChain()                 # another history of the same chain id: block 6 names another parent
    other.advance(10)
    forked = other.blocks()
    with pytest.raises(IndexerError, match="previous hash is"):
        sink.write(forked[5:6])
    with pytest.raises(IndexerError, match="holds chain 'commerce-test', expected 'devnet'"):
        open_sink(f"sqlite:///{tmp_path}/index.sqlite").open("devnet")


def test_a_failed_write_leaves_neither_rows_nor_height(chain, sink, monkeypatch):
    _, blocks, _ = chain
    sink.open(CHAIN_ID)
    real = SqliteSink._insert

    def failing(self, cur, table, rows):
        real(self, cur, table, rows)
        if table == "attributes":
            raise OSError("disk I/O error")

    monkeypatch.setattr(SqliteSink, "_insert", failing)
    with pytest.raises(OSError):
        sink.write(blocks[:20])
    monkeypatch.undo()
    assert sink.indexed_height() == 0
    assert all(sink.rows(t) == [] for t in schema.COLUMNS)
    assert sink.write(blocks[:20]) == 20


@pytest.mark.parametrize("url, found", [
    ("mysql://db/x", "found 'mysql://db/x'"),
    ("sqlite://host/x.db", "three slashes"),
    ("sqlite:///", "three slashes"),
    ("postgresql://user@host:5432", "no database name"),
    ("/var/index.sqlite", "found '/var/index.sqlite'"),
])
def test_bad_database_urls_say_what_is_expected(url, found):
    with pytest.raises(IndexerError, match="expected sqlite:///path/to/index.sqlite or postgresql://") as err:
        open_sink(url)
    assert found in str(err.value)


def test_sqlite_url_in_a_missing_directory(tmp_path):
    with pytest.raises(IndexerError, match="expected an existing directory"):
        open_sink(f"sqlite:///{tmp_path}/nope/index.sqlite")


def test_commerce_views_answer_the_after_sales_questions(chain, sink):
    c, blocks, ids = chain
    sink.open(CHAIN_ID)
    Indexer(sink, ListSource(blocks)).catch_up()
    m1, m2 = hx(c.keys["merchant1"]), hx(c.keys["merchant2"])
    states = {r[0]: r[-1] for r in sink.rows("order_states")}
    assert states == {ids["returned"]: "DELIVERED", ids["late"]: "SHIPPED", ids["rejected"]: "REJECTED",
                      ids["completed"]: "COMPLETED"}
    assert sorted(sink.rows("orders_by_state")) == [("COMPLETED", 1, PRICE), ("DELIVERED", 1, 2 * PRICE),
                                                    ("REJECTED", 1, PRICE), ("SHIPPED", 1, PRICE)]
    # refunds: the return (one of two units, 10% restocking fee) and the rejection (in full)
    assert sorted((r[0], r[1], r[2]) for r in sink.rows("refunds")) == [
        (ids["returned"], m1, PRICE - 1_000), (ids["rejected"], m2, PRICE)]
    merchants = {r[0]: r[1:] for r in sink.rows("merchant_after_sales")}
    # merchant1: 3 orders, 1 refunded (9,000), 1 return case: 3333 bps each; merchant2: its 1 order refunded
    assert merchants[m1] == (3, 4 * PRICE, 1, PRICE - 1_000, 1, 3333, 3333)
    assert merchants[m2] == (1, PRICE, 1, PRICE, 0, 10_000, 0)
    products = {(r[0], r[1]): r[2:] for r in sink.rows("product_after_sales")}
    # merchant1's product 1: one line of 2 units, 1 returned (5000 bps), refunded 9,000
    assert products[(m1, hx(PRODUCT_1))] == (1, 2, 2 * PRICE, 1, 1, 0, PRICE - 1_000, 5_000)
    assert products[(m2, hx(PRODUCT_1))] == (1, 1, PRICE, 0, 0, 0, 0, 0)
    [refund] = sink.rows("time_to_refund")
    assert refund[0] == ids["return_case"] and refund[4] == "RETURN_REFUND" and refund[-1] == \
        ids["return_opened_to_refunded_s"]
    breaches = sorted((r[0], r[1], r[5]) for r in sink.rows("sla_breaches"))
    assert breaches == [("ship_late", ids["late"], ids["ship_late_s"]), ("ticket_first_response", ids["ticket"], None)]
    models = {r[1]: r[2:] for r in sink.rows("warranty_claims_per_model")}
    assert models == {hx(MODEL_A): (2, 1, 1, 5_000), hx(MODEL_B): (1, 0, 0, 0)}
    assert DAY == 86_400


def test_events_page_stops_at_the_end_of_a_block_and_continues_there(chain, sink):
    _, blocks, _ = chain
    sink.open(CHAIN_ID)
    Indexer(sink, ListSource(blocks)).catch_up()
    everything, last = sink.events_page("", [], {}, 1, len(blocks), limit=10_000)
    assert last == len(blocks) and len(everything) == len(sink.rows("events"))
    pages, start = [], 1
    while start <= len(blocks):
        rows, last = sink.events_page("", [], {}, start, len(blocks), limit=4)
        assert len({r[0] for r in rows[3:]}) <= 1, "a page goes past its limit only to finish one block"
        pages.extend(rows)
        start = last + 1
    assert pages == everything
    orders, _ = sink.events_page("orders", ["OrderPlaced"], {"order": "3"}, 1, len(blocks))
    assert [json.loads(r[6])["order"] for r in orders] == [3]


DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "analytics.md")


def analytics_queries() -> list[str]:
    """Every ```sql block of docs/analytics.md."""
    with open(DOCS) as fh:
        return re.findall(r"```sql\n(.*?)```", fh.read(), re.S)


def test_every_query_of_the_analytics_guide_runs(chain, sink):
    c, blocks, _ = chain
    sink.open(CHAIN_ID)
    Indexer(sink, ListSource(blocks)).catch_up()
    queries = analytics_queries()
    assert len(queries) >= 8
    answers = [sink.query(q) for q in queries]
    assert all(answers), "each example query answers something on the story chain"
    assert hx(c.keys["merchant1"]) in queries[5], "the per-merchant example names the story's merchant1"


def test_attribute_values_too_long_for_an_index_are_kept_in_the_event_json_only(chain):
    from ledger.types import Event
    from node.indexer.rows import MAX_ATTRIBUTE_BYTES

    _, blocks, _ = chain
    block, receipts = next((b, r) for b, r in blocks if r)
    long = "é" * MAX_ATTRIBUTE_BYTES                  # 2 bytes a character: over the limit
    first = dataclasses.replace(receipts[0], events=[Event("shop", "Note", {"text": long, "short": "ok"})])
    rows = block_rows(block, [first, *receipts[1:]])
    attrs = {a[3]: a[4] for a in rows.attributes if a[1:3] == (0, 0)}
    assert attrs == {"short": "ok", "text": None}
    assert json.loads(rows.events[0][6])["text"] == long
    assert attribute_text("x" * MAX_ATTRIBUTE_BYTES) == "x" * MAX_ATTRIBUTE_BYTES


def test_a_re_created_chain_under_the_same_id_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path}/index.sqlite"
    first = open_sink(url)
    assert first.open(CHAIN_ID, "0x" + "aa" * 32) == 0
    first.close()
    with pytest.raises(IndexerError, match="with genesis 0xaaaa.*expected genesis 0xbbbb.*re-created"):
        open_sink(url).open(CHAIN_ID, "0x" + "bb" * 32)
    again = open_sink(url)
    assert again.open(CHAIN_ID, "0x" + "aa" * 32) == 0 and again.open(CHAIN_ID) == 0  # unknown genesis: no check
    again.close()
