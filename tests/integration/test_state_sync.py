"""State sync on real processes: a new observer joins a running 4-validator devnet from a snapshot.

The validators make blocks with transfers and offer the state at every 20th height;
a fresh observer home made with ``shopchain node init --observer --state-sync`` fetches
that state from them over p2p, block-syncs the rest, and then follows the tip: its
state root equals the validators' at the same height, it answers RPC reads of recent
heights, and a read below its base says which height is the oldest it holds.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from devnet import launcher
from devnet.launcher import free_base_port
from ledger.crypto import SigningKey
from node.client import Client, RpcFailure
from node.ops.home import write_key_file
from tests.nethelpers import LoadGenerator, Devnet

pytestmark = pytest.mark.integration

INTERVAL = 20
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "cli.main", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_new_observer_joins_by_state_sync_and_follows_the_tip(tmp_path):
    observer_key = SigningKey.generate()
    port = free_base_port(2)
    net = Devnet.start(str(tmp_path / "devnet"), overrides={
        ("p2p", "peer_addresses"): [f"0x{observer_key.public_key.hex()}@127.0.0.1:{port}"],
        ("statesync", "snapshot_interval"): INTERVAL})
    home = str(tmp_path / "observer")
    observer = {"name": "observer", "home": home}
    load = LoadGenerator(net, ["buyer-1", "buyer-2"], net.keys["merchant-acme"].public_key, rate_per_sender=10).start()
    try:
        net.wait_height([0, 1, 2, 3], 2 * INTERVAL + 5, timeout=120)
        acked = load.stop()
        assert acked and not load.errors, load.errors
        os.makedirs(home)
        write_key_file(os.path.join(home, "node_key.json"), observer_key)
        genesis = os.path.join(net.manifest["nodes"][0]["home"], "genesis.json")
        out = cli("node", "init", "--home", home, "--genesis", genesis, "--observer", "--state-sync",
                  "--p2p", f"127.0.0.1:{port}", "--rpc", f"127.0.0.1:{port + 1}", "--moniker", "observer")
        assert "genesis hash" in out
        observer["pid"] = launcher.start_node(str(tmp_path / "devnet"), observer)
        client = Client(f"http://127.0.0.1:{port + 1}", net.genesis.chain_id)
        status = net.wait_for("the observer to state-sync and serve RPC", lambda: client.status(), timeout=120)
        base = status["base_height"]
        assert base >= 2 * INTERVAL and base % INTERVAL == 0
        # It follows the tip by block sync from its base.
        target = net.height(0) + 3
        net.wait_for("the observer to reach the tip", lambda: client.status()["height"] >= target, timeout=90)
        height = client.status()["height"]
        mine, theirs = client.block(height), net.client(0).block(height)
        assert mine["hash"] == theirs["hash"]
        assert mine["header"]["state_root"] == theirs["header"]["state_root"]
        # Recent reads are served, with proofs against certified headers; older ones say why not.
        assert client.block(base)["height"] == base
        assert client.request("chain_getCertificate", base + 1)["height"] == base + 1
        key = "0x" + b"c/ledger/balances/".hex()
        assert client.request("chain_getProof", key, base)["height"] == base
        for method, params in (("chain_getBlock", [base - 1]), ("chain_getProof", [key, 1])):
            with pytest.raises(RpcFailure) as info:
                client.request(method, *params)
            assert f"the oldest height held is {base}" in info.value.rpc_message
            assert info.value.data["oldest_height"] == base
        validators = client.request("chain_getValidators")
        assert validators["schedule"][0]["from_height"] == 1
        log = open(os.path.join(str(tmp_path / "devnet"), "logs", "observer.log")).read()
        assert "state sync complete" in log
        assert client.request("chain_getEvents", "", None, 1, base + 2)["from_height"] == base
        # Transactions committed before the base are unknown here, and the error says why.
        assert net.client(0).request("chain_getReceipt", acked[0])["height"] < base
        with pytest.raises(RpcFailure, match="joined by state sync"):
            client.request("chain_getReceipt", acked[0])
        # Stopped, its home verifies offline from the base, and says what that covers.
        assert launcher.stop_node(observer)
        out = cli("node", "verify", "--home", home)
        assert f"joined by state sync at height {base}" in out and "all checks passed" in out
    finally:
        load.stop()
        launcher.stop_node(observer)
        net.stop()
