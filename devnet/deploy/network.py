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
import sys

from devnet.genesis import (DEFAULT_P2P_PORT, DEFAULT_RPC_PORT, DEMO_ACCOUNTS, DEVNET_CHAIN_ID, DevnetLayout, Endpoint,
                            write_consortium)
from ledger.hexfmt import to_hex

#: Fewest validators of a network that tolerates one fault (n = 3f + 1).
MIN_VALIDATORS = 4
#: Most validators this helper lays out (the devnet's limit too).
MAX_VALIDATORS = 32


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
                   config_overrides: dict[tuple[str, str], object] | None = None) -> DevnetLayout:
    """Write genesis, keys and one node home per host under ``root``."""
    _check_hosts(hosts)
    endpoints = [Endpoint(f"{host}:{p2p_port}", f"{host}:{rpc_port}", f"{rpc_bind or host}:{rpc_port}") for host in hosts]
    return write_consortium(root, DEVNET_CHAIN_ID.replace("devnet", "net"), endpoints, seed, DEMO_ACCOUNTS,
                            "Account keys of this network (ed25519 seeds). Hand each to its owner; keep none you need not.",
                            config_overrides)


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
    print(f"genesis {layout.root}/genesis.json (hash {to_hex(layout.genesis.genesis_hash)})")
    for home, host in zip(layout.node_homes, args.host):
        print(f"copy {home} to {host}, then there: shopchain node start --home <that directory>")
    print(f"account keys: {layout.keys_dir} (hand each to its owner)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
