"""The chain's data types and their canonical encodings.

How it works: each type is a frozen dataclass with ``to_list`` / ``from_list`` that map
it to a canonical array whose first item is a type/version tag (DESIGN §3), and
``encode`` / ``decode`` on top of ``ledger.encoding``. Field checks live in
``from_list`` so that bytes from a peer or client are validated once, at the edge, with
a message naming the field. Ids are SHA-256 of canonical bytes: a transaction's id is
the hash of its unsigned body, a block's hash is the hash of its header.

A commit certificate is 2f+1 COMMIT votes for one (height, view, block hash);
``verify_certificate`` checks it against a validator set with nothing but the
certificate and the set, so it is a proof that anyone can check offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ledger import encoding
from ledger.crypto import (
    DOMAIN_TX,
    DOMAIN_VOTE,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    SigningKey,
    sha256,
    verify_signed,
)
from ledger.errors import DecodeError, ValidationError
from ledger.merkle import merkle_root

#: Largest encoded signed transaction accepted anywhere.
MAX_TX_BYTES = 64 * 1024
#: Most transactions in one block.
MAX_BLOCK_TXS = 10_000
#: Largest encoded block.
MAX_BLOCK_BYTES = 8 * 1024 * 1024
#: Largest gas limit one transaction may ask for.
MAX_TX_GAS = 10_000_000
#: Longest contract or method name.
MAX_NAME_CHARS = 64
#: Most events one receipt may carry.
MAX_RECEIPT_EVENTS = 256
#: Most validators in a set.
MAX_VALIDATORS = 256
#: Most co-signatures on one transaction (identity's MAX_COSIGNERS; bounds its signature checks).
MAX_COSIGNATURES = 8

TAG_TX = "tx/1"
TAG_SIGNED_TX = "stx/1"
#: stx/1's fields plus ``[[key, signature], ...]`` (1..MAX_COSIGNATURES, ascending by key); a
#: transaction without co-signatures is always stx/1, so existing encodings stay byte-identical.
TAG_COSIGNED_TX = "cstx/1"
#: Fields of an encoded header, the tag included (the block store reads headers by position).
HEADER_FIELD_COUNT = 13
TAG_HEADER = "hdr/2"  # /2: next_validator_set_hash added (validator sets change by height)
TAG_BLOCK = "blk/1"
TAG_VOTE = "vote/1"
TAG_CERT = "cert/1"
TAG_RECEIPT = "rcpt/1"
#: A receipt that charged a fee: rcpt/1's fields plus the fee (chains without fees never
#: produce one, so their receipts and receipts roots are unchanged).
TAG_RECEIPT_FEE = "rcpt/2"
TAG_EVENT = "evt/1"

PHASE_PREPARE = 1
PHASE_COMMIT = 2
PHASES = (PHASE_PREPARE, PHASE_COMMIT)

STATUS_OK = 0
STATUS_FAILED = 1

ZERO_HASH = b"\x00" * HASH_BYTES


# --- field checks -----------------------------------------------------------------

def _fields(value: Any, tag: str, count: int, what: str) -> list:
    if not isinstance(value, list):
        raise DecodeError(f"{what}: expected an array, found {type(value).__name__}")
    if len(value) != count:
        raise DecodeError(f"{what}: expected {count} fields, found {len(value)}")
    if value[0] != tag:
        raise DecodeError(f"{what}: expected tag {tag!r}, found {value[0]!r}")
    return value


def _bytes(value: Any, size: int | None, what: str) -> bytes:
    if type(value) is not bytes:
        raise DecodeError(f"{what}: expected bytes, found {type(value).__name__}")
    if size is not None and len(value) != size:
        raise DecodeError(f"{what}: expected {size} bytes, found {len(value)}")
    return value


def _int(value: Any, what: str, low: int = 0, high: int = 2**64 - 1) -> int:
    if type(value) is not int:
        raise DecodeError(f"{what}: expected an integer, found {type(value).__name__}")
    if not low <= value <= high:
        raise DecodeError(f"{what}: expected {low}..{high}, found {value}")
    return value


# Public names for other packages' decoders (consensus messages use the same field checks).
check_fields, check_bytes, check_int = _fields, _bytes, _int


def _str(value: Any, what: str, max_chars: int = MAX_NAME_CHARS) -> str:
    if type(value) is not str:
        raise DecodeError(f"{what}: expected a string, found {type(value).__name__}")
    if not value or len(value) > max_chars:
        raise DecodeError(f"{what}: expected 1..{max_chars} characters, found {len(value)}")
    return value


def _decode_list(data: bytes, max_size: int, what: str) -> Any:
    if type(data) is not bytes:
        raise DecodeError(f"{what}: expected bytes, found {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"{what}: {len(data)} bytes exceeds the limit of {max_size}")
    return encoding.decode(data, max_size=max_size)


# --- transactions -----------------------------------------------------------------

@dataclass(frozen=True)
class TxBody:
    """What a sender signs: a call of ``method`` on ``contract`` with ``args``."""

    chain_id: str
    sender: bytes
    nonce: int
    contract: str
    method: str
    args: list
    gas_limit: int

    def to_list(self) -> list:
        return [TAG_TX, self.chain_id, self.sender, self.nonce, self.contract, self.method, self.args, self.gas_limit]

    @classmethod
    def from_list(cls, v: Any) -> "TxBody":
        f = _fields(v, TAG_TX, 8, "transaction body")
        if not isinstance(f[6], list):
            raise DecodeError(f"transaction args: expected an array, found {type(f[6]).__name__}")
        return cls(
            chain_id=_str(f[1], "transaction chain_id"),
            sender=_bytes(f[2], PUBLIC_KEY_BYTES, "transaction sender"),
            nonce=_int(f[3], "transaction nonce"),
            contract=_str(f[4], "transaction contract"),
            method=_str(f[5], "transaction method"),
            args=f[6],
            gas_limit=_int(f[7], "transaction gas_limit", 1),  # the MAX_TX_GAS policy is checked at admission
        )

    def encode(self) -> bytes:
        return encoding.encode(self.to_list())

    @property
    def tx_id(self) -> bytes:
        return sha256(self.encode())

    def sign(self, key: SigningKey) -> "SignedTx":
        if key.public_key != self.sender:
            raise ValidationError("signing key does not match the transaction sender")
        body_raw = self.encode()
        signature = key.sign(DOMAIN_TX, self.chain_id, body_raw)
        raw = encoding.encode([TAG_SIGNED_TX, self.to_list(), signature])
        return SignedTx(self, signature, raw, body_raw)

    def cosign(self, key: SigningKey) -> bytes:
        """A co-signature: the same domain, chain id and body bytes the sender signs, so a
        co-signer approves exactly this transaction (and its id) on this chain."""
        return key.sign(DOMAIN_TX, self.chain_id, self.encode())


#: A canonical signed transaction is ``[TAG_SIGNED_TX, body, signature]``: this prefix, the body's
#: own canonical bytes, then the 64-byte signature as bin8 (cstx/1: then the co-signature array).
_SIGNED_TX_PREFIX = b"\x93" + encoding.encode(TAG_SIGNED_TX)
_COSIGNED_TX_PREFIX = b"\x94" + encoding.encode(TAG_COSIGNED_TX)
_SIGNATURE_SUFFIX_BYTES = 2 + SIGNATURE_BYTES

#: (co-signer key, its signature of the body), ascending by key.
Cosignatures = tuple[tuple[bytes, bytes], ...]


def _cosignatures(value: Any, sender: bytes) -> Cosignatures:
    """A cstx/1's co-signatures: 1..MAX_COSIGNATURES pairs, keys strictly ascending, none the sender's."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_COSIGNATURES:
        found = f"{len(value)} items" if isinstance(value, list) else type(value).__name__
        raise DecodeError(f"transaction cosignatures: expected an array of 1..{MAX_COSIGNATURES} "
                          f"[key, signature] pairs, found {found}")
    out = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2:
            raise DecodeError(f"transaction cosignature {i}: expected [key, signature]")
        key = _bytes(pair[0], PUBLIC_KEY_BYTES, f"transaction cosignature {i} key")
        signature = _bytes(pair[1], SIGNATURE_BYTES, f"transaction cosignature {i} signature")
        if key == sender:
            raise DecodeError(f"transaction cosignature {i}: the key is the sender's own; the sender signs once")
        if out and key <= out[-1][0]:
            raise DecodeError(f"transaction cosignature {i}: keys must be strictly ascending (sorted, no "
                              f"duplicates); key {key.hex()[:16]} follows {out[-1][0].hex()[:16]}")
        out.append((key, signature))
    return tuple(out)


