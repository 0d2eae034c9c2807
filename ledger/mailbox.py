"""Sealed envelopes of the off-chain delivery channel: format, signature, fetch requests.

How it works: personal data never goes on chain; it travels between accounts as an
``Envelope`` that a node keeps in its mailbox (node/mailbox.py) and gossips to the
other validators, in the spirit of Hyperledger Fabric's private data. An envelope
names the recipient account and the X25519 key it was sealed to (the account's
registered ``enc_key``), the sender's signing key, the order it is about, what it
carries (``kind``), when it was made, and the ciphertext (a libsodium sealed box,
ledger/privacy.py). The sender signs the canonical body under ``MAILBOX_DOMAIN`` and the
chain id, so a node accepts envelopes from registered accounts only and one envelope
cannot be replayed onto another chain. The envelope id is the hash of the body.

Reading a mailbox is authenticated too: a ``FetchRequest`` is signed by the recipient
account's current signing key and carries a time, so a node tells who writes to whom
about which order only to the recipient (the ciphertexts alone would reveal nothing). Both are canonical msgpack arrays with a version
tag (DESIGN §3). Nothing here does I/O or reads a clock: callers pass times in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import encoding
from ledger.crypto import SigningKey, sha256, verify_signed
from ledger.errors import DecodeError, ValidationError

MAILBOX_DOMAIN = b"shopchain/mailbox/v1"
FETCH_DOMAIN = b"shopchain/mailbox-fetch/v1"
ENVELOPE_TAG = "mailbox/1"
FETCH_TAG = "mailbox-fetch/1"
#: Largest encoded envelope a node accepts (body, ciphertext and signature).
MAX_ENVELOPE_BYTES = 16 * 1024
#: What an envelope may carry: the buyer's delivery details to the merchant, the label
#: to the carrier, a tracking number's salt to the buyer, one disclosed field to anyone.
ENVELOPE_KINDS = ("delivery", "label", "tracking", "disclosure")
KEY_BYTES = 32
SIGNATURE_BYTES = 64
#: Largest order id an envelope may name (the contract's ids are far below).
MAX_ORDER_ID = 2**63 - 1
#: Largest encoded fetch request.
MAX_FETCH_REQUEST_BYTES = 1024


def _check_key(value: object, what: str) -> bytes:
    if type(value) is not bytes or len(value) != KEY_BYTES:
        raise ValidationError(f"envelope {what}: expected {KEY_BYTES} bytes, found "
                              f"{len(value) if isinstance(value, bytes) else type(value).__name__}")
    return value


@dataclass(frozen=True)
class Envelope:
    """One sealed message from ``sender`` to ``recipient`` about ``order``."""

    recipient: bytes       # the recipient's account id
    recipient_key: bytes   # the X25519 key it was sealed to (the account's registered enc_key)
    sender: bytes          # the signing key that signed it (a registered account's current key)
    order: int
    kind: str
    created_ms: int        # unix milliseconds, set by the sender; the node bounds its skew
    ciphertext: bytes
    signature: bytes = b""

    def body(self) -> list:
        return [ENVELOPE_TAG, self.recipient, self.recipient_key, self.sender, self.order, self.kind,
                self.created_ms, self.ciphertext]

    @property
    def envelope_id(self) -> bytes:
        return sha256(encoding.encode(self.body()))

    def encode(self) -> bytes:
        return encoding.encode(self.body() + [self.signature])

    @classmethod
    def decode(cls, raw: bytes) -> "Envelope":
        """Decode and check the shape (not the signature: ``verify`` needs the chain id)."""
        if type(raw) is not bytes or len(raw) > MAX_ENVELOPE_BYTES:
            raise ValidationError(f"an envelope is at most {MAX_ENVELOPE_BYTES} bytes, found "
                                  f"{len(raw) if isinstance(raw, bytes) else type(raw).__name__}")
        value = encoding.decode(raw, max_size=MAX_ENVELOPE_BYTES)
        if not isinstance(value, list) or len(value) != 9 or value[0] != ENVELOPE_TAG:
            raise DecodeError(f"envelope: expected [{ENVELOPE_TAG!r}, recipient, recipient_key, sender, order, "
                              f"kind, created_ms, ciphertext, signature]")
        env = cls(*value[1:])
        env.check_shape()
        return env

    def check_shape(self) -> None:
        _check_key(self.recipient, "recipient")
        _check_key(self.recipient_key, "recipient_key")
        _check_key(self.sender, "sender")
        if type(self.order) is not int or not 0 < self.order <= MAX_ORDER_ID:
            raise ValidationError(f"envelope order: expected an order id >= 1, found {self.order!r:.40}")
        if self.kind not in ENVELOPE_KINDS:
            raise ValidationError(f"envelope kind: expected one of {list(ENVELOPE_KINDS)}, found {str(self.kind)[:40]!r}")
        if type(self.created_ms) is not int or self.created_ms < 0:
            raise ValidationError(f"envelope created_ms: expected unix milliseconds, found {self.created_ms!r:.40}")
        if type(self.ciphertext) is not bytes or not self.ciphertext:
            raise ValidationError("envelope ciphertext: expected non-empty bytes")
        if type(self.signature) is not bytes or len(self.signature) != SIGNATURE_BYTES:
            raise ValidationError(f"envelope signature: expected {SIGNATURE_BYTES} bytes")

    def verify(self, chain_id: str) -> bool:
        """True iff ``sender`` signed this body for ``chain_id``."""
        return verify_signed(MAILBOX_DOMAIN, chain_id, self.sender, encoding.encode(self.body()), self.signature)


def make_envelope(key: SigningKey, chain_id: str, recipient: bytes, recipient_key: bytes, order: int, kind: str,
                  created_ms: int, ciphertext: bytes) -> Envelope:
    """Build and sign an envelope; its size is checked here so a sender learns of it before posting."""
    unsigned = Envelope(recipient, recipient_key, key.public_key, order, kind, created_ms, ciphertext,
                        b"\0" * SIGNATURE_BYTES)
    unsigned.check_shape()
    env = Envelope(*unsigned.body()[1:],
                   signature=key.sign(MAILBOX_DOMAIN, chain_id, encoding.encode(unsigned.body())))
    size = len(env.encode())
    if size > MAX_ENVELOPE_BYTES:
        raise ValidationError(f"the sealed {kind} is {size} bytes; an envelope is at most {MAX_ENVELOPE_BYTES} bytes")
    return env


@dataclass(frozen=True)
class FetchRequest:
    """"Show me my envelopes": signed by the recipient account's current signing key."""

    account: bytes
    signer: bytes
    order: int          # 0: every order
    created_ms: int
    signature: bytes = b""

    def body(self) -> list:
        return [FETCH_TAG, self.account, self.signer, self.order, self.created_ms]

    def encode(self) -> bytes:
        return encoding.encode(self.body() + [self.signature])

    @classmethod
    def decode(cls, raw: bytes) -> "FetchRequest":
        if type(raw) is not bytes or len(raw) > MAX_FETCH_REQUEST_BYTES:
            raise ValidationError(f"a fetch request is at most {MAX_FETCH_REQUEST_BYTES} bytes")
        value = encoding.decode(raw, max_size=MAX_FETCH_REQUEST_BYTES)
        if not isinstance(value, list) or len(value) != 6 or value[0] != FETCH_TAG:
            raise DecodeError(f"fetch request: expected [{FETCH_TAG!r}, account, signer, order, created_ms, signature]")
        req = cls(*value[1:])
        for name in ("account", "signer"):
            _check_key(getattr(req, name), name)
        if type(req.order) is not int or not 0 <= req.order <= MAX_ORDER_ID:
            raise ValidationError("fetch request order: expected 0 (all) or an order id")
        if type(req.created_ms) is not int or req.created_ms < 0:
            raise ValidationError("fetch request created_ms: expected unix milliseconds")
        if type(req.signature) is not bytes or len(req.signature) != SIGNATURE_BYTES:
            raise ValidationError(f"fetch request signature: expected {SIGNATURE_BYTES} bytes")
        return req

    def verify(self, chain_id: str) -> bool:
        return verify_signed(FETCH_DOMAIN, chain_id, self.signer, encoding.encode(self.body()), self.signature)


def make_fetch_request(key: SigningKey, chain_id: str, account: bytes, order: int, created_ms: int) -> FetchRequest:
    """A signed request for ``account``'s envelopes (about ``order``, or all with 0)."""
    unsigned = FetchRequest(account, key.public_key, order, created_ms)
    return FetchRequest(*unsigned.body()[1:],
                        signature=key.sign(FETCH_DOMAIN, chain_id, encoding.encode(unsigned.body())))
