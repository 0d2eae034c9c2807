"""Block sizing: the primary keeps its own execution of a block within a share of the view timeout."""

from __future__ import annotations

from node.core.pacing import MIN_BLOCK_TXS, MIN_SAMPLE_TXS, VIEW_TIMEOUT_SHARE, BlockSizer


def test_no_cap_until_a_block_was_measured_and_small_blocks_do_not_count():
    sizer = BlockSizer(view_timeout_ms=2000, max_txs=2000)
    assert sizer.limit() == 2000
    sizer.observe(MIN_SAMPLE_TXS - 1, 5.0)  # fixed costs dominate: not a per-transaction figure
    assert sizer.limit() == 2000


def test_cap_follows_the_measured_cost_per_transaction():
    sizer = BlockSizer(view_timeout_ms=2000, max_txs=2000)
    budget_us = 2000 * 1000 * VIEW_TIMEOUT_SHARE
    sizer.observe(100, 100 * 500e-6)  # 500 us a transaction (a busy machine)
    assert sizer.limit() == int(budget_us / 500)
    for _ in range(30):  # the machine got quieter: the cap grows back, up to max_block_txs
        sizer.observe(100, 100 * 50e-6)
    assert sizer.limit() == min(2000, int(budget_us / sizer.us_per_tx)) and sizer.limit() > int(budget_us / 500)
    for _ in range(30):
        sizer.observe(100, 100 * 1e-6)
    assert sizer.limit() == 2000


def test_even_a_very_slow_node_proposes_a_useful_block():
    sizer = BlockSizer(view_timeout_ms=2000, max_txs=2000)
    sizer.observe(20, 20.0)  # one second a transaction
    assert sizer.limit() == MIN_BLOCK_TXS
    tiny = BlockSizer(view_timeout_ms=2000, max_txs=5)
    tiny.observe(20, 20.0)
    assert tiny.limit() == 5  # never above the configured maximum
