"""`shopchain genesis ...`: members assemble a consortium genesis from their public keys.

How it works: a draft is a genesis.json that may still be incomplete (no organisations
or validators yet). ``new`` writes one; each ``add-*`` reads the draft, checks its own
option values (hex, key length, role names) with messages in the option's words,
appends one entry and validates the whole result with
``ledger.genesis.parse_genesis(doc, draft=True)`` (so an unknown organisation or a
duplicate id, name or key is refused by the same checks a node applies), then replaces
the file atomically (temp file in the same directory, fsync, ``os.replace``): a
refused or interrupted command leaves the draft as it was. ``finalize`` is
``load_genesis`` (the full validation) plus a canonical rewrite (``Genesis.to_json``,
the bytes ``save_genesis`` writes) and prints the genesis hash that ``node init``
prints too. Entries keep the order they were added in: the validator order is the
PBFT primary order, and members who run the same commands in the same order get
byte-identical files and the same hash.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime
from typing import Any

import click

from cli.member_cmds import validator_key
from cli.output import CliError, emit, format_amount, handle_errors, json_option, parse_amount, parse_hex
from ledger.crypto import PUBLIC_KEY_BYTES
from ledger.errors import GenesisError
from ledger.genesis import MAX_GENESIS_BYTES, ROLES, Genesis, parse_genesis
from ledger.hexfmt import to_hex

#: Mode of a new draft or genesis file (public data: every member reads it).
GENESIS_FILE_MODE = 0o644


@click.group()
def genesis() -> None:
    """Assemble a consortium genesis: new, add-org, add-account, add-validator, finalize, show."""


# --- the draft file ---------------------------------------------------------------------

def read_draft(path: str) -> tuple[dict, Genesis]:
    """The draft's JSON document and its value, validated as a draft."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_GENESIS_BYTES + 1)
    except FileNotFoundError:
        raise CliError(f"no genesis draft at {path}",
                       hint=f"create one with `shopchain genesis new {path} --chain-id ID`") from None
    if len(raw) > MAX_GENESIS_BYTES:
        raise CliError(f"{path} is larger than {MAX_GENESIS_BYTES} bytes; not a genesis draft")
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{path} is not valid JSON: {exc}", hint="restore the draft; it is not edited by hand") from None
    try:
        value = parse_genesis(doc, draft=True)
    except GenesisError as exc:
        raise CliError(f"{path} is not a valid genesis draft: {exc}") from None
    return doc, value


def write_json_atomically(path: str, doc: dict) -> None:
    """Replace ``path`` with ``doc`` as pretty JSON; a crash leaves the old file or the new one."""
    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else GENESIS_FILE_MODE
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)   # the layout of ledger.genesis.save_genesis
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _amend(path: str, doc: dict, change: Any, what: str) -> Genesis:
    """Apply ``change(doc)`` to the draft read from ``path``, validate the result as a draft, then save it."""
    change(doc)
    try:
        value = parse_genesis(doc, draft=True)
    except GenesisError as exc:
        raise CliError(f"cannot add {what}: {exc}", hint=f"{path} is unchanged; fix the value and run it again") \
            from None
    write_json_atomically(path, doc)
    return value


def _public_key(text: str, option: str) -> str:
    """A 0x-hex ed25519 public key in the canonical (lowercase) spelling."""
    return to_hex(parse_hex(text, option, PUBLIC_KEY_BYTES))


def _known_org(value: Genesis, org: str, path: str) -> None:
    ids = [o.id for o in value.organisations]
    if org not in ids:
        raise CliError(f"unknown organisation {org!r}; the draft has {', '.join(ids) or 'none yet'}",
                       hint=f"add it first: shopchain genesis add-org {path} --id {org} --name NAME --admin-key 0x...")


def _parse_time(text: str | None) -> int:
    """Milliseconds since 1970 from digits, or ISO 8601 with a time zone; default now (whole seconds)."""
    if text is None:
        return int(time.time()) * 1000
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CliError(f"--genesis-time {text!r}: expected milliseconds since 1970 or ISO 8601 "
                       f"like 2027-01-01T00:00:00Z") from None
    if moment.tzinfo is None:
        raise CliError(f"--genesis-time {text!r} has no time zone; members in other zones would read another "
                       f"instant", hint=f"add Z or an offset, e.g. {text}Z")
    return int(moment.timestamp() * 1000)


# --- verbs ---------------------------------------------------------------------------------

