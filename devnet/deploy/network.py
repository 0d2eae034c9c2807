"""A network spread over machines: one genesis naming each validator's real address.

How it works: ``create_network`` writes the same demo consortium as the local devnet
(devnet/genesis.py: six organisations, one account per role, buyers with balances) but
gives validator i the address ``hosts[i]``, so the genesis that every member holds
lists where to dial each validator. Each node home under ``<out>/nodes/node<i>``
binds its transport to ``hosts[i]:p2p_port`` and its JSON-RPC (with the explorer) to
``rpc_bind or hosts[i]`` on ``rpc_port``. Copy each home to its machine (the node key
inside it is that machine's secret) and start it with ``shopchain node start --home``.

A real consortium makes its genesis from its members' own keys (each member runs
``shopchain node init`` and sends only the public key); this helper is for test and
staging networks where one operator holds every key.

    python -m devnet.deploy.network --out ./net --host 10.0.0.1 --host 10.0.0.2 \
        --host 10.0.0.3 --host 10.0.0.4
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import time
from dataclasses import dataclass

from devnet.genesis import CONTRACT_SETTINGS, DEFAULT_P2P_PORT, DEFAULT_RPC_PORT, DEMO_ACCOUNTS, DEVNET_CHAIN_ID, ORGANISATIONS
from ledger.crypto import SigningKey
from ledger.genesis import Genesis, GenesisAccount, Organisation, ValidatorInfo, save_genesis
from node.home import init_home, write_key_file

#: Fewest validators of a network that tolerates one fault (n = 3f + 1).
MIN_VALIDATORS = 4
#: Most validators this helper lays out (the devnet's limit too).
MAX_VALIDATORS = 32
ADMINS = {"platform": "platform-admin", "acme": "merchant-acme", "globex": "merchant-globex",
          "swiftship": "carrier", "fixit": "service-center", "fairplay": "arbiter"}


@dataclass(frozen=True)
class NetworkLayout:
    root: str
    genesis: Genesis
    node_homes: list[str]
    rpc_urls: list[str]
    keys_dir: str


def _check_hosts(hosts: list[str]) -> None:
    if not MIN_VALIDATORS <= len(hosts) <= MAX_VALIDATORS:
        raise ValueError(f"expected {MIN_VALIDATORS}..{MAX_VALIDATORS} validator hosts, found {len(hosts)}")
    if len(set(hosts)) != len(hosts):
        raise ValueError(f"each validator needs its own host, found duplicates in {hosts}")
    for host in hosts:
        if not host or ":" in host or "/" in host:
            raise ValueError(f"expected a host name or IPv4 address without a port, found {host!r}")


def create_network(root: str, hosts: list[str], p2p_port: int = DEFAULT_P2P_PORT, rpc_port: int = DEFAULT_RPC_PORT,
                   rpc_bind: str | None = None, seed: str | None = None,
                   config_overrides: dict[tuple[str, str], object] | None = None) -> NetworkLayout:
    """Write genesis, keys and one node home per host under ``root``."""
    _check_hosts(hosts)
    if os.path.exists(os.path.join(root, "genesis.json")):
        raise FileExistsError(f"{root} already holds a network; remove it or choose another --out")
    keys_dir = os.path.join(root, "keys")
    os.makedirs(keys_dir, exist_ok=True)

    def key(name: str) -> SigningKey:
        return SigningKey.from_label(f"{seed}/{name}") if seed is not None else SigningKey.generate()

    account_keys = {name: key(name) for name, *_ in DEMO_ACCOUNTS}
    for name, k in account_keys.items():
        write_key_file(os.path.join(keys_dir, f"{name}.json"), k)
    orgs = tuple(Organisation(oid, name, (account_keys[ADMINS[oid]].public_key,)) for oid, name in ORGANISATIONS)
    node_keys = [key(f"node{i}") for i in range(len(hosts))]
    validators = tuple(ValidatorInfo(f"node{i}", ORGANISATIONS[i % len(ORGANISATIONS)][0], node_keys[i].public_key,
                                     f"{host}:{p2p_port}", f"{host}:{rpc_port}") for i, host in enumerate(hosts))
    accounts = tuple(GenesisAccount(account_keys[name].public_key, org, tuple(sorted(roles)), balance, None)
                     for name, org, roles, balance in DEMO_ACCOUNTS)
    genesis = Genesis(DEVNET_CHAIN_ID.replace("devnet", "net"), 0 if seed is not None else int(time.time() * 1000),
                      orgs, validators, accounts, dict(CONTRACT_SETTINGS))
    save_genesis(genesis, os.path.join(root, "genesis.json"))
    homes = []
    for i, info in enumerate(validators):
        home = os.path.join(root, "nodes", info.name)
        overrides = {("node", "moniker"): info.name, ("p2p", "listen"): info.p2p_address,
                     ("rpc", "listen"): f"{rpc_bind or hosts[i]}:{rpc_port}", **(config_overrides or {})}
        init_home(home, genesis, node_keys[i], overrides)
        homes.append(home)
    with open(os.path.join(keys_dir, "README.txt"), "w") as fh:
        fh.write("Account keys of this network (ed25519 seeds). Hand each to its owner; keep none you need not.\n")
        json.dump({name: "0x" + k.public_key.hex() for name, k in account_keys.items()}, fh, indent=2)
        fh.write("\n")
    return NetworkLayout(root, genesis, homes, [f"http://{v.rpc_address}" for v in validators], keys_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devnet.deploy.network", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory to create (genesis.json, keys/, nodes/)")
    parser.add_argument("--host", action="append", required=True, help="a validator's address, once per validator")
    parser.add_argument("--p2p-port", type=int, default=DEFAULT_P2P_PORT)
    parser.add_argument("--rpc-port", type=int, default=DEFAULT_RPC_PORT)
    parser.add_argument("--rpc-bind", default=None, help="address JSON-RPC binds to (default: the validator's host; "
                        "0.0.0.0 for every interface)")
    args = parser.parse_args(argv)
    if args.rpc_bind is not None:
        try:
            ipaddress.ip_address(args.rpc_bind)
        except ValueError:
            parser.error(f"--rpc-bind: expected an IP address, found {args.rpc_bind!r}")
    try:
        layout = create_network(args.out, args.host, args.p2p_port, args.rpc_port, args.rpc_bind)
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"genesis {layout.root}/genesis.json (hash 0x{layout.genesis.genesis_hash.hex()})")
    for home, host in zip(layout.node_homes, args.host):
        print(f"copy {home} to {host}, then there: shopchain node start --home <that directory>")
    print(f"account keys: {layout.keys_dir} (hand each to its owner)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
