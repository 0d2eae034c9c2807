"""`shopchain order details|disclose|verify-disclosure` and `shopchain account set-enc-key`.

How it works: the reading side of an order's personal data (cli/delivery.py writes it).
``order details`` shows what the signer may see of an order, each value checked
against the chain: the buyer its own sealed copy (and the tracking number the shipper
sealed to it), the merchant the buyer's delivery envelope, the carrier its label, any
other account the fields disclosed to it. ``order disclose`` opens one field for an
arbiter, customs or anyone: field, value, salt and the Merkle path to ``pii_root`` (or
the tracking commitment), as JSON on stdout or sealed to ``--to`` through the mailbox;
``order verify-disclosure`` checks such a JSON against the order on chain, needing no
key. ``account set-enc-key`` registers the signer's X25519 key (derived from its seed)
for an account registered without one.
"""

from __future__ import annotations

import json
import sys

import click

from cli import delivery
from cli.chain_cmds import account
from cli.orders_cmds import get_order, order, order_id_argument
from cli.output import CliError, parse_hex
from cli.signer import Query, Tx, query_command, tx_command
from ledger.errors import ChainError
from ledger.hexfmt import to_hex
from ledger.privacy import (DELIVERY_FIELDS, TEXT_FIELD, TRACKING_FIELD, PiiCommitment, commit_text, commit_with_salts,
                            disclosure_from_json, disclosure_to_json, encryption_public_key, verify_disclosure)

#: Largest disclosure file read.
MAX_DISCLOSURE_BYTES = 64 * 1024
#: Most disclosures one `order details` shows (they come from the mailbox, at most 32 a fetch).
MAX_SHOWN_DISCLOSURES = 32


def _fields_text(title: str, fields: dict[str, str]) -> str:
    names = [n for n in (*DELIVERY_FIELDS, TRACKING_FIELD) if n in fields] + sorted(set(fields) - {*DELIVERY_FIELDS, TRACKING_FIELD})
    return "\n".join([title] + [f"  {n:<9} {fields[n]}" for n in names])


@order.command("details")
@order_id_argument
@tx_command
def order_details(order_id: int, tx: Tx) -> None:
    """Show the order's personal data the signer may see, checked against the chain (buyer, merchant, carrier, or
    fields disclosed to the signer)."""
    o = get_order(tx, order_id)
    me = to_hex(tx.signer_account())
    result: dict = {"order": order_id, "verified": True}
    if me == o["buyer"]:
        result.update(role="buyer", fields=dict(delivery.load_record(tx, o).fields))
        tracking = delivery.tracking_commitment(tx, o)
        result["tracking"] = tracking.fields[TRACKING_FIELD] if tracking else None
    elif me == o["merchant"]:
        result.update(role="merchant", fields=dict(delivery.merchant_details(tx, o).fields))
    elif me == o["carrier"]:
        result.update(role="carrier", fields={d.field: d.value for d in delivery.carrier_details(tx, o)})
    else:
        shown = {}
        for _env, plain in delivery.fetch_opened(tx, order_id, "disclosure")[-MAX_SHOWN_DISCLOSURES:]:
            try:
                oid, name, d = disclosure_from_json(json.loads(plain.decode("utf-8")))
            except (ChainError, ValueError):
                continue
            if oid == order_id and verify_disclosure(bytes.fromhex(o[name][2:] or "00"), d):
                shown[d.field] = d.value
        if not shown:
            raise CliError(f"{tx.label(me)} is not a party of order {order_id} and no field of it was disclosed to it",
                           hint="the buyer discloses one with `shopchain order disclose ORDER --field F --to ACCOUNT`")
        result.update(role="disclosed to", fields=shown)
    title = f"order {order_id}: details as {result['role']} (each checked against the chain)"
    tracking_line = f"\n  tracking  {result['tracking']}" if result.get("tracking") else ""
    tx.emit(result, lambda r: _fields_text(title, r["fields"]) + tracking_line)


def _buyer_commitment(tx: Tx, o: dict, ship_to: tuple[str, ...]) -> PiiCommitment:
    if not ship_to:
        return delivery.load_record(tx, o)
    commitment = delivery.buyer_commitment(tx, delivery.parse_ship_to(ship_to), bytes.fromhex(o["payload_hash"][2:]))
    if to_hex(commitment.root) != o["pii_root"]:
        raise CliError(f"these --ship-to fields (with the salts of your key) do not give order {o['id']}'s pii_root",
                       hint="give every field exactly as it was given to `order place`, with the key that placed it")
    return commitment


@order.command("disclose")
@order_id_argument
@click.option("--field", required=True, help="The field to open: a delivery field (name, street, postcode, ...) "
                                             "or 'tracking'.")
@click.option("--to", "to", default=None, help="Seal the disclosure to this account through the mailbox "
                                               "(else print it as JSON).")
@click.option("--ship-to", "ship_to", multiple=True, metavar="FIELD=VALUE",
              help="Rebuild the commitment from these fields (every one, as placed) instead of the local copy.")
