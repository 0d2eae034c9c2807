"""`shopchain tx|call|block|account ...`: raw transactions, views, blocks and accounts.

How it works: each verb is one or two JSON-RPC calls through ``node.client.Client``.
``tx send`` is the low-level escape hatch (any contract, any method): each ARG is a
JSON value, and a string "0x.." is bytes. ``call`` passes its JSON arguments to the
node, which converts them by the method's ABI. ``block watch`` subscribes to new
blocks over the node's websocket and prints each until Ctrl-C or ``--count`` blocks.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import click

from cli.output import EXIT_NODE, EXIT_TX_FAILED, CliError, format_amount, node_unreachable_hint, short
from cli.signer import Query, Tx, query_command, tx_command
from ledger.hexfmt import to_hex
from node.client import key_proof

_HEX = re.compile(r"^0x(?:[0-9a-fA-F]{2})*$")
#: How long ``block watch`` waits for the websocket to open.
WATCH_CONNECT_TIMEOUT_S = 10.0
#: Most blocks ``block watch --count`` may ask for (0 = until Ctrl-C).
MAX_WATCH_COUNT = 1_000_000


def parse_json_arg(text: str) -> Any:
    """One command-line argument as a JSON value (bare words are strings)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def to_tx_value(value: Any) -> Any:
    """JSON to a transaction argument: "0x.." strings become bytes; floats are refused."""
    if isinstance(value, str) and _HEX.match(value):
        return bytes.fromhex(value[2:])
    if isinstance(value, float):
        raise CliError(f"{value} is a float; contract values are integers (amounts in minor units)")
    if isinstance(value, list):
        return [to_tx_value(v) for v in value]
    if isinstance(value, dict):
        return {k: to_tx_value(v) for k, v in value.items()}
    return value


# --- tx -------------------------------------------------------------------------------

@click.group()
def tx() -> None:
    """Send raw contract calls and look up transactions and receipts."""


@tx.command("send")
@click.argument("contract")
@click.argument("method")
@click.argument("args", nargs=-1)
@tx_command
def tx_send(contract: str, method: str, args: tuple[str, ...], tx: Tx) -> None:
    """Call CONTRACT.METHOD with ARGS (JSON values; "0x.." is bytes; amounts in minor units).

    Example: shopchain tx send ledger transfer 0xPUBKEY 1250 --key buyer
    """
    values = [to_tx_value(parse_json_arg(a)) for a in args]
    tx.send(contract, method, *values, describe=lambda r: f"{contract}.{method} committed, "
                                                          f"returned {json.dumps(r['return_value'])}")


@tx.command("get")
@click.argument("tx_id")
@query_command
def tx_get(tx_id: str, q: Query) -> None:
    """Show transaction TX_ID (committed or pending)."""
    found = q.client.request("chain_getTransaction", tx_id)
    q.emit(found, lambda t: f"tx {t['id']} ({t['status']}{'' if t['height'] is None else ', block ' + str(t['height'])})\n"
                            f"  {t['contract']}.{t['method']}({', '.join(json.dumps(a) for a in t['args'])})\n"
                            f"  sender {t['sender']} nonce {t['nonce']} gas limit {t['gas_limit']}")


def _receipt_text(r: dict) -> str:
    from cli.signer import receipt_summary

    head = f"receipt of {r['tx_id']}: {r['status']}"
    if r.get("error"):
        head += f" ({r['error']})"
    return head + f", returned {json.dumps(r.get('return_value'))}\n" + receipt_summary(r)


@tx.command("receipt")
@click.argument("tx_id")
@click.option("--proof", is_flag=True, help="Include the Merkle proof and the block's commit certificate.")
@query_command
def tx_receipt(tx_id: str, proof: bool, q: Query) -> None:
    """Show the receipt of TX_ID (exit 4 if the transaction failed)."""
    receipt = q.client.receipt(tx_id)
    if not proof:
        receipt = {k: v for k, v in receipt.items() if k not in ("proof", "raw")}
    q.emit(receipt, _receipt_text)
    if receipt["status"] != "ok":
        raise click.exceptions.Exit(EXIT_TX_FAILED)


