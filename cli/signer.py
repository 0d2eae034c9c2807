"""Who signs and which node: the options every chain command shares.

How it works: ``query_command`` gives a command ``--node``, ``--keystore`` and
``--json`` and hands it a ``Query`` (a client plus account-name resolution);
``tx_command`` adds the signer (``--key NAME`` from the encrypted keystore, or
``--key-file PATH`` for a plain key file such as a devnet demo key), the password
source, ``--gas``, ``--timeout``, ``--no-wait``, ``--dry-run``, ``--no-precheck`` and
``--cosign`` (more keys signing the same transaction, cli/cosign_cmds.py) and hands it a
``Tx`` whose ``send`` signs, submits, waits for the receipt and prints the outcome.
Passwords come from ``--password-file``, then SHOPCHAIN_PASSWORD, then a hidden prompt;
they are never echoed or logged.

Mistakes cost nothing: before submitting, ``send`` asks the node to simulate the signed
transaction (``chain_simulate``: the receipt it would get in the next block). If it would
fail, nothing is submitted, so no nonce and no fee are spent, and the contract's error is
the command's error (exit 4). ``--no-precheck`` sends anyway (for the rare step whose
state will change before it is included); ``--dry-run`` prints the would-be receipt and
never submits (exit 0 if it would succeed, 4 if not). A node too old to simulate, or a
transaction the node would admit but cannot simulate (more than 64 of the sender's pending
transactions before it, a simulation over the node's work budget), is sent as before.

Accounts are named the way a user knows them: 0x-hex public key, a keystore key
name, or the path of a key file.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from cli.output import (
    DEFAULT_NODE_URL,
    EXIT_NODE,
    EXIT_TX_FAILED,
    CliError,
    emit,
    format_amount,
    handle_errors,
    json_option,
    parse_commitment,
    short,
    translate,
)
from ledger.crypto import SigningKey
from ledger.privacy import commit_text
from node.client import DEFAULT_GAS, DEFAULT_WAIT_S, Client, RpcFailure, TxFailed
from node.ops.keystore import DEFAULT_KEYSTORE_DIR, NAME_PATTERN, Keystore, KeystoreError
from ledger.hexfmt import to_hex

#: Event fields that hold money (shown in currency units in human output).
AMOUNT_FIELDS = frozenset({"amount", "payout", "fee", "holdback", "to_buyer", "to_merchant", "cumulative", "discount",
                           "commission", "budget", "owed", "price"})
#: Longest password file read.
MAX_PASSWORD_FILE_BYTES = 4096
#: JSON-RPC "Method not found": a node from before chain_simulate.
METHOD_NOT_FOUND = -32601
#: JSON-RPC LimitExceeded: the simulation ran out of the node's work budget.
LIMIT_EXCEEDED = -32005
#: chain_simulate refusals of a transaction the node would still admit (node.core.simulate):
#: too many of the sender's pending transactions before it to replay, or a nonce gap.
UNSIMULATED_REASONS = frozenset({"nonce_too_far", "nonce_gap"})
#: The next step when a call of the ``system`` pseudo-contract is refused: those changes are governed.
GOVERNED_HINT = ("contract deploys, upgrades and fee changes are governed, no single key makes them: propose code "
                 "with `shopchain gov propose code FILE --name NAME -d WHY --key ADMIN` (the payload "
                 "`shopchain contract deploy-tx` builds), fees with `shopchain gov propose fees`")
#: What a refused pre-check tells the user to do next.
PRECHECK_HINT = ("nothing was submitted, so no nonce or fee was spent; check the state with the group's `show` "
                 "verb and who may call it (docs/commerce.md); if the state will change before the transaction "
                 "is included, send it anyway with --no-precheck")

node_option = click.option("--node", "node_url", envvar="SHOPCHAIN_NODE", default=DEFAULT_NODE_URL, show_default=True,
                           help="JSON-RPC endpoint of any node (env SHOPCHAIN_NODE).")
keystore_option = click.option("--keystore", envvar="SHOPCHAIN_KEYSTORE", default=DEFAULT_KEYSTORE_DIR,
                               show_default="~/.shopchain/keys", type=click.Path(file_okay=False),
                               help="Directory of encrypted keys (env SHOPCHAIN_KEYSTORE).")
password_file_option = click.option("--password-file", type=click.Path(exists=True, dir_okay=False), default=None,
                                    help="Read the keystore password from this file's first line "
                                         "(else env SHOPCHAIN_PASSWORD, else a hidden prompt).")


def read_password(password_file: str | None, confirm: bool = False, purpose: str = "Keystore password") -> str:
    """The password from the file, the environment, or a hidden prompt (in that order)."""
    if password_file:
        if os.path.getsize(password_file) > MAX_PASSWORD_FILE_BYTES:
            raise CliError(f"{password_file} is larger than {MAX_PASSWORD_FILE_BYTES} bytes; "
                           f"a password file holds one line")
        with open(password_file, encoding="utf-8") as fh:
            return fh.readline().rstrip("\r\n")
    env = os.environ.get("SHOPCHAIN_PASSWORD")
    if env is not None:
        return env
    try:
        return click.prompt(purpose, hide_input=True, confirmation_prompt=confirm, err=True)
    except click.Abort:
        raise CliError("no password given", hint="type it at the prompt, or use --password-file FILE "
                                                 "or the SHOPCHAIN_PASSWORD environment variable") from None


def read_plain_key_file(path: str) -> SigningKey:
    from node.ops.home import read_key_file

    return read_key_file(path)


def resolve_account(text: str, keystore: str, what: str = "account") -> bytes:
    """A public key from 0x-hex, a keystore key name, or a key file path."""
    if text.startswith("0x"):
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise CliError(f"{what} {text!r}: expected a 32-byte public key in 0x-hex")
        return raw
    store = Keystore(keystore)
    try:
        if store.exists(text):
            return store.public_key(text)
    except KeystoreError:
        pass  # not a valid key name: maybe a path
    if os.path.isfile(text):
        try:
            with open(text) as fh:
                public = bytes.fromhex(json.load(fh)["public_key"][2:])
        except (OSError, ValueError, KeyError, TypeError):
            public = b""
        if len(public) != 32:
            raise CliError(f"{what} {text!r}: the file has no 32-byte 0x-hex public_key field")
        return public
    raise CliError(f"{what} {text!r} is not 0x-hex, a key in {store.directory}, or a key file",
                   hint="give the account's 0x public key, a name from `shopchain keys list`, or a key file path")


@dataclass
class Query:
    """What a read-only command needs: the node and how to name accounts."""

    node_url: str
    keystore: str
    as_json: bool
    _client: Client | None = field(default=None, repr=False)
    _names: dict[str, str] | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.node_url)
        return self._client

    def key(self, text: str, what: str = "key") -> bytes:
        """The public key ``text`` names, as given (no mapping to an account id)."""
        return resolve_account(text, self.keystore, what)

    def account(self, text: str, what: str = "account") -> bytes:
        """The account id ``text`` names: contracts name parties by the stable id (the key an
        account was registered with), so a rotated account's current key is mapped to its id."""
        key = resolve_account(text, self.keystore, what)
        try:
            return self.client.account_of(key) or key
        except RpcFailure as exc:
            if exc.code == -1:   # node unreachable: the command's own request reports it
                return key
            raise

    def label(self, hex_key: str | None) -> str:
        """A 0x key with its keystore name when there is one: 'buyer (0x1234abcd…)'."""
        if not hex_key or hex_key == "0x":
            return "-"
        if self._names is None:
            self._names = {to_hex(k.public_key): k.name for k in Keystore(self.keystore).list()}
        name = self._names.get(hex_key)
        return f"{name} ({short(hex_key)})" if name else hex_key

    def view(self, contract: str, method: str, *args: Any) -> Any:
        return self.client.call(contract, method, *args)

    def emit(self, data: Any, human: Callable[[Any], str] | str | None = None) -> None:
        emit(self.as_json, data, human)


