"""Block sync: a validator that missed 1,000+ blocks catches up from its peers' stores."""

from __future__ import annotations

import time

import pytest

from devnet import launcher
from tests.nethelpers import Devnet

pytestmark = pytest.mark.integration

BLOCKS_MISSED = 1000


def test_restarted_node_catches_up_after_1000_blocks_by_block_sync(tmp_path):
    # Empty blocks as fast as consensus allows, so the others advance 1,000 heights quickly.
    net = Devnet.start(str(tmp_path / "devnet"), overrides={("consensus", "empty_block_interval_ms"): 1})
    try:
        lagging = 3
        launcher.stop_node(net.manifest["nodes"][lagging])
        stopped_at = net.height(0)
        started = time.monotonic()
        net.wait_height([0, 1, 2], stopped_at + BLOCKS_MISSED, timeout=240)
        produce_s = time.monotonic() - started
        target = net.height(0)
        net.restart(lagging)
        started = time.monotonic()
        net.wait_for("the restarted node to answer", lambda: net.height(lagging) >= 0, timeout=60)
        net.wait_height([lagging], target, timeout=240)
        sync_s = time.monotonic() - started
        print(f"\nconsensus made {target - stopped_at} blocks in {produce_s:.1f} s; "
              f"the restarted node synced {target - stopped_at} in {sync_s:.1f} s")
        assert net.client(lagging).block(target)["hash"] == net.client(0).block(target)["hash"]
        status = net.client(lagging).request("consensus_status")
        assert status["counters"].get("caught_up", 0) >= BLOCKS_MISSED
        # It then takes part in consensus again: new blocks commit on it too.
        net.wait_height([lagging], net.height(0) + 5, timeout=60)
    finally:
        net.stop()
