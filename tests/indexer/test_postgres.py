"""The PostgreSQL sink against a real server (tests/pg.py): the same rows as SQLite, exactly once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from node.indexer import schema
from node.indexer.runner import Indexer
from node.indexer.sink import IndexerError, open_sink
from tests.indexer.chainlog import CHAIN_ID, story
from tests.indexer.test_sqlite import ListSource, analytics_queries

pytestmark = pytest.mark.integration  # starts a PostgreSQL server on loopback


def _numbers(rows: list[tuple]) -> list[tuple]:
    """Rows with numbers as rounded floats (PostgreSQL answers SUM and fractions as numeric: Decimal; SQLite
    as int or float), sorted."""
    def cell(v):
        return round(float(v), 6) if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool) else v
    return sorted((tuple(cell(v) for v in row) for row in rows), key=repr)


@pytest.fixture(scope="module")
def chain_blocks():
    chain, ids = story()
    return chain.blocks(), ids


def test_postgres_and_sqlite_hold_identical_rows_after_the_same_chain(pg_server, chain_blocks, tmp_path):
    blocks, _ = chain_blocks
    lite = open_sink(f"sqlite:///{tmp_path}/index.sqlite")
    pg = open_sink(pg_server.new_database())
    # different batch sizes: the rows must not depend on how the chain was cut into transactions
    Indexer(lite, ListSource(blocks), batch_blocks=7).catch_up()
    Indexer(pg, ListSource(blocks), batch_blocks=50).catch_up()
    try:
        for table in (*schema.COLUMNS, "indexer_state"):
            lite_rows, pg_rows = lite.rows(table), pg.rows(table)
            assert lite_rows, f"table {table} is empty: the story should fill every table"
            assert lite_rows == pg_rows, f"table {table} differs between SQLite and PostgreSQL"
        for view in schema.VIEWS:
            assert sorted(lite.rows(view), key=repr) == sorted(pg.rows(view), key=repr), f"view {view} differs"
        assert pg.indexed_height() == len(blocks)
        for query in analytics_queries():       # docs/analytics.md: the same answers from both
            assert _numbers(lite.query(query)) == _numbers(pg.query(query)), query
    finally:
        lite.close()
        pg.close()


def test_postgres_write_is_exactly_once(pg_server, chain_blocks):
    blocks, _ = chain_blocks
    url = pg_server.new_database()
    sink = open_sink(url)
    assert sink.open(CHAIN_ID) == 0
    sink.write(blocks[:10])
    with pytest.raises(IndexerError, match="must start with height 11"):
        sink.write(blocks[5:12])          # overlaps what is indexed
    with pytest.raises(IndexerError, match="must start with height 11"):
        sink.write(blocks[12:14])         # leaves a gap
    assert sink.indexed_height() == 10
    assert len(sink.rows("blocks")) == 10
    sink.close()
    again = open_sink(url)                # a restart continues where the last transaction ended
    indexer = Indexer(again, ListSource(blocks), batch_blocks=25)
    assert indexer.start() == 10
    indexer.catch_up()
    assert [r[0] for r in again.rows("blocks")] == list(range(1, len(blocks) + 1))
    with pytest.raises(IndexerError, match="holds chain 'commerce-test'"):
        open_sink(url).open("another-chain")
    again.close()


def test_a_failed_copy_rolls_the_whole_batch_back(pg_server, chain_blocks, monkeypatch):
    blocks, _ = chain_blocks
    sink = open_sink(pg_server.new_database())
    sink.open(CHAIN_ID)
    real = type(sink)._insert

    def failing(self, cur, table, rows):
        if table == "events":
            raise RuntimeError("disk full")
        real(self, cur, table, rows)

    monkeypatch.setattr(type(sink), "_insert", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        sink.write(blocks[:20])
    monkeypatch.undo()
    assert sink.indexed_height() == 0 and sink.rows("blocks") == [] and sink.rows("tx_results") == []
    sink.write(blocks[:20])
    assert sink.indexed_height() == 20
    sink.close()


def test_event_pages_are_the_same_from_both_databases(pg_server, chain_blocks, tmp_path):
    blocks, _ = chain_blocks
    lite = open_sink(f"sqlite:///{tmp_path}/index.sqlite")
    pg = open_sink(pg_server.new_database())
    for sink in (lite, pg):
        Indexer(sink, ListSource(blocks)).catch_up()
    try:
        for contract, names, where, limit in [("", [], {}, 5), ("orders", ["OrderPlaced", "Shipped"], {}, 2),
                                              ("", [], {"order": "1"}, 3), ("cases", [], {"kind": "RETURN_REFUND",
                                                                                           "line": "0"}, 10),
                                              ("warranty", [], {"accepted": "true"}, 1)]:
            start = 1
            while start <= len(blocks):
                got = [s.events_page(contract, names, where, start, len(blocks), limit) for s in (lite, pg)]
                assert got[0] == got[1], (contract, names, where, start)
                start = got[0][1] + 1
    finally:
        lite.close()
        pg.close()
