"""`shopchain contract ...`: compile, disassemble and package contracts for deployment.

How it works: thin wrappers over contracts_vm. ``compile`` turns a contract source
file into bytecode and ABI (human summary, or ``--json`` for scripts, or ``-o`` to
write the raw bytecode); ``disasm`` lists the instructions of a source file or a
bytecode file; ``deploy-tx`` builds the canonical deploy/upgrade payload (code hash
and ABI included) that a governance code proposal carries (no single key deploys:
``gov propose code`` in cli/gov_cmds.py proposes it, ``gov execute`` installs it). Exit codes: 0 ok,
1 compile or verification error, 2 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from contracts_vm import CompileError, VerifyError, compile_source, disassemble, verify
from contracts_vm.bytecode import MAGIC, code_hash
from contracts_vm.deploy import describe, encode_deploy, make_deploy
from ledger.hexfmt import to_hex


def _load_code(path: Path) -> tuple[bytes, dict]:
    """Bytecode and ABI from a .scb bytecode file or a contract source file."""
    data = path.read_bytes()
    if data.startswith(MAGIC):
        verified = verify(data)
        return data, verified.container.abi
    compiled = compile_source(data.decode("utf-8"), str(path))
    return compiled.code, compiled.abi


def deploy_payload(code: bytes, name: str, upgrade: bool, capabilities: tuple | list,
                   init_args: str | None) -> tuple[bytes, dict]:
    """The canonical deploy/upgrade payload of ``code`` and its summary (``deploy-tx``, ``gov propose code``)."""
    args = None
    if init_args is not None:
        try:
            args = json.loads(init_args)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"--init-args is not JSON: {exc}; give a JSON list, e.g. '[1, \"x\"]'") from None
        if not isinstance(args, list):
            raise click.BadParameter("--init-args must be a JSON list")
    tx = make_deploy("upgrade" if upgrade else "deploy", name, code, list(capabilities), args)
    return encode_deploy(tx), describe(tx)


def load_code(path: Path) -> tuple[bytes, dict]:
    """``_load_code`` with compile and verification errors as a CliError (for other command groups)."""
    from cli.output import CliError

    try:
        return _load_code(path)
    except (CompileError, VerifyError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: {exc}", hint="fix the contract; `shopchain contract compile FILE` shows the "
                                              "errors") from None


def _fail(exc: Exception) -> None:
    click.echo(f"error: {exc}", err=True)
    sys.exit(1)


@click.group()
def contract() -> None:
    """Compile, disassemble and package contracts."""


@contract.command("compile")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print {code, code_hash, abi} as JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write raw bytecode here.")
def compile_cmd(file: Path, as_json: bool, output: Path | None) -> None:
    """Compile FILE (contract source) to bytecode and ABI."""
    try:
        code, abi = _load_code(file)
    except (CompileError, VerifyError, UnicodeDecodeError) as exc:
        _fail(exc)
        return
    if output is not None:
        output.write_bytes(code)
    if as_json:
        click.echo(json.dumps({"code": to_hex(code), "code_hash": to_hex(code_hash(code)), "abi": abi},
                              sort_keys=True))
        return
    click.echo(f"{file}: {len(code)} bytes, code hash {to_hex(code_hash(code))}")
    for m in abi["methods"]:
        args = ", ".join(f"{n}: {t}" for n, t in m["args"])
        extra = f"  [requires {m['requires']}]" if m["requires"] else ""
        click.echo(f"  @{m['kind']} {m['name']}({args}) -> {m['returns']}{extra}")
    for name, fields in abi["events"]:
        click.echo(f"  event {name}({', '.join(fields)})")
    if output is not None:
        click.echo(f"bytecode written to {output}")


@contract.command("disasm")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def disasm_cmd(file: Path) -> None:
    """Disassemble FILE (contract source or bytecode)."""
    try:
        code, _ = _load_code(file)
    except (CompileError, VerifyError, UnicodeDecodeError) as exc:
        _fail(exc)
        return
    click.echo(disassemble(code), nl=False)


def deploy_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """FILE, --name, --upgrade, --capability, --init-args: what a deploy payload is built from
    (`contract deploy-tx` and `gov propose code`)."""
    options = [
        click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option("--name", required=True, help="Contract name ([a-z][a-z0-9_]*)."),
        click.option("--upgrade", is_flag=True, help="Upgrade an existing contract (storage is kept)."),
        click.option("--capability", "capabilities", multiple=True,
                     help="Capability granted to the contract (repeatable)."),
        click.option("--init-args", default=None, help="JSON list of arguments for init() (deploy only)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@contract.command("deploy-tx")
@deploy_options
@click.option("--json", "as_json", is_flag=True, help="Print the payload and summary as JSON.")
def deploy_tx_cmd(file: Path, name: str, upgrade: bool, capabilities: tuple, init_args: str | None,
                  as_json: bool) -> None:
    """Build the deploy/upgrade payload for FILE: what a governance code proposal carries
    (`shopchain gov propose code` builds and proposes it in one step)."""
    try:
        code, _ = _load_code(file)
    except (CompileError, VerifyError, UnicodeDecodeError) as exc:
        _fail(exc)
        return
    payload, summary = deploy_payload(code, name, upgrade, capabilities, init_args)
    if as_json:
        summary["payload"] = to_hex(payload)
        click.echo(json.dumps(summary, sort_keys=True))
        return
    click.echo(f"{summary['action']} {name}: code hash {summary['code_hash']}, {len(code)} bytes, "
               f"capabilities {summary['capabilities'] or 'none'}")
    click.echo("payload 0x" + payload.hex())