@dataclass(frozen=True)
class SignedTx:
    """A body, its sender's signature and any co-signatures: each signs the same body bytes in
    the same domain, so co-signers approve the very id the sender signed and adding one changes
    only how many keys approved (identity's signing policies count them), never the id."""

    body: TxBody
    signature: bytes
    _raw: bytes | None = field(default=None, compare=False, repr=False)
    _body_raw: bytes | None = field(default=None, compare=False, repr=False)
    cosignatures: Cosignatures = ()

    def to_list(self) -> list:
        if self.cosignatures:
            return [TAG_COSIGNED_TX, self.body.to_list(), self.signature, [[k, s] for k, s in self.cosignatures]]
        return [TAG_SIGNED_TX, self.body.to_list(), self.signature]

    @classmethod
    def from_list(cls, v: Any) -> "SignedTx":
        if isinstance(v, list) and v and v[0] == TAG_COSIGNED_TX:
            f = _fields(v, TAG_COSIGNED_TX, 4, "co-signed transaction")
            body = TxBody.from_list(f[1])
            return cls(body, _bytes(f[2], SIGNATURE_BYTES, "transaction signature"),
                       cosignatures=_cosignatures(f[3], body.sender))
        f = _fields(v, TAG_SIGNED_TX, 3, "signed transaction")
        return cls(TxBody.from_list(f[1]), _bytes(f[2], SIGNATURE_BYTES, "transaction signature"))

    def encode(self) -> bytes:
        if self._raw is not None:
            return self._raw
        return encoding.encode(self.to_list())

    @classmethod
    def decode(cls, data: bytes) -> "SignedTx":
        return cls.from_canonical(_decode_list(data, MAX_TX_BYTES, "signed transaction"), data)

    @classmethod
    def from_canonical(cls, value: Any, raw: bytes) -> "SignedTx":
        """The transaction whose canonical encoding ``raw`` decodes to ``value``.

        The body's bytes (what was signed, and what the id hashes) are a slice of ``raw``:
        every part of a canonical encoding is canonical, so there is no need to encode
        the body again (a cstx/1 re-encodes only its short co-signature array).
        """
        tx = cls.from_list(value)
        if tx.cosignatures:
            tail = len(encoding.reencode_decoded(value[3])) + _SIGNATURE_SUFFIX_BYTES
            body_raw = raw[len(_COSIGNED_TX_PREFIX):len(raw) - tail]
        else:
            body_raw = raw[len(_SIGNED_TX_PREFIX):len(raw) - _SIGNATURE_SUFFIX_BYTES]
        return cls(tx.body, tx.signature, raw, body_raw, tx.cosignatures)

    @cached_property
    def tx_id(self) -> bytes:
        return sha256(self._body_raw if self._body_raw is not None else self.body.encode())

    @property
    def cosigner_keys(self) -> tuple[bytes, ...]:
        return tuple(k for k, _ in self.cosignatures)

    def verify_signature(self) -> bool:
        """The sender's signature and every co-signature, each checked once (strict ed25519)."""
        body_raw = self._body_raw if self._body_raw is not None else self.body.encode()
        return (verify_signed(DOMAIN_TX, self.body.chain_id, self.body.sender, body_raw, self.signature)
                and self.bad_cosignature() is None)

    def bad_cosignature(self) -> bytes | None:
        """The first co-signer key whose signature does not verify, or None."""
        body_raw = self._body_raw if self._body_raw is not None else self.body.encode()
        return next((k for k, s in self.cosignatures
                     if not verify_signed(DOMAIN_TX, self.body.chain_id, k, body_raw, s)), None)

    def with_cosignature(self, key: bytes, signature: bytes) -> "SignedTx":
        """This transaction with one more co-signature (kept sorted), body and id unchanged; refuses
        the sender's key, a repeat and one past MAX_COSIGNATURES, so the result is canonical."""
        if key == self.body.sender:
            raise ValidationError("the sender's own key signs the transaction; it cannot also co-sign it")
        if key in self.cosigner_keys:
            raise ValidationError(f"key {key.hex()} has already co-signed this transaction")
        if len(self.cosignatures) >= MAX_COSIGNATURES:
            raise ValidationError(f"a transaction carries at most {MAX_COSIGNATURES} co-signatures, "
                                  f"it already has {len(self.cosignatures)}")
        return SignedTx(self.body, self.signature, cosignatures=tuple(sorted(self.cosignatures + ((key, signature),))))

    def cosigned_by(self, key: SigningKey) -> "SignedTx":
        """``with_cosignature`` with ``key``'s signature of the body."""
        return self.with_cosignature(key.public_key, self.body.cosign(key))


