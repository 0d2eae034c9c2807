"""`shopchain devnet ...`: a local multi-validator network in one command."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import click

from devnet import launcher
from devnet.genesis import DEFAULT_P2P_PORT, DEFAULT_RPC_PORT, DEFAULT_VALIDATORS, MAX_DEVNET_VALIDATORS

DEFAULT_HOME = os.path.join(os.path.expanduser("~"), ".shopchain", "devnet")


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def devnet() -> None:
    """Run a local multi-validator network on this machine."""


@devnet.command()
@click.option("--validators", "-n", default=DEFAULT_VALIDATORS, show_default=True,
              type=click.IntRange(1, MAX_DEVNET_VALIDATORS), help="How many validator processes to run.")
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False),
              help="Directory holding the devnet (genesis, keys, node homes, logs).")
@click.option("--p2p-port", default=DEFAULT_P2P_PORT, show_default=True, help="First validator-transport port.")
@click.option("--rpc-port", default=DEFAULT_RPC_PORT, show_default=True, help="First JSON-RPC port.")
@click.option("--detach", is_flag=True, help="Return once the network commits; stop it later with `devnet down`.")
@click.option("--timeout", default=launcher.UP_TIMEOUT_S, show_default=True, help="Seconds to wait for the network.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoints as JSON.")
def up(validators: int, home: str, p2p_port: int, rpc_port: int, detach: bool, timeout: float, as_json: bool) -> None:
    """Create (first time) and start the devnet, then wait until it commits blocks."""
    home = os.path.abspath(home)
    try:
        manifest = launcher.up(home, validators, timeout=timeout, progress=_say, p2p_port=p2p_port, rpc_port=rpc_port)
    except (launcher.DevnetError, FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(manifest, indent=2))
    else:
        click.echo(f"devnet {manifest['chain_id']} is committing blocks ({len(manifest['nodes'])} validators)")
        for node in manifest["nodes"]:
            click.echo(f"  {node['name']}: rpc {node['rpc']}/rpc  ws {node['rpc'].replace('http', 'ws')}/ws  "
                       f"explorer {node['rpc']}/")
        click.echo(f"demo account keys: {manifest['keys_dir']}")
        click.echo(f"logs: {os.path.join(home, 'logs')}")
    if detach:
        click.echo(f"stop it with: shopchain devnet down --home {home}")
        return
    click.echo("press Ctrl-C to stop the devnet")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stopping:
        time.sleep(0.5)
    launcher.down(home, progress=_say)


@devnet.command()
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(home: str, as_json: bool) -> None:
    """Each node's height, view, peers and health."""
    try:
        rows = launcher.status(os.path.abspath(home))
    except launcher.DevnetError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(f"{'node':<8} {'running':<8} {'healthy':<8} {'height':>8} {'view':>6} {'peers':>6}  rpc")
        for r in rows:
            click.echo(f"{r['name']:<8} {str(r['running']):<8} {str(r['healthy']):<8} {str(r['height']):>8} "
                       f"{str(r['view']):>6} {str(r['peers']):>6}  {r['rpc']}")
    if not all(r["healthy"] for r in rows):
        sys.exit(1)


@devnet.command()
@click.option("--home", default=DEFAULT_HOME, show_default=True, type=click.Path(file_okay=False))
def down(home: str) -> None:
    """Stop every node of the devnet cleanly (the chain data stays for the next `up`)."""
    try:
        launcher.down(os.path.abspath(home), progress=_say)
    except launcher.DevnetError as exc:
        raise click.ClickException(str(exc)) from None
