"""What the core asks of the runtime and what it hands back.

How it works: the core never performs I/O. Everything it wants done is collected in a
``Ready`` (after etcd-raft's RawNode): records to persist (what this replica signed,
its prepared certificates, the view it is in), messages to send, blocks that became
committed, catch-up requests, requests from peers for committed blocks, and a request
to build a block. The runtime acts in this order: persist ``persist`` durably, send
``messages``, apply ``committed``, serve/fetch, build the requested block, then call
``advance()``. Persisting before sending is what makes "never sign two digests for the
same (view, height, phase)" survive a crash: ``Record`` is the unit a restarted
replica is rebuilt from.

Block validity (re-execution, state roots) is the runtime's business, asked through
the ``BlockValidator`` protocol so the core stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ledger import encoding
from ledger.crypto import HASH_BYTES
from ledger.errors import ChainError, DecodeError
from ledger.types import Block, CommitCertificate

from consensus.messages import Message, NewView, PrePrepare, PreparedCert, ViewChange, _bytes, _fields, _int

#: Phases of what a replica signs; PREPARE and COMMIT equal ledger.types.PHASE_*.
PHASE_PRE_PREPARE = 0
PHASE_VIEW_CHANGE = 3
PHASE_NEW_VIEW = 4

#: Record kinds.
RECORD_SIGNED = 1  # this replica signed ``digest`` for (view, height, phase); ``message`` is kept when re-sent as is
RECORD_PREPARED = 2  # a prepared certificate (message) with its block: survives restarts for VIEW-CHANGE (§4.4)
RECORD_VIEW = 3  # the replica entered ``view`` in normal operation (after a NEW-VIEW)

TAG_RECORD = "pbft-rec/1"


class ProtocolError(ChainError):
    """An illegal local input to the consensus core (e.g. a proposal nobody asked for)."""


class BlockValidator(Protocol):
    """Implemented by the runtime: re-execute ``block`` on the committed state and check every root."""

    def validate_block(self, block: Block) -> bool: ...


@dataclass(frozen=True)
class ProposeRequest:
    """The primary should build a block for (view, height) on top of ``prev_hash``.

    The block's header must carry this view and height, this replica as proposer,
    ``prev_hash``, and ``last_commit`` (the certificate of the previous block) in its body.
    """

    view: int
    height: int
    prev_hash: bytes
    last_commit: CommitCertificate | None


@dataclass(frozen=True)
class Record:
    """One durable fact about what this replica signed or saw; see the kinds above."""

    kind: int
    view: int
    height: int
    phase: int
    digest: bytes
    message: PrePrepare | ViewChange | NewView | PreparedCert | None = None
    block: Block | None = None

    def to_list(self) -> list:
        return [TAG_RECORD, self.kind, self.view, self.height, self.phase, self.digest,
                None if self.message is None else self.message.to_list(),
                None if self.block is None else self.block.to_list()]

    @classmethod
    def from_list(cls, v: Any) -> "Record":
        from consensus.messages import TAG_NEW_VIEW, TAG_PRE_PREPARE, TAG_PREPARED, TAG_VIEW_CHANGE

        f = _fields(v, TAG_RECORD, 8, "consensus record")
        message = None
        if f[6] is not None:
            decoders = {TAG_PRE_PREPARE: PrePrepare.from_list, TAG_VIEW_CHANGE: ViewChange.from_list,
                        TAG_NEW_VIEW: NewView.from_list, TAG_PREPARED: PreparedCert.from_list}
            if not isinstance(f[6], list) or not f[6] or f[6][0] not in decoders:
                raise DecodeError("consensus record message: expected a pre-prepare, view-change, new-view or prepared certificate")
            message = decoders[f[6][0]](f[6])
        return cls(_int(f[1], "record kind", 1, 3), _int(f[2], "record view"), _int(f[3], "record height"),
                   _int(f[4], "record phase", 0, 4), _bytes(f[5], HASH_BYTES, "record digest"), message,
                   None if f[7] is None else Block.from_list(f[7]))

    def encode(self) -> bytes:
        # Splice in the message's and block's own encodings (a PRE-PREPARE record carries the
        # whole block, written before every proposal is sent: re-encoding it was measurable).
        return encoding.encode_array([
            TAG_RECORD, self.kind, self.view, self.height, self.phase, self.digest,
            None if self.message is None else encoding.Encoded(self.message.encode()),
            None if self.block is None else encoding.Encoded(self.block.encode()),
        ])

    @classmethod
    def decode(cls, data: bytes) -> "Record":
        return cls.from_list(encoding.decode(data))


@dataclass
class Ready:
    """Everything the runtime must do before calling ``advance()``, in this order."""

    persist: list[Record] = field(default_factory=list)
    messages: list[tuple[bytes | None, Message]] = field(default_factory=list)  # (recipient or None = all, message)
    committed: list[tuple[Block, CommitCertificate]] = field(default_factory=list)  # in height order
    fetch: list[tuple[bytes, int, int]] = field(default_factory=list)  # (peer, from_height, count): catch-up requests
    serve: list[tuple[bytes | None, int, int]] = field(default_factory=list)  # (peer, from_height, max_count)
    propose_request: ProposeRequest | None = None

    def is_empty(self) -> bool:
        return not (self.persist or self.messages or self.committed or self.fetch or self.serve
                    or self.propose_request is not None)


def compact_records(records: list[Record], committed_height: int) -> list[Record]:
    """The records a restart still needs once ``committed_height`` is durable; the runtime may delete the rest.

    Kept: everything about heights above the committed one (signatures, prepared
    certificates, own PRE-PREPAREs), and what fixes the current view (its VIEW record,
    its VIEW-CHANGE and NEW-VIEW signatures), because a replica never goes back a view.
    """
    top_view = max((r.view for r in records), default=0)
    return [r for r in records if r.height > committed_height or (
        r.view == top_view and (r.kind == RECORD_VIEW or r.phase in (PHASE_VIEW_CHANGE, PHASE_NEW_VIEW)))]