# --- events and receipts ----------------------------------------------------------

@dataclass(frozen=True)
class Event:
    contract: str
    name: str
    data: dict

    def to_list(self) -> list:
        return [TAG_EVENT, self.contract, self.name, self.data]

    @classmethod
    def from_list(cls, v: Any) -> "Event":
        f = _fields(v, TAG_EVENT, 4, "event")
        if not isinstance(f[3], dict):
            raise DecodeError(f"event data: expected a map, found {type(f[3]).__name__}")
        return cls(_str(f[1], "event contract"), _str(f[2], "event name"), f[3])


@dataclass(frozen=True)
class Receipt:
    """The outcome of one transaction: included even when it failed.

    ``fee`` is what the sender paid in minor units (node.core.fees); it is hashed with the
    rest, so a receipt proves the fee. A zero fee encodes as ``rcpt/1`` (seven
    fields), any other as ``rcpt/2`` with the fee as an eighth field.
    """

    tx_id: bytes
    status: int
    gas_used: int
    return_value: Any
    error: str | None
    events: list[Event]
    fee: int = 0

    def to_list(self) -> list:
        out = [TAG_RECEIPT_FEE if self.fee else TAG_RECEIPT, self.tx_id, self.status, self.gas_used,
               self.return_value, self.error, [e.to_list() for e in self.events]]
        if self.fee:
            out.append(self.fee)
        return out

    @classmethod
    def from_list(cls, v: Any) -> "Receipt":
        fee = 0
        if isinstance(v, list) and v and v[0] == TAG_RECEIPT_FEE:
            f = _fields(v, TAG_RECEIPT_FEE, 8, "receipt")
            fee = _int(f[7], "receipt fee", 1)
        else:
            f = _fields(v, TAG_RECEIPT, 7, "receipt")
        if f[5] is not None and type(f[5]) is not str:
            raise DecodeError(f"receipt error: expected a string or nil, found {type(f[5]).__name__}")
        if not isinstance(f[6], list) or len(f[6]) > MAX_RECEIPT_EVENTS:
            raise DecodeError(f"receipt events: expected an array of at most {MAX_RECEIPT_EVENTS}")
        return cls(_bytes(f[1], HASH_BYTES, "receipt tx_id"), _int(f[2], "receipt status", 0, 1),
                   _int(f[3], "receipt gas_used"), f[4], f[5], [Event.from_list(e) for e in f[6]], fee)

    def encode(self) -> bytes:
        return encoding.encode(self.to_list())

    @classmethod
    def decode(cls, data: bytes) -> "Receipt":
        return cls.from_list(_decode_list(data, MAX_BLOCK_BYTES, "receipt"))


