"""Several keys on one transaction: `--cosign`, `tx prepare|cosign|submit`, `account policy`.

How it works: an account with a signing policy (identity.set_signing_policy) needs k
of its own key plus co-signer keys for anything above its spend limit, for policy
changes and for key rotations. A co-signature is a signature of the same transaction
body (ledger.types: cstx/1), so the id never changes while signatures are collected.

- ``--cosign KEY`` (repeatable, on every signing verb; ``Tx.send`` calls
  ``add_cosignatures``) signs with more keys at once, when one person holds them.
- ``tx prepare`` builds and signs a transaction without sending it and writes a
  transaction file (``TX_FILE_FORMAT``: the raw bytes plus a readable summary);
  ``tx cosign FILE`` shows what is being approved and adds one co-signature, offline;
  ``tx submit FILE`` sends it and waits for the receipt. The raw bytes are what counts:
  loading a file re-derives the summary from them and refuses a file whose summary
  was edited, so a co-signer always reads what they sign.
- ``account policy set|clear|show|prove`` manage the policy. A co-signer proves it
  holds its key by signing ``cosigner_proof_message`` (``node.client.cosigner_proof``):
  ``set --cosigner NAME`` signs it with a key at hand, ``prove`` makes the proof on the
  co-signer's own machine and ``set --cosigner 0xKEY:0xPROOF`` uses it.
"""

from __future__ import annotations

import json
import os

import click

from cli.output import CliError, format_amount, handle_errors, json_option, parse_amount, short
from cli.signer import (Query, Tx, keystore_option, password_file_option, query_command, receipt_summary,
                        tx_command)
from ledger.errors import ChainError, ValidationError
from ledger.hexfmt import to_hex
from ledger.types import MAX_COSIGNATURES, MAX_TX_BYTES, SignedTx
from node.client import DEFAULT_WAIT_S, TxFailed, cosigner_proof
from node.client_ops import json_arg

#: The ``format`` field of a transaction file.
TX_FILE_FORMAT = "shopchain-tx/1"
#: Largest transaction file read: the raw transaction as hex plus its summary.
MAX_TX_FILE_BYTES = 4 * MAX_TX_BYTES + 64 * 1024
#: Most co-signers one policy may name (identity's MAX_COSIGNERS).
MAX_POLICY_COSIGNERS = MAX_COSIGNATURES
#: Longest spend window, in seconds (identity's MAX_SPEND_WINDOW_MS: a year of 366 days).
MAX_WINDOW_S = 366 * 86_400


def add_cosignatures(tx: Tx, raw: bytes) -> bytes:
    """``raw`` with a co-signature from each ``--cosign`` key (unchanged when there is none)."""
    if not tx.cosign:
        return raw
    signed = SignedTx.decode(raw)
    for text in tx.cosign:
        try:
            signed = signed.cosigned_by(tx.load_key(text, "--cosign"))
        except ValidationError as exc:
            raise CliError(f"--cosign {text}: {exc}") from None
    return signed.encode()


# ---- transaction files ------------------------------------------------------------------

def tx_file(signed: SignedTx) -> dict:
    """The file form of a transaction: its raw bytes and what they say, for people to read."""
    body = signed.body
    return {"format": TX_FILE_FORMAT, "tx_id": to_hex(signed.tx_id), "chain_id": body.chain_id,
            "sender": to_hex(body.sender), "nonce": body.nonce, "contract": body.contract, "method": body.method,
            "args": json_arg(body.args), "gas_limit": body.gas_limit,
            "cosigners": [to_hex(k) for k in signed.cosigner_keys], "raw": to_hex(signed.encode())}