@tx.command("wait")
@click.argument("tx_id")
@click.option("--timeout", default=30.0, show_default=True, type=click.FloatRange(0.1), help="Seconds to wait.")
@query_command
def tx_wait(tx_id: str, timeout: float, q: Query) -> None:
    """Wait until TX_ID commits; print its receipt (exit 5 on timeout, 4 if it failed)."""
    receipt = {k: v for k, v in q.client.wait(tx_id, timeout).items() if k not in ("proof", "raw")}
    q.emit(receipt, _receipt_text)
    if receipt["status"] != "ok":
        raise click.exceptions.Exit(EXIT_TX_FAILED)


# --- call -------------------------------------------------------------------------------

@click.command("call")
@click.argument("contract")
@click.argument("method")
@click.argument("args", nargs=-1)
@query_command
def call(contract: str, method: str, args: tuple[str, ...], q: Query) -> None:
    """Run the read-only view CONTRACT.METHOD with ARGS (JSON values, converted by the ABI).

    Example: shopchain call ledger balance_of 0xPUBKEY
    """
    result = q.view(contract, method, *[parse_json_arg(a) for a in args])
    q.emit(result, lambda r: json.dumps(r, indent=2) if isinstance(r, (dict, list)) else str(r))


# --- block ------------------------------------------------------------------------------

def _block_text(b: dict) -> str:
    h = b["header"]
    lines = [f"block {b['height']} {b['hash']}",
             f"  time {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(h['timestamp_ms'] / 1000))} UTC"
             f"  view {h['view']}  proposer {short(h['proposer'])}",
             f"  prev {short(h['prev_hash'])}  state root {short(h['state_root'])}",
             f"  {b['tx_count']} transaction(s)"]
    for t in b["txs"]:
        lines.append(f"    {t['id']} {t['contract']}.{t['method']}" if isinstance(t, dict) else f"    {t}")
    return "\n".join(lines)


@click.group()
def block() -> None:
    """Look at blocks, or watch new ones arrive."""


@block.command("get")
@click.argument("which")
@click.option("--full", is_flag=True, help="Include whole transactions, not only their ids.")
@query_command
def block_get(which: str, full: bool, q: Query) -> None:
    """Show block WHICH: a height, a 0x block hash, or "latest"."""
    if which.startswith("0x"):
        found = q.client.request("chain_getBlockByHash", which, full)
    elif which == "latest" or which.isdigit():
        found = q.client.block(which if which == "latest" else int(which), full)
    else:
        raise CliError(f"block {which!r}: expected a height, a 0x block hash or 'latest'")
    q.emit(found, _block_text)


@block.command("cert")
@click.argument("height", type=click.IntRange(1))
@query_command
def block_cert(height: int, q: Query) -> None:
    """Show the commit certificate of block HEIGHT: the validators whose signed COMMITs make it final."""
    cert = q.client.request("chain_getCertificate", height)
    q.emit(cert, lambda c: "\n".join([f"block {c['height']} {c['block_hash']} final in view {c['view']}, "
                                        f"signed by {len(c['signers'])} validators:"]
                                       + [f"  {q.label(s)}" for s in c["signers"]]))


@block.command("latest")
@click.option("--full", is_flag=True, help="Include whole transactions.")
@query_command
def block_latest(full: bool, q: Query) -> None:
    """Show the newest committed block."""
    q.emit(q.client.block("latest", full), _block_text)


