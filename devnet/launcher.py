"""Start, watch and stop a local devnet's validator processes.

How it works: each validator is a separate ``shopchain node start`` process in its own
session (so a Ctrl-C in the terminal reaches the launcher, which then stops the nodes
cleanly), with its log in ``logs/<node>.log`` and its pid in ``devnet.json``. ``up``
waits until every node answers ``/healthz`` and the chain has committed a block;
``status`` asks each node over JSON-RPC; ``down`` sends SIGTERM, waits for a clean
exit, and only then resorts to SIGKILL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from devnet.genesis import DEFAULT_VALIDATORS, create_devnet
from ledger.errors import ChainError
from ledger.genesis import load_genesis
from ledger.hexfmt import to_hex

#: How long `up` waits for every node to be healthy and committing.
UP_TIMEOUT_S = 120.0
#: How long `down` waits for a node to exit after SIGTERM before SIGKILL.
STOP_TIMEOUT_S = 15.0
#: Timeout of one status request to a node.
HTTP_TIMEOUT_S = 2.0

MANIFEST = "devnet.json"


class DevnetError(ChainError):
    """The devnet could not be started, queried or stopped; the message says what to do."""


def rpc_call(url: str, method: str, params: list | dict | None = None, timeout: float = HTTP_TIMEOUT_S):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
    request = urllib.request.Request(url + "/rpc", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise DevnetError(f"{method} at {url}: {reply['error'].get('message')}")
    return reply["result"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=HTTP_TIMEOUT_S) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


#: Lowest port a devnet takes (below it: well-known and registered services).
PORT_FLOOR = 20_000
#: The kernel's range for outgoing connections' local ports when it cannot be read.
DEFAULT_EPHEMERAL_RANGE = (32_768, 60_999)


def ephemeral_port_range() -> tuple[int, int]:
    """Ports the kernel hands to outgoing connections (Linux: ip_local_port_range)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            low, high = (int(v) for v in fh.read().split())
        return low, high
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_RANGE


def free_base_port(count: int) -> int:
    """A base port with ``count`` consecutive free ports above it (loopback).

    The ports lie outside the ephemeral range: while a node is down (a restart, a
    kill -9 in the soak), any outgoing connection on the machine could otherwise be
    given its port, and the node could not listen again ("Address already in use").
    """
    low, high = ephemeral_port_range()
    choices = [(PORT_FLOOR, low - count)] if low - count > PORT_FLOOR else []
    if high + 1 < 65_535 - count:
        choices.append((high + 1, 65_535 - count))
    if not choices:
        raise RuntimeError(f"no {count} ports outside the ephemeral range {low}-{high}")
    rng = random.Random()
    for _ in range(200):
        start, stop = rng.choice(choices)
        base = rng.randrange(start, stop)
        sockets = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port range found")


def load_manifest(root: str) -> dict:
    path = os.path.join(root, MANIFEST)
    if not os.path.exists(path):
        raise DevnetError(f"no devnet at {root}; start one with `shopchain devnet up --home {root}`")
    with open(path) as fh:
        return json.load(fh)


def _save_manifest(root: str, manifest: dict) -> None:
    tmp = os.path.join(root, MANIFEST + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(manifest, fh, indent=2)
    os.replace(tmp, os.path.join(root, MANIFEST))


def ensure_devnet(root: str, validators: int = DEFAULT_VALIDATORS, **kwargs) -> dict:
    """Create the devnet files if needed and return the manifest."""
    if not os.path.exists(os.path.join(root, "genesis.json")):
        create_devnet(root, validators, **kwargs)
    genesis = load_genesis(os.path.join(root, "genesis.json"))
    manifest = {"chain_id": genesis.chain_id, "genesis_hash": to_hex(genesis.genesis_hash),
                "keys_dir": os.path.join(root, "keys"), "nodes": []}
    if os.path.exists(os.path.join(root, MANIFEST)):
        old = load_manifest(root)
        pids = {n["name"]: n.get("pid") for n in old["nodes"]}
    else:
        pids = {}
    for v in genesis.validators:
        manifest["nodes"].append({"name": v.name, "home": os.path.join(root, "nodes", v.name),
                                  "rpc": f"http://{v.rpc_address}", "p2p": v.p2p_address, "pid": pids.get(v.name)})
    _save_manifest(root, manifest)
    return manifest


def start_node(root: str, node: dict) -> int:
    logs = os.path.join(root, "logs")
    os.makedirs(logs, exist_ok=True)
    log = open(os.path.join(logs, f"{node['name']}.log"), "ab")
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "node", "start", "--home", node["home"]],
                               stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                               cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    log.close()
    return process.pid