@dataclass
class Tx(Query):
    """A command that signs: the signer plus how to send and wait."""

    key_name: str | None = None
    key_file: str | None = None
    password_file: str | None = None
    gas: int = DEFAULT_GAS
    timeout: float = DEFAULT_WAIT_S
    wait: bool = True
    dry_run: bool = False    # simulate and print the would-be receipt; never submit
    precheck: bool = True    # simulate first and refuse to submit what would fail
    cosign: tuple[str, ...] = ()   # --cosign: more keys signing the same body (cli/cosign_cmds.py)
    _signer: SigningKey | None = field(default=None, repr=False)

    def signer_public_key(self) -> bytes | None:
        """The signer's public key without asking for a password (None if no signer was chosen)."""
        if self.key_file:
            return resolve_account(self.key_file, self.keystore, "--key-file")
        if self.key_name:
            return Keystore(self.keystore).public_key(self.key_name)
        return None

    def commit_text(self, text: str, what: str) -> bytes:
        """A commitment for a private free text (a reason, message, report, proof): 0x-hex and
        @FILE as ``parse_commitment`` takes them, but plain text salted with a salt the signer's
        key derives (ledger.privacy.commit_text), so the chain never holds a guessable hash of
        what someone wrote; `shopchain commitment open TEXT --key K` shows the salt to disclose."""
        if text.startswith(("0x", "@")) or not text:
            return parse_commitment(text, what)
        return commit_text(self.signer.seed, text).root

    def signer_account(self) -> bytes:
        """The account id the signer acts for (its registration key, even after a rotation)."""
        key = self.signer.public_key
        return self.client.account_of(key) or key

    def load_key(self, text: str, what: str) -> SigningKey:
        """A second private key (a keystore name or a plain key file), e.g. the key to rotate to."""
        store = Keystore(self.keystore)
        try:
            named = store.exists(text)
        except KeystoreError:
            named = False   # not a valid key name: maybe a path
        if named:
            return store.load(text, read_password(self.password_file, purpose=f"Password of {text}"))
        if os.path.isfile(text):
            return read_plain_key_file(text)
        raise CliError(f"{what} {text!r} is neither a key in {store.directory} nor a key file",
                       hint="create it first: shopchain keys new NAME")

    @property
    def signer(self) -> SigningKey:
        if self._signer is None:
            if self.key_name and self.key_file:
                raise CliError("give either --key or --key-file, not both")
            if self.key_file:
                self._signer = read_plain_key_file(self.key_file)
            elif self.key_name:
                store = Keystore(self.keystore)
                if os.path.isfile(self.key_name) and (not NAME_PATTERN.match(self.key_name)
                                                      or not store.exists(self.key_name)):
                    raise CliError(f"--key takes a keystore key name; {self.key_name!r} is a file",
                                   hint=f"use --key-file {self.key_name}, or import it: "
                                        f"shopchain keys import NAME {self.key_name}")
                store.public_key(self.key_name)  # a clear "no such key" before asking for a password
                self._signer = store.load(self.key_name, read_password(self.password_file))
            else:
                raise CliError("no signer chosen", hint="add --key NAME (a key in the keystore, see "
                                                       "`shopchain keys list`) or --key-file PATH (a plain key file)")
        return self._signer

    def send(self, contract: str, method: str, *args: Any, describe: Callable[[dict], str] | None = None) -> dict:
        """Sign, submit and (unless --no-wait) wait; print the outcome; return the receipt."""
        key = self.signer
        client = self.client
        # The next nonce counts this sender's transactions still pending in the node's
        # mempool, so a script of `--no-wait` commands does not reuse a nonce.
        info = client.account(key.public_key)
        nonce = info["nonce"] + info.get("pending_txs", 0)
        from cli.cosign_cmds import add_cosignatures

        raw = add_cosignatures(self, client.build(key, contract, method, list(args), self.gas, nonce=nonce))
        if self.dry_run:
            return self._dry_run(raw, contract, method, nonce)
        if self.precheck:
            simulated = self._simulate(raw, required=False)
            if simulated is not None and simulated["status"] != "ok":
                raise CliError(f"not sent: {contract}.{method} would fail: {simulated['error']}", EXIT_TX_FAILED,
                               GOVERNED_HINT if contract == "system" else PRECHECK_HINT)
        tx_id = client.send_raw(raw)
        if not self.wait:
            result = {"tx_id": tx_id, "status": "pending", "contract": contract, "method": method}
            self.emit(result, f"submitted {contract}.{method}: tx {tx_id} (not waiting; "
                              f"check with `shopchain tx receipt {tx_id}`)")
            return result
        receipt = self.client.wait(tx_id, self.timeout)
        if receipt["status"] != "ok":
            raise TxFailed(receipt)
        receipt = {k: v for k, v in receipt.items() if k not in ("proof", "raw")}
        headline = describe(receipt) if describe else f"{contract}.{method} committed"
        self.emit(receipt, lambda r: f"{headline}\n{receipt_summary(r)}")
        return receipt

    def _simulate(self, raw: bytes, required: bool) -> dict | None:
        """The would-be receipt of ``raw``; None from a node without chain_simulate unless ``required``.

        Admission's refusals (unregistered key, nonce, fee, shape) raise as a submit would,
        worded as what the node would do: nothing was sent.
        """
        try:
            return self.client.simulate(raw)
        except RpcFailure as exc:
            if exc.code == METHOD_NOT_FOUND:
                if required:
                    raise CliError(f"the node at {self.node_url} cannot simulate (no chain_simulate: an older "
                                   "version), so --dry-run cannot run", EXIT_NODE,
                                   "point --node at an upgraded node") from None
                return None
            if not required and (exc.code == LIMIT_EXCEEDED or exc.reason in UNSIMULATED_REASONS):
                return None   # the node would admit it but cannot say how it ends (a long --no-wait run)
            if exc.reason is None:
                raise
            said = translate(exc)
            raise CliError(f"the node would refuse the transaction (nothing was sent): {exc.rpc_message}",
                           said.exit_code, said.hint) from None

    def _dry_run(self, raw: bytes, contract: str, method: str, nonce: int) -> dict:
        """Print the would-be receipt; exit 4 (after printing it) if the transaction would fail."""
        simulated = self._simulate(raw, required=True) or {}   # required: never None
        result = {**simulated, "dry_run": True, "contract": contract, "method": method, "nonce": nonce}
        ok = result["status"] == "ok"

        def text(r: dict) -> str:
            verdict = "would succeed" if ok else f"would fail: {r['error']}"
            lines = [f"dry run: {contract}.{method} {verdict} (nothing was sent; nonce {nonce} is still free)",
                     f"  in block {r['height']}: gas {r['gas_used']}, fee {format_amount(r.get('fee', 0))}, "
                     f"returns {json.dumps(r['return_value'])}"]
            if r.get("pending_replayed"):
                lines.append(f"  after the sender's {r['pending_replayed']} pending transaction(s)")
            lines += [f"  event {e['contract']}.{e['name']} {format_event_data(e['data'])}" for e in r["events"]]
            return "\n".join(lines)

        self.emit(result, text)
        if not ok:
            raise CliError(f"dry run: {contract}.{method} would fail: {result['error']}", EXIT_TX_FAILED,
                           GOVERNED_HINT if contract == "system" else
                           "nothing was sent; fix the step (see the group's `show` verb) before sending it")
        return result


