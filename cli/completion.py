"""`shopchain completion bash|zsh|fish`: print the shell completion script.

How it works: click generates completion scripts itself; the shell sources the
script, which calls shopchain back with ``_SHOPCHAIN_COMPLETE=<shell>_complete`` to
complete commands, options and choices. The same script comes from
``_SHOPCHAIN_COMPLETE=bash_source shopchain``; this command only saves remembering that.

    eval "$(shopchain completion bash)"         # in ~/.bashrc
    eval "$(shopchain completion zsh)"          # in ~/.zshrc
    shopchain completion fish > ~/.config/fish/completions/shopchain.fish
"""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

PROG_NAME = "shopchain"
COMPLETE_VAR = "_SHOPCHAIN_COMPLETE"
SHELLS = ("bash", "zsh", "fish")


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (e.g. eval "$(shopchain completion bash)")."""
    cls = get_completion_class(shell)
    if cls is None:  # click always ships these three; a missing one means a broken install
        raise click.ClickException(f"click has no completion support for {shell} in this installation")
    root = ctx.find_root().command
    click.echo(cls(root, {}, PROG_NAME, COMPLETE_VAR).source())