@genesis.command("new")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--chain-id", required=True, help="The network's chain id (letters, digits, '.', '_', '-').")
@click.option("--genesis-time", default=None,
              help="ISO 8601 with a time zone, or milliseconds since 1970 (default: now).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@json_option
@handle_errors
def new_cmd(path: str, chain_id: str, genesis_time: str | None, force: bool, as_json: bool) -> None:
    """Write an empty genesis draft FILE for the consortium to fill in."""
    if os.path.exists(path) and not force:
        raise CliError(f"{path} already exists", hint="pick another file, or add --force to start it over")
    doc = {"chain_id": chain_id, "genesis_time_ms": _parse_time(genesis_time), "organisations": [],
           "validators": [], "accounts": [], "contracts": {"settings": {}}}
    try:
        parse_genesis(doc, draft=True)
    except GenesisError as exc:
        raise CliError(str(exc)) from None
    write_json_atomically(path, doc)
    emit(as_json, {"path": os.path.abspath(path), "chain_id": chain_id, "genesis_time_ms": doc["genesis_time_ms"]},
         lambda r: f"genesis draft for {r['chain_id']} written to {r['path']}\n"
                   f"next: shopchain genesis add-org {path} --id ID --name NAME --admin-key 0x...")


@genesis.command("add-org")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--id", "org_id", required=True, help="Lowercase organisation id (letters, digits, '_', '-').")
@click.option("--name", required=True, help="The organisation's business name.")
@click.option("--admin-key", "admin_keys", multiple=True, required=True,
              help="0x-hex ed25519 public key of an admin (repeat for several).")
@json_option
@handle_errors
def add_org_cmd(path: str, org_id: str, name: str, admin_keys: tuple[str, ...], as_json: bool) -> None:
    """Add an organisation and its admin keys to the draft FILE."""
    keys = [_public_key(k, "--admin-key") for k in admin_keys]
    if len(set(keys)) != len(keys):
        raise CliError("the same --admin-key is given twice")
    doc, before = read_draft(path)
    if any(o.id == org_id for o in before.organisations):
        raise CliError(f"organisation {org_id!r} is already in {path}", hint="pick another --id")
    _amend(path, doc, lambda d: d["organisations"].append({"id": org_id, "name": name, "admin_keys": keys}),
           f"organisation {org_id!r}")
    emit(as_json, {"organisation": org_id, "name": name, "admin_keys": keys},
         lambda r: f"added organisation {r['organisation']} ({r['name']}) with {len(keys)} admin key(s)")


@genesis.command("add-account")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--key", required=True, help="0x-hex ed25519 public key of the account.")
@click.option("--org", required=True, help="Id of the account's organisation (added with add-org).")
@click.option("--role", "roles", multiple=True, required=True, help=f"A role (repeat for several): {', '.join(ROLES)}.")
@click.option("--balance", default="0", help="Opening balance in currency units, e.g. 1000.00 (default 0).")
@click.option("--encryption-key", default=None, help="0x-hex X25519 public key for encrypted messages.")
@json_option
@handle_errors
def add_account_cmd(path: str, key: str, org: str, roles: tuple[str, ...], balance: str,
                    encryption_key: str | None, as_json: bool) -> None:
    """Add a funded account with its roles to the draft FILE."""
    public = _public_key(key, "--key")
    wanted = [r.upper() for r in roles]
    for role in wanted:
        if role not in ROLES:
            raise CliError(f"--role {role!r}: expected one of {', '.join(ROLES)}")
    if len(set(wanted)) != len(wanted):
        raise CliError("the same --role is given twice")
    minor = parse_amount(balance, "--balance", allow_zero=True)
    doc, before = read_draft(path)
    _known_org(before, org, path)
    if any(to_hex(a.public_key) == public for a in before.accounts):
        raise CliError(f"account {public} is already in {path}")
    entry: dict = {"public_key": public, "organisation": org, "roles": sorted(wanted), "balance": str(minor)}
    if encryption_key is not None:
        entry["encryption_key"] = to_hex(parse_hex(encryption_key, "--encryption-key", 32))
    _amend(path, doc, lambda d: d.setdefault("accounts", []).append(entry), f"account {public}")
    emit(as_json, entry, lambda r: f"added account {r['public_key']} of {r['organisation']} "
                                   f"({', '.join(r['roles'])}) with balance {format_amount(minor)}")


@genesis.command("add-validator")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--name", required=True, help="The validator's name (unique).")
@click.option("--org", required=True, help="Id of the organisation that runs it.")
@click.option("--key", default=None, help="0x-hex ed25519 node public key (printed by `shopchain node init`).")
@click.option("--node-home", default=None, type=click.Path(file_okay=False),
              help="Read the node public key from this node home instead of --key.")
@click.option("--p2p", "p2p_address", required=True, help="host:port other validators connect to.")
@click.option("--rpc", "rpc_address", required=True, help="host:port of its JSON-RPC.")
@json_option
@handle_errors
def add_validator_cmd(path: str, name: str, org: str, key: str | None, node_home: str | None, p2p_address: str,
                      rpc_address: str, as_json: bool) -> None:
    """Append a validator to the draft FILE (the order added is the primary order)."""
    public = to_hex(validator_key(key, node_home, "--key"))
    doc, before = read_draft(path)
    _known_org(before, org, path)
    for v in before.validators:
        if v.name == name:
            raise CliError(f"validator name {name!r} is already in {path}", hint="pick another --name")
        if to_hex(v.public_key) == public:
            raise CliError(f"node key {public} is already validator {v.name!r}",
                           hint="each validator needs its own node key (`shopchain node init` makes one)")
    entry = {"name": name, "organisation": org, "public_key": public, "p2p_address": p2p_address,
             "rpc_address": rpc_address}
    value = _amend(path, doc, lambda d: d["validators"].append(entry), f"validator {name!r}")
    emit(as_json, {**entry, "index": len(value.validators) - 1},
         lambda r: f"added validator {r['name']} of {r['organisation']} ({r['public_key']}) "
                   f"as number {r['index']} of the primary order")


@genesis.command("finalize")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Write the genesis here (default: rewrite FILE in place).")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@json_option
@handle_errors
def finalize_cmd(path: str, out: str | None, force: bool, as_json: bool) -> None:
    """Validate the draft FILE as a complete genesis, write it canonically, print its hash."""
    from ledger.genesis import load_genesis

    target = out or path
    if out and os.path.exists(out) and not force and os.path.abspath(out) != os.path.abspath(path):
        raise CliError(f"{out} already exists", hint="pick another --out, or add --force")
    if not os.path.exists(path):
        read_draft(path)  # the "no draft at FILE" error with its hint
    try:
        value = load_genesis(path)
    except GenesisError as exc:
        raise CliError(f"the draft is not a complete genesis: {exc}",
                       hint=f"{path} is unchanged; complete it with `shopchain genesis add-...` "
                            f"(`shopchain genesis show {path}` lists what it has)") from None
    write_json_atomically(target, value.to_json())
    result = {"path": os.path.abspath(target), "chain_id": value.chain_id,
              "genesis_hash": to_hex(value.genesis_hash), **_counts(value)}
    emit(as_json, result,
         lambda r: f"genesis of {r['chain_id']} written to {r['path']}\n"
                   f"  {r['organisations']} organisations, {r['validators']} validators, {r['accounts']} accounts\n"
                   f"genesis hash: {r['genesis_hash']}\n"
                   f"compare this hash with every member over a second channel, then each runs "
                   f"`shopchain node init --genesis {target}`")


def _counts(value: Genesis) -> dict:
    return {"organisations": len(value.organisations), "validators": len(value.validators),
            "accounts": len(value.accounts)}


@genesis.command("show")
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False))
@json_option
@handle_errors
def show_cmd(path: str, as_json: bool) -> None:
    """Summarise the draft or genesis FILE: organisations, validators, accounts, hash if complete."""
    doc, value = read_draft(path)
    try:
        complete: Genesis | None = parse_genesis(doc)
        missing = None
    except GenesisError as exc:
        complete, missing = None, str(exc)
    result = {
        "chain_id": value.chain_id, "genesis_time_ms": value.genesis_time_ms, **_counts(value),
        "organisation_list": [{"id": o.id, "name": o.name, "admin_keys": [to_hex(k) for k in o.admin_keys]}
                              for o in value.organisations],
        "validator_list": [{"name": v.name, "organisation": v.organisation, "public_key": to_hex(v.public_key),
                            "p2p_address": v.p2p_address, "rpc_address": v.rpc_address} for v in value.validators],
        "account_list": [{"public_key": to_hex(a.public_key), "organisation": a.organisation,
                          "roles": list(a.roles), "balance": str(a.balance)} for a in value.accounts],
        "complete": complete is not None,
        "genesis_hash": to_hex(complete.genesis_hash) if complete is not None else None,
        "missing": missing,
    }
    emit(as_json, result, _render_show)


def _render_show(r: dict) -> str:
    lines = [f"chain {r['chain_id']}, genesis time {r['genesis_time_ms']} ms",
             f"organisations ({r['organisations']}):"]
    lines += [f"  {o['id']:<16} {o['name']}  ({len(o['admin_keys'])} admin key(s))" for o in r["organisation_list"]]
    lines.append(f"validators ({r['validators']}), in primary order:")
    lines += [f"  {i}. {v['name']:<14} {v['organisation']:<16} {v['p2p_address']:<22} {v['public_key']}"
              for i, v in enumerate(r["validator_list"])]
    lines.append(f"accounts ({r['accounts']}):")
    lines += [f"  {a['public_key']}  {a['organisation']:<16} {','.join(a['roles']):<20} "
              f"{format_amount(a['balance'])}" for a in r["account_list"]]
    lines.append(f"genesis hash: {r['genesis_hash']}" if r["complete"] else f"incomplete: {r['missing']}")
    return "\n".join(lines)
