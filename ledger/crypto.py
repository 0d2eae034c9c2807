"""Hashes, ed25519 keys and strict, domain-separated signatures.

How it works: SHA-256 is the only hash. ed25519 goes through libsodium (pynacl's
low-level bindings), whose ``crypto_sign_open`` is strict: it rejects a non-canonical
S (S >= L), small-order public keys and R points, and non-canonical point encodings.
``verify_ed25519`` is the single verification primitive: it checks lengths first and
turns every libsodium failure into ``False``, so no byte string can make it raise.
Every signature shopchain makes covers ``domain tag || len(chain id) || chain id ||
payload`` so that a signature is valid for one purpose on one chain only.
"""

from __future__ import annotations

import hashlib

from nacl import bindings as sodium
from nacl.exceptions import BadSignatureError, CryptoError

from ledger.errors import ValidationError

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32
HASH_BYTES = 32
#: Longest chain id, so that the length prefix in signed payloads fits one byte.
MAX_CHAIN_ID_BYTES = 64

# Domain tags, one per kind of signed payload.
DOMAIN_TX = b"shopchain/tx/v1"
DOMAIN_VOTE = b"shopchain/vote/v1"
DOMAIN_CONSENSUS = b"shopchain/consensus/v1"
DOMAIN_HANDSHAKE = b"shopchain/p2p-handshake/v1"
DOMAIN_REVIEW = b"shopchain/review/v1"


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_many(*parts: bytes) -> bytes:
    """Hash of the concatenation, without building the concatenation."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Strict ed25519 verification; False (never an exception) for any bad input."""
    if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        return False
    if type(message) is not bytes:
        return False
    try:
        sodium.crypto_sign_open(signature + message, public_key)
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False
    return True


def signing_payload(domain: bytes, chain_id: str, payload: bytes) -> bytes:
    """The exact bytes a domain-separated signature covers."""
    cid = chain_id.encode("utf-8")
    if not cid or len(cid) > MAX_CHAIN_ID_BYTES:
        raise ValidationError(f"chain id must be 1..{MAX_CHAIN_ID_BYTES} bytes, found {len(cid)}")
    return domain + bytes([len(cid)]) + cid + payload


def verify_signed(domain: bytes, chain_id: str, public_key: bytes, payload: bytes, signature: bytes) -> bool:
    """Check a domain-separated signature; False for any bad input."""
    try:
        message = signing_payload(domain, chain_id, payload)
    except (ValidationError, AttributeError):
        return False
    return verify_ed25519(public_key, message, signature)


class SigningKey:
    """An ed25519 private key. ``seed`` is the 32 secret bytes; never log it."""

    __slots__ = ("seed", "public_key", "_secret")

    def __init__(self, seed: bytes) -> None:
        if type(seed) is not bytes or len(seed) != SEED_BYTES:
            raise ValidationError(f"an ed25519 seed is {SEED_BYTES} bytes, found {len(seed) if isinstance(seed, bytes) else type(seed).__name__}")
        self.seed = seed
        self.public_key, self._secret = sodium.crypto_sign_seed_keypair(seed)

    @classmethod
    def generate(cls) -> "SigningKey":
        import os  # the OS RNG is the right source for new keys; ledger does no other I/O

        return cls(os.urandom(SEED_BYTES))

    @classmethod
    def from_label(cls, label: str) -> "SigningKey":
        """A deterministic key for tests, simulations and devnets (never for production)."""
        return cls(sha256(b"shopchain/test-key/" + label.encode("utf-8")))

    def sign_raw(self, message: bytes) -> bytes:
        return sodium.crypto_sign(message, self._secret)[:SIGNATURE_BYTES]

    def sign(self, domain: bytes, chain_id: str, payload: bytes) -> bytes:
        return self.sign_raw(signing_payload(domain, chain_id, payload))

    def __repr__(self) -> str:
        return f"SigningKey(public_key={self.public_key.hex()})"
