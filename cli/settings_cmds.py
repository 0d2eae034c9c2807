"""`shopchain settings show CONTRACT`: a contract's settings as the chain holds them now.

How it works: contracts keep their settings (fees, periods, accounts) in plain storage
variables and no contract has a view that lists them, so the client reads them the way a
light client would (``Client.contract_scalars``): the installed code from state, the
storage layout from its ABI, then each storage variable without keys (the contract's
scalar state: its settings and its counters), every answer checked against the
certified header's state root. Maps (orders, accounts, balances) are left to the views.

Settings change only through governance: `shopchain gov propose settings CONTRACT
NAME=VALUE -d WHY` (the names the contract's ``gov_configure`` takes; they are the
storage names shown here, except reviews' review_window_days, stored as
``window_days``); `shopchain gov settings` shows governance's own.
"""

from __future__ import annotations

from typing import Any

import click

from cli.signer import Query, query_command


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
    return [settings]
