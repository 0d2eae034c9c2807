"""Validator-set changes during a soak: add, remove and rotate by vote while faults are held.

How this works: ``Reconfigurer`` runs the three steps of issue 14 in order, each while a
fault chosen by the soak's seed is held (a validator other than the one the CLI talks
to killed, a link cut, or every link delayed), through the CLI as the operators would
(``tests.consortium``):

* ``add``: the members admit NewCo, its admin registers a fresh node, the node syncs as
  an observer and is voted in as a validator;
* ``remove``: SwiftShip registers node3 as an observer (so it keeps following and its
  mempool keeps forwarding), then node3 is voted out of the set;
* ``rotate``: Acme starts and registers a node with a new key, and node1's key is
  rotated to it; Acme keeps the old node registered, so it follows on as an observer.

For each step it records how long it took and, from the certified block timestamps
around the activation height, the longest gap between commits there; a gap longer than
``GAP_LIMIT_VIEWS`` view timeouts is a problem. The nodes it adds are started and
stopped here; the soak's final checks read their stores like the others'.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ledger.hexfmt import to_hex
from tests.consortium import ADMINS, Cli, Consortium
from tests.fault.cluster import Crasher
from tests.fault.proxy import DELAY, FaultNet

#: The steps, in the order they run (each needs the one before).
STEPS = ("add", "remove", "rotate")
#: Blocks on either side of an activation height whose timestamps are compared.
GAP_WINDOW_BLOCKS = 5
#: Longest gap between commits around an activation, in first view timeouts.
GAP_LIMIT_VIEWS = 2
#: Governance timelock of a reconfiguring soak (seconds of block time).
SOAK_TIMELOCK_S = 2


class Reconfigurer:
    def __init__(self, cli: Cli, faults: FaultNet, crasher: Crasher, rng: random.Random,
                 progress: Callable[[str], None], view_timeout_ms: int) -> None:
        self.c = Consortium(cli.net, cli)
        self.cli, self.net, self.faults, self.crasher, self.rng = cli, cli.net, faults, crasher, rng
        self.progress = progress
        self.gap_limit_ms = GAP_LIMIT_VIEWS * view_timeout_ms
        self.keys = [to_hex(v.public_key) for v in self.net.genesis.validators]
        self.results: list[dict] = []
        self.problems: list[str] = []
        for name in ADMINS.values():
            cli("keys", "import", name, cli.key_file(name))

    @property
    def added_nodes(self) -> list[dict]:
        return list(self.c.extra.values())

    def _hold_fault(self) -> str:
        """A fault the network must make progress through (node 0 is the CLI's node: never killed)."""
        kind = self.rng.choice(["kill", "cut_link", "delay_all"])
        validators = [i for i in range(len(self.net.manifest["nodes"])) if i != 0 and i not in self.crasher.down]
        if kind == "kill" and validators and not self.crasher.down:
            victim = self.rng.choice(validators)
            self.crasher.kill(victim)
            return f"kill node{victim}"
        if kind == "cut_link":
            a, b = self.rng.sample(range(len(self.keys)), 2)
            self.faults.cut(a, b)
            return f"cut link {a}-{b}"
        delay = self.rng.randint(20, 100)
        for a in range(len(self.keys)):
            for b in range(len(self.keys)):
                if a != b:
                    self.faults.set_flow(a, b, DELAY, delay, delay // 2)
        return f"delay all links {delay} ms"

    def _longest_gap_ms(self, height: int) -> int:
        client = self.net.client(0)
        stamps = [client.block(h)["header"]["timestamp_ms"]
                  for h in range(max(1, height - GAP_WINDOW_BLOCKS), height + GAP_WINDOW_BLOCKS + 1)]
        return max(b - a for a, b in zip(stamps, stamps[1:]))

    def run(self, step: str) -> None:
        """Run ``step`` while a fault is held; the caller heals afterwards."""
        fault = self._hold_fault()
        self.progress(f"reconfig {step} while {fault}")
        started = time.monotonic()
        shown = getattr(self, "_" + step)()
        activation = shown["activation_height"]
        self.net.wait_height([0], activation + GAP_WINDOW_BLOCKS + 1)
        gap = self._longest_gap_ms(activation)
        took = time.monotonic() - started
        self.results.append({"step": step, "fault": fault, "activation_height": activation, "seconds": round(took, 1),
                             "longest_gap_ms": gap})
        self.progress(f"  {step}: active from height {activation} after {took:.1f} s; longest commit gap "
                      f"around it {gap} ms")
        if gap > self.gap_limit_ms:
            self.problems.append(f"reconfig {step}: commits stopped for {gap} ms around activation height "
                                 f"{activation} (limit {self.gap_limit_ms} ms, {GAP_LIMIT_VIEWS} view timeouts)")

    def _add(self) -> dict:
        c = self.c
        c.admit("newco", "newco-admin", ["platform", "acme", "globex", "fixit"])
        node = c.join("newco-1", "newco-admin")
        return c.enact("newco", ["add-validator", "--name", "newco-1", "--org", "newco", "--node-home", node["home"],
                                 "--p2p", node["p2p"]], ["newco", "platform", "acme", "globex", "fixit"])

    def _remove(self) -> dict:
        node3 = self.net.manifest["nodes"][3]
        self.cli("gov", "node", "add", "--name", "node3", "--node-key", self.keys[3], "--p2p", node3["p2p"],
                 "--key", "carrier")
        return self.c.enact("platform", ["remove-validator", "--node-key", self.keys[3]],
                            ["platform", "acme", "globex", "fixit", "newco"])

    def _rotate(self) -> dict:
        cli, c = self.cli, self.c
        node1 = self.net.manifest["nodes"][1]
        cli("gov", "node", "add", "--name", "node1", "--node-key", self.keys[1], "--p2p", node1["p2p"],
            "--key", "merchant-acme")
        node = c.join("acme-1b", "merchant-acme")
        return c.enact("acme", ["rotate-validator", "--old-key", self.keys[1], "--node-home", node["home"],
                        "--p2p", node["p2p"]], ["acme", "platform", "globex", "fixit", "newco"])

    def stop(self) -> None:
        self.c.stop_extra()