def read_tx_file(path: str) -> SignedTx:
    """The transaction in ``path``; refuses a file that is not one, or whose summary was edited."""
    try:
        if os.path.getsize(path) > MAX_TX_FILE_BYTES:
            raise CliError(f"{path} is larger than {MAX_TX_FILE_BYTES} bytes; a transaction file is smaller")
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise CliError(f"{path}: expected a transaction file written by `shopchain tx prepare`, found: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != TX_FILE_FORMAT or not isinstance(data.get("raw"), str):
        raise CliError(f"{path}: expected a {TX_FILE_FORMAT} transaction file with a raw field",
                       hint="write one with `shopchain tx prepare ... --out FILE`")
    try:
        signed = SignedTx.decode(bytes.fromhex(data["raw"].removeprefix("0x")))
    except (ValueError, ChainError) as exc:
        raise CliError(f"{path}: the raw transaction does not decode: {exc}") from None
    derived = tx_file(signed)
    edited = sorted(k for k in derived if data.get(k) != derived[k])
    if edited:
        raise CliError(f"{path}: the summary field(s) {', '.join(edited)} do not match the raw transaction; "
                       f"the file was edited, so it is not what was signed",
                       hint="ask the sender for the file as `shopchain tx prepare` wrote it")
    return signed


def write_tx_file(path: str, signed: SignedTx) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(tx_file(signed), fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def describe_tx(signed: SignedTx) -> str:
    """What a co-signer approves, in a few lines."""
    body = signed.body
    lines = [f"transaction {to_hex(signed.tx_id)} on chain {body.chain_id}",
             f"  {body.contract}.{body.method}({', '.join(json.dumps(a) for a in json_arg(body.args))})",
             f"  sender {to_hex(body.sender)}, nonce {body.nonce}, gas limit {body.gas_limit}"]
    cosigners = ", ".join(short(to_hex(k)) for k in signed.cosigner_keys) or "none yet"
    lines.append(f"  co-signers: {cosigners}")
    return "\n".join(lines)


def _write(path: str, signed: SignedTx) -> None:
    try:
        write_tx_file(path, signed)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}") from None


# ---- tx prepare / cosign / submit ----------------------------------------------------------

def attach_tx_verbs(tx_group: click.Group) -> None:
    """Add ``prepare``, ``cosign`` and ``submit`` to the ``tx`` group."""

    @tx_group.command("prepare")
    @click.argument("contract")
    @click.argument("method")
    @click.argument("args", nargs=-1)
    @click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="Write the transaction file here.")
    @click.option("--nonce", type=click.IntRange(0), default=None,
                  help="The account's nonce to use (default: its next one, counting pending transactions).")
    @tx_command
    def tx_prepare(contract: str, method: str, args: tuple[str, ...], out: str, nonce: int | None, tx: Tx) -> None:
        """Sign CONTRACT.METHOD with ARGS (as `tx send`) and write it to --out without sending,
        for co-signers to add their signatures (`tx cosign`) before `tx submit`."""
        from cli.chain_cmds import parse_json_arg, to_tx_value

        values = [to_tx_value(parse_json_arg(a)) for a in args]
        key = tx.signer
        client = tx.client
        if nonce is None:
            info = client.account(key.public_key)
            nonce = info["nonce"] + info.get("pending_txs", 0)
        signed = SignedTx.decode(add_cosignatures(tx, client.build(key, contract, method, values, tx.gas, nonce=nonce)))
        _write(out, signed)
        tx.emit(tx_file(signed), lambda _: f"{describe_tx(signed)}\nwritten to {out}; co-sign with "
                                           f"`shopchain tx cosign {out} --key NAME`, send with `shopchain tx submit {out}`")

    @tx_group.command("cosign")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--key", "key_name", envvar="SHOPCHAIN_KEY", default=None, help="Co-sign with this keystore key.")
    @click.option("--key-file", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="Co-sign with a plain key file.")
    @click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
                  help="Write the co-signed file here (default: update FILE).")
    @password_file_option
    @keystore_option
    @json_option
    def tx_cosign(file: str, key_name: str | None, key_file: str | None, out: str | None, password_file: str | None,
                  keystore: str, as_json: bool) -> None:
        """Add your co-signature to the transaction FILE (offline: no node is asked).

        Prints what you approve first. The signature covers exactly this transaction on
        its chain; it counts only if your key is in the sender's signing policy.
        """
        def run() -> None:
            signed = read_tx_file(file)
            signer = Tx("", keystore, as_json, key_name=key_name, key_file=key_file, password_file=password_file)
            if not as_json:
                click.echo(describe_tx(signed), err=True)
            try:
                cosigned = signed.cosigned_by(signer.signer)
            except ValidationError as exc:
                raise CliError(f"{file}: {exc}") from None
            _write(out or file, cosigned)
            signer.emit(tx_file(cosigned), f"co-signed {short(to_hex(cosigned.tx_id))} with "
                                           f"{to_hex(signer.signer.public_key)}; {len(cosigned.cosignatures)} "
                                           f"co-signature(s) in {out or file}")

        handle_errors(run)()

    @tx_group.command("submit")
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--timeout", default=DEFAULT_WAIT_S, show_default=True, type=click.FloatRange(0.1),
                  help="Seconds to wait for the receipt.")
    @click.option("--no-wait", is_flag=True, help="Return once the node admitted the transaction.")
    @query_command
    def tx_submit(file: str, timeout: float, no_wait: bool, q: Query) -> None:
        """Send the transaction FILE (prepared, and co-signed as needed) and wait for its receipt."""
        signed = read_tx_file(file)
        tx_id = q.client.send_raw(signed.encode())
        label = f"{signed.body.contract}.{signed.body.method}"
        if no_wait:
            q.emit({"tx_id": tx_id, "status": "pending"}, f"submitted {label}: tx {tx_id} (not waiting)")
            return
        receipt = q.client.wait(tx_id, timeout)
        if receipt["status"] != "ok":
            raise TxFailed(receipt)
        receipt = {k: v for k, v in receipt.items() if k not in ("proof", "raw")}
        q.emit(receipt, lambda r: f"{label} committed with {len(signed.cosignatures)} co-signature(s)\n"
                                  f"{receipt_summary(r)}")


# ---- account policy -------------------------------------------------------------------------