# --- votes and certificates -------------------------------------------------------

@dataclass(frozen=True)
class Vote:
    """A signed PREPARE or COMMIT for (view, height, block hash)."""

    phase: int
    view: int
    height: int
    block_hash: bytes
    validator: bytes
    signature: bytes = b""

    def signed_body(self) -> bytes:
        return encoding.encode([TAG_VOTE, self.phase, self.view, self.height, self.block_hash, self.validator])

    def to_list(self) -> list:
        return [TAG_VOTE, self.phase, self.view, self.height, self.block_hash, self.validator, self.signature]

    @classmethod
    def from_list(cls, v: Any) -> "Vote":
        f = _fields(v, TAG_VOTE, 7, "vote")
        phase = _int(f[1], "vote phase")
        if phase not in PHASES:
            raise DecodeError(f"vote phase: expected one of {PHASES}, found {phase}")
        return cls(phase, _int(f[2], "vote view"), _int(f[3], "vote height"), _bytes(f[4], HASH_BYTES, "vote block_hash"),
                   _bytes(f[5], PUBLIC_KEY_BYTES, "vote validator"), _bytes(f[6], SIGNATURE_BYTES, "vote signature"))

    @classmethod
    def create(cls, key: SigningKey, chain_id: str, phase: int, view: int, height: int, block_hash: bytes) -> "Vote":
        unsigned = cls(phase, view, height, block_hash, key.public_key)
        return cls(phase, view, height, block_hash, key.public_key, key.sign(DOMAIN_VOTE, chain_id, unsigned.signed_body()))

    def verify(self, chain_id: str) -> bool:
        return verify_signed(DOMAIN_VOTE, chain_id, self.validator, self.signed_body(), self.signature)


