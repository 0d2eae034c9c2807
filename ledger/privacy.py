"""Personal data kept off chain, with on-chain commitments that can be opened field by field.

How it works: each personal field (name, street, phone, ...) becomes a salted leaf
``sha256(domain || encode([salt, field name, value]))``; the leaves, sorted by field
name, form an RFC 6962 Merkle list (``ledger.merkle``) whose root is all the order
stores. To show one field to an arbiter or customs, the holder hands over that
field's value, salt and Merkle path (a ``Disclosure``); the others stay hidden because
their salts are secret and 32 bytes long. The delivery details travel to the merchant
(and a minimal label to the carrier) in a libsodium sealed box to the recipient's
registered X25519 key; the order stores the SHA-256 of the ciphertext. Deleting the
ciphertext and the salts erases the data: the commitment left on chain links to
nothing that can be recovered.

Salts are 32 bytes. The buyer's CLI derives them (``derive_salts``) as
HMAC-SHA256 keyed by a key derived from the buyer's signing seed, over the order's
public ``payload_hash`` and the field name, so the buyer can rebuild every salt of
every order from its key alone (nothing to back up but the key and the values), while
no one without the seed can guess one; a merchant or carrier that seals data itself
(tracking numbers) uses fresh random salts. Every account's X25519 key is derived from
its ed25519 seed under its own domain (``encryption_key_from_seed``), so a key file
holds one secret and yields both keys. A shipping label for the carrier is a list of
disclosures of the label fields of the buyer's commitment: the carrier checks each
against the order's ``pii_root``; the order stores ``label_hash`` of that list.
A disclosure travels as JSON (``disclosure_to_json``) naming the order and the on-chain
commitment it opens ("pii_root" or "tracking").
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from ledger import encoding
from ledger.crypto import sha256
from ledger.errors import DecodeError, ValidationError
from ledger.hexfmt import to_hex
from ledger.merkle import merkle_proof, merkle_root, verify_inclusion

PII_DOMAIN = b"shopchain/pii-leaf/v1"
SALT_BYTES = 32
X25519_KEY_BYTES = 32
#: Most personal fields in one commitment.
MAX_PII_FIELDS = 64
#: Longest field name and value.
MAX_FIELD_NAME_CHARS = 64
MAX_FIELD_VALUE_CHARS = 4096
#: Largest sealed payload.
MAX_PAYLOAD_BYTES = 64 * 1024
#: Domains of the derived salt key, of each salt, of the X25519 key and of label hashes.
SALT_KEY_DOMAIN = b"shopchain/pii-salt-key/v1|"
SALT_DOMAIN = b"shopchain/pii-salt/v1|"
ENC_KEY_DOMAIN = b"shopchain/x25519-key/v1|"
LABEL_DOMAIN = b"shopchain/shipping-label/v1|"
#: The delivery fields a buyer may give (``order place --ship-to FIELD=VALUE``).
DELIVERY_FIELDS = ("name", "street", "postcode", "city", "country", "phone", "email")
#: The fields a carrier's label carries by default (phone and email only when asked for).
LABEL_FIELDS = ("name", "street", "postcode", "city", "country")
#: The field name of a tracking-number commitment (a one-field commitment).
TRACKING_FIELD = "tracking"
#: The on-chain commitments of an order a disclosure may open.
DISCLOSABLE_COMMITMENTS = ("pii_root", "tracking")
#: Type tag of a disclosure in JSON.
DISCLOSURE_TYPE = "shopchain/disclosure/v1"


def _leaf(salt: bytes, name: str, value: str) -> bytes:
    return PII_DOMAIN + encoding.encode([salt, name, value])


@dataclass(frozen=True)
class Disclosure:
    """Everything needed to prove one field of a commitment, and nothing about the others."""

    field: str
    value: str
    salt: bytes
    index: int
    size: int
    path: list[bytes]

    def to_list(self) -> list:
        return ["disclosure/1", self.field, self.value, self.salt, self.index, self.size, self.path]

    @classmethod
    def from_list(cls, v: list) -> "Disclosure":
        if not isinstance(v, list) or len(v) != 7 or v[0] != "disclosure/1":
            raise DecodeError("disclosure: expected ['disclosure/1', field, value, salt, index, size, path]")
        return cls(v[1], v[2], v[3], v[4], v[5], v[6])


@dataclass(frozen=True)
class PiiCommitment:
    """The salted fields (kept off chain by the buyer's app) and their root (on chain)."""

    fields: dict[str, str]
    salts: dict[str, bytes]

    @property
    def names(self) -> list[str]:
        return sorted(self.fields)

    def leaves(self) -> list[bytes]:
        return [_leaf(self.salts[n], n, self.fields[n]) for n in self.names]

    @property
    def root(self) -> bytes:
        return merkle_root(self.leaves())

    def disclose(self, name: str) -> Disclosure:
        if name not in self.fields:
            raise ValidationError(f"no personal field {name!r}; the commitment has {self.names}")
        names = self.names
        index = names.index(name)
        return Disclosure(name, self.fields[name], self.salts[name], index, len(names), merkle_proof(self.leaves(), index))

    def to_payload(self) -> bytes:
        """Canonical bytes of fields and salts: what is sealed to the merchant."""
        return encoding.encode(["pii/1", self.fields, self.salts])

    @classmethod
    def from_payload(cls, data: bytes) -> "PiiCommitment":
        value = encoding.decode(data, max_size=MAX_PAYLOAD_BYTES)
        if not isinstance(value, list) or len(value) != 3 or value[0] != "pii/1":
            raise DecodeError("payload: expected ['pii/1', fields, salts]")
        return _checked(value[1], value[2])


def _checked(fields: object, salts: object) -> PiiCommitment:
    if not isinstance(fields, dict) or not isinstance(salts, dict) or set(fields) != set(salts):
        raise ValidationError("fields and salts must be maps with the same field names")
    if not fields or len(fields) > MAX_PII_FIELDS:
        raise ValidationError(f"expected 1..{MAX_PII_FIELDS} personal fields, found {len(fields)}")
    for name, value in fields.items():
        if not isinstance(name, str) or not 0 < len(name) <= MAX_FIELD_NAME_CHARS:
            raise ValidationError(f"field name must be 1..{MAX_FIELD_NAME_CHARS} characters, found {name!r:.80}")
        if not isinstance(value, str) or len(value) > MAX_FIELD_VALUE_CHARS:
            raise ValidationError(f"field {name!r}: expected a string of at most {MAX_FIELD_VALUE_CHARS} characters")
        salt = salts[name]
        if type(salt) is not bytes or len(salt) != SALT_BYTES:
            raise ValidationError(f"field {name!r}: salt must be {SALT_BYTES} bytes")
    return PiiCommitment(dict(fields), dict(salts))


def derive_salts(seed: bytes, context: bytes, names: Iterable[str]) -> dict[str, bytes]:
    """Salts the holder of ``seed`` can rebuild at any time: HMAC(seed-derived key, context || name).

    ``context`` is public and unique per order (its payload hash), so the same address
    gives unrelated commitments on two orders; without the seed no salt can be guessed."""
    if type(seed) is not bytes or len(seed) != 32:
        raise ValidationError("salts are derived from a 32-byte seed")
    key = sha256(SALT_KEY_DOMAIN + seed)
    return {n: hmac.new(key, SALT_DOMAIN + context + n.encode("utf-8"), hashlib.sha256).digest() for n in names}


def commit_with_salts(fields: dict[str, str], salts: dict[str, bytes]) -> PiiCommitment:
    """The commitment of ``fields`` under given salts (checked like any other)."""
    return _checked(fields, salts)


def commit_pii(fields: dict[str, str], random_bytes: Callable[[int], bytes] = os.urandom) -> PiiCommitment:
    """Salt every field with fresh randomness and build the commitment."""
    return _checked(fields, {name: random_bytes(SALT_BYTES) for name in fields})


def verify_disclosure(root: bytes, disclosure: Disclosure) -> bool:
    """True iff the disclosed field and value are part of the commitment ``root``."""
    d = disclosure
    if not (isinstance(d.field, str) and isinstance(d.value, str) and type(d.salt) is bytes and len(d.salt) == SALT_BYTES):
        return False
    try:
        leaf = _leaf(d.salt, d.field, d.value)
    except Exception:  # an unencodable value is simply not a valid disclosure
        return False
    return verify_inclusion(root, d.index, d.size, leaf, d.path)


# --- sealed delivery payloads ---------------------------------------------------------

def encryption_key_from_seed(seed: bytes) -> PrivateKey:
    """The account's X25519 key, derived from its ed25519 seed under its own domain."""
    if type(seed) is not bytes or len(seed) != 32:
        raise ValidationError("an encryption key is derived from a 32-byte seed")
    return PrivateKey(sha256(ENC_KEY_DOMAIN + seed))


def encryption_public_key(seed: bytes) -> bytes:
    """What goes in the identity registry's ``enc_key`` for the account of ``seed``."""
    return bytes(encryption_key_from_seed(seed).public_key)


def new_encryption_key() -> PrivateKey:
    """A fresh X25519 key pair; register ``bytes(key.public_key)`` in the identity registry."""
    return PrivateKey.generate()


def seal(recipient_public_key: bytes, payload: bytes) -> bytes:
    """Encrypt ``payload`` so that only the holder of the X25519 key can read it."""
    if type(recipient_public_key) is not bytes or len(recipient_public_key) != X25519_KEY_BYTES:
        raise ValidationError(f"recipient key must be {X25519_KEY_BYTES} bytes of X25519 public key")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValidationError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    return SealedBox(PublicKey(recipient_public_key)).encrypt(payload)


def open_sealed(private_key: PrivateKey, ciphertext: bytes) -> bytes:
    try:
        return SealedBox(private_key).decrypt(ciphertext)
    except CryptoError:
        raise ValidationError("the sealed payload cannot be opened with this key (wrong key or tampered)") from None


def payload_hash(ciphertext: bytes) -> bytes:
    """What the order stores for the off-chain ciphertext."""
    return sha256(ciphertext)


def open_and_check(private_key: PrivateKey, ciphertext: bytes, stored_payload_hash: bytes, stored_pii_root: bytes) -> PiiCommitment:
    """Open a delivery payload and prove it is the one the order committed to."""
    if payload_hash(ciphertext) != stored_payload_hash:
        raise ValidationError("ciphertext does not match the order's payload hash")
    commitment = PiiCommitment.from_payload(open_sealed(private_key, ciphertext))
    if commitment.root != stored_pii_root:
        raise ValidationError("opened payload does not match the order's PII commitment")
    return commitment


# --- tracking numbers, shipping labels, disclosures as JSON ---------------------------

def commit_tracking(number: str, random_bytes: Callable[[int], bytes] = os.urandom) -> PiiCommitment:
    """A one-field commitment to a tracking number; its root is what ``orders.ship`` stores."""
    if not number:
        raise ValidationError("a tracking number cannot be empty")
    return commit_pii({TRACKING_FIELD: number}, random_bytes)


#: Field name of a free text's one-field commitment (a reason, message, report, proof).
TEXT_FIELD = "text"
#: Salt context of free texts: the salt is bound to the text itself, so its author re-derives it.
TEXT_CONTEXT = b"shopchain/free-text/v1|"


def commit_text(seed: bytes, text: str) -> PiiCommitment:
    """A one-field commitment to a free text its author wrote (a ticket message, a case
    reason, a proof of delivery such as "signed by J. Doe"): salted with a salt only the
    author's seed derives, so nobody can confirm a guess of the text against the chain,
    while the author can always rebuild the salt and show text and salt to whom it chooses."""
    if not text:
        raise ValidationError("an empty text has nothing to commit to")
    salt = derive_salts(seed, TEXT_CONTEXT + sha256(text.encode("utf-8")), [TEXT_FIELD])
    return commit_with_salts({TEXT_FIELD: text}, salt)


def label_hash(disclosures: list[Disclosure]) -> bytes:
    """What ``orders.accept`` stores for the label sealed to the carrier."""
    return sha256(LABEL_DOMAIN + encoding.encode([d.to_list() for d in disclosures]))


def label_payload(disclosures: list[Disclosure]) -> bytes:
    return encoding.encode(["label/1", [d.to_list() for d in disclosures]])


def label_from_payload(data: bytes, pii_root: bytes) -> list[Disclosure]:
    """The carrier's side: decode a label and check every field against the order's ``pii_root``."""
    value = encoding.decode(data, max_size=MAX_PAYLOAD_BYTES)
    if not isinstance(value, list) or len(value) != 2 or value[0] != "label/1" or not isinstance(value[1], list) \
            or not 0 < len(value[1]) <= MAX_PII_FIELDS:
        raise DecodeError(f"label: expected ['label/1', [1..{MAX_PII_FIELDS} disclosures]]")
    disclosures = [Disclosure.from_list(d) for d in value[1]]
    for d in disclosures:
        if not verify_disclosure(pii_root, d):
            raise ValidationError(f"label field {d.field!r} does not match the order's pii_root")
    return disclosures


def disclosure_to_json(order_id: int, commitment: str, d: Disclosure) -> dict:
    """A disclosure as a JSON object anyone can check with the order id and a node."""
    return {"type": DISCLOSURE_TYPE, "order": order_id, "commitment": commitment, "field": d.field,
            "value": d.value, "salt": to_hex(d.salt), "index": d.index, "size": d.size,
            "path": [to_hex(h) for h in d.path]}


def _hex32(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) != 66:
        raise ValidationError(f"disclosure {what}: expected 0x and 64 hex digits, found {str(value)[:80]!r}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ValidationError(f"disclosure {what}: not hex: {value[:80]!r}") from None


def disclosure_from_json(doc: object) -> tuple[int, str, Disclosure]:
    """(order id, commitment name, disclosure) from JSON, with every field checked."""
    keys = {"type", "order", "commitment", "field", "value", "salt", "index", "size", "path"}
    if not isinstance(doc, dict) or set(doc) != keys:
        found = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise ValidationError(f"a disclosure is a JSON object with the keys {sorted(keys)}, found {found}")
    if doc["type"] != DISCLOSURE_TYPE:
        raise ValidationError(f"disclosure type: expected {DISCLOSURE_TYPE!r}, found {str(doc['type'])[:80]!r}")
    if type(doc["order"]) is not int or doc["order"] < 1:
        raise ValidationError(f"disclosure order: expected an order id >= 1, found {doc['order']!r:.40}")
    if doc["commitment"] not in DISCLOSABLE_COMMITMENTS:
        raise ValidationError(f"disclosure commitment: expected one of {list(DISCLOSABLE_COMMITMENTS)}, "
                              f"found {str(doc['commitment'])[:40]!r}")
    if not isinstance(doc["field"], str) or not 0 < len(doc["field"]) <= MAX_FIELD_NAME_CHARS:
        raise ValidationError(f"disclosure field: expected 1..{MAX_FIELD_NAME_CHARS} characters")
    if not isinstance(doc["value"], str) or len(doc["value"]) > MAX_FIELD_VALUE_CHARS:
        raise ValidationError(f"disclosure value: expected a string of at most {MAX_FIELD_VALUE_CHARS} characters")
    for name in ("index", "size"):
        if type(doc[name]) is not int or not 0 <= doc[name] <= MAX_PII_FIELDS:
            raise ValidationError(f"disclosure {name}: expected an integer 0..{MAX_PII_FIELDS}, found {doc[name]!r:.40}")
    if not isinstance(doc["path"], list) or len(doc["path"]) > MAX_PII_FIELDS:
        raise ValidationError(f"disclosure path: expected a list of at most {MAX_PII_FIELDS} hashes")
    path = [_hex32(h, f"path[{i}]") for i, h in enumerate(doc["path"])]
    d = Disclosure(doc["field"], doc["value"], _hex32(doc["salt"], "salt"), doc["index"], doc["size"], path)
    return doc["order"], doc["commitment"], d
