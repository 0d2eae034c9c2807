"""Four validators on four "hosts": network namespaces joined by veth pairs to a bridge.

Each validator runs in its own network namespace with its own 10.x address, so the
network behaves like four machines: nodes dial each other's real addresses from the
genesis, nothing shares a loopback. The bridge lives in a fifth namespace, so the
test adds nothing to the machine's own network; every namespace is deleted in a
``finally``. The test reads each node's JSON-RPC from a thread that entered that
node's namespace (setns), so even a cut-off node stays observable.

It checks that the four commit the same blocks, that the other three go on when one
host's link goes down, and that the cut host catches up once its link is back.
Needs root and a working ``ip netns``; skips, saying why, otherwise.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from devnet.deploy.network import create_network
from ledger.types import TxBody
from node.client import Client, RpcFailure
from node.ops.home import read_key_file

pytestmark = pytest.mark.integration

VALIDATORS = 4
P2P_PORT = 26600
RPC_PORT = 8545
CLONE_NEWNET = 0x40000000
#: Longest wait for any one condition (the machine is shared: generous, but bounded).
WAIT_S = 120.0
#: How long the cut-off host stays unreachable.
CUT_S = 6.0
#: Blocks the others must commit while one host is cut off.
BLOCKS_WHILE_CUT = 5
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = (["ip", "netns", "exec", ns, "ip"] if ns else ["ip"]) + list(args)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"scprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns` does not work here: {exc}"
    try:
        _ip("link", "add", "scprobe0", "type", "bridge", ns=probe)
    except RuntimeError as exc:
        return f"cannot create a bridge inside a namespace: {exc}"
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, timeout=30)
    return None


class NetnsCaller:
    """Runs calls on one thread that lives in a network namespace (sockets it opens are there)."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"netns-{ns}", initializer=self._enter)

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.ns} failed")
        finally:
            os.close(fd)

    def __call__(self, fn, *args):
        return self.pool.submit(fn, *args).result(timeout=60)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class Hosts:
    """Namespaces ``<tag>-n<i>`` with address 10.<b>.0.<i+1>, and ``<tag>-br`` with the bridge."""

    def __init__(self, count: int) -> None:
        self.tag = f"sc{os.getpid() % 10000}{random.randrange(100)}"
        self.subnet = random.randrange(100, 250)
        self.count = count
        self.bridge_ns = f"{self.tag}-br"
        self.names = [f"{self.tag}-n{i}" for i in range(count)]
        self.addresses = [f"10.{self.subnet}.0.{i + 1}" for i in range(count)]
        self.created: list[str] = []

    def peer_if(self, i: int) -> str:
        return f"{self.tag}p{i}"[:15]

    def create(self) -> None:
        for ns in [self.bridge_ns, *self.names]:
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("link", "set", "lo", "up", ns=ns)
        _ip("link", "add", "br0", "type", "bridge", ns=self.bridge_ns)
        _ip("link", "set", "br0", "up", ns=self.bridge_ns)
        for i, ns in enumerate(self.names):
            # Both ends are made inside the node's namespace, then one moves to the bridge's.
            _ip("link", "add", "eth0", "type", "veth", "peer", "name", self.peer_if(i), ns=ns)
            _ip("link", "set", self.peer_if(i), "netns", self.bridge_ns, ns=ns)
            _ip("addr", "add", f"{self.addresses[i]}/24", "dev", "eth0", ns=ns)
            _ip("link", "set", "eth0", "up", ns=ns)
            _ip("link", "set", self.peer_if(i), "master", "br0", ns=self.bridge_ns)
            _ip("link", "set", self.peer_if(i), "up", ns=self.bridge_ns)

    def set_link(self, i: int, up: bool) -> None:
        _ip("link", "set", self.peer_if(i), "up" if up else "down", ns=self.bridge_ns)

    def destroy(self) -> None:
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.created.clear()


@pytest.fixture
def hosts():
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)
    h = Hosts(VALIDATORS)
    try:
        h.create()
        yield h
    finally:
        h.destroy()