def max_faulty(n: int) -> int:
    """f: how many of n validators may be byzantine (n >= 3f + 1)."""
    return (n - 1) // 3


def quorum_size(n: int) -> int:
    """Votes needed so any two quorums share an honest validator: more than 2n/3."""
    return 2 * n // 3 + 1


@dataclass(frozen=True)
class CommitCertificate:
    """2f+1 signed COMMIT votes for one block: the proof that it is final."""

    height: int
    view: int
    block_hash: bytes
    votes: tuple[Vote, ...]  # sorted by validator key

    def to_list(self) -> list:
        return [TAG_CERT, self.height, self.view, self.block_hash, [[v.validator, v.signature] for v in self.votes]]

    @classmethod
    def from_list(cls, v: Any) -> "CommitCertificate":
        f = _fields(v, TAG_CERT, 5, "certificate")
        height = _int(f[1], "certificate height")
        view = _int(f[2], "certificate view")
        block_hash = _bytes(f[3], HASH_BYTES, "certificate block_hash")
        if not isinstance(f[4], list) or len(f[4]) > MAX_VALIDATORS:
            raise DecodeError(f"certificate votes: expected an array of at most {MAX_VALIDATORS}")
        votes = []
        for i, pair in enumerate(f[4]):
            if not isinstance(pair, list) or len(pair) != 2:
                raise DecodeError(f"certificate vote {i}: expected [validator, signature]")
            votes.append(Vote(PHASE_COMMIT, view, height, block_hash, _bytes(pair[0], PUBLIC_KEY_BYTES, f"certificate vote {i} validator"),
                              _bytes(pair[1], SIGNATURE_BYTES, f"certificate vote {i} signature")))
        return cls(height, view, block_hash, tuple(votes))

    @classmethod
    def from_votes(cls, votes: list[Vote]) -> "CommitCertificate":
        first = votes[0]
        ordered = tuple(sorted(votes, key=lambda v: v.validator))
        return cls(first.height, first.view, first.block_hash, ordered)

    def encode(self) -> bytes:
        return encoding.encode(self.to_list())

    @classmethod
    def decode(cls, data: bytes) -> "CommitCertificate":
        return cls.from_list(_decode_list(data, MAX_BLOCK_BYTES, "certificate"))

    @property
    def cert_hash(self) -> bytes:
        return sha256(self.encode())