def receipt_summary(receipt: dict) -> str:
    lines = [f"  tx {receipt['tx_id']} in block {receipt['height']}, gas {receipt['gas_used']}"]
    for event in receipt.get("events", []):
        lines.append(f"  event {event['contract']}.{event['name']} {format_event_data(event['data'])}")
    return "\n".join(lines)


def format_event_data(data: Any) -> str:
    if not isinstance(data, dict):
        return str(data)
    parts = []
    for key, value in data.items():
        if key in AMOUNT_FIELDS and isinstance(value, (int, str)) and str(value).lstrip("-").isdigit():
            parts.append(f"{key}={format_amount(value)}")
        elif isinstance(value, str) and value.startswith("0x"):
            parts.append(f"{key}={short(value)}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def query_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --node, --keystore, --json; call ``fn(..., q=Query)`` with errors translated."""

    @functools.wraps(fn)
    def wrapper(*args: Any, node_url: str, keystore: str, as_json: bool, **kwargs: Any) -> Any:
        return handle_errors(fn)(*args, q=Query(node_url, keystore, as_json), **kwargs)

    for option in (json_option, keystore_option, node_option):
        wrapper = option(wrapper)
    return wrapper


def tx_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the signer and sending options; call ``fn(..., tx=Tx)`` with errors translated."""

    @functools.wraps(fn)
    def wrapper(*args: Any, node_url: str, keystore: str, as_json: bool, key_name: str | None,
                key_file: str | None, password_file: str | None, gas: int, timeout: float, no_wait: bool,
                dry_run: bool, no_precheck: bool, cosign: tuple[str, ...], **kwargs: Any) -> Any:
        tx = Tx(node_url, keystore, as_json, key_name=key_name, key_file=key_file, password_file=password_file,
                gas=gas, timeout=timeout, wait=not no_wait, dry_run=dry_run, precheck=not no_precheck, cosign=cosign)
        return handle_errors(fn)(*args, tx=tx, **kwargs)

    options = [
        json_option, keystore_option, node_option, password_file_option,
        click.option("--key", "key_name", envvar="SHOPCHAIN_KEY", default=None,
                     help="Sign with this keystore key (env SHOPCHAIN_KEY)."),
        click.option("--key-file", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="Sign with a plain key file (e.g. a devnet demo key)."),
        click.option("--gas", default=DEFAULT_GAS, show_default=True, type=click.IntRange(1),
                     help="Gas limit of the transaction."),
        click.option("--timeout", default=DEFAULT_WAIT_S, show_default=True, type=click.FloatRange(0.1),
                     help="Seconds to wait for the receipt."),
        click.option("--no-wait", is_flag=True, help="Return once the node admitted the transaction."),
        click.option("--dry-run", is_flag=True,
                     help="Simulate on the latest state and print the would-be receipt; submit nothing."),
        click.option("--no-precheck", is_flag=True,
                     help="Submit even if the simulation says it would fail (state may change before inclusion)."),
        click.option("--cosign", "cosign", multiple=True, metavar="KEY",
                     help="Also co-sign with this key (keystore name or key file; repeatable), for an account "
                          "whose signing policy needs several keys."),
    ]
    for option in options:
        wrapper = option(wrapper)
    return wrapper


def id_transition(group: click.Group, name: str, contract: str, method: str, argument: Callable[..., Any],
                  noun: str, doc: str, done: str | None = None) -> None:
    """Register ``group name ID``: a transaction calling ``contract.method(ID)`` and nothing else.

    ``done`` words the success line ("order 7 confirmed: merchant paid"); by default
    it is "<noun> <id>: <name> done".
    """

    @group.command(name, help=doc)
    @argument
    @tx_command
    def command(tx: Tx, **ids: int) -> None:
        (item_id,) = ids.values()
        outcome = f" {done}" if done else f": {name} done"
        tx.send(contract, method, item_id, describe=lambda r: f"{noun} {item_id}{outcome}")