@tx_command
def order_disclose(order_id: int, field: str, to: str | None, ship_to: tuple[str, ...], tx: Tx) -> None:
    """Buyer: disclose one field of ORDER (value, salt and proof to its commitment), and nothing else."""
    o = get_order(tx, order_id)
    if field == TRACKING_FIELD:
        commitment, name = delivery.tracking_commitment(tx, o), "tracking"
        if commitment is None:
            raise CliError(f"no tracking number of order {order_id} that matches the chain is in your mailbox")
    else:
        commitment, name = _buyer_commitment(tx, o, ship_to), "pii_root"
    if field not in commitment.fields:
        raise CliError(f"order {order_id} has no field {field!r}; it has {', '.join(commitment.names)}")
    doc = disclosure_to_json(order_id, name, commitment.disclose(field))
    if to is None:
        tx.emit(doc, json.dumps(doc, indent=2))
        return
    recipient = tx.account(to, "--to")
    envelope = delivery.post_sealed(tx, recipient, "recipient", order_id, "disclosure",
                                    json.dumps(doc, sort_keys=True).encode("utf-8"))
    tx.emit({"order": order_id, "field": field, "to": to_hex(recipient), "envelope": envelope},
            f"{field} of order {order_id} disclosed to {tx.label(to_hex(recipient))} (envelope {envelope}); "
            f"it reads it with `shopchain order details {order_id}`")


@order.command("verify-disclosure")
@click.argument("source", metavar="FILE|-")
@query_command
def order_verify_disclosure(source: str, q: Query) -> None:
    """Check a disclosure (JSON from `order disclose`, a file or - for stdin) against its order on chain."""
    try:
        if source == "-":
            text = sys.stdin.read(MAX_DISCLOSURE_BYTES + 1)
        else:
            with open(source, encoding="utf-8") as fh:
                text = fh.read(MAX_DISCLOSURE_BYTES + 1)
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror}") from None
    if len(text) > MAX_DISCLOSURE_BYTES:
        raise CliError(f"{source} is larger than {MAX_DISCLOSURE_BYTES} bytes; a disclosure is a small JSON object")
    try:
        order_id, name, d = disclosure_from_json(json.loads(text))
    except (ValueError, ChainError) as exc:
        raise CliError(f"{source} is not a disclosure: {exc}") from None
    o = get_order(q, order_id)
    committed = o[name]
    if committed in ("0x", "") or not verify_disclosure(bytes.fromhex(committed[2:]), d):
        raise CliError(f"the disclosure of {d.field!r} does NOT match order {order_id}'s {name} {committed}: "
                       f"the value, salt or proof was altered, or it is of another order")
    q.emit({"verified": True, "order": order_id, "commitment": name, "field": d.field, "value": d.value},
           f"verified: order {order_id} {d.field} = {d.value} (matches its {name} on chain)")


@account.command("set-enc-key")
@tx_command
def account_set_enc_key(tx: Tx) -> None:
    """Register the signer's X25519 encryption key (derived from its key) so others can seal data to it."""
    key = encryption_public_key(tx.signer.seed)
    tx.send("identity", "rotate_encryption_key", key,
            describe=lambda r: f"encryption key {to_hex(key)} registered for {tx.label(to_hex(tx.signer_account()))}")


@click.group("commitment")
def commitment() -> None:
    """Private texts on chain: what a reason, message, report or proof you wrote commits to."""


@commitment.command("open")
@click.argument("text")
@tx_command
def commitment_open(text: str, tx: Tx) -> None:
    """Show the salt and commitment of TEXT as you (the signer) committed it; sends nothing.

    Plain-text reasons, messages, reports, evidence and proofs are committed salted with a
    salt only your key derives; give TEXT and the salt to whom you want to show it
    (`shopchain commitment check`)."""
    c = commit_text(tx.signer.seed, text)
    result = {"text": text, "salt": to_hex(c.salts[TEXT_FIELD]), "commitment": to_hex(c.root)}
    tx.emit(result, lambda r: f"commitment {r['commitment']}\n  salt {r['salt']}")


@commitment.command("check")
@click.argument("text")
@click.option("--salt", required=True, help="The salt its author showed (0x + 64 hex digits).")
@click.option("--commitment", "expected", required=True, help="The commitment on chain (0x + 64 hex digits).")
@query_command
def commitment_check(text: str, salt: str, expected: str, q: Query) -> None:
    """Check that TEXT with SALT is what a commitment on chain commits to."""
    raw_salt, want = parse_hex(salt, "--salt", 32), parse_hex(expected, "--commitment", 32)
    got = commit_with_salts({TEXT_FIELD: text}, {TEXT_FIELD: raw_salt}).root
    if got != want:
        raise CliError(f"TEXT with this salt commits to {to_hex(got)}, not {to_hex(want)}",
                       hint="check the text exactly (spaces and case count) and the salt")
    q.emit({"text": text, "commitment": to_hex(got), "verified": True}, f"verified: {to_hex(got)} commits to {text!r}")


def all_groups() -> list:
    return [commitment]   # the other verbs attach to the order and account groups
