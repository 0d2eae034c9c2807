"""Real-process devnets for integration tests: start, kill -9, restart, load, check.

Every wait here is bounded; a test that cannot reach its condition fails with the
node logs' tails instead of hanging.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass, field

from devnet import launcher
from devnet.launcher import free_base_port
from devnet.genesis import create_devnet
from ledger.crypto import SigningKey
from ledger.genesis import Genesis
from ledger.types import TxBody
from node.client import Client, RpcFailure
from node.ops.home import read_key_file

#: Longest any single wait in these tests may take.
WAIT_LIMIT_S = 90.0
#: Consensus timing of test networks: 25 ms ticks, a 40-tick (1 s) first view timeout,
#: an empty block every 250 ms; nodes added beside a devnet use the same.
TEST_SPEEDS = {("consensus", "tick_ms"): 25, ("consensus", "view_timeout_ticks"): 40,
               ("consensus", "empty_block_interval_ms"): 250, ("log", "level"): "info"}


@dataclass
class Devnet:
    root: str
    genesis: Genesis
    manifest: dict
    keys: dict[str, SigningKey] = field(default_factory=dict)

    @classmethod
    def start(cls, root: str, validators: int = 4, overrides: dict | None = None,
              contract_settings: dict[str, dict] | None = None) -> "Devnet":
        base = free_base_port(2 * validators)
        config = {**TEST_SPEEDS, **(overrides or {})}
        layout = create_devnet(root, validators, p2p_port=base, rpc_port=base + validators, seed="integration",
                               config_overrides=config, contract_settings=contract_settings)
        manifest = launcher.up(root, validators, timeout=WAIT_LIMIT_S)
        net = cls(root, layout.genesis, manifest)
        for name in os.listdir(layout.keys_dir):
            if name.endswith(".json"):
                net.keys[name[:-5]] = read_key_file(os.path.join(layout.keys_dir, name))
        return net

    @property
    def urls(self) -> list[str]:
        return [n["rpc"] for n in self.manifest["nodes"]]

    def client(self, index: int) -> Client:
        return Client(self.urls[index], self.genesis.chain_id)

    def kill(self, index: int) -> None:
        node = self.manifest["nodes"][index]
        os.kill(node["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while launcher._alive(node["pid"]) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self, index: int) -> None:
        node = self.manifest["nodes"][index]
        node["pid"] = launcher.start_node(self.root, node)

    def stop(self) -> list[bool]:
        """Stop every node with SIGTERM; True for each that exited cleanly in time."""
        return [launcher.stop_node(node, timeout=10) for node in self.manifest["nodes"]]

    def log_tail(self, index: int, lines: int = 30) -> str:
        path = os.path.join(self.root, "logs", self.manifest["nodes"][index]["name"] + ".log")
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])

    def height(self, index: int) -> int:
        return self.client(index).status()["height"]

    def wait_for(self, what: str, condition, timeout: float = WAIT_LIMIT_S, interval: float = 0.1):
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            try:
                value = condition()
                if value:
                    return value
            except (RpcFailure, OSError) as exc:
                last_error = exc
            time.sleep(interval)
        tails = "\n".join(f"--- {n['name']} ---\n{self.log_tail(i, 15)}" for i, n in enumerate(self.manifest["nodes"]))
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last_error})\n{tails}")

    def wait_height(self, indexes: list[int], height: int, timeout: float = WAIT_LIMIT_S) -> None:
        self.wait_for(f"nodes {indexes} at height {height}",
                      lambda: all(self.height(i) >= height for i in indexes), timeout)

    def all_tx_ids(self, index: int) -> list[str]:
        """Every transaction id in the chain of node ``index``, in order (for exactly-once checks)."""
        client = self.client(index)
        head = client.status()["height"]
        ids: list[str] = []
        for height in range(1, head + 1):
            ids.extend(client.block(height)["txs"])
        return ids


class LoadGenerator:
    """Threads sending pre-signed transfers at a steady pace to rotating nodes.

    A transaction counts as acknowledged once any node answered its submission with the
    id (or said it is a duplicate of one it holds). A submission that fails to reach a
    node is retried, with the same bytes, on the next node: never re-signed, so a
    transaction can be committed at most once by construction of nonces, and the test
    checks it is committed at least once.
    """

    def __init__(self, net: Devnet, senders: list[str], to: bytes, rate_per_sender: float = 20.0) -> None:
        self.net = net
        self.senders = senders
        self.to = to
        self.interval = 1.0 / rate_per_sender
        self.acked: list[str] = []
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []
        #: Node indexes the clients stay away from, e.g. one known to be Byzantine: an honest
        #: client switches to another member's node rather than wait on the attacker's RPC.
        self.avoid: set[int] = set()

    def _run(self, sender_name: str, offset: int) -> None:
        key = self.net.keys[sender_name]
        client0 = self.net.client(offset % len(self.net.urls))
        nonce = client0.account(key.public_key)["nonce"]
        target = offset
        while not self.stop_event.is_set():
            body = TxBody(self.net.genesis.chain_id, key.public_key, nonce, "ledger", "transfer", [self.to, 1], 200_000)
            raw = body.sign(key).encode()
            tx_id = "0x" + body.tx_id.hex()
            for attempt in range(len(self.net.urls) * 3):
                index = target % len(self.net.urls)
                target += 1
                if index in self.avoid:
                    continue
                client = self.net.client(index)
                try:
                    client.send_raw(raw)
                except RpcFailure as exc:
                    if exc.reason == "duplicate":
                        break
                    if exc.code == -1:  # node unreachable: try the next one
                        continue
                    self.errors.append(f"{sender_name} nonce {nonce}: {exc}")
                    time.sleep(0.05)
                    continue
                break
            else:
                self.errors.append(f"{sender_name} nonce {nonce}: no node accepted it")
                continue
            with self.lock:
                self.acked.append(tx_id)
            nonce += 1
            time.sleep(self.interval)

    def start(self) -> "LoadGenerator":
        for i, name in enumerate(self.senders):
            t = threading.Thread(target=self._run, args=(name, i), daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self) -> list[str]:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=30)
        return list(self.acked)
