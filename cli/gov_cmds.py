"""`shopchain gov ...`: the member organisations propose, vote on and execute changes.

How it works: thin verbs over the governance system contract (docs/commerce.md,
"Governance"). ``gov propose KIND`` has one sub-command per proposal kind the contract
takes, with the arguments in the users' words (0x keys or key names, node homes,
NAME=VALUE settings, a contract file for code) turned into the exact ``args`` shape
the contract checks; ``vote`` and ``execute`` read the proposal first so that the
common refusals (unknown id, not open, still timelocked) are said plainly, with the
date, before anything is signed. Times are block time (``timestamp_ms`` of the latest
block), shown as dates in the local time zone with the time remaining.

A code proposal stores only the payload's hash and summary on chain; ``execute``
needs the same payload again: ``propose code --save-payload FILE`` writes it, and
``execute --payload-file FILE`` sends it (or rebuild it with ``contract deploy-tx``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click

from cli.contract import deploy_options, deploy_payload, load_code
from cli.member_cmds import node_group, read_pages, require_org_admin, signer_org, validator_key, validators_cmd
from cli.output import CliError, parse_hex, short
from cli import timefmt
from cli.signer import Query, Tx, query_command, tx_command
from cli.timefmt import format_duration
from ledger.crypto import sha256
from ledger.hexfmt import to_hex

#: The kinds the governance contract takes (its _check_proposal).
KINDS = ("code", "settings", "admit_org", "remove_org", "role_policy", "fees", "add_validator", "remove_validator",
         "rotate_validator", "recover_account", "currency")
#: Proposal states that still need something done (voting, or waiting to be executed).
OPEN_STATES = ("open", "passed")
#: Longest description (the contract's MAX_DESCRIPTION).
MAX_DESCRIPTION = 2000
#: Largest payload file read (the contract's MAX_PAYLOAD_BYTES, as hex text plus slack).
MAX_PAYLOAD_FILE_BYTES = 2 * 65536 + 16
#: Governance's own settings (a "settings" proposal for the contract "governance").
GOVERNANCE_SETTINGS = ("threshold_num", "threshold_den", "timelock_s", "voting_period_s", "activation_delay")

proposal_id_argument = click.argument("proposal_id", type=click.IntRange(0), metavar="ID")
description_option = click.option("--description", "-d", required=True,
                                  help="Why: shown to every organisation that votes (at most 2000 characters).")


# --- values in the users' words ---------------------------------------------------------

def parse_setting(text: str) -> tuple[str, Any]:
    """'fee_bps=300' -> ('fee_bps', 300); values: integers, true/false, 0x-hex bytes, else text."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise CliError(f"setting {text!r}: expected NAME=VALUE, e.g. fee_bps=300")
    if raw.lstrip("-").isdigit():
        return name, int(raw)
    if raw.lower() in ("true", "false"):
        return name, raw.lower() == "true"
    if raw.startswith("0x"):
        return name, parse_hex(raw, f"setting {name}")
    return name, raw


def parse_settings(contract: str, pairs: tuple[str, ...]) -> dict[str, Any]:
    if not pairs:
        raise CliError(f"no settings given for {contract}; expected NAME=VALUE ...",
                       hint="e.g. `shopchain gov propose settings orders fee_bps=300 -d WHY --key ADMIN`")
    changes: dict[str, Any] = {}
    for text in pairs:
        name, value = parse_setting(text)
        if name in changes:
            raise CliError(f"setting {name} is given twice")
        changes[name] = value
    if len(changes) > 16:
        raise CliError(f"{len(changes)} settings given; a settings proposal changes 1..16")
    if contract == "governance":
        unknown = [n for n in changes if n not in GOVERNANCE_SETTINGS]
        if unknown:
            raise CliError(f"unknown governance setting {unknown[0]}; expected one of {', '.join(GOVERNANCE_SETTINGS)}")
        bad = [n for n, v in changes.items() if type(v) is not int]
        if bad:
            raise CliError(f"governance setting {bad[0]} takes a whole number, found {changes[bad[0]]!r}")
    return changes


