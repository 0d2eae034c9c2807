"""`shopchain currency ...`: the chain's currencies, and amounts in the right one.

How it works: the ledger contract holds a base currency (named at genesis; it pays fees)
and any further currencies a governance proposal created (`shopchain gov propose
currency`), each with a code, a name, its decimals and one issuer account. Amounts
are typed in units of their currency ("12.50" USD is 1250 minor units, "3" of a
0-decimal points currency is 3) and shown with their code; ``Currency`` looks a code
up once per command so parsing and printing use that currency's own decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from cli.output import CliError, format_amount, parse_amount
from cli.signer import Query, Tx, query_command, tx_command
from ledger.hexfmt import to_hex

#: Most currencies `currency list` shows (the ledger's MAX_CURRENCIES plus the base one).
MAX_LIST = 33


@dataclass(frozen=True)
class Currency:
    """A currency as the ledger describes it."""

    code: str
    decimals: int
    name: str
    issuer: str

    def parse(self, text: str, what: str = "amount", allow_zero: bool = False) -> int:
        return parse_amount(text, what, allow_zero, self.decimals, self.code)

    def show(self, minor: int | str | None) -> str:
        return format_amount(minor, self.decimals, self.code)


def currency(q: Query, code: str | None = None) -> Currency:
    """The currency ``code`` names (the base currency when None), or a clear error listing the others."""
    wanted = code.strip().upper() if code else q.view("ledger", "currency")["code"]
    found: Any = q.view("ledger", "get_currency", wanted)
    if found is None:
        known = ", ".join(q.view("ledger", "currency_list"))
        raise CliError(f"no currency {wanted!r} on this chain; it has {known}",
                       hint="new currencies are governance proposals: shopchain gov propose currency")
    return Currency(found["code"], int(found["decimals"]), found["name"], found["issuer"])


@click.group("currency")
def currency_group() -> None:
    """The chain's currencies: list, show, issue, retire (new ones by governance)."""


@currency_group.command("list")
@query_command
def currency_list(q: Query) -> None:
    """List the chain's currencies with their decimals, supply and issuer."""
    rows = [q.view("ledger", "get_currency", code) for code in q.view("ledger", "currency_list")[:MAX_LIST]]
    q.emit(rows, lambda rs: "\n".join(
        f"{r['code']:<8} {r['decimals']} decimals  supply {format_amount(r['supply'], r['decimals'])}  "
        f"{'base currency (pays fees)' if r['issuer'] in ('0x', '') else 'issuer ' + q.label(r['issuer'])}  {r['name']}"
        for r in rs))


@currency_group.command("show")
@click.argument("code")
@query_command
def currency_show(code: str, q: Query) -> None:
    """Show currency CODE: name, decimals, issuer, supply and what is in escrow."""
    c = currency(q, code)
    record = q.view("ledger", "get_currency", c.code)
    q.emit(record, lambda r: f"{r['code']}: {r['name']}, {r['decimals']} decimals\n"
                             f"  supply {c.show(r['supply'])}, in escrow {c.show(r['escrowed'])}\n"
                             f"  issuer {q.label(r['issuer']) if r['issuer'] not in ('0x', '') else '- (base currency)'}")


@currency_group.command("issue")
@click.argument("code")
@click.argument("to")
@click.argument("amount")
@tx_command
def currency_issue(code: str, to: str, amount: str, tx: Tx) -> None:
    """The issuer: create AMOUNT of CODE in account TO."""
    c = currency(tx, code)
    if c.issuer in ("0x", ""):
        raise CliError(f"{c.code} is the base currency: TREASURY mints it (shopchain tx send ledger mint ...)")
    minor = c.parse(amount)
    target = tx.account(to, "TO")
    tx.send("ledger", "issue", c.code, target, minor,
            describe=lambda r: f"issued {c.show(minor)} to {tx.label(to_hex(target))}")


@currency_group.command("retire")
@click.argument("code")
@click.argument("amount")
@tx_command
def currency_retire(code: str, amount: str, tx: Tx) -> None:
    """The issuer: take AMOUNT of CODE out of circulation from its own balance."""
    c = currency(tx, code)
    minor = c.parse(amount)
    tx.send("ledger", "retire", c.code, minor, describe=lambda r: f"retired {c.show(minor)}")


def all_groups() -> list[Any]:
    return [currency_group]