def verify_certificate(cert: CommitCertificate, validators: list[bytes], chain_id: str,
                       height: int | None = None, block_hash: bytes | None = None,
                       verify: Callable[[bytes, str, bytes, bytes, bytes], bool] = verify_signed,
                       quorum: int | None = None) -> None:
    """Raise ValidationError unless ``cert`` is a valid commit certificate for this set.

    Checks: expected height/hash if given, every vote a COMMIT for the certificate's
    (view, height, hash), distinct validators all in the set, valid signatures, and at
    least a quorum of them. ``verify`` is injectable so the consensus simulator can
    share one verification cache across replicas.
    """
    if height is not None and cert.height != height:
        raise ValidationError(f"certificate is for height {cert.height}, expected {height}")
    if block_hash is not None and cert.block_hash != block_hash:
        raise ValidationError(f"certificate is for block {cert.block_hash.hex()[:16]}, expected {block_hash.hex()[:16]}")
    members = set(validators)
    seen: set[bytes] = set()
    for vote in cert.votes:
        if vote.phase != PHASE_COMMIT or vote.height != cert.height or vote.view != cert.view or vote.block_hash != cert.block_hash:
            raise ValidationError("certificate holds a vote for a different phase, view, height or block")
        if vote.validator not in members:
            raise ValidationError(f"certificate vote from {vote.validator.hex()[:16]}, which is not in the validator set")
        if vote.validator in seen:
            raise ValidationError(f"certificate counts validator {vote.validator.hex()[:16]} twice")
        seen.add(vote.validator)
        if not verify(DOMAIN_VOTE, chain_id, vote.validator, vote.signed_body(), vote.signature):
            raise ValidationError(f"certificate vote from {vote.validator.hex()[:16]} has an invalid signature")
    need = quorum_size(len(validators)) if quorum is None else quorum
    if len(seen) < need:
        raise ValidationError(f"certificate has {len(seen)} distinct votes, a quorum of {need} of {len(validators)} is needed")


def validator_set_hash(validators: list[bytes]) -> bytes:
    return sha256(encoding.encode(["vset/1", list(validators)]))


# --- blocks -----------------------------------------------------------------------