def up(root: str, validators: int = DEFAULT_VALIDATORS, timeout: float = UP_TIMEOUT_S,
       progress: Callable[[str], None] = lambda _: None, **kwargs) -> dict:
    """Start every node that is not running and wait until the network commits."""
    manifest = ensure_devnet(root, validators, **kwargs)
    for node in manifest["nodes"]:
        if _alive(node.get("pid")):
            progress(f"{node['name']} already running (pid {node['pid']})")
            continue
        node["pid"] = start_node(root, node)
        progress(f"started {node['name']} (pid {node['pid']}), rpc {node['rpc']}")
    _save_manifest(root, manifest)
    wait_until_committing(root, manifest, timeout, progress)
    return manifest


def wait_until_committing(root: str, manifest: dict, timeout: float, progress: Callable[[str], None],
                          min_height: int = 1) -> None:
    deadline = time.monotonic() + timeout
    pending = {n["name"] for n in manifest["nodes"]}
    while time.monotonic() < deadline:
        for node in manifest["nodes"]:
            if node["name"] not in pending:
                continue
            if not _alive(node["pid"]):
                raise DevnetError(f"{node['name']} exited during start-up; see {os.path.join(root, 'logs', node['name'] + '.log')}")
            if _healthy(node["rpc"]):
                try:
                    height = rpc_call(node["rpc"], "chain_status")["height"]
                except (DevnetError, OSError, KeyError, ValueError):
                    continue
                if height >= min_height:
                    pending.discard(node["name"])
                    progress(f"{node['name']} healthy at height {height}")
        if not pending:
            return
        time.sleep(0.2)
    raise DevnetError(f"nodes {sorted(pending)} were not healthy and committing within {timeout:.0f} s; "
                      f"see the logs in {os.path.join(root, 'logs')}")


def status(root: str) -> list[dict]:
    """Each node's process, height, view, peers and health."""
    manifest = load_manifest(root)
    rows = []
    for node in manifest["nodes"]:
        row = {"name": node["name"], "rpc": node["rpc"], "pid": node.get("pid"), "running": _alive(node.get("pid")),
               "healthy": False, "height": None, "view": None, "peers": None}
        if row["running"]:
            row["healthy"] = _healthy(node["rpc"])
            try:
                row["height"] = rpc_call(node["rpc"], "chain_status")["height"]
                consensus = rpc_call(node["rpc"], "consensus_status")
                row["view"] = consensus.get("view")
                row["peers"] = len(rpc_call(node["rpc"], "net_peers"))
            except (DevnetError, OSError, KeyError, ValueError):
                pass
        rows.append(row)
    return rows


def stop_node(node: dict, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM, wait, then SIGKILL. True if it stopped cleanly."""
    pid = node.get("pid")
    if not _alive(pid):
        return True
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return False


def down(root: str, progress: Callable[[str], None] = lambda _: None) -> None:
    manifest = load_manifest(root)
    for node in manifest["nodes"]:
        if node.get("pid") and _alive(node["pid"]):
            clean = stop_node(node)
            progress(f"stopped {node['name']}" + ("" if clean else " (forced with SIGKILL after the timeout)"))
        node["pid"] = None
    _save_manifest(root, manifest)
