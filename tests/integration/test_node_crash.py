"""Crash consistency of the real node: kill -9 during commits, damaged store files.

One 4-validator devnet serves the module. Under steady load a random validator (the
primary included) is SIGKILLed at a random instant (commits happen every few tens of
milliseconds, so most kills land during or next to one) and restarted; it must come
back, catch up, and agree with a healthy peer on every block hash and the state root,
and every acknowledged transaction must commit exactly once.

Then store files are damaged on a stopped node: a flipped byte or a truncation in a
LevelDB ``.log``, ``.ldb`` or ``MANIFEST``. The node must either start and serve only
right data (every block hash, the state root and account reads equal a healthy
peer's) or refuse to start with a clear message naming the problem and how to
recover. A refused node is recovered by wiping its data directory; it re-syncs.
"""

from __future__ import annotations

import collections
import os
import random
import shutil
import time

import pytest

from devnet import launcher
from node.client import RpcFailure
from tests.nethelpers import Devnet, LoadGenerator

pytestmark = pytest.mark.integration

#: Kill/restart cycles in the default run and behind --runslow.
KILLS_DEFAULT = 6
KILLS_LONG = 200
#: Longest random wait before a kill, seconds.
MAX_KILL_DELAY_S = 0.8
#: Longest a damaged node may take to either serve or exit.
DAMAGED_START_LIMIT_S = 40.0
#: Words that make a refusal message "clear": what broke and what to run.
REFUSAL_MARKERS = ("store is corrupted", "cannot open the store")
RECOVERY_MARKERS = ("Recover with", "shopchain node")
#: Accounts whose reads are compared between a recovered node and a healthy peer.
CHECKED_ACCOUNTS = ("buyer-1", "buyer-2", "buyer-3", "merchant-acme")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    network = Devnet.start(str(tmp_path_factory.mktemp("crash") / "devnet"))
    yield network
    network.stop()


def _data_dir(net: Devnet, index: int) -> str:
    return os.path.join(net.manifest["nodes"][index]["home"], "data")


def _assert_same_as_peer(net: Devnet, index: int, peer: int, full: bool) -> None:
    """The node's blocks, state root and account reads equal the peer's."""
    mine, theirs = net.client(index), net.client(peer)
    head = mine.status()["height"]
    net.wait_height([peer], head)
    heights = range(1, head + 1) if full else sorted({1, head, *random.Random(head).sample(range(1, head + 1), min(5, head))})
    for height in heights:
        a, b = mine.block(height), theirs.block(height)
        assert a["hash"] == b["hash"] and a["header"]["state_root"] == b["header"]["state_root"], \
            f"node {index} serves a different block {height} than node {peer}"
    # Reads at one height: freeze progress of neither, so compare at the lower head.
    net.wait_for("both nodes at one height for reads", lambda: _reads_agree(net, index, peer), timeout=30, interval=0.02)


def _reads_agree(net: Devnet, index: int, peer: int) -> bool:
    a, b = net.client(index), net.client(peer)
    before = a.status()["height"], b.status()["height"]
    reads = [(a.account(net.keys[n].public_key), b.account(net.keys[n].public_key)) for n in CHECKED_ACCOUNTS]
    after = a.status()["height"], b.status()["height"]
    if len(set(before + after)) != 1:
        return False  # a block committed meanwhile: ask again
    for mine, theirs in reads:
        mine.pop("pending_txs", None), theirs.pop("pending_txs", None)
        assert mine == theirs, f"node {index} serves {mine}, node {peer} serves {theirs}"
    roots = a.status()["state_root"], b.status()["state_root"]
    if len({a.status()["height"], b.status()["height"], *after}) != 1:
        return False
    assert roots[0] == roots[1], f"node {index} has state root {roots[0]}, node {peer} {roots[1]} at one height"
    return True


def _caught_up(net: Devnet, index: int, peer: int) -> None:
    target = net.height(peer)
    net.wait_for(f"node {index} healthy", lambda: net.client(index).status()["height"] >= 0, timeout=60)
    net.wait_height([index], target, timeout=90)