@dataclass(frozen=True)
class BlockHeader:
    chain_id: str
    height: int
    prev_hash: bytes
    timestamp_ms: int
    proposer: bytes
    view: int
    tx_root: bytes
    receipts_root: bytes
    state_root: bytes
    validator_set_hash: bytes  # the set that certifies this block (ledger/validator_set.py)
    last_commit_hash: bytes  # hash of the previous block's certificate (ZERO_HASH at height 1)
    #: The set that certifies the next block: certified here, so a light client walks the
    #: chain of sets from genesis. ZERO_HASH only in blocks no chain will take (tests of the core).
    next_validator_set_hash: bytes = ZERO_HASH

    def to_list(self) -> list:
        return [TAG_HEADER, self.chain_id, self.height, self.prev_hash, self.timestamp_ms, self.proposer, self.view,
                self.tx_root, self.receipts_root, self.state_root, self.validator_set_hash, self.last_commit_hash,
                self.next_validator_set_hash]

    @classmethod
    def from_list(cls, v: Any) -> "BlockHeader":
        f = _fields(v, TAG_HEADER, HEADER_FIELD_COUNT, "block header")
        return cls(_str(f[1], "header chain_id"), _int(f[2], "header height"), _bytes(f[3], HASH_BYTES, "header prev_hash"),
                   _int(f[4], "header timestamp_ms"), _bytes(f[5], PUBLIC_KEY_BYTES, "header proposer"),
                   _int(f[6], "header view"), _bytes(f[7], HASH_BYTES, "header tx_root"),
                   _bytes(f[8], HASH_BYTES, "header receipts_root"), _bytes(f[9], HASH_BYTES, "header state_root"),
                   _bytes(f[10], HASH_BYTES, "header validator_set_hash"), _bytes(f[11], HASH_BYTES, "header last_commit_hash"),
                   _bytes(f[12], HASH_BYTES, "header next_validator_set_hash"))

    def encode(self) -> bytes:
        return encoding.encode(self.to_list())

    @property
    def block_hash(self) -> bytes:
        return sha256(self.encode())


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    txs: tuple[SignedTx, ...]
    last_commit: CommitCertificate | None  # certificate of the previous block (None at height 1)

    def to_list(self) -> list:
        return [TAG_BLOCK, self.header.to_list(), [tx.to_list() for tx in self.txs],
                None if self.last_commit is None else self.last_commit.to_list()]

    @classmethod
    def from_list(cls, v: Any) -> "Block":
        """``v`` must come from ``encoding.decode`` (transactions re-use its canonical parts)."""
        f = _fields(v, TAG_BLOCK, 4, "block")
        if not isinstance(f[2], list) or len(f[2]) > MAX_BLOCK_TXS:
            raise DecodeError(f"block txs: expected an array of at most {MAX_BLOCK_TXS}")
        txs = []
        for item in f[2]:
            txs.append(SignedTx.from_canonical(item, encoding.reencode_decoded(item)))
        last = None if f[3] is None else CommitCertificate.from_list(f[3])
        return cls(BlockHeader.from_list(f[1]), tuple(txs), last)

    def encode(self) -> bytes:
        # Reuse each transaction's canonical bytes: the array encoding is a header plus
        # the items' encodings, so this equals encoding.encode(self.to_list()).
        return encoding.encode_array_of_encoded([
            encoding.encode(TAG_BLOCK),
            self.header.encode(),
            encoding.encode_array_of_encoded([tx.encode() for tx in self.txs]),
            encoding.encode(None if self.last_commit is None else self.last_commit.to_list()),
        ])

    @classmethod
    def decode(cls, data: bytes) -> "Block":
        return cls.from_list(_decode_list(data, MAX_BLOCK_BYTES, "block"))

    @property
    def block_hash(self) -> bytes:
        return self.header.block_hash

    @property
    def height(self) -> int:
        return self.header.height

    def check_shape(self) -> None:
        """Checks that need nothing but the block itself: tx root and last-commit hash."""
        if compute_tx_root(self.txs) != self.header.tx_root:
            raise ValidationError(f"block {self.height}: tx_root does not match its transactions")
        expected = ZERO_HASH if self.last_commit is None else self.last_commit.cert_hash
        if expected != self.header.last_commit_hash:
            raise ValidationError(f"block {self.height}: last_commit_hash does not match the carried certificate")
        if self.last_commit is not None and self.last_commit.height != self.height - 1:
            raise ValidationError(f"block {self.height}: carries a certificate for height {self.last_commit.height}")
        if len(self.txs) > MAX_BLOCK_TXS:
            raise ValidationError(f"block {self.height}: {len(self.txs)} transactions exceeds {MAX_BLOCK_TXS}")


def compute_tx_root(txs: tuple[SignedTx, ...] | list[SignedTx]) -> bytes:
    return merkle_root([tx.encode() for tx in txs])


def compute_receipts_root(receipts: list[Receipt]) -> bytes:
    return merkle_root([r.encode() for r in receipts])
