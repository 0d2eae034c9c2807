"""`shopchain indexer run` against a real node process, killed with SIGKILL mid-catch-up and restarted.

The node serves a store of certified blocks of transfers (tests/helpers.py); the
indexer runs as its own process with small batches; each run is killed once the index
has moved on, wherever it is (between batches or inside a transaction). After the
last run the index holds every block exactly once: heights 1..head without a gap,
every transaction of the chain once, as the node reports them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devnet import launcher
from devnet.launcher import free_base_port
from node.client import Client, RpcFailure
from node.indexer.sink import open_sink
from tests.helpers import devnet_home_with_blocks

pytestmark = pytest.mark.integration

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLOCKS = 240
TXS_PER_BLOCK = 3
#: Bounded waits of this test, in seconds.
NODE_START_S, RUN_S = 60.0, 120.0


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("indexed-node"))
    base = free_base_port(8)
    _, home = devnet_home_with_blocks(root, "indexer-kill", BLOCKS, lambda h: TXS_PER_BLOCK, sync=False,
                                      p2p_port=base, rpc_port=base + 4)
    node = {"name": "node-0", "home": home}
    node["pid"] = launcher.start_node(root, node)
    url = f"http://127.0.0.1:{base + 4}"
    client = Client(url)
    deadline = time.monotonic() + NODE_START_S
    while True:
        try:
            if client.status()["height"] == BLOCKS:
                break
        except RpcFailure:
            pass
        assert time.monotonic() < deadline, "the node did not serve its store over RPC in time"
        time.sleep(0.1)
    yield url, home
    launcher.stop_node(node, timeout=10)


def _indexer(node: str, db: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "indexer", "run", "--from", node, "--db", db,
                             "--batch-blocks", "4", *extra], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _kill_after(proc: subprocess.Popen, height: int) -> int:
    """SIGKILL ``proc`` as soon as it reports an indexed height of at least ``height``; returns the last one seen."""
    seen = 0
    deadline = time.monotonic() + RUN_S
    for line in proc.stdout:  # type: ignore[union-attr]
        seen = json.loads(line)["indexed_height"]
        if seen >= height or time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()  # type: ignore[union-attr]
    return seen


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/index.sqlite"
    return request.getfixturevalue("pg_server").new_database()


def test_kill_9_mid_catch_up_then_restart_leaves_no_duplicate_and_no_gap(node, db_url):
    node_url = node[0]
    reached = []
    for target in (40, 120):
        reached.append(_kill_after(_indexer(node_url, db_url), target))
    assert reached == sorted(reached) and reached[-1] < BLOCKS, f"each run was killed mid-catch-up: {reached}"
    done = subprocess.run([sys.executable, "-m", "cli.main", "indexer", "run", "--from", node_url, "--db", db_url,
                           "--until", str(BLOCKS), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=RUN_S)
    assert done.returncode == 0, done.stderr
    sink = open_sink(db_url)
    try:
        assert [r[0] for r in sink.rows("blocks")] == list(range(1, BLOCKS + 1))
        tx_ids = [r[2] for r in sink.rows("tx_results")]
        client = Client(node_url)
        expected = [t for h in range(1, BLOCKS + 1) for t in client.block(h)["txs"]]
        assert tx_ids == expected and len(set(tx_ids)) == BLOCKS * TXS_PER_BLOCK
        events = sink.rows("events")
        assert len(events) == len({r[:3] for r in events}) and {r[0] for r in events} == set(range(1, BLOCKS + 1))
        assert sink.indexed_height() == BLOCKS
    finally:
        sink.close()
    status = subprocess.run([sys.executable, "-m", "cli.main", "indexer", "status", "--db", db_url], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert json.loads(status.stdout)["indexed_height"] == BLOCKS, status.stderr


def _own_height(sink) -> int:
    try:
        return sink.query("SELECT height FROM indexer_state")[0][0]
    except sqlite3.OperationalError:  # the node's thread has not created the schema yet
        return -1


def test_the_node_indexes_its_own_store_and_reports_its_lag(node):
    url, home = node
    own = open_sink(f"sqlite:///{home}/index.sqlite")   # [indexer] defaults: on, SQLite in the node home
    try:
        deadline = time.monotonic() + RUN_S
        while _own_height(own) < BLOCKS:
            assert time.monotonic() < deadline, "the node did not index its store in time"
            time.sleep(0.1)
        assert len(own.rows("tx_results")) == BLOCKS * TXS_PER_BLOCK
    finally:
        own.close()
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        metrics = response.read().decode()
    values = {s.name: s.value for f in text_string_to_metric_families(metrics) for s in f.samples if not s.labels}
    assert values["shopchain_indexer_height"] == BLOCKS and values["shopchain_indexer_lag_blocks"] == 0
    page = Client(url).request("chain_getEvents", "ledger", None, 1, "latest")
    assert page["source"] == "index" and page["indexed_height"] == BLOCKS


def test_a_node_indexes_into_postgresql_and_serves_events_from_it(pg_server, tmp_path):
    url = pg_server.new_database()
    base = free_base_port(8)
    blocks = 30
    _, home = devnet_home_with_blocks(str(tmp_path), "indexer-pg", blocks, lambda h: 2, sync=False, p2p_port=base,
                                      rpc_port=base + 4, config_overrides={("indexer", "db_url"): url})
    node = {"name": "node-pg", "home": home}
    node["pid"] = launcher.start_node(str(tmp_path), node)
    sink = open_sink(url)
    try:
        deadline = time.monotonic() + NODE_START_S
        while True:
            try:
                if sink.query("SELECT height FROM indexer_state")[0][0] == blocks:
                    break
            except Exception:  # the node has not created the schema yet
                pass
            assert time.monotonic() < deadline, "the node did not index into PostgreSQL in time"
            time.sleep(0.1)
        page = Client(f"http://127.0.0.1:{base + 4}").request("chain_getEvents", "ledger", None, 1, "latest")
        assert page["source"] == "index" and page["indexed_height"] == blocks
        assert len(page["events"]) == len(sink.query("SELECT 1 FROM events WHERE contract = 'ledger'")) > 0
    finally:
        sink.close()
        launcher.stop_node(node, timeout=10)
