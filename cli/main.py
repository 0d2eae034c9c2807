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


if __name__ == "__main__":
    main()

from cli.contract import contract; main.add_command(contract)  # noqa: E402,E702
