"""`shopchain node ...`: create a node home, run a validator, inspect it, back it up, verify it.

init/start make and run a home; status/peers ask a running node over JSON-RPC;
export/import/verify work offline on a stopped node's home (LevelDB allows one
process per store) with progress bars on stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

import click

from cli.output import EXIT_VERIFY, CliError, LiveCounter, emit, handle_errors, json_option
from cli.signer import Query, query_command
from ledger.crypto import SigningKey
from ledger.errors import ChainError
from ledger.hexfmt import to_hex


@click.group()
def node() -> None:
    """Create, run and inspect one validator node."""


@node.command()
@click.option("--home", required=True, type=click.Path(file_okay=False), help="Directory for config, key and data.")
@click.option("--genesis", "genesis_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The network's genesis.json (every member uses the same file). Without it: config and "
                   "node key only, for a genesis still being assembled; run init again with it later.")
@click.option("--moniker", default=None, help="A human name for this node.")
@click.option("--p2p", "p2p_listen", default=None, help="host:port for validator connections (default from genesis).")
@click.option("--rpc", "rpc_listen", default=None, help="host:port for JSON-RPC (default from genesis).")
@click.option("--observer", is_flag=True,
              help="A node that follows and serves but never signs ([node] observer = true): for applications "
                   "and auditors. A future validator runs without it: it follows until governance adds its key.")
@click.option("--state-sync", "state_sync", is_flag=True,
              help="Join by state sync ([statesync] enable = true): fetch a recent certified state from the peers "
                   "instead of executing the chain from genesis, then block-sync the rest.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init(home: str, genesis_path: str | None, moniker: str | None, p2p_listen: str | None, rpc_listen: str | None,
         observer: bool, state_sync: bool, as_json: bool) -> None:
    """Create a node home: config.toml (documented), a new node key (0600) and genesis.json."""
    from ledger.genesis import load_genesis
    from node.ops.home import init_home, read_key_file

    try:
        genesis = load_genesis(genesis_path) if genesis_path is not None else None
        key_path = os.path.join(home, "node_key.json")
        key = read_key_file(key_path) if os.path.exists(key_path) else SigningKey.generate()
        validators = genesis.validators if genesis is not None else ()
        me = next((v for v in validators if v.public_key == key.public_key), None)
        overrides: dict = {}
        if moniker or me:
            overrides[("node", "moniker")] = moniker or me.name
        if p2p_listen or me:
            overrides[("p2p", "listen")] = p2p_listen or me.p2p_address
        if rpc_listen or me:
            overrides[("rpc", "listen")] = rpc_listen or me.rpc_address
        if observer:
            overrides[("node", "observer")] = True
        if state_sync:
            overrides[("statesync", "enable")] = True
        init_home(home, genesis, key, overrides)
    except ChainError as exc:
        raise click.ClickException(str(exc)) from None
    result = {"home": os.path.abspath(home), "public_key": to_hex(key.public_key),
              "in_validator_set": me is not None, "observer": observer, "state_sync": state_sync,
              "genesis_hash": to_hex(genesis.genesis_hash) if genesis is not None else None}
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"initialised {result['home']}")
    click.echo(f"node public key: {result['public_key']}")
    if genesis is None:
        click.echo(f"no genesis yet: the consortium adds this node with `shopchain genesis add-validator DRAFT "
                   f"--node-home {home} ...` (or --key with the public key above); then run "
                   f"`shopchain node init --home {home} --genesis genesis.json`")
        return
    click.echo(f"genesis hash: {result['genesis_hash']} (every member must see the same)")
    register = (f"your organisation's admin registers it so validators accept and serve it: `shopchain gov node "
                f"add --name NAME --node-key {result['public_key']} --p2p <this node's p2p host:port> --key ADMIN`")
    if observer:
        click.echo(f"observer: it follows and serves, and never signs; {register}")
    elif me is None:
        click.echo(f"this key is not in the genesis validator set yet: it follows the chain as an observer until "
                   f"governance adds it (`shopchain gov propose add-validator`); meanwhile {register}")
    click.echo(f"start it with: shopchain node start --home {home}")


@node.command()
@click.option("--home", required=True, type=click.Path(exists=True, file_okay=False), help="The node home.")
def start(home: str) -> None:
    """Run the validator until SIGTERM or Ctrl-C (then it stops cleanly)."""
    from node.service import run_node

    try:
        code = run_node(home)
    except ChainError as exc:  # recovery steps name the home as HOME: this one is known here
        click.echo(f"error: {exc}".replace("--home HOME", f"--home {home}"), err=True)
        sys.exit(1)
    sys.exit(code)


@node.group("config")
def config_group() -> None:
    """Check a node home's configuration."""


