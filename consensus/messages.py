"""PBFT messages for blocks, with canonical encodings and domain-separated signatures.

How it works: PREPARE and COMMIT are ``ledger.types.Vote`` (signed under DOMAIN_VOTE),
so 2f+1 COMMITs are a ``CommitCertificate`` as they stand. The other messages are
defined here as frozen dataclasses mapped to tagged arrays (DESIGN §3) and signed with
DOMAIN_CONSENSUS over ``signed_body()``, which never includes bulky attachments:

- PRE-PREPARE signs (view, height, digest, primary); the block rides along unsigned
  and is accepted only if its header hash equals the digest. Stripped of its block it
  is the first half of a prepared certificate.
- PREPARED certificate = a PRE-PREPARE (without block) + 2f PREPAREs from backups
  (Castro & Liskov 2002, §4.4 "P component"), in compact form.
- VIEW-CHANGE signs (new view, last committed height + certificate, prepared
  certificates above it, sender); the blocks of those prepared certificates ride along
  unsigned so the new primary can re-propose them, and are stripped inside NEW-VIEW.
- NEW-VIEW signs (view, the 2f+1 VIEW-CHANGEs, the derived PRE-PREPARE, primary); the
  derived PRE-PREPARE carries its block.
- BLOCK-REQUEST / BLOCKS are unsigned catch-up messages: a block is trusted only
  through its commit certificate, so the transport needs no signature on them.

``decode_message`` is the single entry for the transport: bytes in, one message out,
``DecodeError`` for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from ledger import encoding
from ledger.crypto import DOMAIN_CONSENSUS, HASH_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, SigningKey
from ledger.errors import DecodeError
from ledger.types import PHASE_PREPARE, TAG_VOTE, Block, CommitCertificate, Vote
from ledger.types import check_bytes as _bytes, check_fields as _fields, check_int as _int

#: Largest encoded consensus message accepted from the network (the encoding's cap).
MAX_MESSAGE_BYTES = encoding.MAX_ENCODED_BYTES
#: Most prepared certificates one VIEW-CHANGE may carry. Only committed+1 can be
#: prepared by an honest replica (a block needs its parent's certificate), so a few
#: leave room without letting a peer make us verify thousands of signatures.
MAX_PREPARED_PER_VIEW_CHANGE = 4
#: Most blocks one BLOCKS response carries, and the most a BLOCK-REQUEST may ask for.
MAX_BLOCKS_PER_RESPONSE = 32

TAG_PRE_PREPARE = "pbft-pp/1"
TAG_PREPARED = "pbft-pc/1"
TAG_VIEW_CHANGE = "pbft-vc/1"
TAG_NEW_VIEW = "pbft-nv/1"
TAG_BLOCK_REQUEST = "pbft-breq/1"
TAG_BLOCKS = "pbft-blocks/1"


def _array(value: Any, limit: int, what: str) -> list:
    if not isinstance(value, list) or len(value) > limit:
        found = f"{len(value)} items" if isinstance(value, list) else type(value).__name__
        raise DecodeError(f"{what}: expected an array of at most {limit}, found {found}")
    return value


class _Codec:
    """encode/decode for the message classes, on top of their to_list/from_list."""

    def encode(self) -> bytes:
        return encoding.encode(self.to_list())  # type: ignore[attr-defined]

    @classmethod
    def decode(cls, data: bytes) -> Any:
        return cls.from_list(encoding.decode(data, max_size=MAX_MESSAGE_BYTES))  # type: ignore[attr-defined]


# --- PRE-PREPARE ------------------------------------------------------------------

@dataclass(frozen=True)
class PrePrepare(_Codec):
    """<PRE-PREPARE, v, n, d>_primary with the block as attachment (paper §4.2)."""

    view: int
    height: int
    digest: bytes
    primary: bytes
    signature: bytes = b""
    block: Block | None = None

    def signed_body(self) -> bytes:
        return encoding.encode([TAG_PRE_PREPARE, self.view, self.height, self.digest, self.primary])

    @classmethod
    def create(cls, key: SigningKey, chain_id: str, view: int, block: Block) -> "PrePrepare":
        unsigned = cls(view, block.height, block.block_hash, key.public_key)
        return cls(view, block.height, block.block_hash, key.public_key,
                   key.sign(DOMAIN_CONSENSUS, chain_id, unsigned.signed_body()), block)

    def without_block(self) -> "PrePrepare":
        return PrePrepare(self.view, self.height, self.digest, self.primary, self.signature, None)

    def to_list(self) -> list:
        return [TAG_PRE_PREPARE, self.view, self.height, self.digest, self.primary, self.signature,
                None if self.block is None else self.block.to_list()]

    def encode(self) -> bytes:
        # Splice in the block's bytes (which reuse each transaction's) instead of re-encoding it.
        block = None if self.block is None else encoding.Encoded(self.block.encode())
        return encoding.encode_array([TAG_PRE_PREPARE, self.view, self.height, self.digest, self.primary,
                                      self.signature, block])

    @classmethod
    def from_list(cls, v: Any) -> "PrePrepare":
        f = _fields(v, TAG_PRE_PREPARE, 7, "pre-prepare")
        return cls(_int(f[1], "pre-prepare view"), _int(f[2], "pre-prepare height", 1),
                   _bytes(f[3], HASH_BYTES, "pre-prepare digest"), _bytes(f[4], PUBLIC_KEY_BYTES, "pre-prepare primary"),
                   _bytes(f[5], SIGNATURE_BYTES, "pre-prepare signature"),
                   None if f[6] is None else Block.from_list(f[6]))


# --- prepared certificate ---------------------------------------------------------

@dataclass(frozen=True)
class PreparedCert(_Codec):
    """A PRE-PREPARE and 2f matching PREPAREs from backups: 'prepared' in the paper §4.2."""

    pre_prepare: PrePrepare  # without block
    prepares: tuple[Vote, ...]  # sorted by validator

    @property
    def view(self) -> int:
        return self.pre_prepare.view

    @property
    def height(self) -> int:
        return self.pre_prepare.height

    @property
    def digest(self) -> bytes:
        return self.pre_prepare.digest

    @classmethod
    def build(cls, pre_prepare: PrePrepare, prepares: list[Vote]) -> "PreparedCert":
        return cls(pre_prepare.without_block(), tuple(sorted(prepares, key=lambda p: p.validator)))

    def to_list(self) -> list:
        pp = self.pre_prepare
        return [TAG_PREPARED, pp.view, pp.height, pp.digest, pp.primary, pp.signature,
                [[p.validator, p.signature] for p in self.prepares]]

    @classmethod
    def from_list(cls, v: Any) -> "PreparedCert":
        f = _fields(v, TAG_PREPARED, 7, "prepared certificate")
        pp = PrePrepare(_int(f[1], "prepared view"), _int(f[2], "prepared height", 1),
                        _bytes(f[3], HASH_BYTES, "prepared digest"), _bytes(f[4], PUBLIC_KEY_BYTES, "prepared primary"),
                        _bytes(f[5], SIGNATURE_BYTES, "prepared pre-prepare signature"))
        votes = []
        for i, pair in enumerate(_array(f[6], 256, "prepared votes")):
            if not isinstance(pair, list) or len(pair) != 2:
                raise DecodeError(f"prepared vote {i}: expected [validator, signature]")
            votes.append(Vote(PHASE_PREPARE, pp.view, pp.height, pp.digest,
                              _bytes(pair[0], PUBLIC_KEY_BYTES, f"prepared vote {i} validator"),
                              _bytes(pair[1], SIGNATURE_BYTES, f"prepared vote {i} signature")))
        return cls(pp, tuple(votes))


# --- VIEW-CHANGE ------------------------------------------------------------------

@dataclass(frozen=True)
class ViewChange(_Codec):
    """<VIEW-CHANGE, v+1, n (committed height), C (its certificate), P, i>_i (paper §4.4)."""

    new_view: int
    committed_height: int
    committed_cert: CommitCertificate | None
    prepared: tuple[PreparedCert, ...]
    replica: bytes
    signature: bytes = b""
    blocks: tuple[Block, ...] = ()  # unsigned attachment: the blocks of ``prepared``

    def signed_body(self) -> bytes:
        return encoding.encode([TAG_VIEW_CHANGE, self.new_view, self.committed_height,
                                None if self.committed_cert is None else self.committed_cert.to_list(),
                                [p.to_list() for p in self.prepared], self.replica])

    @classmethod
    def create(cls, key: SigningKey, chain_id: str, new_view: int, committed_height: int,
               committed_cert: CommitCertificate | None, prepared: tuple[PreparedCert, ...],
               blocks: tuple[Block, ...]) -> "ViewChange":
        unsigned = cls(new_view, committed_height, committed_cert, prepared, key.public_key)
        return cls(new_view, committed_height, committed_cert, prepared, key.public_key,
                   key.sign(DOMAIN_CONSENSUS, chain_id, unsigned.signed_body()), blocks)

    def without_blocks(self) -> "ViewChange":
        return ViewChange(self.new_view, self.committed_height, self.committed_cert, self.prepared,
                          self.replica, self.signature, ())

    def to_list(self) -> list:
        return [TAG_VIEW_CHANGE, self.new_view, self.committed_height,
                None if self.committed_cert is None else self.committed_cert.to_list(),
                [p.to_list() for p in self.prepared], self.replica, self.signature,
                [b.to_list() for b in self.blocks]]

    @classmethod
    def from_list(cls, v: Any) -> "ViewChange":
        f = _fields(v, TAG_VIEW_CHANGE, 8, "view-change")
        prepared = tuple(PreparedCert.from_list(p) for p in _array(f[4], MAX_PREPARED_PER_VIEW_CHANGE, "view-change prepared"))
        blocks = tuple(Block.from_list(b) for b in _array(f[7], MAX_PREPARED_PER_VIEW_CHANGE, "view-change blocks"))
        return cls(_int(f[1], "view-change new_view", 1), _int(f[2], "view-change committed_height"),
                   None if f[3] is None else CommitCertificate.from_list(f[3]), prepared,
                   _bytes(f[5], PUBLIC_KEY_BYTES, "view-change replica"),
                   _bytes(f[6], SIGNATURE_BYTES, "view-change signature"), blocks)


# --- NEW-VIEW ---------------------------------------------------------------------

@dataclass(frozen=True)
class NewView(_Codec):
    """<NEW-VIEW, v+1, V (2f+1 VIEW-CHANGEs), O (derived PRE-PREPARE)>_primary (paper §4.4)."""

    view: int
    view_changes: tuple[ViewChange, ...]  # blocks stripped, sorted by replica
    pre_prepare: PrePrepare  # with block
    primary: bytes
    signature: bytes = b""

    def signed_body(self) -> bytes:
        return encoding.encode([TAG_NEW_VIEW, self.view, [vc.to_list() for vc in self.view_changes],
                                self.pre_prepare.without_block().to_list(), self.primary])

    @classmethod
    def create(cls, key: SigningKey, chain_id: str, view: int, view_changes: list[ViewChange],
               pre_prepare: PrePrepare) -> "NewView":
        vcs = tuple(sorted((vc.without_blocks() for vc in view_changes), key=lambda vc: vc.replica))
        unsigned = cls(view, vcs, pre_prepare, key.public_key)
        return cls(view, vcs, pre_prepare, key.public_key, key.sign(DOMAIN_CONSENSUS, chain_id, unsigned.signed_body()))

    def to_list(self) -> list:
        return [TAG_NEW_VIEW, self.view, [vc.to_list() for vc in self.view_changes], self.pre_prepare.to_list(),
                self.primary, self.signature]

    @classmethod
    def from_list(cls, v: Any) -> "NewView":
        f = _fields(v, TAG_NEW_VIEW, 6, "new-view")
        vcs = tuple(ViewChange.from_list(vc) for vc in _array(f[2], 256, "new-view view-changes"))
        return cls(_int(f[1], "new-view view", 1), vcs, PrePrepare.from_list(f[3]),
                   _bytes(f[4], PUBLIC_KEY_BYTES, "new-view primary"), _bytes(f[5], SIGNATURE_BYTES, "new-view signature"))


# --- catch-up ---------------------------------------------------------------------

@dataclass(frozen=True)
class BlockRequest(_Codec):
    """Ask a peer for committed blocks from ``from_height`` on, with their certificates."""

    from_height: int
    max_count: int = MAX_BLOCKS_PER_RESPONSE

    def to_list(self) -> list:
        return [TAG_BLOCK_REQUEST, self.from_height, self.max_count]

    @classmethod
    def from_list(cls, v: Any) -> "BlockRequest":
        f = _fields(v, TAG_BLOCK_REQUEST, 3, "block request")
        return cls(_int(f[1], "block request from_height", 1), _int(f[2], "block request max_count", 1, MAX_BLOCKS_PER_RESPONSE))


@dataclass(frozen=True)
class Blocks(_Codec):
    """Committed blocks in height order, each with its commit certificate."""

    items: tuple[tuple[Block, CommitCertificate], ...]

    def to_list(self) -> list:
        return [TAG_BLOCKS, [[b.to_list(), c.to_list()] for b, c in self.items]]

    def encode(self) -> bytes:
        pairs = [encoding.Encoded(encoding.encode_array([encoding.Encoded(b.encode()), c.to_list()]))
                 for b, c in self.items]
        return encoding.encode_array([TAG_BLOCKS, encoding.Encoded(encoding.encode_array(pairs))])

    @classmethod
    def from_list(cls, v: Any) -> "Blocks":
        f = _fields(v, TAG_BLOCKS, 2, "blocks")
        items = []
        for i, pair in enumerate(_array(f[1], MAX_BLOCKS_PER_RESPONSE, "blocks items")):
            if not isinstance(pair, list) or len(pair) != 2:
                raise DecodeError(f"blocks item {i}: expected [block, certificate]")
            items.append((Block.from_list(pair[0]), CommitCertificate.from_list(pair[1])))
        return cls(tuple(items))


Message = Union[PrePrepare, Vote, ViewChange, NewView, BlockRequest, Blocks]

_DECODERS = {
    TAG_PRE_PREPARE: PrePrepare.from_list,
    TAG_VOTE: Vote.from_list,
    TAG_VIEW_CHANGE: ViewChange.from_list,
    TAG_NEW_VIEW: NewView.from_list,
    TAG_BLOCK_REQUEST: BlockRequest.from_list,
    TAG_BLOCKS: Blocks.from_list,
}


def encode_message(message: Message) -> bytes:
    if isinstance(message, Vote):
        return encoding.encode(message.to_list())
    return message.encode()


def decode_message(data: bytes) -> Message:
    """The transport's one entry: canonical bytes -> a consensus message, or DecodeError."""
    if type(data) is not bytes:
        raise DecodeError(f"consensus message: expected bytes, found {type(data).__name__}")
    if len(data) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"consensus message: {len(data)} bytes exceeds the limit of {MAX_MESSAGE_BYTES}")
    value = encoding.decode(data, max_size=MAX_MESSAGE_BYTES)
    if not isinstance(value, list) or not value:
        raise DecodeError("consensus message: expected a tagged array")
    decoder = _DECODERS.get(value[0]) if isinstance(value[0], str) else None
    if decoder is None:
        raise DecodeError(f"consensus message: expected one of the tags {sorted(_DECODERS)}, found {value[0]!r}")
    return decoder(value)