async def _watch(url: str, count: int, on_block) -> int:  # type: ignore[no-untyped-def]
    import aiohttp

    seen = 0
    timeout = aiohttp.ClientTimeout(sock_connect=WATCH_CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.ws_connect(url.rstrip("/") + "/ws", heartbeat=30) as ws:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribe", "params": ["newBlocks"]})
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                if "error" in data:
                    raise CliError(f"the node refused the subscription: {data['error'].get('message')}", EXIT_NODE)
                if data.get("method") != "chain_subscription":
                    continue
                on_block(data["params"]["result"])
                seen += 1
                if count and seen >= count:
                    return seen
    raise CliError("the node closed the websocket", EXIT_NODE, "check the node's log, then watch again")


@block.command("watch")
@click.option("--count", default=0, type=click.IntRange(0, MAX_WATCH_COUNT),
              help="Stop after this many new blocks (default: until Ctrl-C).")
@query_command
def block_watch(count: int, q: Query) -> None:
    """Print each new block as it commits (websocket subscription), until Ctrl-C.

    With --json, one JSON object per line per block.
    """

    def on_block(b: dict) -> None:
        if q.as_json:
            click.echo(json.dumps(b, sort_keys=True))
        else:
            click.echo(f"block {b['height']} {short(b['hash'], 16)} {b['tx_count']} tx "
                       f"view {b['header']['view']} proposer {short(b['header']['proposer'])}")

    try:
        asyncio.run(_watch(q.node_url, count, on_block))
    except KeyboardInterrupt:
        return  # Ctrl-C is how a watch ends
    except OSError as exc:
        raise CliError(f"cannot open a websocket to {q.node_url}: {exc}", EXIT_NODE,
                       node_unreachable_hint(q.node_url)) from None
    except Exception as exc:  # aiohttp's client errors do not all derive from OSError
        if type(exc).__module__.startswith("aiohttp"):
            raise CliError(f"cannot watch {q.node_url}: {exc}", EXIT_NODE, node_unreachable_hint(q.node_url)) from None
        raise


# --- account ------------------------------------------------------------------------------

@click.group()
def account() -> None:
    """Accounts: look one up; an organisation admin registers them and grants or revokes roles."""


@account.command("show")
@click.argument("who")
@query_command
def account_show(who: str, q: Query) -> None:
    """Show account WHO (0x public key, keystore key name, or key file): its id, organisation,
    current signing key, roles, balance and nonce, whether WHO's key may sign now, and the
    organisation WHO is an admin key of (if any)."""
    info = q.client.account(q.key(who))
    entry = q.view("identity", "get_account", info["account"]) or {}
    info["organisation"], info["active"] = entry.get("org"), entry.get("active")
    info["admin_of"] = q.view("identity", "admin_org", info["address"]) or None
    q.emit(info, lambda a: f"account {a['account']}  organisation {a['organisation'] or '-'}"
                           f"{'' if a['active'] is not False else ' (revoked)'}"
                           f"{'  admin of ' + a['admin_of'] if a['admin_of'] else ''}\n"
                           f"  signing key {a.get('signing_key') or '-'}"
                           f"  registered {'yes' if a['registered'] else 'no'}"
                           f"  roles {', '.join(a['roles']) or '-'}\n"
                           f"  balance {format_amount(a['balance'])}  nonce {a['nonce']}  pending {a['pending_txs']}")


@account.command("rotate-key")
@click.argument("new_key")
@tx_command
def account_rotate_key(new_key: str, tx: Tx) -> None:
    """Move the signer's account to NEW_KEY (a keystore key name or a plain key file).

    The account keeps its id, balance, orders, escrow, bond, terms, tickets, points and
    passports; the old key is refused from the rotation's block on. NEW_KEY signs a
    proof that it is held by you (its password is asked like the signer's).
    """
    new = tx.load_key(new_key, "NEW_KEY")
    account = tx.account(to_hex(tx.signer.public_key))
    tx.send("identity", "rotate_signing_key", new.public_key, key_proof(tx.client.status()["chain_id"], account, new),
            describe=lambda r: f"account {to_hex(account)} now signs with {to_hex(new.public_key)}; "
                               f"sign with {new_key} from now on")