@config_group.command("check")
@click.option("--home", required=True, type=click.Path(exists=True, file_okay=False), help="The node home.")
@json_option
@handle_errors
def config_check(home: str, as_json: bool) -> None:
    """Load config.toml with the SHOPCHAIN_<SECTION>_<KEY> environment overrides as `node start` would.

    Prints every value that differs from its default and where it came from, and names
    SHOPCHAIN_ variables that look like a mistyped key (they are ignored); exits 1 with
    the error (key, expected, found) when the node would refuse to start.
    """
    from node.ops.config import DEFAULTS, env_overrides, load_config, unknown_env

    cfg = load_config(home)  # ConfigError: exit 1 naming the key (and the variable that set it)
    from_env = env_overrides(os.environ)
    changed = [{"key": f"[{k.section}] {k.name}", "value": cfg.get(k.section, k.name),
                "from": from_env[(k.section, k.name)][0] if (k.section, k.name) in from_env else "config.toml"}
               for k in DEFAULTS if cfg.get(k.section, k.name) != k.default]
    report = {"ok": True, "config": os.path.join(home, "config.toml"), "changed": changed,
              "ignored_environment": unknown_env(os.environ)}

    def human(r: dict) -> str:
        n = len(r["changed"])
        lines = [f"config OK: {r['config']} ({n} value{'' if n == 1 else 's'} not the default)"]
        lines += [f"  {c['key']} = {json.dumps(c['value'])}  ({c['from']})" for c in r["changed"]]
        lines += [f"note: {var} names no config key; ignored" for var in r["ignored_environment"]]
        return "\n".join(lines)

    emit(as_json, report, human)


# --- inspecting a running node over RPC ---------------------------------------------------

@node.command()
@query_command
def status(q: Query) -> None:
    """Height, head block, sync state and consensus view of the node at --node."""
    chain = q.client.status()
    consensus = q.client.request("consensus_status")
    result = {**chain, "consensus": consensus}
    q.emit(result, lambda r: f"node {r['node']} on {r['chain_id']}\n"
                             f"  height {r['height']}  head {r['latest_block_hash']}\n"
                             f"  state root {r['state_root']}\n"
                             f"  syncing {'yes' if r['syncing'] else 'no'}  mempool {r['mempool_size']}\n"
                             f"  view {consensus['view']} ({consensus['mode']})  primary "
                             f"{consensus['primary_name'] or consensus['primary']}"
                             f"{' (this node)' if consensus['is_primary'] else ''}  "
                             f"quorum {consensus['quorum']}/{consensus['validators']}")


@node.command()
@query_command
def peers(q: Query) -> None:
    """The validators the node at --node is (or is not) connected to."""
    rows = q.client.request("net_peers")
    q.emit(rows, lambda rs: "\n".join(f"{'connected' if p['connected'] else 'DOWN':<10} {p['name']:<12} "
                                      f"{p['address']:<22} {p['public_key']}" for p in rs) or "no peers")


# --- offline work on a stopped node's home --------------------------------------------------

def _progress_bar(label: str, total: int, as_json: bool):  # type: ignore[no-untyped-def]
    """A click progress bar on stderr (none with --json)."""
    if as_json:
        return contextlib.nullcontext(None)
    return click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)