def _cosigner(text: str, tx: Tx, chain_id: str, account: bytes) -> tuple[bytes, bytes]:
    """(key, proof) for one --cosigner: "0xKEY:0xPROOF" as made by `account policy prove`, else a
    keystore name or key file whose key signs the proof here."""
    if text.startswith("0x") and ":" in text:
        key_hex, _, proof_hex = text.partition(":")
        try:
            key, proof = bytes.fromhex(key_hex[2:]), bytes.fromhex(proof_hex.removeprefix("0x"))
        except ValueError:
            key = proof = b""
        if len(key) != 32 or len(proof) != 64:
            raise CliError(f"--cosigner {text[:24]}...: expected 0xKEY:0xPROOF (32-byte key, 64-byte proof)",
                           hint="make it with `shopchain account policy prove ACCOUNT --key COSIGNER`")
        return key, proof
    key = tx.load_key(text, "--cosigner")
    return key.public_key, cosigner_proof(chain_id, account, key)


def show_policy(policy: dict | None, q: Query) -> str:
    if policy is None:
        return "no signing policy: the account's key alone signs everything"
    window = policy["window_ms"]
    per = "per transaction" if not window else f"per {window // 1000} s of block time"
    lines = [f"{policy['threshold']} of {len(policy['cosigners']) + 1} signatures needed above "
             f"{format_amount(policy['spend_limit'])} {per}, to change this policy and to rotate keys",
             f"set at height {policy['set_at']}; co-signers:"]
    lines += [f"  {q.label(k)}" for k in policy["cosigners"]]
    return "\n".join(lines)


def attach_policy_verbs(account_group: click.Group) -> None:
    """Add ``policy set|clear|show|prove`` to the ``account`` group."""

    @account_group.group("policy")
    def policy() -> None:
        """Require several keys (k of n+1) above a spend limit: a second factor for the account."""

    @policy.command("set")
    @click.option("--cosigner", "cosigners", multiple=True, required=True,
                  help="A co-signer: a keystore name or key file (signs its proof here), or 0xKEY:0xPROOF "
                       "from `account policy prove`. Repeat for each (at most 8).")
    @click.option("--threshold", type=click.IntRange(2), required=True,
                  help="Signatures needed, counting the account's own key: 2..co-signers+1.")
    @click.option("--limit", "limit", required=True,
                  help="Spend limit in currency units below which the account's key alone suffices (e.g. 500.00).")
    @click.option("--window", "window_s", type=click.IntRange(0, MAX_WINDOW_S), default=0, show_default=True,
                  help="The limit applies per this many seconds of block time (0: per transaction).")
    @tx_command
    def policy_set(cosigners: tuple[str, ...], threshold: int, limit: str, window_s: int, tx: Tx) -> None:
        """Set the signer's signing policy (replacing one needs its threshold: add --cosign)."""
        if len(cosigners) > MAX_POLICY_COSIGNERS:
            raise CliError(f"expected at most {MAX_POLICY_COSIGNERS} --cosigner, found {len(cosigners)}")
        if threshold > len(cosigners) + 1:
            raise CliError(f"--threshold {threshold} counts the account's key and {len(cosigners)} co-signer(s): "
                           f"expected 2..{len(cosigners) + 1}")
        amount = parse_amount(limit, "--limit", allow_zero=True)
        chain_id = tx.client.status()["chain_id"]
        account = tx.account(to_hex(tx.signer.public_key))
        pairs = [_cosigner(c, tx, chain_id, account) for c in cosigners]
        tx.send("identity", "set_signing_policy", [k for k, _ in pairs], [p for _, p in pairs], threshold, amount,
                window_s * 1000, describe=lambda r: f"account {to_hex(account)}: {threshold} of {len(pairs) + 1} "
                                                    f"signatures above {format_amount(amount)}")

    @policy.command("clear")
    @tx_command
    def policy_clear(tx: Tx) -> None:
        """Remove the signer's signing policy (needs its threshold: add --cosign)."""
        tx.send("identity", "clear_signing_policy", describe=lambda r: "signing policy cleared: one key signs everything")

    @policy.command("show")
    @click.argument("who")
    @query_command
    def policy_show(who: str, q: Query) -> None:
        """Show the signing policy of account WHO (0x key, keystore name or key file)."""
        found = q.view("identity", "signing_policy", to_hex(q.account(who)))
        q.emit(found, lambda p: show_policy(p, q))

    @policy.command("prove")
    @click.argument("account")
    @click.option("--chain-id", default=None, help="The chain's id (default: ask --node).")
    @tx_command
    def policy_prove(account: str, chain_id: str | None, tx: Tx) -> None:
        """As a co-signer (--key), prove you hold your key for ACCOUNT's policy: prints 0xKEY:0xPROOF
        for the account's owner to pass to `account policy set --cosigner`. Sends nothing."""
        account_id = tx.account(account)
        chain = chain_id or tx.client.status()["chain_id"]
        key = tx.signer
        proof = cosigner_proof(chain, account_id, key)
        text = f"{to_hex(key.public_key)}:{to_hex(proof)}"
        tx.emit({"cosigner": text, "account": to_hex(account_id), "chain_id": chain}, text)
