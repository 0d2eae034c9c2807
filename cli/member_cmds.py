"""`shopchain gov node ...`: an organisation registers the observer nodes it runs.

How it works: thin verbs over the ``nodes`` system contract
(contracts_vm/system/nodes.sc.py). An organisation admin registers a node's public key
(0x-hex, or read from its node home) with the p2p address validators reach it at; from
the next block every validator accepts that node's connection and sends it votes and
blocks, so a new member's observer follows a running network without any validator's
configuration changing. No vote is needed: each member vouches for its own nodes, and
a removed organisation's nodes are cut off with it. The node-key helpers are shared
with the validator proposals of ``gov propose`` (cli/gov_cmds.py).
"""

from __future__ import annotations

import os

import click

from cli.output import CliError, parse_hex
from cli.signer import Query, Tx, query_command, tx_command

#: The page size of the paged views read here (list_nodes, list_proposals, get_schedule: at most 50).
PAGE = 50


def node_home_key(home: str) -> bytes:
    """The node public key of a node home (`shopchain node init --home HOME`)."""
    from node.ops.config import load_config
    from node.ops.home import read_key_file

    if not os.path.isfile(os.path.join(home, "config.toml")):
        raise CliError(f"no node home at {home} (no config.toml there)",
                       hint="give the directory `shopchain node init --home` made")
    return read_key_file(load_config(home).path("node", "key_file")).public_key


def validator_key(text: str | None, home: str | None, what: str) -> bytes:
    """A node key from 0x-hex or from a node home (exactly one of them; gov, gov node and genesis)."""
    if (text is None) == (home is None):
        raise CliError(f"give exactly one of {what} 0x... or the node's --node-home HOME")
    if text is not None:
        return parse_hex(text, what, 32)
    return node_home_key(home or "")


def signer_org(tx: Tx, public: bytes | None) -> str:
    """The active organisation the signer's account administers ("" if none): the contracts
    see the account id, which for a rotated account is not the key that signs."""
    if public is None:
        return ""
    return tx.view("identity", "admin_org", tx.account("0x" + public.hex(), "--key"))


def read_pages(q: Query, contract: str, method: str, total: int) -> list:
    """All ``total`` entries of a paged view ``method(from_index, count)``, PAGE at a time."""
    found: list = []
    while len(found) < total:
        page = q.view(contract, method, len(found), PAGE)
        if not page:
            break
        found.extend(page)
    return found


def require_org_admin(tx: Tx, only_admins: str) -> str:
    """The signer's organisation, refused plainly before signing when its key administers none;
    ``only_admins`` says what only organisation admins do ("propose and vote", ...)."""
    public = tx.signer_public_key()
    org = signer_org(tx, public)
    if public is not None and not org:
        raise CliError(f"key 0x{public.hex()} is not an admin key of an active organisation; "
                       f"only organisation admins {only_admins}",
                       hint="sign with your organisation's admin key (--key NAME or --key-file PATH)")
    return org


def _check_admin(tx: Tx) -> str:
    return require_org_admin(tx, "register their nodes")


@click.group("node")
def node_group() -> None:
    """Your organisation's observer nodes: validators accept and serve the registered ones."""


@node_group.command("add")
@click.option("--name", required=True, help="The node's name (1..64 characters).")
@click.option("--node-key", default=None, help="0x-hex node public key (printed by `shopchain node init`).")
@click.option("--node-home", default=None, type=click.Path(file_okay=False),
              help="Read the node public key from this node home instead of --node-key.")
@click.option("--p2p", "p2p_address", required=True, help="host:port validators reach the node at.")
@tx_command
def add_cmd(name: str, node_key: str | None, node_home: str | None, p2p_address: str, tx: Tx) -> None:
    """Register (or re-address) a node of your organisation."""
    key = validator_key(node_key, node_home, "--node-key")
    org = _check_admin(tx)
    tx.send("nodes", "register", key, name, p2p_address,
            describe=lambda r: f"node {name} (0x{key.hex()}) of {org} registered at {p2p_address}; validators "
                               f"accept it from block {r['height'] + 1}")


@node_group.command("remove")
@click.option("--node-key", default=None, help="0x-hex node public key.")
@click.option("--node-home", default=None, type=click.Path(file_okay=False), help="Or the node's home.")
@tx_command
def remove_cmd(node_key: str | None, node_home: str | None, tx: Tx) -> None:
    """Remove a node of your organisation: validators disconnect it after the block."""
    key = validator_key(node_key, node_home, "--node-key")
    _check_admin(tx)
    tx.send("nodes", "remove", key, describe=lambda r: f"node 0x{key.hex()} removed in block {r['height']}")


@node_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also removed nodes.")
@query_command
def list_cmd(show_all: bool, q: Query) -> None:
    """List the registered nodes: key, name, organisation, address."""
    found = read_pages(q, "nodes", "list_nodes", q.view("nodes", "node_total"))
    rows = [{"key": k, **rec} for k, rec in found if show_all or rec["active"]]

    def table(rs: list[dict]) -> str:
        if not rs:
            return "no registered nodes (an organisation admin adds one with `shopchain gov node add`)"
        return "\n".join(f"{r['name']:<20} {r['organisation']:<12} {r['p2p_address']:<24} {r['key']}"
                         + ("" if r["active"] else "  (removed)") for r in rs)

    q.emit(rows, table)


def _validator_names(q: Query, keys: set[str]) -> dict[str, dict]:
    return {k: q.view("governance", "get_validator", k) or {} for k in sorted(keys)}


@click.command("validators")
@query_command
def validators_cmd(q: Query) -> None:
    """The validator set of the next block and every set change from genesis, with activation heights."""
    found = q.client.validators()
    head = found["height"]
    keys = {k for entry in found["schedule"] for k in entry["validators"]}
    names = _validator_names(q, keys)
    in_force = max(e["from_height"] for e in found["schedule"] if e["from_height"] <= head + 1)
    rows = []
    for entry in found["schedule"]:
        start = entry["from_height"]
        state = "upcoming" if start > head + 1 else "in force" if start == in_force else "past"
        rows.append({"from_height": start, "set_hash": entry["set_hash"], "state": state,
                     "validators": [{"key": k, **names.get(k, {})} for k in entry["validators"]]})
    result = {"height": head, "next_validators": found["validators"], "schedule": rows}

    def text(r: dict) -> str:
        lines = [f"chain at height {r['height']}; {len(r['next_validators'])} validators sign the next block"]
        for row in r["schedule"]:
            lines.append(f"from height {row['from_height']} ({row['state']}), set {row['set_hash'][:18]}...:")
            lines += [f"  {v.get('name', '?'):<16} {v.get('organisation', '?'):<12} {v['key']}" for v in row["validators"]]
        return "\n".join(lines)

    q.emit(result, text)
