"""Personal data of an order in the CLI: commitments, sealed envelopes, the buyer's record.

How it works: the buyer's ``--ship-to FIELD=VALUE`` options become one salted leaf per
field (ledger/privacy.py); the salts are derived from the buyer's seed and the order's
public payload hash, so only the Merkle root (``pii_root``) goes on chain and the
buyer can rebuild every salt later from its key. The fields and salts travel to the
merchant sealed to the merchant's registered X25519 key, in a signed envelope posted
to the node's mailbox (node/mailbox.py, ``mailbox_send``), which gossips it to the other
validators so the merchant reads it from its own node (``mailbox_fetch``, a request
signed by the recipient). Nothing personal is written to the chain or in clear to disk:
the buyer's own copy (``<keystore>/pii/<payload hash>.sealed``, 0600) is sealed to the
buyer's own encryption key, so opening it takes the key's password like signing does.

Whoever reads an envelope checks it against the chain, never trusts the node: the
sender's signature, and the opened data against the order's ``pii_root``,
``label_hash`` or ``tracking`` commitment.
"""

from __future__ import annotations

import os
import time

import click

from cli.output import CliError
from cli.signer import Query, Tx
from ledger.errors import ChainError
from ledger.hexfmt import to_hex
from ledger.mailbox import Envelope, make_envelope, make_fetch_request
from ledger.privacy import (DELIVERY_FIELDS, LABEL_FIELDS, MAX_FIELD_VALUE_CHARS, Disclosure, PiiCommitment,
                            commit_with_salts, derive_salts, encryption_key_from_seed, encryption_public_key,
                            label_from_payload, label_hash, open_sealed, seal)

#: Directory (under the keystore) of the buyer's sealed copies of its orders' details.
PII_DIR = "pii"
PII_FILE_MODE = 0o600
#: Largest sealed record read back.
MAX_PII_FILE_BYTES = 64 * 1024
ENC_KEY_HINT = ("the account registers its encryption key with `shopchain account set-enc-key --key NAME` "
                "(`shopchain keys show NAME` shows it)")


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_ship_to(items: tuple[str, ...]) -> dict[str, str]:
    """``FIELD=VALUE`` options as a map; fields from ``DELIVERY_FIELDS``, each at most once."""
    fields: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not sep or name not in DELIVERY_FIELDS:
            raise CliError(f"--ship-to {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(DELIVERY_FIELDS)}",
                           hint='e.g. --ship-to name="J. Doe" --ship-to street="1 Main St" --ship-to postcode=10115')
        if name in fields:
            raise CliError(f"--ship-to gives {name} twice; give each field once")
        if not value or len(value) > MAX_FIELD_VALUE_CHARS:
            raise CliError(f"--ship-to {name}: expected 1..{MAX_FIELD_VALUE_CHARS} characters, found {len(value)}")
        fields[name] = value
    return fields


def buyer_commitment(tx: Tx, fields: dict[str, str], payload_hash: bytes) -> PiiCommitment:
    """The buyer's commitment: salts derived from its seed and the order's payload hash."""
    return commit_with_salts(fields, derive_salts(tx.signer.seed, payload_hash, fields))


def chain_id(q: Query) -> str:
    return q.client.status()["chain_id"]


def registered_enc_key(q: Query, account: bytes, who: str) -> bytes:
    """The X25519 key ``account`` registered; a clear error if it has none (nothing can be sealed to it)."""
    entry = q.view("identity", "get_account", account)
    if not entry:
        raise CliError(f"{who} {q.label(to_hex(account))} is not a registered account, so nothing can be sealed to it")
    enc = entry.get("enc_key") or "0x"
    if enc == "0x" or not entry.get("active", False):
        raise CliError(f"{who} {q.label(to_hex(account))} has registered no encryption key, so personal data "
                       f"cannot be sealed to it", hint=ENC_KEY_HINT)
    return bytes.fromhex(enc[2:])


def post_sealed(tx: Tx, recipient: bytes, who: str, order_id: int, kind: str, payload: bytes,
                enc_key: bytes | None = None) -> str:
    """Seal ``payload`` to the recipient's registered key and post it to the mailbox; the envelope id."""
    key = enc_key if enc_key is not None else registered_enc_key(tx, recipient, who)
    try:
        env = make_envelope(tx.signer, chain_id(tx), recipient, key, order_id, kind, now_ms(), seal(key, payload))
    except ChainError as exc:
        raise CliError(f"cannot seal the {kind} for {who}: {exc}") from None
    answer = tx.client.request("mailbox_send", to_hex(env.encode()))
    click.echo(f"{kind} of order {order_id} sealed to {who} {tx.label(to_hex(recipient))}: "
               f"mailbox envelope {answer['id']} (kept until the node deletes it after 30 days)", err=True)
    return answer["id"]