def run_kill_cycles(net: Devnet, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    load = LoadGenerator(net, ["buyer-1", "buyer-2", "buyer-3"], net.keys["merchant-acme"].public_key, 15.0).start()
    try:
        for cycle in range(kills):
            victim = rng.randrange(4)
            peer = (victim + 1 + rng.randrange(3)) % 4
            time.sleep(rng.uniform(0.0, MAX_KILL_DELAY_S))
            net.kill(victim)
            if rng.random() < 0.3:
                time.sleep(rng.uniform(0.5, 2.0))  # sometimes the rest move on and it must catch up
            net.restart(victim)
            if rng.random() < 0.25:
                # Kill it again while it is starting or catching up, then let it finish.
                time.sleep(rng.uniform(0.5, 2.5))
                net.kill(victim)
                net.restart(victim)
            _caught_up(net, victim, peer)
            _assert_same_as_peer(net, victim, peer, full=cycle == kills - 1)
    finally:
        acked = load.stop()
    assert not load.errors, load.errors[:3]
    client = net.client(0)
    for tx_id in acked:
        net.wait_for(f"receipt of {tx_id}", lambda t=tx_id: client.receipt(t), timeout=90)
    top = client.status()["height"]
    net.wait_height([0, 1, 2, 3], top)
    counts = collections.Counter(net.all_tx_ids(3))
    assert not [t for t in acked if counts[t] != 1], "an acknowledged transaction is missing or doubled"
    assert len({net.client(i).block(top)["hash"] for i in range(4)}) == 1


def test_kill_9_during_commits_recovers_and_agrees(net):
    run_kill_cycles(net, KILLS_DEFAULT, seed=int(os.environ.get("CRASH_SEED", "5")))


# --- damaged files ------------------------------------------------------------------------

def _pick(files: list[str], suffix: str) -> str | None:
    matching = sorted(f for f in files if (f.startswith(suffix) if suffix == "MANIFEST" else f.endswith(suffix)))
    return matching[-1] if matching else None


def _damage(path: str, how: str, rng: random.Random) -> str:
    size = os.path.getsize(path)
    if how == "flip":
        offset = rng.randrange(size)
        with open(path, "r+b") as fh:
            fh.seek(offset)
            byte = fh.read(1)
            fh.seek(offset)
            fh.write(bytes([byte[0] ^ (1 << rng.randrange(8))]))
        return f"flipped a bit at offset {offset} of {size}"
    keep = rng.randrange(size // 2, size) if size > 1 else 0
    with open(path, "r+b") as fh:
        fh.truncate(keep)
    return f"truncated from {size} to {keep} bytes"


def _exited(net: Devnet, index: int) -> bool:
    return not launcher._alive(net.manifest["nodes"][index]["pid"])


def _recover_exited(net: Devnet) -> None:
    """Wipe and restart any node an earlier case left halted, so each case starts from four live nodes."""
    for index in range(4):
        if _exited(net, index):
            shutil.rmtree(_data_dir(net, index), ignore_errors=True)
            net.restart(index)
            _caught_up(net, index, (index + 1) % 4)


CORRUPTIONS = [(".log", "flip"), (".log", "truncate"), (".ldb", "flip"), (".ldb", "truncate"),
               ("MANIFEST", "flip"), ("MANIFEST", "truncate")]


@pytest.mark.parametrize("suffix, how", CORRUPTIONS)
def test_damaged_store_file_recovers_or_refuses_clearly_and_never_serves_wrong_data(net, suffix, how):
    rng = random.Random(f"{suffix}/{how}")
    victim = rng.randrange(4)
    peer = (victim + 1) % 4
    _recover_exited(net)
    net.wait_height([victim, peer], net.height(peer))
    net.kill(victim)  # a crash, then the disk damage
    files = os.listdir(_data_dir(net, victim))
    name = _pick(files, suffix)
    if name is None or os.path.getsize(os.path.join(_data_dir(net, victim), name)) == 0:
        net.restart(victim)  # a restart turns the log into a table file; damage the next crash
        _caught_up(net, victim, peer)
        net.kill(victim)
        files = os.listdir(_data_dir(net, victim))
        name = _pick(files, suffix)
    assert name is not None, f"no {suffix} file in {files}"
    what = _damage(os.path.join(_data_dir(net, victim), name), how, rng)
    log_size = os.path.getsize(os.path.join(net.root, "logs", net.manifest["nodes"][victim]["name"] + ".log"))
    net.restart(victim)
    outcome = net.wait_for(f"damaged node ({name}: {what}) to serve or exit", lambda: (
        "exited" if _exited(net, victim) else "serving" if net.client(victim).status() else None),
        timeout=DAMAGED_START_LIMIT_S)
    if outcome == "serving":
        try:
            _caught_up(net, victim, peer)
            _assert_same_as_peer(net, victim, peer, full=True)
        except (AssertionError, RpcFailure):
            if not _exited(net, victim):
                raise
            # It met the damage while catching up or while a damaged block was read for
            # the comparison, and halted: a refusal too, judged by its message below.
            outcome = "exited"
    print(f"damage {name}: {what} -> {outcome}")
    if outcome == "exited":
        with open(os.path.join(net.root, "logs", net.manifest["nodes"][victim]["name"] + ".log"), errors="replace") as fh:
            fh.seek(log_size)
            message = fh.read()
        assert any(m in message for m in REFUSAL_MARKERS) and any(m in message for m in RECOVERY_MARKERS), \
            f"{name} {what}: the node exited without a clear message:\n{message[-2000:]}"
        shutil.rmtree(_data_dir(net, victim))  # the operator's recovery: re-sync from peers
        net.restart(victim)
        _caught_up(net, victim, peer)
        _assert_same_as_peer(net, victim, peer, full=True)
        return  # the store was rebuilt from the peers just now: the next test starts from a clean one
    # Damage a node survived may still sit in a table file a later compaction reads (the
    # node then halts with the corruption message): start the next test from a clean store.
    net.kill(victim)
    shutil.rmtree(_data_dir(net, victim))
    net.restart(victim)
    _caught_up(net, victim, peer)


@pytest.mark.slow
def test_kill_9_during_commits_long_run(net):
    run_kill_cycles(net, KILLS_LONG, seed=int(os.environ.get("CRASH_SEED", "6")))