def test_four_hosts_commit_together_and_a_cut_off_host_catches_up(hosts, tmp_path):
    layout = create_network(str(tmp_path / "net"), hosts.addresses, P2P_PORT, RPC_PORT, seed="multihost",
                            config_overrides={("consensus", "tick_ms"): 25, ("consensus", "view_timeout_ticks"): 40,
                                              ("consensus", "empty_block_interval_ms"): 250, ("storage", "sync"): False})
    callers = [NetnsCaller(ns) for ns in hosts.names]
    clients = [Client(url, layout.genesis.chain_id) for url in layout.rpc_urls]
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        for i, home in enumerate(layout.node_homes):
            log = open(tmp_path / f"node{i}.log", "wb")
            logs.append(log)
            procs.append(subprocess.Popen(
                ["ip", "netns", "exec", hosts.names[i], sys.executable, "-m", "cli.main", "node", "start", "--home", home],
                cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True))

        def height(i: int) -> int:
            try:
                return callers[i](lambda: clients[i].status()["height"])
            except (RpcFailure, OSError):
                return -1

        def wait(what: str, condition) -> None:
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                if condition():
                    return
                for i, p in enumerate(procs):
                    assert p.poll() is None, f"node{i} exited with {p.returncode}:\n{tail(tmp_path, i)}"
                time.sleep(0.25)
            raise AssertionError(f"timed out after {WAIT_S:.0f} s waiting for {what}; heights "
                                 f"{[height(i) for i in range(VALIDATORS)]}\n" +
                                 "\n".join(tail(tmp_path, i) for i in range(VALIDATORS)))

        def block_hash(i: int, h: int) -> str:
            return callers[i](lambda: clients[i].block(h)["hash"])

        wait("all four hosts at height 3", lambda: all(height(i) >= 3 for i in range(VALIDATORS)))
        # A transaction sent to one host commits on all four.
        buyer = read_key_file(os.path.join(layout.keys_dir, "buyer-1.json"))
        merchant = read_key_file(os.path.join(layout.keys_dir, "merchant-acme.json"))
        raw = TxBody(layout.genesis.chain_id, buyer.public_key, 0, "ledger", "transfer", [merchant.public_key, 500],
                     200_000).sign(buyer).encode()
        tx_id = callers[2](lambda: clients[2].send_raw(raw))
        receipt = callers[0](lambda: clients[0].wait(tx_id, timeout=60))
        assert receipt["status"] == "ok"
        top = receipt["height"]
        wait(f"all four at height {top}", lambda: all(height(i) >= top for i in range(VALIDATORS)))
        assert len({block_hash(i, top) for i in range(VALIDATORS)}) == 1

        cut = 3
        hosts.set_link(cut, up=False)
        before = max(height(i) for i in range(VALIDATORS))
        wait(f"the other three past height {before + BLOCKS_WHILE_CUT} without node{cut}",
             lambda: all(height(i) >= before + BLOCKS_WHILE_CUT for i in range(VALIDATORS) if i != cut))
        time.sleep(max(0.0, CUT_S - 1.0))
        stuck_at = height(cut)
        ahead = min(height(i) for i in range(VALIDATORS) if i != cut)
        assert stuck_at < ahead, f"node{cut} kept up while cut off ({stuck_at} vs {ahead})"

        hosts.set_link(cut, up=True)
        target = max(height(i) for i in range(VALIDATORS) if i != cut)
        wait(f"node{cut} catching up to height {target}", lambda: height(cut) >= target)
        assert block_hash(cut, target) == block_hash(0, target)
        # And it takes part again: the network keeps committing with all four at the head.
        wait("all four moving on together", lambda: min(height(i) for i in range(VALIDATORS)) >= target + 3)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        for log in logs:
            log.close()
        for caller in callers:
            caller.close()


def tail(tmp_path, i: int, lines: int = 12) -> str:
    path = tmp_path / f"node{i}.log"
    if not path.exists():
        return f"--- node{i}: no log ---"
    return f"--- node{i} ---\n" + "".join(path.read_text(errors="replace").splitlines(True)[-lines:])
