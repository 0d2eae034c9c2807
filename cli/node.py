"""`shopchain node ...`: create a node home and run a validator."""

from __future__ import annotations

import json
import os
import sys

import click

from ledger.crypto import SigningKey
from ledger.errors import ChainError


@click.group()
def node() -> None:
    """Create, run and inspect one validator node."""


@node.command()
@click.option("--home", required=True, type=click.Path(file_okay=False), help="Directory for config, key and data.")
@click.option("--genesis", "genesis_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The network's genesis.json (every member uses the same file).")
@click.option("--moniker", default=None, help="A human name for this node.")
@click.option("--p2p", "p2p_listen", default=None, help="host:port for validator connections (default from genesis).")
@click.option("--rpc", "rpc_listen", default=None, help="host:port for JSON-RPC (default from genesis).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init(home: str, genesis_path: str, moniker: str | None, p2p_listen: str | None, rpc_listen: str | None,
         as_json: bool) -> None:
    """Create a node home: config.toml (documented), a new node key (0600) and genesis.json."""
    from ledger.genesis import load_genesis
    from node.home import init_home, read_key_file

    try:
        genesis = load_genesis(genesis_path)
        key_path = os.path.join(home, "node_key.json")
        key = read_key_file(key_path) if os.path.exists(key_path) else SigningKey.generate()
        me = next((v for v in genesis.validators if v.public_key == key.public_key), None)
        overrides: dict = {}
        if moniker or me:
            overrides[("node", "moniker")] = moniker or me.name
        if p2p_listen or me:
            overrides[("p2p", "listen")] = p2p_listen or me.p2p_address
        if rpc_listen or me:
            overrides[("rpc", "listen")] = rpc_listen or me.rpc_address
        init_home(home, genesis, key, overrides)
    except ChainError as exc:
        raise click.ClickException(str(exc)) from None
    result = {"home": os.path.abspath(home), "public_key": "0x" + key.public_key.hex(),
              "in_validator_set": me is not None, "genesis_hash": "0x" + genesis.genesis_hash.hex()}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"initialised {result['home']}")
    click.echo(f"node public key: {result['public_key']}")
    if me is None:
        click.echo("this key is not in the genesis validator set yet: give the public key to the consortium")
    click.echo(f"start it with: shopchain node start --home {home}")


@node.command()
@click.option("--home", required=True, type=click.Path(exists=True, file_okay=False), help="The node home.")
def start(home: str) -> None:
    """Run the validator until SIGTERM or Ctrl-C (then it stops cleanly)."""
    from node.service import run_node

    try:
        code = run_node(home)
    except ChainError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)