def read_payload_file(path: str) -> bytes:
    """A deploy payload from a file: 0x-hex text (as `--save-payload` writes it) or raw bytes."""
    if os.path.getsize(path) > MAX_PAYLOAD_FILE_BYTES:
        raise CliError(f"{path} is larger than a deploy payload can be ({MAX_PAYLOAD_FILE_BYTES} bytes as hex)")
    data = Path(path).read_bytes()
    text = data.strip()
    if text.startswith(b"0x"):
        try:
            return bytes.fromhex(text[2:].decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise CliError(f"{path} starts with 0x but is not valid hex",
                           hint="give the file `gov propose code --save-payload` wrote") from None
    if not data:
        raise CliError(f"{path} is empty; expected a deploy payload")
    return data


# --- times ------------------------------------------------------------------------------

def format_when(ms: int, now_ms: int) -> str:
    """'2026-12-07 08:15:02 UTC (in 1 minute 5 seconds)': a block-time moment (ms) as a local date and the time left."""
    return timefmt.format_when(ms // 1000, now_ms // 1000) if ms else "-"


def block_time_ms(q: Query) -> int:
    """Block time now: the latest block's timestamp (what the contract compares with)."""
    try:
        return int(q.client.block("latest")["header"]["timestamp_ms"])
    except CliError:
        raise
    except Exception:  # noqa: BLE001 - no block yet: wall time is the best estimate
        return int(time.time() * 1000)


# --- reading proposals -------------------------------------------------------------------

def get_proposal(q: Query, proposal_id: int) -> dict:
    found = q.view("governance", "get_proposal", proposal_id)
    if found is None:
        count = q.view("governance", "proposal_count")
        known = f"proposals go from 0 to {count - 1}" if count else "there are no proposals yet"
        raise CliError(f"no proposal {proposal_id} on this chain ({known})",
                       hint="`shopchain gov list --all` lists them")
    return found


def all_proposals(q: Query) -> list[dict]:
    return read_pages(q, "governance", "list_proposals", q.view("governance", "proposal_count"))


def shown_state(p: dict, now_ms: int) -> str:
    """The state as a reader needs it: a passed proposal still in its timelock says so."""
    state = p["state"]
    if state == "open" and now_ms >= p["voting_ends_ms"]:
        return "expired (voting ended)"
    if state == "passed":
        if now_ms < p["executable_ms"]:
            return "passed, timelocked"
        if now_ms >= p["execute_by_ms"]:
            return "expired (execution window ended)"
        return "passed, executable"
    return state


def describe_args(p: dict, names: dict[str, str] | None = None) -> list[str]:
    """The change a proposal makes, line by line, in readable form."""
    kind, args = p["kind"], p["args"]
    names = names or {}

    def key(k: str) -> str:
        return f"{names[k]} ({k})" if k in names else str(k)

    if kind == "code":
        c = p.get("code") or {}
        caps = ", ".join(c.get("capabilities") or []) or "none"
        return [f"{c.get('action', '?')} contract {c.get('name', '?')}", f"code hash {c.get('code_hash', '?')}",
                f"capabilities {caps}", f"payload hash {c.get('payload_hash', '?')}"]
    if kind == "settings":
        changes = ", ".join(f"{k}={v}" for k, v in (args[1] or {}).items())
        return [f"settings of {args[0]}: {changes}"]
    if kind == "admit_org":
        return [f"admit organisation {args[0]}"] + [f"admin key {key(a)}" for a in args[1]]
    if kind == "remove_org":
        return [f"remove organisation {args[0]}"]
    if kind == "role_policy":
        return [f"roles only the platform organisation grants: {', '.join(args[0]) or '(none)'}"]
    if kind == "fees":
        return [f"fee schedule: gas price {args[0]}, byte price {args[1]}", f"collector {key(args[2])}"]
    if kind == "add_validator":
        return [f"add validator {args[1]} of {args[2]}", f"node key {args[0]}", f"p2p {args[3]}  rpc {args[4] or '-'}"]
    if kind == "remove_validator":
        return [f"remove validator {key(args[0])}"]
    if kind == "rotate_validator":
        moved = [f"p2p {args[2]}  rpc {args[3] or '-'}"] if len(args) == 4 else ["at the same addresses"]
        return [f"rotate validator key {key(args[0])}", f"to {args[1]}"] + moved
    return [f"{kind} {args}"]


def proposal_text(p: dict, now_ms: int, needed: int, labels: dict[str, str] | None = None,
                  activation: int | None = None, activation_delay: int | None = None) -> str:
    """The human rendering of `gov show`."""
    labels = labels or {}
    state = shown_state(p, now_ms)
    lines = [f"proposal {p['id']}: {p['kind']} - {state}"]
    lines += [f"  {line}" for line in describe_args(p, labels)]
    lines.append(f"  description: {p['description'] or '-'}")
    proposer = labels.get(p["proposer"], p["proposer"])
    lines.append(f"  proposed by {p['proposer_org']} ({proposer}) at height {p['created_height']}, "
                 f"{format_when(p['created_ms'], now_ms)}")
    yes, no = p["yes"], p["no"]
    lines.append(f"  votes: {len(yes)} yes ({', '.join(yes) or 'none'}), {len(no)} no ({', '.join(no) or 'none'}); "
                 f"{needed} yes needed")
    if p["state"] == "open":
        lines.append(f"  voting ends {format_when(p['voting_ends_ms'], now_ms)}")
        if len(yes) < needed:
            lines.append(f"  needs {needed - len(yes)} more yes vote{'s' * (needed - len(yes) != 1)}")
    if p["state"] == "passed" or p["executable_ms"]:
        lines.append(f"  passed {format_when(p['passed_ms'], now_ms)}")
        if p["state"] == "passed":
            lines.append(f"  executable from {format_when(p['executable_ms'], now_ms)}")
            lines.append(f"  execute by {format_when(p['execute_by_ms'], now_ms)}")
    if p["state"] == "executed":
        lines.append(f"  executed at height {p['executed_height']}")
    if p["kind"] in ("add_validator", "remove_validator", "rotate_validator"):
        if activation is not None:
            lines.append(f"  the new validator set is active from height {activation}")
        elif p["state"] in OPEN_STATES and activation_delay is not None:
            lines.append(f"  once executed at height h, the new validator set is active from height "
                         f"h + {activation_delay} (or later)")
    return "\n".join(lines)


def activation_height(q: Query, p: dict) -> int | None:
    """The activation height of the validator set an executed validator proposal scheduled."""
    if p["state"] != "executed" or p["kind"] not in ("add_validator", "remove_validator", "rotate_validator"):
        return None
    sets = read_pages(q, "governance", "get_schedule", q.view("governance", "schedule_length"))
    args = p["args"]
    for (_, before), (height, after) in zip(sets, sets[1:]):
        if height <= p["executed_height"]:
            continue
        if p["kind"] == "add_validator" and args[0] in after and args[0] not in before:
            return height
        if p["kind"] == "remove_validator" and args[0] in before and args[0] not in after:
            return height
        if p["kind"] == "rotate_validator" and args[1] in after and args[0] in before and args[0] not in after:
            return height
    return None


# --- the group ----------------------------------------------------------------------------

@click.group()
def gov() -> None:
    """Governance: propose, vote on and execute consortium changes (2/3 of organisations, then a timelock)."""


@gov.group("propose")
def propose() -> None:
    """Propose a change (one sub-command per kind); the proposer's organisation still votes with `gov vote`."""


def _check_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION:
        raise CliError(f"--description has {len(description)} characters; at most {MAX_DESCRIPTION}")


def _check_proposer(tx: Tx) -> None:
    """A clear refusal before signing: only an admin key of an active organisation proposes or votes."""
    require_org_admin(tx, "propose and vote")


def submit_proposal(tx: Tx, kind: str, args: list, description: str, extra: dict | None = None) -> dict:
    """Send ``propose`` and print the id, what it changes and when it can pass and be executed."""
    _check_description(description)
    _check_proposer(tx)
    settings = tx.view("governance", "get_settings")
    needed = tx.view("governance", "required_votes")
    extra = extra or {}

    def headline(r: dict) -> str:
        pid = r["return_value"]
        lines = [f"proposal {pid} created ({kind})"]
        if "code_hash" in extra:
            lines.append(f"  code hash {extra['code_hash']}")
        if "payload_file" in extra:
            lines.append(f"  payload saved to {extra['payload_file']} (give it to `gov execute {pid} --payload-file`)")
        lines.append(f"  needs {needed} yes votes of organisations within {format_duration(settings['voting_period_s'])}; "
                     f"executable {format_duration(settings['timelock_s'])} after it passes")
        lines.append(f"  next: each organisation runs `shopchain gov vote {pid} --yes --key ADMIN`; "
                     f"`shopchain gov show {pid}` follows it")
        return "\n".join(lines)

    return tx.send("governance", "propose", kind, args, description, describe=headline)


@propose.command("settings")
@click.argument("contract")
@click.argument("changes", nargs=-1, metavar="NAME=VALUE...")
@description_option
@tx_command
def propose_settings(contract: str, changes: tuple[str, ...], description: str, tx: Tx) -> None:
    """Change settings of CONTRACT (e.g. orders fee_bps=300; `governance` for governance's own settings:
    threshold_num, threshold_den, timelock_s, voting_period_s, activation_delay)."""
    submit_proposal(tx, "settings", [contract, parse_settings(contract, changes)], description)


@propose.command("code")
@deploy_options
@click.option("--save-payload", type=click.Path(dir_okay=False), default=None,
              help="Write the deploy payload (0x-hex) here, for `gov execute --payload-file`.")
@description_option
@tx_command
def propose_code(file: Path, name: str, upgrade: bool, capabilities: tuple, init_args: str | None,
                 save_payload: str | None, description: str, tx: Tx) -> None:
    """Deploy or upgrade a contract from FILE (source or compiled), as `contract deploy-tx` builds it."""
    payload, summary = build_payload(file, name, upgrade, capabilities, init_args)
    extra = {"code_hash": summary["code_hash"]}
    if save_payload:
        Path(save_payload).write_text("0x" + payload.hex() + "\n")
        extra["payload_file"] = save_payload
    submit_proposal(tx, "code", [payload], description, extra)


def build_payload(file: Path, name: str, upgrade: bool, capabilities: tuple, init_args: str | None) -> tuple[bytes, dict]:
    code, _abi = load_code(file)
    try:
        return deploy_payload(code, name, upgrade, capabilities, init_args)
    except click.BadParameter as exc:
        raise CliError(exc.message) from None


@propose.command("admit-org")
@click.argument("org")
@click.option("--admin", "admins", multiple=True, required=True,
              help="Admin key of the new organisation (0x key, key name or key file; repeatable).")
@description_option
@tx_command
def propose_admit_org(org: str, admins: tuple[str, ...], description: str, tx: Tx) -> None:
    """Admit organisation ORG with its admin keys."""
    submit_proposal(tx, "admit_org", [org, [tx.account(a, "--admin") for a in admins]], description)


@propose.command("remove-org")
@click.argument("org")
@description_option
@tx_command
def propose_remove_org(org: str, description: str, tx: Tx) -> None:
    """Remove organisation ORG (its admins no longer vote)."""
    submit_proposal(tx, "remove_org", [org], description)


@propose.command("role-policy")
@click.argument("roles", nargs=-1, metavar="ROLE...")
@description_option
@tx_command
def propose_role_policy(roles: tuple[str, ...], description: str, tx: Tx) -> None:
    """Set the roles only the platform organisation may grant (none given: every organisation may grant all)."""
    submit_proposal(tx, "role_policy", [list(roles)], description)


@propose.command("fees")
@click.option("--gas-price", required=True, type=click.IntRange(0), help="Minor units per unit of gas.")
@click.option("--byte-price", required=True, type=click.IntRange(0), help="Minor units per transaction byte.")
@click.option("--collector", required=True, help="Account that receives the fees (0x key, key name or key file).")
@description_option
@tx_command
def propose_fees(gas_price: int, byte_price: int, collector: str, description: str, tx: Tx) -> None:
    """Set the transaction fee schedule."""
    submit_proposal(tx, "fees", [gas_price, byte_price, tx.account(collector, "--collector")], description)


@propose.command("currency")
@click.argument("code")
@click.option("--name", required=True, help="What people call it, e.g. \"Acme points\" or \"Euro\".")
@click.option("--decimals", required=True, type=click.IntRange(0, 18), help="Decimals of one unit (EUR 2, points 0).")
@click.option("--issuer", required=True, help="The one account that issues and retires it (key name, key file or 0x key).")
@description_option
@tx_command
def propose_currency(code: str, name: str, decimals: int, issuer: str, description: str, tx: Tx) -> None:
    """Create currency CODE (3..8 of A-Z, 0-9), issued by one account."""
    submit_proposal(tx, "currency", [code.strip().upper(), name, decimals, tx.account(issuer, "--issuer")], description)


@propose.command("add-validator")
@click.option("--name", required=True, help="The validator's name.")
@click.option("--org", required=True, help="Id of the organisation that runs it.")
@click.option("--node-key", default=None, help="0x-hex node public key (printed by `shopchain node init`).")
@click.option("--node-home", default=None, type=click.Path(file_okay=False),
              help="Read the node public key from this node home instead of --node-key.")
@click.option("--p2p", "p2p_address", required=True, help="host:port other validators connect to.")
@click.option("--rpc", "rpc_address", default="", help="host:port of its JSON-RPC.")
@description_option
@tx_command
def propose_add_validator(name: str, org: str, node_key: str | None, node_home: str | None, p2p_address: str,
                          rpc_address: str, description: str, tx: Tx) -> None:
    """Add a validator (active from an activation height after execution, printed by `gov show`)."""
    key = validator_key(node_key, node_home, "--node-key")
    submit_proposal(tx, "add_validator", [key, name, org, p2p_address, rpc_address], description)


@propose.command("remove-validator")
@click.option("--node-key", default=None, help="0x-hex node public key of the validator.")
@click.option("--node-home", default=None, type=click.Path(file_okay=False), help="Or the validator's node home.")
@description_option
@tx_command
def propose_remove_validator(node_key: str | None, node_home: str | None, description: str, tx: Tx) -> None:
    """Remove a validator from the set."""
    submit_proposal(tx, "remove_validator", [validator_key(node_key, node_home, "--node-key")], description)


@propose.command("rotate-validator")
@click.option("--old-key", required=True, help="0x-hex node key being replaced.")
@click.option("--new-key", default=None, help="0x-hex new node key.")
@click.option("--node-home", default=None, type=click.Path(file_okay=False),
              help="Read the new node key from this node home instead of --new-key.")
@click.option("--p2p", "p2p_address", default=None,
              help="host:port of the new node, if it runs elsewhere than the old one (default: the old address).")
@click.option("--rpc", "rpc_address", default="", help="host:port of the new node's JSON-RPC (with --p2p).")
@description_option
@tx_command
def propose_rotate_validator(old_key: str, new_key: str | None, node_home: str | None, p2p_address: str | None,
                             rpc_address: str, description: str, tx: Tx) -> None:
    """Replace a validator's node key, keeping its place in the order (and its addresses unless --p2p)."""
    if rpc_address and p2p_address is None:
        raise CliError("--rpc needs --p2p: give the new node's p2p address too")
    args = [parse_hex(old_key, "--old-key", 32), validator_key(new_key, node_home, "--new-key")]
    submit_proposal(tx, "rotate_validator", args + ([p2p_address, rpc_address] if p2p_address else []), description)


@gov.command("vote")
@proposal_id_argument
@click.option("--yes/--no", "yes", default=None, help="Vote for (--yes) or against (--no).")
@tx_command
def vote_cmd(proposal_id: int, yes: bool | None, tx: Tx) -> None:
    """Vote on proposal ID for your organisation (once per organisation)."""
    if yes is None:
        raise CliError("say how you vote: --yes or --no")
    p = get_proposal(tx, proposal_id)
    now = block_time_ms(tx)
    if p["state"] != "open":
        raise CliError(f"proposal {proposal_id} is {p['state']}, not open for votes",
                       hint=f"`shopchain gov show {proposal_id}` shows where it stands")
    if now >= p["voting_ends_ms"]:
        raise CliError(f"voting on proposal {proposal_id} ended {format_when(p['voting_ends_ms'], now)}; "
                       f"it has expired", hint="propose it again with `shopchain gov propose ...`")
    _check_proposer(tx)
    org = signer_org(tx, tx.signer_public_key())
    if org and (org in p["yes"] or org in p["no"]):
        raise CliError(f"organisation {org} has already voted on proposal {proposal_id} "
                       f"({'yes' if org in p['yes'] else 'no'})", hint="each organisation votes once")

    def headline(r: dict) -> str:
        state = r["return_value"]
        if state == "passed":
            passed = next((e["data"] for e in r["events"] if e["name"] == "ProposalPassed"), {})
            when = format_when(int(passed.get("executable_ms", 0)), now) if passed else "after the timelock"
            return (f"{org} voted {'yes' if yes else 'no'} on proposal {proposal_id}: passed; executable from "
                    f"{when}\n  next: `shopchain gov execute {proposal_id} --key ANY` once the timelock is over")
        return f"{org} voted {'yes' if yes else 'no'} on proposal {proposal_id}: still {state}"

    tx.send("governance", "vote", proposal_id, yes, describe=headline)


@gov.command("execute")
@proposal_id_argument
@click.option("--payload-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The deploy payload of a code proposal (as `gov propose code --save-payload` wrote it).")
@tx_command
def execute_cmd(proposal_id: int, payload_file: str | None, tx: Tx) -> None:
    """Carry out passed proposal ID once its timelock is over (anyone may)."""
    p = get_proposal(tx, proposal_id)
    now = block_time_ms(tx)
    if p["state"] != "passed":
        needed = tx.view("governance", "required_votes")
        more = f" ({len(p['yes'])} of {needed} yes votes so far)" if p["state"] == "open" else ""
        raise CliError(f"proposal {proposal_id} is {p['state']}{more}; only a passed proposal executes",
                       hint=f"`shopchain gov show {proposal_id}` shows its votes")
    if now < p["executable_ms"]:
        raise CliError(f"proposal {proposal_id} is timelocked; it becomes executable at "
                       f"{format_when(p['executable_ms'], now)}",
                       hint=f"run `shopchain gov execute {proposal_id}` again after that")
    if now >= p["execute_by_ms"]:
        raise CliError(f"the execution window of proposal {proposal_id} ended {format_when(p['execute_by_ms'], now)}")
    payload = b""
    if p["kind"] == "code":
        if payload_file is None:
            raise CliError(f"proposal {proposal_id} is a code proposal; it executes with its deploy payload",
                           hint="add --payload-file FILE (written by `gov propose code --save-payload`, or "
                                "rebuild it with `shopchain contract deploy-tx`)")
        payload = read_payload_file(payload_file)
        expected = (p.get("code") or {}).get("payload_hash")
        if expected and to_hex(sha256(payload)) != expected:
            raise CliError(f"{payload_file} is not the payload proposal {proposal_id} voted on: its hash is "
                           f"{short(to_hex(sha256(payload)), 16)}, the proposal's {short(expected, 16)}",
                           hint="use the file `--save-payload` wrote, or the same contract file and options")
    elif payload_file is not None:
        raise CliError(f"proposal {proposal_id} is a {p['kind']} proposal; only code proposals take --payload-file")
    tx.send("governance", "execute", proposal_id, payload,
            describe=lambda r: f"proposal {proposal_id} ({p['kind']}) executed in block {r['height']}"
                               + ("; `gov show` prints the validator set's activation height"
                                  if "validator" in p["kind"] else ""))


@gov.command("show")
@proposal_id_argument
@query_command
def show_cmd(proposal_id: int, q: Query) -> None:
    """Show proposal ID: what it changes, votes by organisation, state and when it executes or expires."""
    p = get_proposal(q, proposal_id)
    now = block_time_ms(q)
    needed = q.view("governance", "required_votes")
    settings = q.view("governance", "get_settings")
    activation = activation_height(q, p)
    result = {**p, "shown_state": shown_state(p, now), "required_votes": needed, "block_time_ms": now,
              "activation_height": activation}
    labels = {k: q.label(k) for k in _keys_in(p)}
    q.emit(result, lambda r: proposal_text(p, now, needed, labels, activation, settings["activation_delay"]))


def _keys_in(p: dict) -> list[str]:
    keys = [p["proposer"]]
    for a in p["args"]:
        for v in a if isinstance(a, list) else [a]:
            if isinstance(v, str) and v.startswith("0x") and len(v) == 66:
                keys.append(v)
    return keys


@gov.command("list")
@click.option("--all", "show_all", is_flag=True, help="Every proposal, also executed, expired and cancelled.")
@click.option("--open", "show_open", is_flag=True, help="Only proposals still voting or waiting to execute (default).")
@query_command
def list_cmd(show_all: bool, show_open: bool, q: Query) -> None:
    """List the open proposals (or --all)."""
    if show_all and show_open:
        raise CliError("give --all or --open, not both")
    now = block_time_ms(q)
    found = [p for p in all_proposals(q) if show_all or p["state"] in OPEN_STATES]
    rows = [{"id": p["id"], "kind": p["kind"], "state": shown_state(p, now), "yes": len(p["yes"]),
             "no": len(p["no"]), "proposer_org": p["proposer_org"], "description": p["description"]} for p in found]

    def table(rs: list[dict]) -> str:
        if not rs:
            return "no open proposals (`gov list --all` shows every one)" if not show_all else "no proposals yet"
        return "\n".join(f"{r['id']:>4}  {r['kind']:<16} {r['state']:<24} yes {r['yes']} no {r['no']}  "
                         f"by {r['proposer_org']}: {r['description'][:60]}" for r in rs)

    q.emit(rows, table)


@gov.command("settings")
@query_command
def settings_cmd(q: Query) -> None:
    """Show the governance settings: threshold, timelock, voting period, activation delay, votes needed now."""
    s = q.view("governance", "get_settings")
    s["required_votes"] = q.view("governance", "required_votes")
    q.emit(s, lambda r: f"threshold {r['threshold_num']}/{r['threshold_den']} of organisations "
                        f"({r['required_votes']} yes votes now)\n  timelock {format_duration(r['timelock_s'])}, voting period "
                        f"{format_duration(r['voting_period_s'])}, validator changes active {r['activation_delay']} blocks "
                        f"after execution")


gov.add_command(node_group)
gov.add_command(validators_cmd)


def all_groups() -> list[Any]:
    return [gov]
