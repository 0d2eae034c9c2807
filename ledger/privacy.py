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
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey, SealedBox

from ledger import encoding
from ledger.crypto import sha256
from ledger.errors import DecodeError, ValidationError
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
