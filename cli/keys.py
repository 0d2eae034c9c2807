"""`shopchain keys ...`: the encrypted keystore (new, list, show, import, export, delete).

How it works: thin commands over ``node.ops.keystore.Keystore``. Every key has two
public halves: the ed25519 signing key (the account) and the X25519 encryption key
derived from the same seed, which the account registers (``enc_key``) so that buyers,
merchants and carriers can seal personal data to it. Secrets never reach the
terminal unless asked: ``show`` and ``list`` print public keys only; ``export`` writes
a plain key file (0600) or, with ``--reveal``, prints the seed. ``import`` takes a
plain key file (the devnet's keys/<name>.json format) or a 0x-hex seed.
"""

from __future__ import annotations

import os

import click

from cli.output import CliError, emit, handle_errors, json_option, parse_hex
from cli.signer import keystore_option, password_file_option, read_password
from ledger.crypto import SigningKey
from ledger.hexfmt import to_hex
from node.ops.keystore import Keystore


@click.group()
def keys() -> None:
    """Create and manage signing keys in an encrypted keystore."""


def _row(name: str, public_key: bytes, path: str, encryption_key: bytes | None) -> dict:
    return {"name": name, "public_key": to_hex(public_key), "path": path,
            "encryption_key": to_hex(encryption_key) if encryption_key else None}


def _enc_line(r: dict) -> str:
    return f"encryption key: {r['encryption_key'] or '(not recorded in this file: re-import the key to record it)'}"


@keys.command("new")
@click.argument("name")
@keystore_option
@password_file_option
@json_option
@handle_errors
def new_cmd(name: str, keystore: str, password_file: str | None, as_json: bool) -> None:
    """Generate a new key NAME and store it encrypted."""
    store = Keystore(keystore)
    if store.exists(name):
        raise CliError(f"a key named {name!r} already exists in {store.directory}", hint="pick another name")
    stored = store.add(name, SigningKey.generate(), read_password(password_file, confirm=True,
                                                                   purpose=f"New password for {name}"))
    emit(as_json, _row(stored.name, stored.public_key, stored.path, stored.encryption_key),
         lambda r: f"created key {r['name']}\npublic key: {r['public_key']}\n{_enc_line(r)}\n"
                   f"file: {r['path']} (encrypted, 0600)\n"
                   f"give both public keys to your organisation admin to register the account "
                   f"(shopchain account register {r['public_key']} --role ROLE --enc-key {r['encryption_key']})")


@keys.command("list")
@keystore_option
@json_option
@handle_errors
def list_cmd(keystore: str, as_json: bool) -> None:
    """List the keys in the keystore (public keys only)."""
    store = Keystore(keystore)
    rows = [_row(k.name, k.public_key, k.path, k.encryption_key) for k in store.list()]
    if as_json:
        emit(True, rows)
        return
    if not rows:
        click.echo(f"no keys in {store.directory}; create one with `shopchain keys new NAME`")
        return
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['public_key']}")


@keys.command("show")
@click.argument("name")
@keystore_option
@json_option
@handle_errors
def show_cmd(name: str, keystore: str, as_json: bool) -> None:
    """Show the public signing and encryption keys of NAME (never the secret)."""
    store = Keystore(keystore)
    emit(as_json, _row(name, store.public_key(name), store.path(name), store.encryption_key(name)),
         lambda r: f"name: {r['name']}\npublic key: {r['public_key']}\n{_enc_line(r)}\nfile: {r['path']}")


@keys.command("import")
@click.argument("name")
@click.argument("source")
@keystore_option
@password_file_option
@json_option
@handle_errors
def import_cmd(name: str, source: str, keystore: str, password_file: str | None, as_json: bool) -> None:
    """Store SOURCE as NAME: a plain key file (e.g. devnet keys/<name>.json) or a 0x-hex seed."""
    from node.ops.home import read_key_file

    if os.path.isfile(source):
        key = read_key_file(source)
    elif source.startswith("0x"):
        key = SigningKey(parse_hex(source, "seed", 32))
    else:
        raise CliError(f"{source!r} is neither a key file nor a 0x-hex seed",
                       hint="give the path of a key file like ~/.shopchain/devnet/keys/buyer-1.json, "
                            "or the 32-byte seed as 0x + 64 hex digits")
    stored = Keystore(keystore).add(name, key, read_password(password_file, confirm=True,
                                                             purpose=f"New password for {name}"))
    emit(as_json, _row(stored.name, stored.public_key, stored.path, stored.encryption_key),
         lambda r: f"imported key {r['name']}\npublic key: {r['public_key']}\n{_enc_line(r)}\n"
                   f"file: {r['path']} (encrypted, 0600)")


@keys.command("export")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write a plain key file here (0600, refuses to overwrite).")
@click.option("--reveal", is_flag=True, help="Print the secret seed on stdout (anyone who sees it owns the account).")
@keystore_option
@password_file_option
@json_option
@handle_errors
def export_cmd(name: str, output: str | None, reveal: bool, keystore: str, password_file: str | None,
               as_json: bool) -> None:
    """Decrypt NAME into a plain key file (-o) or print its seed (--reveal)."""
    from node.ops.home import write_key_file

    if not output and not reveal:
        raise CliError("export needs -o FILE (a plain key file) or --reveal (print the seed)",
                       hint=f"e.g. shopchain keys export {name} -o {name}.json")
    key = Keystore(keystore).load(name, read_password(password_file))
    result: dict = {"name": name, "public_key": to_hex(key.public_key)}
    if output:
        write_key_file(output, key)
        result["path"] = os.path.abspath(output)
    if reveal:
        result["seed"] = to_hex(key.seed)
    lines = [f"public key: {result['public_key']}"]
    if output:
        lines.append(f"plain key file written to {result['path']} (0600): keep it secret")
    if reveal:
        lines.append(f"seed: {result['seed']}")
    emit(as_json, result, "\n".join(lines))


@keys.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@keystore_option
@password_file_option
@json_option
@handle_errors
def delete_cmd(name: str, yes: bool, keystore: str, password_file: str | None, as_json: bool) -> None:
    """Delete NAME from the keystore (its password is required, so a typo cannot delete the wrong key)."""
    store = Keystore(keystore)
    public = store.public_key(name)
    if not yes and not click.confirm(f"delete key {name} ({to_hex(public)})? this cannot be undone", err=True):
        raise CliError("not deleted")
    store.delete(name, read_password(password_file))
    emit(as_json, {"deleted": name, "public_key": to_hex(public)}, f"deleted key {name}")
