"""The `shopchain` CLI in-process against a devnet, and the consortium operations built on it.

``Cli`` runs `shopchain` like a user (a keystore of the devnet's demo keys, one node's
URL). ``Consortium`` adds what governance stories need: nodes with fresh keys started
beside the devnet (``new_node``: `shopchain node init`, the devnet's speeds, started
like the others), proposals carried through vote, timelock and execution (``enact``),
and the signers of a block's certificate. The CLI story of issue 14
(tests/integration/test_consortium_story.py) and the reconfiguration soak
(tests/soak.py --reconfig) both use them.
"""

from __future__ import annotations

import json
import os
import tomllib

from click.testing import CliRunner

from cli.main import main
from devnet import launcher
from devnet.launcher import free_base_port
from ledger.hexfmt import to_hex
from node.client import Client
from node.ops.config import render_config
from tests.nethelpers import TEST_SPEEDS, Devnet

PASSWORD = "integration-pass"


class Cli:
    """Run shopchain in-process against one node, with a keystore of the devnet's demo keys."""

    def __init__(self, net: Devnet, keystore: str) -> None:
        self.net = net
        self.keystore = keystore
        self.runner = CliRunner()
        self.env = {"SHOPCHAIN_KEYSTORE": keystore, "SHOPCHAIN_PASSWORD": PASSWORD, "SHOPCHAIN_NODE": net.urls[0]}

    def __call__(self, *args: str, expect: int = 0):
        result = self.runner.invoke(main, list(args), env=self.env, catch_exceptions=False)
        assert result.exit_code == expect, f"shopchain {' '.join(args)} -> {result.exit_code}\n{result.output}"
        return result

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json").stdout)

    def key_file(self, name: str) -> str:
        return os.path.join(self.net.root, "keys", f"{name}.json")


#: The admin key (in the devnet's keys/) of each genesis organisation.
ADMINS = {"platform": "platform-admin", "acme": "merchant-acme", "globex": "merchant-globex",
          "swiftship": "carrier", "fixit": "service-center", "fairplay": "arbiter"}


class Consortium:
    """The devnet, the CLI, and the nodes the story adds (started and stopped here)."""

    def __init__(self, net: Devnet, cli: Cli) -> None:
        self.net, self.cli = net, cli
        self.extra: dict[str, dict] = {}
        self.admins = dict(ADMINS)
        base = free_base_port(6)
        self.ports = iter(range(base, base + 6))

    def new_node(self, name: str) -> dict:
        """`shopchain node init` for a node with a fresh key, at ports of its own, then started."""
        home = os.path.join(self.net.root, "nodes", name)
        p2p, rpc = f"127.0.0.1:{next(self.ports)}", f"127.0.0.1:{next(self.ports)}"
        made = self.cli.json("node", "init", "--home", home, "--genesis", os.path.join(self.net.root, "genesis.json"),
                             "--moniker", name, "--p2p", p2p, "--rpc", rpc)
        assert made["in_validator_set"] is False and made["genesis_hash"] == to_hex(self.net.genesis.genesis_hash)
        with open(os.path.join(home, "config.toml"), "rb") as fh:
            written = tomllib.load(fh)
        assert written["node"]["moniker"] == name and written["p2p"]["listen"] == p2p
        with open(os.path.join(home, "config.toml"), "w") as fh:  # the devnet's speeds, as its operator would set
            fh.write(render_config({("node", "moniker"): name, ("p2p", "listen"): p2p, ("rpc", "listen"): rpc,
                                    **TEST_SPEEDS}))
        node = {"name": name, "home": home, "rpc": f"http://{rpc}", "p2p": p2p, "key": made["public_key"]}
        self.extra[name] = node
        return node

    def admit(self, org: str, admin: str, voters: list[str]) -> dict:
        """Vote ``org`` in with a new admin key ``admin`` (made in the keystore), then fund the
        admin from the platform so it can pay the fees of its votes."""
        self.cli("keys", "new", admin)
        self.admins[org] = admin
        shown = self.enact("platform", ["admit-org", org, "--admin", admin], voters)
        self.cli("tx", "send", "ledger", "transfer", self.cli.json("keys", "show", admin)["public_key"], "100000",
                 "--key", self.admins["platform"])
        return shown

    def join(self, name: str, admin: str) -> dict:
        """A new node of ``admin``'s organisation, as its operator brings one in: `node init`, the
        admin registers it (`gov node add`), it starts and follows validator 0's chain."""
        node = self.new_node(name)
        self.cli("gov", "node", "add", "--name", name, "--node-home", node["home"], "--p2p", node["p2p"],
                 "--key", admin)
        self.start(node)
        self.wait_following(node, f"{name} following as an observer")
        return node

    def start(self, node: dict) -> None:
        node["pid"] = launcher.start_node(self.net.root, node)

    def client(self, node: dict) -> Client:
        return Client(node["rpc"], self.net.genesis.chain_id)

    def height_of(self, node: dict) -> int:
        return self.client(node).status()["height"]

    def enact(self, proposer: str, propose: list[str], voters: list[str]) -> dict:
        """Propose as ``proposer``'s admin, vote yes for ``voters``, wait out the timelock, execute."""
        made = self.cli.json("gov", "propose", *propose, "-d", f"story: {propose[0]}", "--key", self.admins[proposer])
        pid = str(made["return_value"])
        for org in voters:
            self.cli("gov", "vote", pid, "--yes", "--key", self.admins[org])
        self.net.wait_for(f"proposal {pid} executable",
                          lambda: self.cli.json("gov", "show", pid)["shown_state"] == "passed, executable",
                          interval=0.25)
        self.cli("gov", "execute", pid, "--key", self.admins[proposer])
        return self.cli.json("gov", "show", pid)

    def signers(self, height: int) -> set[str]:
        return set(self.cli.json("block", "cert", str(height))["signers"])

    def stop_extra(self) -> None:
        for node in self.extra.values():
            if node.get("pid"):
                launcher.stop_node(node, timeout=10)

    def wait_following(self, node: dict, what: str) -> None:
        """``node`` reaches the height validator 0 had when asked, with the same block hash there."""
        target = self.net.height(0)
        self.net.wait_for(f"{what} at height {target}", lambda: self.height_of(node) >= target, interval=0.25)
        assert self.client(node).block(target)["hash"] == self.net.client(0).block(target)["hash"]
