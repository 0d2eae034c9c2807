"""A restarted or rebuilt validator of a real devnet rejoins the view and votes again.

Issue 13 item 2: a validator that restarts (or is rebuilt from an empty data dir) while
the others changed views used to follow the chain by block sync but stay in its old
view, voting in nothing, so a second crash stalled the chain. Here a 4-validator devnet
is forced into view >= 1 by killing its primary; the old primary is restarted, then
another validator is rebuilt from an emptied data dir. Each must report the network's
view over ``consensus_status`` and cast votes (its ``votes_cast`` counter grows) soon
after it reached the head, and then a second validator's crash must not stall the
chain: the two rejoined validators are needed for every quorum from then on.

Waits are generous and poll the RPC: this runs on loaded 2-core machines. The exact
bound (one view timeout after reaching the head) is checked deterministically by the
simulator's checker 6 (tests/sim/rejoin.py); here the point is that the real node
rejoins at all, which it did not.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from tests.nethelpers import Devnet

pytestmark = pytest.mark.integration

#: Longest a rejoining validator may take from reaching the head to voting, in seconds.
#: The view timeout of this network is 1 s (25 ms x 40 ticks); the margin is for load.
REJOIN_LIMIT_S = 30.0
#: Blocks the chain must commit after the second crash.
BLOCKS_AFTER_SECOND_CRASH = 3


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Devnet.start(str(tmp_path_factory.mktemp("rejoin") / "devnet"))
    yield network
    network.stop()


def status(net: Devnet, index: int) -> dict:
    return net.client(index).request("consensus_status")


def index_of(net: Devnet, name: str) -> int:
    return next(i for i, n in enumerate(net.manifest["nodes"]) if n["name"] == name)


def wait_rejoined(net: Devnet, index: int, others: list[int]) -> float:
    """Seconds from reaching the head to being in the others' view and voting; fails past the limit."""
    head_at = None
    votes_at_head = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            mine = status(net, index)
            theirs = [status(net, i) for i in others]
        except Exception:  # noqa: BLE001 - still starting: its RPC is not up yet
            time.sleep(0.1)
            continue
        best = max(s["committed_height"] for s in theirs)
        if head_at is None and mine["committed_height"] >= best - 1:
            head_at, votes_at_head = time.monotonic(), mine["counters"].get("votes_cast", 0)
        if head_at is not None:
            views = {s["view"] for s in theirs}
            voted = mine["counters"].get("votes_cast", 0) > votes_at_head
            if mine["view"] in views and mine["mode"] == "normal" and voted:
                return time.monotonic() - head_at
            waited = time.monotonic() - head_at
            assert waited < REJOIN_LIMIT_S, (
                f"validator {index} reached the head {waited:.1f} s ago but is in view {mine['view']} ({mine['mode']}) "
                f"with {mine['counters'].get('votes_cast', 0)} votes cast; the others are in views {sorted(views)}\n"
                f"{net.log_tail(index)}")
        time.sleep(0.1)
    raise AssertionError(f"validator {index} never reached the head\n{net.log_tail(index)}")


def test_restarted_and_rebuilt_validators_rejoin_the_view_and_a_second_crash_does_not_stall(net):
    everyone = list(range(len(net.urls)))
    net.wait_height(everyone, 3)
    primary = index_of(net, status(net, 0)["primary_name"])
    view_before = status(net, primary)["view"]
    net.kill(primary)
    others = [i for i in everyone if i != primary]
    start = max(net.height(i) for i in others)
    net.wait_for("a view change among the others",
                 lambda: all(status(net, i)["view"] > view_before and status(net, i)["mode"] == "normal" for i in others)
                 and min(net.height(i) for i in others) >= start + 2, timeout=60)

    # 1. The old primary restarts with its records, in its old view.
    net.restart(primary)
    wait_rejoined(net, primary, others)

    # 2. A backup is rebuilt from an empty data dir once the chain moved past it.
    rebuilt = next(i for i in others if i != index_of(net, status(net, primary)["primary_name"]))
    net.kill(rebuilt)
    remaining = [i for i in everyone if i != rebuilt]
    start = max(net.height(i) for i in remaining)
    net.wait_height(remaining, start + 2, timeout=60)
    shutil.rmtree(os.path.join(net.manifest["nodes"][rebuilt]["home"], "data"))
    net.restart(rebuilt)
    wait_rejoined(net, rebuilt, remaining)
    assert net.client(rebuilt).block(1)["hash"] == net.client(primary).block(1)["hash"]

    # 3. A second crash: the rejoined two and one other must carry the chain.
    victim = next(i for i in everyone if i not in (primary, rebuilt))
    net.kill(victim)
    alive = [primary, rebuilt, next(i for i in everyone if i not in (primary, rebuilt, victim))]
    start = max(net.height(i) for i in alive)
    net.wait_height(alive, start + BLOCKS_AFTER_SECOND_CRASH, timeout=60)
    net.restart(victim)
    net.wait_height(everyone, start + BLOCKS_AFTER_SECOND_CRASH + 1, timeout=90)
