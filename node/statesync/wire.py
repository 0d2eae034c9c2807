"""State-sync messages on the wire, their limits, and the check of a snapshot offer.

How it works: state sync has four messages, each a canonical array with a leading
tag (DESIGN §3), carried in their own p2p envelope (node.envelopes.ENVELOPE_STATESYNC)
and charged to the peer's catch-up budget:

* ``OfferRequest``: "which snapshot can you serve?"
* ``Offer``: a height h (0: none yet), the stored bytes of block h, its commit
  certificate and its receipts, and one ``SetProof`` per validator-set change in
  force at or before h + 1 (the new set, and the header before the change with its
  certificate, as ``chain_getValidators`` proves them).
* ``NodesRequest``: up to ``MAX_NODES_PER_REQUEST`` state-trie node hashes.
* ``Nodes``: the stored bytes of a prefix of the requested nodes, in request order,
  ``b""`` for a node the peer does not hold, at most ``MAX_NODES_ANSWER_BYTES``.

``verify_offer`` proves an offer from the genesis set alone: each set change is
certified by the set before it, then block h's certificate by the set of h, and the
block's receipts hash to its header. The state root in that certified header is
what every fetched trie node is checked against (node.statesync.fetch), so a peer
can waste a newcomer's time but never make it accept a wrong state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger import encoding
from ledger.errors import ChainError, DecodeError, ValidationError
from ledger.genesis import Genesis
from ledger.state_proof import HASH_BYTES
from ledger.types import Block, BlockHeader, CommitCertificate, Receipt, compute_receipts_root, validator_set_hash
from ledger.validator_set import MAX_SCHEDULE_ENTRIES, ValidatorSchedule, check_header_sets, check_set
from ledger.types import verify_certificate

TAG_OFFER_REQUEST = "ss/offer-req/1"
TAG_OFFER = "ss/offer/1"
TAG_NODES_REQUEST = "ss/nodes-req/1"
TAG_NODES = "ss/nodes/1"

#: Most trie-node hashes one request asks for (a branch is at most ~1.1 KB, so a full
#: answer of branches stays near MAX_NODES_ANSWER_BYTES).
MAX_NODES_PER_REQUEST = 512
#: Most bytes of node data one answer carries (the server stops before exceeding it,
#: except that one node always fits); far below the p2p frame limit.
MAX_NODES_ANSWER_BYTES = 1024 * 1024
#: Largest encoded Nodes message a client accepts: the data plus per-item framing,
#: plus one node of the largest size (a leaf holding a maximal value) over the limit.
MAX_NODES_MESSAGE_BYTES = MAX_NODES_ANSWER_BYTES + 8 * MAX_NODES_PER_REQUEST + 2 * 1024 * 1024
#: Most validator-set changes one offer proves (the schedule's own cap).
MAX_OFFER_SET_PROOFS = MAX_SCHEDULE_ENTRIES
#: The default ``[statesync] snapshot_interval``: heights that are multiples of it are offered.
SNAPSHOT_INTERVAL = 100
#: The default ``[statesync] request_timeout_ms``, in seconds: an unanswered request is re-asked elsewhere.
REQUEST_TIMEOUT_S = 5.0
#: The default ``[statesync] discovery_timeout_ms``, in seconds: how long a newcomer collects offers.
DISCOVERY_TIMEOUT_S = 3.0
#: Largest encoded Offer accepted (a block at the protocol cap plus its proofs).
MAX_OFFER_BYTES = 12 * 1024 * 1024


#: A NodesRequest's first bytes (an array of 2 starting with its tag), so a server refuses
#: one over budget before decoding it.
NODES_REQUEST_PREFIX = bytes([0x92]) + encoding.encode(TAG_NODES_REQUEST)


class SyncProtocolError(ChainError):
    """A state-sync message is malformed, oversize, or does not verify; the peer that sent it is at fault."""


@dataclass(frozen=True)
class SetProof:
    """The set in force from ``from_height``, proven by header ``from_height - 1`` and its certificate."""

    from_height: int
    keys: tuple[bytes, ...]
    header: bytes
    cert: bytes

    def to_list(self) -> list:
        return [self.from_height, list(self.keys), self.header, self.cert]


@dataclass(frozen=True)
class OfferRequest:
    def encode(self) -> bytes:
        return encoding.encode([TAG_OFFER_REQUEST])


@dataclass(frozen=True)
class Offer:
    height: int  # 0: this peer has no snapshot to offer yet
    block: bytes = b""
    cert: bytes = b""
    receipts: bytes = b""
    set_proofs: tuple[SetProof, ...] = ()

    def encode(self) -> bytes:
        return encoding.encode([TAG_OFFER, self.height, self.block, self.cert, self.receipts,
                                [p.to_list() for p in self.set_proofs]])


@dataclass(frozen=True)
class NodesRequest:
    hashes: tuple[bytes, ...]

    def encode(self) -> bytes:
        return encoding.encode([TAG_NODES_REQUEST, list(self.hashes)])


@dataclass(frozen=True)
class Nodes:
    items: tuple[bytes, ...]

    def encode(self) -> bytes:
        return encoding.encode([TAG_NODES, list(self.items)])


Message = OfferRequest | Offer | NodesRequest | Nodes


def _bytes_list(value: Any, what: str, limit: int, size: int | None = None) -> tuple[bytes, ...]:
    if type(value) is not list or len(value) > limit:
        raise SyncProtocolError(f"{what}: expected a list of at most {limit} byte strings, found "
                                f"{type(value).__name__ if type(value) is not list else f'{len(value)} items'}")
    for item in value:
        if type(item) is not bytes or (size is not None and len(item) != size):
            raise SyncProtocolError(f"{what}: expected {'byte strings' if size is None else f'{size}-byte hashes'}, "
                                    f"found {item!r:.40}")
    return tuple(value)


def _set_proof(value: Any) -> SetProof:
    if (type(value) is not list or len(value) != 4 or type(value[0]) is not int or type(value[1]) is not list
            or type(value[2]) is not bytes or type(value[3]) is not bytes):
        raise SyncProtocolError(f"offer set proof: expected [from_height, keys, header, certificate], found {value!r:.60}")
    try:
        keys = check_set(value[1], f"offer set proof from height {value[0]}")
    except ValidationError as exc:
        raise SyncProtocolError(str(exc)) from None
    return SetProof(value[0], keys, value[2], value[3])


def decode_message(data: bytes) -> Message:
    """One state-sync message; SyncProtocolError if it is not a well-formed one within the limits."""
    if len(data) > max(MAX_NODES_MESSAGE_BYTES, MAX_OFFER_BYTES):
        raise SyncProtocolError(f"state-sync message of {len(data)} bytes exceeds "
                                f"{max(MAX_NODES_MESSAGE_BYTES, MAX_OFFER_BYTES)}")
    try:
        fields = encoding.decode(data)
    except DecodeError as exc:
        raise SyncProtocolError(f"state-sync message does not decode: {exc}") from None
    if type(fields) is not list or not fields or type(fields[0]) is not str:
        raise SyncProtocolError("state-sync message: expected an array starting with its tag")
    tag, rest = fields[0], fields[1:]
    if tag == TAG_OFFER_REQUEST and not rest:
        return OfferRequest()
    if tag == TAG_NODES_REQUEST and len(rest) == 1:
        hashes = _bytes_list(rest[0], "nodes request", MAX_NODES_PER_REQUEST, HASH_BYTES)
        if not hashes:
            raise SyncProtocolError("nodes request: expected at least one hash")
        return NodesRequest(hashes)
    if tag == TAG_NODES and len(rest) == 1:
        if len(data) > MAX_NODES_MESSAGE_BYTES:
            raise SyncProtocolError(f"nodes answer of {len(data)} bytes exceeds {MAX_NODES_MESSAGE_BYTES}")
        return Nodes(_bytes_list(rest[0], "nodes answer", MAX_NODES_PER_REQUEST))
    if tag == TAG_OFFER and len(rest) == 5:
        height, block, cert, receipts, proofs = rest
        if type(height) is not int or height < 0 or not all(type(x) is bytes for x in (block, cert, receipts)):
            raise SyncProtocolError("offer: expected [tag, height, block, certificate, receipts, set proofs]")
        if len(data) > MAX_OFFER_BYTES:
            raise SyncProtocolError(f"offer of {len(data)} bytes exceeds {MAX_OFFER_BYTES}")
        if type(proofs) is not list or len(proofs) > MAX_OFFER_SET_PROOFS:
            raise SyncProtocolError(f"offer: expected at most {MAX_OFFER_SET_PROOFS} set proofs")
        return Offer(height, block, cert, receipts, tuple(_set_proof(p) for p in proofs))
    raise SyncProtocolError(f"unknown state-sync message {tag!r:.40} with {len(rest)} fields")


@dataclass(frozen=True)
class VerifiedOffer:
    """An offer proven from genesis: block h with its certificate and receipts, and the set chain up to h + 1."""

    block: Block
    cert: CommitCertificate
    receipts: list[Receipt]
    schedule: ValidatorSchedule
    offer: Offer

    @property
    def height(self) -> int:
        return self.block.height

    @property
    def state_root(self) -> bytes:
        return self.block.header.state_root


def verify_offer(offer: Offer, genesis: Genesis) -> VerifiedOffer:
    """Prove ``offer`` from the genesis validator set (see the module docstring); SyncProtocolError if it fails."""
    if offer.height < 1:
        raise SyncProtocolError("offer: height 0 offers no snapshot")
    try:
        block = Block.decode(offer.block)
        cert = CommitCertificate.decode(offer.cert)
        receipts = [Receipt.from_list(item) for item in encoding.decode(offer.receipts)]
        schedule = ValidatorSchedule.fixed(genesis.validator_keys)
        for proof in offer.set_proofs:
            start = proof.from_height
            if not schedule.entries[-1][0] < start <= offer.height + 1:
                raise ValidationError(f"set change at height {start}: expected heights ascending after "
                                      f"{schedule.entries[-1][0]} and at most {offer.height + 1}")
            header = BlockHeader.from_list(encoding.decode(proof.header))
            if header.chain_id != genesis.chain_id or header.height != start - 1:
                raise ValidationError(f"set change at height {start} is proven by header {header.height} of chain "
                                      f"{header.chain_id!r}, expected header {start - 1} of {genesis.chain_id!r}")
            keys = list(schedule.at(header.height))
            if header.validator_set_hash != validator_set_hash(keys):
                raise ValidationError(f"header {header.height} names a validator set other than the one proven for it")
            verify_certificate(CommitCertificate.decode(proof.cert), keys, genesis.chain_id, header.height,
                               header.block_hash)
            if header.next_validator_set_hash != validator_set_hash(list(proof.keys)):
                raise ValidationError(f"certified header {header.height} does not name the set claimed from {start}")
            schedule = schedule.then(start, proof.keys)
        if block.header.chain_id != genesis.chain_id or block.height != offer.height:
            raise ValidationError(f"offered block is height {block.height} of {block.header.chain_id!r}, expected "
                                  f"height {offer.height} of {genesis.chain_id!r}")
        block.check_shape()
        check_header_sets(block.header, cert, schedule, genesis.chain_id)
        if compute_receipts_root(receipts) != block.header.receipts_root:
            raise ValidationError(f"the offered receipts do not hash to block {block.height}'s receipts root")
    except SyncProtocolError:
        raise
    except (ChainError, TypeError) as exc:
        raise SyncProtocolError(f"the offer of height {offer.height} does not verify: {exc}") from None
    return VerifiedOffer(block, cert, receipts, schedule, offer)
