"""The `shopchain` command: one click group with a sub-group per area.

Sub-groups register themselves here so that `shopchain --help` lists everything an
operator or developer can do.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click


def _version() -> str:
    try:
        return version("shopchain")
    except PackageNotFoundError:
        return "0.0.0+local"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), prog_name="shopchain")
def main() -> None:
    """shopchain: a permissioned blockchain node for e-commerce consortia."""


def _register() -> None:
    """Attach every command group (imported here so `shopchain --help` lists them all)."""
    from cli import account_cmds, aftersales_cmds, cosign_cmds, currency_cmds, gov_cmds, loyalty_cmds, orders_cmds
    from cli import privacy_cmds  # also adds order details, disclose and verify-disclosure
    from cli import indexer_cmds
    from cli.chain_cmds import account, block, call, tx
    from cli.completion import completion
    from cli.contract import contract
    from cli.devnet import devnet
    from cli.genesis_cmds import genesis
    from cli.keys import keys
    from cli.node import node

    cosign_cmds.attach_tx_verbs(tx)
    cosign_cmds.attach_policy_verbs(account)

    for command in (contract, devnet, genesis, node, keys, tx, call, block, account, completion,
                    *orders_cmds.all_groups(), *aftersales_cmds.all_groups(), *loyalty_cmds.all_groups(),
                    *gov_cmds.all_groups(), *account_cmds.all_groups(), *currency_cmds.all_groups(),
                    *privacy_cmds.all_groups(), *indexer_cmds.all_groups()):
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
