"""The TypeScript SDK (sdk/js) against the run's shared devnet: it builds, signs and submits a
ledger.transfer, waits for the receipt over the websocket, verifies the receipt proof and state
proofs of the recipient's balance offline (sdk/js/test/devnet.ts), and this test checks through
node.client that the balance moved exactly once and that the Python verifier accepts the same
receipt; and runs the SDK's own unit tests (every shared protocol vector, Wycheproof and
speccheck) so CI checks the vectors in both languages. Without node/npm, or when `npm ci` cannot fetch the packages, it skips and says why."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from node.client import Client, verify_receipt

pytestmark = pytest.mark.integration

SDK = Path(__file__).resolve().parents[2] / "sdk" / "js"
AMOUNT = 17


def _run(cmd: list[str], timeout: float, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["nice", "-n", "19", *cmd], cwd=SDK, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def built_sdk() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for the TypeScript SDK test (not on PATH)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"the TypeScript SDK needs Node.js 20 or later, found {version}")
    if not (SDK / "node_modules").is_dir():
        try:
            done = _run([npm, "ci", "--no-audit", "--no-fund"], timeout=900)
        except subprocess.TimeoutExpired:
            pytest.skip("npm ci did not finish in 15 minutes (is the npm registry reachable?)")
        if done.returncode != 0:
            shutil.rmtree(SDK / "node_modules", ignore_errors=True)  # a half install would be taken as done next time
            pytest.skip(f"npm ci could not install the SDK's packages (registry unreachable?): {done.stderr[-600:]}")
    build = _run([npm, "run", "build"], timeout=300)
    assert build.returncode == 0, f"npm run build failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    return SDK / "dist" / "test" / "devnet.js"


def test_the_typescript_sdk_passes_the_shared_vectors_and_its_unit_tests(built_sdk):
    """The same vectors the Python tests check (protocol_*.json, Wycheproof, speccheck), in TypeScript."""
    tests = sorted(str(p) for p in (SDK / "dist" / "test").glob("*.test.js"))
    assert len(tests) >= 5, tests
    done = _run(["node", "--test", *tests], timeout=120)
    assert done.returncode == 0, f"node --test failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout


def test_the_typescript_sdk_transfers_waits_on_the_websocket_and_proves_receipt_and_balance(built_sdk, shared_devnet):
    net = shared_devnet
    buyer, recipient = net.keys["buyer-2"], net.keys["merchant-globex"].public_key
    client = Client(net.urls[0])
    before = client.call("ledger", "balance_of", recipient)
    nonce_before = client.account(buyer.public_key)["nonce"]
    env = {**os.environ,
           "SHOPCHAIN_RPC_URL": net.urls[0], "SHOPCHAIN_CHAIN_ID": net.genesis.chain_id,
           "SHOPCHAIN_SENDER_SEED": buyer.seed.hex(), "SHOPCHAIN_RECIPIENT": recipient.hex(),
           "SHOPCHAIN_AMOUNT": str(AMOUNT),
           "SHOPCHAIN_VALIDATORS": ",".join(v.public_key.hex() for v in net.genesis.validators)}
    done = _run(["node", str(built_sdk)], timeout=90, env=env)
    assert done.returncode == 0, f"the SDK's devnet script failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["receipt_verified"] is True and seen["wait_mode"] == "websocket"
    assert int(seen["nonce"]) == nonce_before
    assert int(seen["balance_after"]) - int(seen["balance_before"]) == AMOUNT  # the SDK's proven balances
    # exactly once, though the script sent the same signed bytes three times
    assert client.call("ledger", "balance_of", recipient) == before + AMOUNT
    assert client.account(buyer.public_key)["nonce"] == nonce_before + 1
    assert client.transaction(seen["tx_id"])["status"] == "committed"
    receipt = client.receipt(seen["tx_id"])
    assert receipt["height"] == seen["height"] and receipt["status"] == "ok"
    proven = verify_receipt(receipt, [v.public_key for v in net.genesis.validators], net.genesis.chain_id)
    assert "0x" + proven.tx_id.hex() == seen["tx_id"]
