"""Accounts, money and settings: `shopchain account register|grant-role|revoke-role|revoke`,
`shopchain ledger transfer|balance` and `shopchain settings show`.

How it works: thin verbs over the identity and ledger system contracts
(contracts_vm/system/identity.sc.py, ledger.sc.py). The account verbs are an
organisation admin's: register a key as an account of the admin's organisation with
its roles, grant and revoke roles, revoke the account; the contract refuses the rest
(another organisation's account, a platform-only role granted by a non-platform admin,
a role already held), and since every signing verb simulates before it submits
(cli/signer.py) those refusals are said before anything is sent. Accounts are named as
users know them (0x key, keystore name, key file) and mapped to the stable account id,
so a rotated account is managed by its id. They attach to the `account` group of
cli/chain_cmds.py, next to `account show` and `account rotate-key`.

The ledger verbs move and show money in currency units ("12.50"): `ledger transfer TO
AMOUNT` from the signer's account, `ledger balance WHO` with the supply and escrow totals.

`settings show CONTRACT` reads a contract's settings as the chain holds them now.
Contracts keep them (fees, periods, accounts) in plain storage variables and no contract
has a view that lists them, so the client reads them as a light client would
(``Client.contract_scalars``): the installed code, the storage layout from its ABI, then
each storage variable without keys (settings and counters), every answer checked
against the certified state root. They change only through governance: `shopchain gov
propose settings CONTRACT NAME=VALUE` (the names ``gov_configure`` takes are the storage
names shown; periods are seconds of block time); `shopchain gov settings` shows
governance's own.
"""

from __future__ import annotations

from typing import Any

import click

from cli.chain_cmds import account
from cli.currency_cmds import currency
from cli.member_cmds import require_org_admin
from cli.output import parse_hex
from cli.signer import Query, Tx, query_command, tx_command
from ledger.genesis import ROLES
from ledger.hexfmt import to_hex

role_argument = click.argument("role", type=click.Choice(ROLES, case_sensitive=False))


def _admin_org(tx: Tx) -> str:
    return require_org_admin(tx, "register accounts and grant or revoke roles")


@account.command("register")
@click.argument("who")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(ROLES, case_sensitive=False),
              help="A role of the new account (repeatable; at least one).")
@click.option("--enc-key", default=None, help="0x-hex X25519 public key for encrypted order details (optional).")
@tx_command
def account_register(who: str, roles: tuple[str, ...], enc_key: str | None, tx: Tx) -> None:
    """Register WHO (0x public key, keystore key name or key file) as an account of the signer's
    organisation with its roles. The signer is an organisation admin; only a platform admin grants
    platform-only roles."""
    key = tx.key(who, "WHO")
    wanted = sorted({r.upper() for r in roles})
    enc = parse_hex(enc_key, "--enc-key", 32) if enc_key else b""
    org = _admin_org(tx)
    tx.send("identity", "register", key, wanted, enc,
            describe=lambda r: f"account {to_hex(key)} registered in {org or 'your organisation'} "
                               f"with {', '.join(wanted)} (block {r['height']})")


@account.command("grant-role")
@click.argument("who")
@role_argument
@tx_command
def account_grant_role(who: str, role: str, tx: Tx) -> None:
    """Grant ROLE to account WHO of the signer's organisation."""
    target = tx.account(who, "WHO")
    _admin_org(tx)
    tx.send("identity", "grant_role", target, role.upper(),
            describe=lambda r: f"account {to_hex(target)} now holds {role.upper()}")


@account.command("revoke-role")
@click.argument("who")
@role_argument
@tx_command
def account_revoke_role(who: str, role: str, tx: Tx) -> None:
    """Take ROLE away from account WHO of the signer's organisation."""
    target = tx.account(who, "WHO")
    _admin_org(tx)
    tx.send("identity", "revoke_role", target, role.upper(),
            describe=lambda r: f"account {to_hex(target)} no longer holds {role.upper()}")


@account.command("revoke")
@click.argument("who")
@tx_command
def account_revoke(who: str, tx: Tx) -> None:
    """Revoke account WHO of the signer's organisation: its keys may not sign from the next block on
    (its balance, orders and history stay on chain)."""
    target = tx.account(who, "WHO")
    _admin_org(tx)
    tx.send("identity", "revoke_account", target,
            describe=lambda r: f"account {to_hex(target)} revoked in block {r['height']}")


# --- ledger -----------------------------------------------------------------------------

@click.group("ledger")
def ledger() -> None:
    """Money: transfer between accounts and look at balances (amounts in currency units)."""


currency_option = click.option("--currency", "code", default=None, metavar="CODE",
                               help="The currency (default: the chain's base currency; see `shopchain currency list`).")


@ledger.command("transfer")
@click.argument("to")
@click.argument("amount")
@currency_option
@tx_command
def ledger_transfer(to: str, amount: str, code: str | None, tx: Tx) -> None:
    """Pay AMOUNT (units of the currency, e.g. 12.50) from the signer's account to TO (0x key, key name or key file)."""
    c = currency(tx, code)
    minor = c.parse(amount)
    target = tx.account(to, "TO")
    tx.send("ledger", "transfer_in", c.code, target, minor,
            describe=lambda r: f"paid {c.show(minor)} to {tx.label(to_hex(target))}")


@ledger.command("balance")
@click.argument("who")
@query_command
def ledger_balance(who: str, q: Query) -> None:
    """Show WHO's balance in every currency it holds (0x key, key name or key file), with the base
    currency's supply and escrow."""
    target = q.account(who, "WHO")
    base = currency(q)
    held = {code: amount for code, amount in q.view("ledger", "balances_of", target)}
    result = {"account": to_hex(target), "balance": held.get(base.code, 0), "currency": base.code, "balances": held,
              "total_supply": q.view("ledger", "total_supply"), "total_escrow": q.view("ledger", "total_escrow")}

    def human(r: dict) -> str:
        others = [currency(q, code).show(amount) for code, amount in r["balances"].items() if code != base.code]
        return (f"{q.label(r['account'])}: {base.show(r['balance'])}" + "".join(f", {o}" for o in others)
                + f"\n  {base.code} supply {base.show(r['total_supply'])}, in escrow {base.show(r['total_escrow'])}")

    q.emit(result, human)


# --- settings ---------------------------------------------------------------------------

@click.group("settings")
def settings() -> None:
    """Contract settings as the chain holds them (changes are governance proposals: `gov propose settings`)."""


@settings.command("show")
@click.argument("contract")
@query_command
def settings_show(contract: str, q: Query) -> None:
    """Show CONTRACT's settings and other scalar state (proven against the certified state root).

    Change a setting with `shopchain gov propose settings CONTRACT NAME=VALUE -d WHY --key ADMIN`.
    """
    found = q.client.contract_scalars(contract)

    def text(r: dict) -> str:
        lines = [f"{r['contract']} at height {r['height']} (code {r['code_hash'][:18]}...):"]
        lines += [f"  {name:<24} {'-' if value is None else value}" for name, value in r["values"].items()]
        lines.append(f"  change with: shopchain gov propose settings {r['contract']} NAME=VALUE -d WHY --key ADMIN")
        return "\n".join(lines)

    q.emit(found, text)


def all_groups() -> list[Any]:
    return [ledger, settings]