def fetch_opened(tx: Tx, order_id: int, kind: str) -> list[tuple[Envelope, bytes]]:
    """(envelope, plaintext) of every envelope of ``kind`` about the order that the signer can open, oldest first."""
    account = tx.signer_account()
    request = make_fetch_request(tx.signer, chain_id(tx), account, order_id, now_ms())
    rows = tx.client.request("mailbox_fetch", to_hex(request.encode()))
    mine = encryption_key_from_seed(tx.signer.seed)
    mine_public = bytes(mine.public_key)
    opened = []
    cid = chain_id(tx)
    for row in rows:
        env = Envelope.decode(bytes.fromhex(row["envelope"][2:]))
        if env.kind != kind or env.order != order_id or not env.verify(cid) or env.recipient_key != mine_public:
            continue   # another kind, or sealed to an older key of this account
        try:
            opened.append((env, open_sealed(mine, env.ciphertext)))
        except ChainError:
            continue   # tampered with or not for this key: skip it, the chain check below decides
    return opened


def no_envelope(order_id: int, kind: str, sender: str) -> CliError:
    return CliError(f"no {kind} of order {order_id} that matches the chain has reached your mailbox",
                    hint=f"the {sender} posts it ({'`order place --ship-to`' if kind == 'delivery' else '`order accept`' if kind == 'label' else '`order ship --tracking`'}); "
                         f"envelopes are kept 30 days; check --node and --key")


# --- the buyer's own sealed copy -------------------------------------------------------

def _record_path(q: Query, payload_hash: bytes) -> str:
    return os.path.join(os.path.abspath(os.path.expanduser(q.keystore)), PII_DIR, payload_hash.hex() + ".sealed")


def save_record(tx: Tx, payload_hash: bytes, commitment: PiiCommitment) -> str:
    """Keep the buyer's fields, sealed to its own encryption key (written before the order is sent)."""
    path = _record_path(tx, payload_hash)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    sealed = seal(encryption_public_key(tx.signer.seed), commitment.to_payload())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PII_FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(sealed)
    return path


def load_record(tx: Tx, order: dict) -> PiiCommitment:
    """The buyer's commitment of ``order``, opened and checked against its on-chain ``pii_root``."""
    payload_hash = bytes.fromhex(order["payload_hash"][2:])
    path = _record_path(tx, payload_hash)
    if not os.path.isfile(path) or os.path.getsize(path) > MAX_PII_FILE_BYTES:
        raise CliError(f"no delivery details of order {order['id']} in {os.path.dirname(path)}",
                       hint="the buyer's CLI keeps them where it placed the order (same --keystore); "
                            "an order placed without --ship-to has none")
    with open(path, "rb") as fh:
        sealed = fh.read()
    try:
        commitment = PiiCommitment.from_payload(open_sealed(encryption_key_from_seed(tx.signer.seed), sealed))
    except ChainError as exc:
        raise CliError(f"{path} cannot be opened with this key: {exc}", hint="sign with the key that placed the order") from None
    if to_hex(commitment.root) != order["pii_root"]:
        raise CliError(f"{path} does not match order {order['id']}'s pii_root on chain")
    return commitment


# --- what each party reads, checked against the order on chain -----------------------

def merchant_details(tx: Tx, order: dict) -> PiiCommitment:
    """The merchant's side: the newest delivery envelope whose fields and salts give the order's pii_root."""
    for _env, plain in reversed(fetch_opened(tx, order["id"], "delivery")):
        try:
            commitment = PiiCommitment.from_payload(plain)
        except ChainError:
            continue
        if to_hex(commitment.root) == order["pii_root"]:
            return commitment
    raise no_envelope(order["id"], "delivery", "buyer")


def carrier_label(tx: Tx, order: dict, carrier: bytes, extra: tuple[str, ...]) -> tuple[list[Disclosure], bytes]:
    """The label for the carrier: disclosures of the label fields the buyer gave (checked before sending)."""
    carrier_enc = registered_enc_key(tx, carrier, "carrier")
    commitment = merchant_details(tx, order)
    wanted = list(dict.fromkeys(f for f in (*LABEL_FIELDS, *extra) if f in commitment.fields))
    if not wanted:
        raise CliError(f"order {order['id']}'s delivery details have none of the label fields "
                       f"{', '.join((*LABEL_FIELDS, *extra))}", hint="add --label-field FIELD for the ones it has")
    return [commitment.disclose(f) for f in wanted], carrier_enc


def carrier_details(tx: Tx, order: dict) -> list[Disclosure]:
    """The carrier's side: the label whose fields match pii_root and whose hash is the order's label_hash."""
    pii_root = bytes.fromhex(order["pii_root"][2:])
    for _env, plain in reversed(fetch_opened(tx, order["id"], "label")):
        try:
            disclosures = label_from_payload(plain, pii_root)
        except ChainError:
            continue
        if to_hex(label_hash(disclosures)) == order["label_hash"]:
            return disclosures
    raise no_envelope(order["id"], "label", "merchant")


def tracking_commitment(tx: Tx, order: dict) -> PiiCommitment | None:
    """The buyer's side: the tracking number and salt whose commitment the order stores (None: not shipped)."""
    if order["tracking"] in ("0x", ""):
        return None
    for _env, plain in reversed(fetch_opened(tx, order["id"], "tracking")):
        try:
            commitment = PiiCommitment.from_payload(plain)
        except ChainError:
            continue
        if to_hex(commitment.root) == order["tracking"]:
            return commitment
    return None
