"""A real-process devnet whose validators reach each other only through a FaultNet.

How this works: ``start_proxied`` writes a devnet (``devnet.genesis.create_devnet``),
then gives every node a ``[p2p] peer_addresses`` list that points it at the proxy of
each ordered pair, starts the proxies, and only then the node processes. The
``Crasher`` is the kill/restart driver: SIGKILL a node (any one, the primary included)
and start it again later, remembering which nodes are down.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

from devnet import launcher
from devnet.genesis import DevnetLayout, create_devnet
from node.ops.home import read_key_file
from tests.fault.proxy import FaultNet
from tests.nethelpers import TEST_SPEEDS, WAIT_LIMIT_S, Devnet, free_base_port

#: Consensus timing of fault tests: 25 ms ticks, 40-tick (1 s) first view timeout.
FAULT_CONFIG = TEST_SPEEDS


def _set_peer_addresses(home: str, entries: list[str]) -> None:
    path = os.path.join(home, "config.toml")
    with open(path) as fh:
        text = fh.read()
    line = "peer_addresses = []"
    if line not in text:
        raise RuntimeError(f"{path} has no default '{line}' line to replace")
    rendered = "peer_addresses = [" + ", ".join(f'"{e}"' for e in entries) + "]"
    with open(path, "w") as fh:
        fh.write(text.replace(line, rendered))


def start_proxied(root: str, validators: int = 4, seed: int = 0, overrides: dict | None = None,
                  extra_buyers: int = 0, prepare: Callable[[DevnetLayout], None] | None = None,
                  contract_settings: dict[str, dict] | None = None) -> tuple[Devnet, FaultNet]:
    """A running devnet plus the FaultNet between its validators (stop both when done).

    ``prepare`` runs after the files are written and before any node starts (e.g. to
    mount a small filesystem on a node's data directory).
    """
    pairs = [(a, b) for a in range(validators) for b in range(validators) if a != b]
    base = free_base_port(2 * validators + len(pairs))
    layout = create_devnet(root, validators, p2p_port=base, rpc_port=base + validators, seed="fault",
                           config_overrides={**FAULT_CONFIG, **(overrides or {})}, extra_buyers=extra_buyers,
                           contract_settings=contract_settings)
    ports = {pair: base + 2 * validators + i for i, pair in enumerate(pairs)}
    targets = []
    for v in layout.genesis.validators:
        host, port = v.p2p_address.rsplit(":", 1)
        targets.append((host, int(port)))
    for a, home in enumerate(layout.node_homes):
        entries = [f"0x{layout.genesis.validators[b].public_key.hex()}@127.0.0.1:{ports[(a, b)]}"
                   for b in range(validators) if b != a]
        _set_peer_addresses(home, entries)
    if prepare is not None:
        prepare(layout)
    faults = FaultNet(targets, ports, seed).start()
    try:
        manifest = launcher.up(root, validators, timeout=WAIT_LIMIT_S)
    except BaseException:
        faults.stop()
        raise
    net = Devnet(root, layout.genesis, manifest)
    for name in os.listdir(layout.keys_dir):
        if name.endswith(".json"):
            net.keys[name[:-5]] = read_key_file(os.path.join(layout.keys_dir, name))
    return net, faults


def primary_index(net: Devnet, alive: list[int]) -> int | None:
    """The devnet node that is primary as most live nodes see it (None if nobody answers)."""
    votes: dict[str, int] = {}
    for i in alive:
        try:
            name = net.client(i).request("consensus_status")["primary_name"]
        except Exception:  # noqa: BLE001 - a node in trouble simply does not vote
            continue
        votes[name] = votes.get(name, 0) + 1
    if not votes:
        return None
    name = max(votes, key=lambda n: votes[n])
    # None also when the primary is a validator added later (not one of the devnet's own nodes)
    return next((i for i, n in enumerate(net.manifest["nodes"]) if n["name"] == name), None)


class Crasher:
    """Kill -9 and restart validators, remembering which are down."""

    def __init__(self, net: Devnet, rng: random.Random) -> None:
        self.net = net
        self.rng = rng
        self.down: set[int] = set()
        self.kills = 0

    @property
    def alive(self) -> list[int]:
        return [i for i in range(len(self.net.manifest["nodes"])) if i not in self.down]

    def kill(self, index: int) -> None:
        self.net.kill(index)
        self.down.add(index)
        self.kills += 1

    def kill_random(self, max_down: int) -> int | None:
        """SIGKILL a random live node if fewer than ``max_down`` are down."""
        if len(self.down) >= max_down:
            return None
        index = self.rng.choice(self.alive)
        self.kill(index)
        return index

    def restart(self, index: int) -> None:
        if index in self.down:
            self.net.restart(index)
            self.down.discard(index)

    def restart_all(self) -> None:
        for index in sorted(self.down):
            self.restart(index)