@node.command("export")
@click.option("--home", required=True, type=click.Path(exists=True, file_okay=False), help="The (stopped) node home.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Snapshot file to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@json_option
@handle_errors
def export_cmd(home: str, output: str, force: bool, as_json: bool) -> None:
    """Write a stopped node's whole store to one snapshot file (header: chain, genesis, height, checksum)."""
    from node.ops.snapshot import export_snapshot

    with LiveCounter("exporting entries", enabled=not as_json) as counter:
        header = export_snapshot(home, output, counter.update, force)
    size = os.path.getsize(output)
    emit(as_json, {**header.to_json(), "path": os.path.abspath(output), "bytes": size},
         lambda r: f"snapshot of {r['chain_id']} at height {r['height']} written to {r['path']}\n"
                   f"  {r['entries']:,} entries, {size:,} bytes, sha256 {r['body_sha256'][:16]}…\n"
                   f"  load it into a new home with: shopchain node import --home NEW_HOME {output}")


@node.command("import")
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False))
@click.option("--home", required=True, type=click.Path(exists=True, file_okay=False),
              help="An initialised home (shopchain node init) with an empty data directory.")
@json_option
@handle_errors
def import_cmd(snapshot: str, home: str, as_json: bool) -> None:
    """Load SNAPSHOT into HOME (refuses another genesis; verifies before use)."""
    from node.ops.snapshot import SnapshotInvalid, import_snapshot, read_header

    header, _ = read_header(snapshot)
    try:
        with _progress_bar("importing entries", header.entries, as_json) as bar:
            header = import_snapshot(home, snapshot, (lambda n: bar.update(n)) if bar is not None else None)
    except SnapshotInvalid as exc:
        raise CliError(str(exc), EXIT_VERIFY, "export a fresh snapshot from a healthy node of this network") from None
    emit(as_json, {**header.to_json(), "home": os.path.abspath(home)},
         lambda r: f"imported height {r['height']} of {r['chain_id']} into {r['home']}\n"
                   f"  start it with `shopchain node start --home {home}`; it fetches newer blocks from its peers")


def _base_line(report: dict) -> str:
    """What a state-synced or pruned home's verification covers (it holds no block below its base)."""
    base = report.get("base") or 0
    if not base:
        return ""
    how = ("prunes old blocks ([storage] retain_blocks)" if report.get("pruned")
           else f"joined by state sync at height {base}")
    start = report.get("replayed_from") or base
    return (f"this node {how} and holds no block below {base}: verified the "
            f"validator-set chain from genesis to {start}, the certificate of block {start}, every state-trie node "
            f"at {start} by hash, then re-executed blocks {start + 1}..{report['head']}\n")


@node.command("verify")
@click.option("--home", required=True, type=click.Path(exists=True, file_okay=False), help="The (stopped) node home.")
@json_option
@handle_errors
def verify_cmd(home: str, as_json: bool) -> None:
    """Re-check the whole chain offline: links, tx roots, certificates, state roots by re-execution, flat state."""
    from node.ops.verify import verify_home

    with contextlib.ExitStack() as stack:
        def per_block(total: int):  # type: ignore[no-untyped-def]
            if as_json:
                return None
            return stack.enter_context(_progress_bar("verifying blocks", total, as_json)).update

        report = verify_home(home, per_block)
    emit(as_json, report.to_json(),
         lambda r: (_base_line(r) +
                    f"chain {r['chain_id']} verified: {r['checked_blocks']} blocks, {r['transactions']} transactions, "
                    f"{r['state_entries']} state entries in {r['seconds']:.1f} s; all checks passed") if r["ok"] else
                   (f"verification FAILED: the flat state table disagrees with the state trie at key "
                    f"{r['bad_state_key']}: {r['problem']}\n  blocks 1..{r['bad_height']} are good"
                    if r["bad_state_key"] else
                    f"verification FAILED at height {r['bad_height']}: {r['problem']}\n"
                    f"  blocks 1..{max(0, r['bad_height'] - 1)} are good"))
    if not report.ok:
        where = f"state key {report.bad_state_key}" if report.bad_state_key else f"height {report.bad_height}"
        raise CliError(f"the chain in {home} is bad from {where}: {report.problem}", EXIT_VERIFY,
                       "restore this home from a snapshot of a healthy node (`shopchain node export` there, "
                       "then `shopchain node import`), or resync it from an empty data directory")
