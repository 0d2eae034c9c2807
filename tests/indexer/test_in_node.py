"""The in-node indexer: a thread fed from a real block store, and its [indexer] config."""

from __future__ import annotations

import threading

import pytest

from ledger.storage.blockstore import BlockStore
from ledger.storage.leveldb import LevelDBKV
from node.indexer.runner import MAX_OFFERED_BLOCKS, Indexer, IndexerThread, StoreSource
from node.indexer.sink import IndexerError, open_sink
from node.ops.config import ConfigError, index_db_url, load_config, render_config
from tests.helpers import devnet_home_with_blocks

BLOCKS = 12
#: Bounded wait for the thread (it needs milliseconds; this only guards against a hang).
WAIT_S = 30.0


def test_the_thread_catches_up_from_the_store_and_closes_cleanly(tmp_path):
    layout, home = devnet_home_with_blocks(str(tmp_path), "in-node-indexer", BLOCKS, lambda h: h % 3)
    kv = LevelDBKV(load_config(home).path("node", "data_dir"))
    reached = threading.Event()
    try:
        blocks = BlockStore(kv)
        sink = open_sink(index_db_url(load_config(home)))
        indexer = Indexer(sink, StoreSource(blocks, layout.genesis.chain_id), batch_blocks=5,
                          on_batch=lambda height, head: height == BLOCKS and reached.set())
        thread = IndexerThread(indexer)
        thread.start()
        thread.notify()
        assert reached.wait(WAIT_S), "the indexer thread did not reach the store's head"
        thread.stop()
        assert indexer.lag == 0
        again = open_sink(index_db_url(load_config(home)))
        assert again.open(layout.genesis.chain_id) == BLOCKS
        assert len(again.rows("tx_results")) == sum(h % 3 for h in range(1, BLOCKS + 1))
        again.close()
    finally:
        kv.close()


def test_a_pruned_block_is_named(tmp_path):
    class Pruned:
        height, base = 5, 0

        def get_block(self, height):
            return None

        def get_receipts(self, height):
            return None

    with pytest.raises(IndexerError, match="block 1 is not in the block store .*pruned it before it was indexed"):
        StoreSource(Pruned(), "c").fetch(1, 2)


def _config(tmp_path, **indexer):
    lines = render_config()
    for name, value in indexer.items():
        lines = lines.replace(f'\n{name} = ""', f"\n{name} = {value}").replace(f"\n{name} = 50", f"\n{name} = {value}")
    (tmp_path / "config.toml").write_text(lines)
    return load_config(str(tmp_path))


def test_indexer_config_keys(tmp_path):
    config = _config(tmp_path)
    assert config.get("indexer", "enabled") is True
    assert index_db_url(config) == f"sqlite:///{tmp_path}/index.sqlite"
    assert index_db_url(_config(tmp_path, db_url='"sqlite:///idx/x.sqlite"')) == f"sqlite:///{tmp_path}/idx/x.sqlite"
    assert index_db_url(_config(tmp_path, db_url='"sqlite:////abs/x.sqlite"')) == "sqlite:////abs/x.sqlite"
    pg = "postgresql://shop@db:5432/index"
    assert index_db_url(_config(tmp_path, db_url=f'"{pg}"')) == pg
    with pytest.raises(ConfigError, match=r"\[indexer\] db_url: expected empty, sqlite:///path or postgresql://"):
        _config(tmp_path, db_url='"mysql://x/y"')
    with pytest.raises(ConfigError, match=r"\[indexer\] batch_blocks: expected an integer in 1..200, found 500"):
        _config(tmp_path, batch_blocks=500)


def test_offered_blocks_are_indexed_from_memory_and_the_rest_from_the_store(tmp_path):
    from tests.indexer.chainlog import RecordingChain, story

    chain, _ = story()
    blocks = chain.blocks()

    class Store:
        height, base = len(blocks), 0
        reads: list[int] = []

        def get_block(self, height):
            self.reads.append(height)
            return blocks[height - 1][0]

        def get_receipts(self, height):
            return blocks[height - 1][1]

    store = Store()
    source = StoreSource(store, "commerce-test")
    for block, receipts in blocks[10:]:
        source.offer(block, receipts)                 # committed while the index was at height 0
    assert source.fetch(1, 20) == blocks[:20]
    assert store.reads == list(range(1, 11)), "heights 11..20 came from memory"
    long = RecordingChain()
    long.advance(MAX_OFFERED_BLOCKS + 40)
    many = long.blocks()

    class LongStore(Store):
        height = len(many)

        def get_block(self, height):
            self.reads.append(height)
            return many[height - 1][0]

        def get_receipts(self, height):
            return many[height - 1][1]

    capped_store = LongStore()
    capped_store.reads = []
    capped = StoreSource(capped_store, "commerce-test")
    for block, receipts in many:                      # more than MAX_OFFERED_BLOCKS wait: the rest is read
        capped.offer(block, receipts)
    assert capped.fetch(1, len(many)) == many
    assert capped_store.reads == list(range(MAX_OFFERED_BLOCKS + 1, len(many) + 1))
    from_memory = open_sink(f"sqlite:///{tmp_path}/a.sqlite")
    from_store = open_sink(f"sqlite:///{tmp_path}/b.sqlite")
    source = StoreSource(store, "commerce-test")
    for block, receipts in blocks:
        source.offer(block, receipts)
    Indexer(from_memory, source).catch_up()
    Indexer(from_store, StoreSource(store, "commerce-test")).catch_up()
    assert from_memory.rows("events") == from_store.rows("events") and from_memory.indexed_height() == len(blocks)
    from_memory.close()
    from_store.close()
