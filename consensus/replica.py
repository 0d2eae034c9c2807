"""The PBFT replica: Castro & Liskov (OSDI'99 / TOCS 2002) for a chain of blocks.

How it works: a ``Replica`` is a deterministic state machine with no I/O. Inputs are
``step(message)``, ``tick()``, ``propose(block)`` and ``deliver_committed(block, cert)``
(catch-up answers arrive through ``step`` like any message: consensus/catchup.py);
outputs accumulate in a ``Ready`` that the runtime takes with ``ready()`` and
acknowledges with ``advance()`` (consensus/ready.py says in which order to act).

Sequence number = block height, digest = block hash. Only height committed+1 is ever
in flight, because a block carries its parent's commit certificate. For that height
the replica keeps one slot: accepted PRE-PREPAREs per view, the votes, its prepared
certificate. On commit the slot is dropped: the committed block with its certificate
is the stable checkpoint (§4.3) and everything below it is garbage.

Which handler an input reaches depends only on (mode, input kind), in the one
``TRANSITIONS`` table (consensus/transitions.py, with every limit); view changes live
in consensus/viewchange.py. Network input that fails a check is dropped and counted
(``counters``); illegal local input raises ``ProtocolError``. Deviations from the paper,
each for blocks: a replica commits on any 2f+1 signed COMMITs for a block it holds
(signed COMMITs are a transferable proof, so "committed-local" needs no more), and a
replica re-issues its VIEW-CHANGE for the same view when its committed height grows, so
the new primary can always derive the NEW-VIEW from its own latest state.

Validator sets change by height (ledger/validator_set.py): ``validators`` is either one
key list or ``sets(height) -> keys``, which the runtime answers from committed state
(final for every height up to committed + 1). On each commit the replica takes the set
of its new open height; quorums, primaries and memberships are that set's. A replica
whose key is not in the set of its open height is an observer: it follows (accepts
PRE-PREPAREs, checks certificates, commits, catches up) but never signs, never times
out a view and never proposes; it starts voting at the first height whose set holds
its key, without a restart.

The runtime's answer for height h is final once h - 2 is applied (a change decided in
block d is in force from d + 2 at the earliest), so a replica that commits several
catch-up blocks in one ``Ready`` waits for ``advance`` before it takes the next set
(``_set_pending``): it never checks a certificate against a set it cannot yet know.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from ledger.crypto import SigningKey
from ledger.errors import InvariantError, ValidationError
from ledger.types import PHASE_COMMIT, PHASE_PREPARE, Block, CommitCertificate, Vote, quorum_size

from consensus.catchup import CATCHUP_TIMEOUT_TICKS, CatchUp
from consensus.certs import (DEFAULT_VERIFIER, NewViewPlan, ValidatorsAt, Verifier, check_certificate, is_valid_signed,
                             is_valid_vote, primary_of, sets_of)
from consensus.messages import Blocks, BlockRequest, Message, NewView, PrePrepare, PreparedCert, ViewChange
from consensus.ready import (PHASE_NEW_VIEW, PHASE_PRE_PREPARE, PHASE_VIEW_CHANGE, RECORD_PREPARED, RECORD_SIGNED,
                             BlockValidator, ProposeRequest, ProtocolError, Ready, Record)
from consensus.transitions import (DEFER, HEIGHT_WINDOW, IN_DELIVER, IN_PROPOSE, IN_TICK,
                                   MAX_BUFFERED_PER_PEER, MAX_CANDIDATE_BLOCKS, MAX_REPLAY_ROUNDS, NORMAL, PAST_VIEWS_KEPT, TRANSITIONS,
                                   VIEW_CHANGE, VIEW_TIMEOUT_TICKS, VIEW_WINDOW, kind_of)
from consensus.rejoin import Rejoin
from consensus.viewchange import ViewChanges

__all__ = ["Replica", "TRANSITIONS", "NORMAL", "VIEW_CHANGE", "VIEW_TIMEOUT_TICKS", "HEIGHT_WINDOW",
           "MAX_BUFFERED_PER_PEER"]


class Replica(ViewChanges, Rejoin):
    """One validator's PBFT state machine. See the module docstring."""

    def __init__(self, *, chain_id: str, key: SigningKey, validators: ValidatorsAt | Sequence[bytes],
                 block_validator: BlockValidator,
                 committed_height: int = 0, committed_hash: bytes, last_certificate: CommitCertificate | None = None,
                 records: list[Record] = (), verifier: Verifier = DEFAULT_VERIFIER,
                 view_timeout_ticks: int = VIEW_TIMEOUT_TICKS, catchup_timeout_ticks: int = CATCHUP_TIMEOUT_TICKS,
                 observer: bool = False) -> None:
        if view_timeout_ticks < 1:
            raise ProtocolError(f"view_timeout_ticks must be at least 1, found {view_timeout_ticks}")
        if catchup_timeout_ticks < 1:
            raise ProtocolError(f"catchup_timeout_ticks must be at least 1, found {catchup_timeout_ticks}")
        self.view_timeout_ticks = view_timeout_ticks  # timer T of §4.4, in ticks
        if committed_height > 0 and (last_certificate is None or last_certificate.height != committed_height):
            raise ProtocolError(f"a replica at committed height {committed_height} needs that block's certificate")
        self.chain_id, self.key, self.me = chain_id, key, key.public_key
        self.sets = sets_of(validators)
        self.observer = observer  # never signs, whatever the set says (an auditor's node)
        self.block_validator = block_validator
        self.verify = verifier
        self.committed_height, self.committed_hash, self.last_cert = committed_height, committed_hash, last_certificate
        self._set_pending = False
        self._enter_height()
        self.view, self.mode = 0, NORMAL
        self.view_start_height = 1  # fresh PRE-PREPAREs of this view are taken from this height on
        self.view_entered_at = 0
        self.now = 0  # ticks since start: logical time, only for pacing
        self.ticks_waiting = 0
        self.idle_ticks = 0  # ticks since the last commit or view entry: paces retransmission
        self.backoff = 0
        self.known_height = committed_height  # highest height seen evidence of
        self.catchup = CatchUp(catchup_timeout_ticks)
        self.unreachable: frozenset[bytes] = frozenset()  # from the runtime: see peers_unreachable
        self.primary_reached_view = -1  # the last view in which the runtime reached its primary
        self.counters: dict[str, int] = {}
        self.signed: dict[tuple[int, int, int], bytes] = {}  # (view, height, phase) -> digest
        self.own_pre_prepares: dict[tuple[int, int], PrePrepare] = {}
        self.own_votes: dict[tuple[int, int, int], Vote] = {}  # (phase, view, height)
        self.my_view_change: ViewChange | None = None
        self.own_view_changes: dict[tuple[int, int], ViewChange] = {}  # (view, committed height) -> what it signed
        self.view_changes: dict[int, dict[bytes, ViewChange]] = {}
        self.new_view_msg: NewView | None = None
        self.nv_pre_prepare: PrePrepare | None = None
        self.pending_new_view: tuple[int, list[ViewChange], NewViewPlan] | None = None
        self.request: ProposeRequest | None = None
        self.nv_sent: dict[bytes, int] = {}
        self.buffer: dict[bytes, deque] = {}
        self._out = Ready()
        self._sender: bytes | None = None
        self._unapplied = 0
        self._replay_due = False
        self._reset_slot()
        self.amnesic = not records  # nothing says what this key signed before: see is_listening
        self._restore(list(records))
        self._after_input()

    # --- public interface -----------------------------------------------------------

    def step(self, message: Message, sender: bytes | None = None) -> None:
        """Feed one message from the network. Never raises for bad network input."""
        self._sender = sender
        handler = TRANSITIONS[(self.mode, kind_of(message))]
        if handler == DEFER:
            self._defer(message)
        else:
            getattr(self, handler)(message)
        self._after_input()

    def tick(self) -> None:
        getattr(self, TRANSITIONS[(self.mode, IN_TICK)])()
        self._after_input()

    def propose(self, block: Block) -> bool:
        """The block asked for by ``ready().propose_request``; False if that request went stale."""
        accepted = getattr(self, TRANSITIONS[(self.mode, IN_PROPOSE)])(block)
        self._after_input()
        return accepted

    def deliver_committed(self, block: Block, cert: CommitCertificate) -> bool:
        """A block fetched by catch-up; accepted only with a valid certificate for the next height."""
        accepted = getattr(self, TRANSITIONS[(self.mode, IN_DELIVER)])(block, cert)
        self._after_input()
        return accepted

    def has_ready(self) -> bool:
        return not self._out.is_empty()

    def ready(self) -> Ready:
        return self._out

    def advance(self) -> None:
        """The runtime persisted, sent and applied everything in the last ``ready()``."""
        self._out = Ready()
        if self._unapplied:
            self._unapplied = 0
            self._replay_due = True
        if self._set_pending:
            self._set_pending = False
            self._enter_height()
            self._drain_catchup()
        self._after_input()

    @property
    def height(self) -> int:
        """The height being agreed on: one above the last committed block."""
        return self.committed_height + 1

    @property
    def primary(self) -> bytes:
        return primary_of(self.view, self.validators)

    @property
    def voting(self) -> bool:
        """This replica's key is in the set of the height it works on (else it only follows)."""
        return not self.observer and self.me in self.members

    def commit_quorum(self) -> int:
        """COMMITs needed to commit: 2f+1 (paper §4.2, 'committed-local')."""
        return self.quorum

    def prepare_quorum(self) -> int:
        """PREPAREs from backups that, with the PRE-PREPARE, make a block prepared: 2f (§4.2)."""
        return self.quorum - 1

    def view_change_prepared(self) -> tuple[tuple[PreparedCert, ...], tuple[Block, ...]]:
        """The P component of a VIEW-CHANGE: prepared certificates above the checkpoint (§4.4)."""
        if self.prepared is None:
            return (), ()
        return (self.prepared,), (self.prepared_block,)

    # --- bookkeeping ----------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n

    def _drop(self, reason: str) -> None:
        self._count("dropped." + reason)

    def _enter_height(self) -> None:
        """Take the validator set of the open height (after every commit and at start)."""
        self.validators = list(self.sets(self.height))
        self.members = set(self.validators)
        self.n = len(self.validators)
        self.quorum = quorum_size(self.n)

    def _members_at(self, height: int) -> set[bytes] | frozenset[bytes]:
        return self.members if height == self.height else frozenset(self.sets(height))

    def _reset_slot(self) -> None:
        self.blocks: dict[bytes, Block] = {}  # validated candidate blocks for self.height
        self.pre_prepares: dict[int, PrePrepare] = {}  # accepted, one per view (§4.2)
        self.votes: dict[tuple[int, int, bytes], dict[bytes, Vote]] = {}
        self.voted: dict[tuple[int, int, bytes], bytes] = {}  # (phase, view, validator) -> digest
        self.prepared: PreparedCert | None = None
        self.prepared_block: Block | None = None

    def _forget_old_views(self) -> None:
        """Bound the slot across many view changes at one height: keep recent views only."""
        floor = self.view - PAST_VIEWS_KEPT
        self.votes = {k: v for k, v in self.votes.items() if k[1] >= floor}
        self.voted = {k: d for k, d in self.voted.items() if k[1] >= floor}
        self.pre_prepares = {v: pp for v, pp in self.pre_prepares.items() if v >= floor}
        # Views never go back, so guards for older views are never consulted again.
        self.signed = {k: d for k, d in self.signed.items() if k[0] >= self.view}
        self.own_view_changes = {k: vc for k, vc in self.own_view_changes.items() if k[0] >= self.view}
        while len(self.blocks) > MAX_CANDIDATE_BLOCKS:
            del self.blocks[next(iter(self.blocks))]

    def _send(self, message: Message, to: bytes | None = None) -> None:
        self._out.messages.append((to, message))

    def _may_sign(self, view: int, height: int, phase: int, digest: bytes) -> bool:
        """The no-equivocation guard: one digest per (view, height, phase), ever."""
        previous = self.signed.get((view, height, phase))
        if previous is not None and previous != digest:
            self._count("refused.conflicting_signature")
            return False
        return True

    def _record_signed(self, view: int, height: int, phase: int, digest: bytes, message=None, block=None) -> None:
        self.signed[(view, height, phase)] = digest
        self._out.persist.append(Record(RECORD_SIGNED, view, height, phase, digest, message, block))

    def _after_input(self) -> None:
        rounds = 0
        while self._replay_due and not self._unapplied and rounds < MAX_REPLAY_ROUNDS:
            self._replay_due = False
            rounds += 1
            self._replay()
        if self._unapplied:
            return
        if self.mode == NORMAL:
            nvpp = self.nv_pre_prepare
            if nvpp is not None and nvpp.view == self.view and nvpp.height == self.height and self.view not in self.pre_prepares:
                self._accept_pre_prepare(nvpp, fresh=False)
            self._maybe_request_proposal()
        else:
            self._try_new_view()

    # --- buffering of future messages ---------------------------------------------

    def _defer(self, message: Message) -> None:
        view = message.view
        if view < self.view:
            self._drop("old_view")
            return
        self._buffer(message, message.validator if isinstance(message, Vote) else message.primary)

    def _buffer(self, message: Message, peer: bytes) -> None:
        if peer not in self.members and peer not in self._members_at(message.height):
            self._drop("not_member")
            return
        queue = self.buffer.setdefault(peer, deque())
        if len(queue) >= MAX_BUFFERED_PER_PEER:
            queue.popleft()
            self._drop("buffer_full")
        queue.append(message)

    def _replay(self) -> None:
        pending = self.buffer
        self.buffer = {}
        for queue in pending.values():
            for message in queue:
                handler = TRANSITIONS[(self.mode, kind_of(message))]
                if handler == DEFER:
                    self._defer(message)
                else:
                    getattr(self, handler)(message)

    def _saw_height(self, height: int, peer: bytes | None) -> None:
        """Evidence that blocks up to ``height - 1`` are committed elsewhere: ask for them."""
        if height <= self.height:
            return
        if height - 1 > self.known_height:
            self.known_height = height - 1
        self._pump_catchup()

    def _pump_catchup(self) -> None:
        """Top up catch-up requests (consensus/catchup.py) to the validators the runtime reaches."""
        if self.known_height <= self.committed_height:
            return
        peers = [v for v in self.validators if v != self.me and v not in self.unreachable]
        requests = self.catchup.pump(self.committed_height, self.known_height, peers, self.now)
        self._out.fetch.extend(requests)
        if requests:
            self._count("fetch_requests", len(requests))

    # --- normal case (§4.2) ---------------------------------------------------------

    def on_pre_prepare(self, pp: PrePrepare) -> None:
        if pp.height < self.height or pp.view < self.view:
            if pp.view < self.view:
                self._show_new_view(pp.primary)
            self._drop("old_pre_prepare")
            return
        if pp.view > self.view + VIEW_WINDOW or pp.height > self.height + HEIGHT_WINDOW:
            self._saw_height(pp.height, pp.primary)
            self._drop("far_future")
            return
        if pp.primary != primary_of(pp.view, self.validators if pp.height == self.height else self.sets(pp.height)):
            self._drop("pre_prepare_not_from_primary")
            return
        if not is_valid_signed(pp, pp.primary, self.chain_id, self.verify):
            self._drop("bad_signature")
            return
        if pp.height > self.height:
            self._learn_parent(pp)
        if pp.height > self.height or pp.view > self.view or self._unapplied:
            self._saw_height(pp.height, pp.primary)
            self._buffer(pp, pp.primary)
            return
        self._accept_pre_prepare(pp, fresh=True)

    def _learn_parent(self, pp: PrePrepare) -> None:
        """A PRE-PREPARE for height+1 carries the certificate of the block we may hold."""
        cert = pp.block.last_commit if pp.block is not None else None
        if cert is not None and cert.height == self.height:
            self._learn_certificate(cert, pp.primary)

    def _accept_pre_prepare(self, pp: PrePrepare, fresh: bool) -> None:
        """Accept a verified PRE-PREPARE for (self.view, self.height); send PREPARE (§4.2)."""
        existing = self.pre_prepares.get(pp.view)
        if existing is not None:
            self._drop("duplicate" if existing.digest == pp.digest else "equivocating_pre_prepare")
            return
        block = pp.block
        if block is None or block.block_hash != pp.digest:
            self._drop("digest_mismatch")
            return
        if pp.height < self.view_start_height:
            self._drop("below_view_start")  # the NEW-VIEW settled this view's heights from its own on
            return
        if not self._may_sign(pp.view, pp.height, PHASE_PREPARE, pp.digest):
            return
        if pp.digest not in self.blocks:
            reason = self._check_block(block, pp.view if fresh else None)
            if reason is not None:
                self._drop(reason)
                return
            if pp.primary != self.me and not self.block_validator.validate_block(block):
                self._drop("invalid_block")
                return
            self.blocks[pp.digest] = block
        self.pre_prepares[pp.view] = pp.without_block()
        if pp.primary != self.me:
            self._cast(PHASE_PREPARE, pp.view, pp.digest)
        self._check_prepared(pp.view, pp.digest)
        self._check_committed(pp.digest)

    def _check_block(self, block: Block, fresh_view: int | None) -> str | None:
        """Header rules the core can check itself; the runtime re-executes the rest."""
        h = block.header
        if h.chain_id != self.chain_id or h.height != self.height or h.prev_hash != self.committed_hash:
            return "block_not_on_chain"
        if fresh_view is not None and (h.view != fresh_view or h.proposer != primary_of(fresh_view, self.validators)):
            return "block_view_or_proposer"
        try:
            block.check_shape()
            if self.height == 1:
                if block.last_commit is not None:
                    return "block_last_commit"
            elif block.last_commit != self.last_cert:
                if block.last_commit is None:
                    return "block_last_commit"
                check_certificate(block.last_commit, self.sets(self.committed_height), self.chain_id, self.verify,
                                  self.committed_height, self.committed_hash)
        except ValidationError:
            return "block_shape"
        return None

    def _cast(self, phase: int, view: int, digest: bytes) -> None:
        """Sign, persist and broadcast a PREPARE or COMMIT, unless it would equivocate."""
        if not self.voting:
            return  # an observer follows the votes of others
        if not self._may_sign(view, self.height, phase, digest):
            return
        if (view, self.height, phase) not in self.signed:
            self._record_signed(view, self.height, phase, digest)
        vote = Vote.create(self.key, self.chain_id, phase, view, self.height, digest)
        self.own_votes[(phase, view, self.height)] = vote
        self._count("votes_cast")  # operators (and tests) see a validator take part, not just follow
        self._send(vote)
        self._add_vote(vote)

    def _add_vote(self, vote: Vote) -> bool:
        seen = self.voted.get((vote.phase, vote.view, vote.validator))
        if seen is not None:
            self._drop("duplicate" if seen == vote.block_hash else "equivocating_vote")
            return False
        self.voted[(vote.phase, vote.view, vote.validator)] = vote.block_hash
        self.votes.setdefault((vote.phase, vote.view, vote.block_hash), {})[vote.validator] = vote
        return True

    def _check_vote(self, vote: Vote) -> bool:
        if self._set_pending:
            self._drop("set_pending")  # the open height's set is not known yet: its sender retransmits
            return False
        if vote.validator not in self._members_at(vote.height):
            self._drop("not_member")
            return False
        if not is_valid_vote(vote, self.chain_id, self.verify):
            self._drop("bad_signature")
            return False
        return True

    def on_prepare(self, vote: Vote) -> None:
        if vote.height < self.height or vote.view < self.view:
            if vote.view < self.view:
                self._show_new_view(vote.validator)
            self._drop("old_prepare")
            return
        if vote.view > self.view + VIEW_WINDOW or vote.height > self.height + HEIGHT_WINDOW:
            self._saw_height(vote.height, vote.validator)
            self._drop("far_future")
            return
        if vote.validator == primary_of(vote.view, self.validators if vote.height == self.height
                                        else self.sets(vote.height)):
            self._drop("prepare_from_primary")
            return
        if not self._check_vote(vote):
            return
        if vote.height > self.height or vote.view > self.view:
            self._saw_height(vote.height, vote.validator)
            self._buffer(vote, vote.validator)
            return
        if self._add_vote(vote):
            self._check_prepared(vote.view, vote.block_hash)

    def _check_prepared(self, view: int, digest: bytes) -> None:
        """prepared(m, v, n, i): the PRE-PREPARE and 2f matching PREPAREs; then COMMIT (§4.2)."""
        if view != self.view or self.mode != NORMAL:
            return
        pp = self.pre_prepares.get(view)
        prepares = self.votes.get((PHASE_PREPARE, view, digest), {})
        if pp is None or pp.digest != digest or len(prepares) < self.prepare_quorum():
            return
        if self.prepared is not None and self.prepared.view >= view:
            return
        chosen = sorted(prepares.values(), key=lambda v: v.validator)[: self.prepare_quorum()]
        self.prepared = PreparedCert.build(pp, chosen)
        self.prepared_block = self.blocks[digest]
        self._out.persist.append(Record(RECORD_PREPARED, view, self.height, PHASE_PREPARE, digest,
                                        self.prepared, self.prepared_block))
        self._cast(PHASE_COMMIT, view, digest)
        self._check_committed(digest)

    def on_commit(self, vote: Vote) -> None:
        if vote.view < self.view and vote.height >= self.height:
            self._show_new_view(vote.validator)
        if vote.height < self.height or vote.view + PAST_VIEWS_KEPT < self.view:
            self._drop("old_commit")
            return
        if vote.view > self.view + VIEW_WINDOW or vote.height > self.height + HEIGHT_WINDOW:
            self._saw_height(vote.height, vote.validator)
            self._drop("far_future")
            return
        if not self._check_vote(vote):
            return
        if vote.height > self.height:
            self._saw_height(vote.height, vote.validator)
            self._buffer(vote, vote.validator)
            return
        if self._add_vote(vote):
            self._check_committed(vote.block_hash)

    def _check_committed(self, digest: bytes) -> None:
        """2f+1 signed COMMITs in one view for a block we hold commit it (§4.2)."""
        for (phase, view, d), votes in self.votes.items():
            if phase != PHASE_COMMIT or d != digest or len(votes) < self.commit_quorum():
                continue
            block = self.blocks.get(digest)
            if block is None:
                self._count("certificate_without_block")
                self._saw_height(self.height + 1, next(iter(votes)))
                return
            chosen = sorted(votes.values(), key=lambda v: v.validator)[: self.commit_quorum()]
            self._commit(block, CommitCertificate.from_votes(chosen))
            return

    def _learn_certificate(self, cert: CommitCertificate, peer: bytes | None) -> None:
        """A certificate for our open height commits the block if we hold it; else fetch."""
        if cert.height != self.height:
            if cert.height > self.height:
                self._saw_height(cert.height + 1, peer)
            return
        block = self.blocks.get(cert.block_hash)
        if block is None and self.prepared_block is not None and self.prepared_block.block_hash == cert.block_hash:
            block = self.prepared_block
        if block is None:
            self._saw_height(cert.height + 1, peer)
            return
        try:
            check_certificate(cert, self.validators, self.chain_id, self.verify, self.height, block.block_hash)
        except ValidationError:
            self._drop("bad_certificate")
            return
        self._commit(block, cert)

    def _commit(self, block: Block, cert: CommitCertificate) -> None:
        """Stable checkpoint (§4.3): emit the block, drop the slot and everything below it."""
        if (block.height != self.height or cert.block_hash != block.block_hash
                or block.header.prev_hash != self.committed_hash):
            raise InvariantError(f"commit of block {block.height} ({block.block_hash.hex()[:16]}) does not extend "
                                 f"committed height {self.committed_height} or does not match its certificate")
        self._out.committed.append((block, cert))
        self._unapplied += 1
        self.committed_height, self.committed_hash, self.last_cert = block.height, block.block_hash, cert
        # Final for the new open height only while at most this commit is unapplied (module docstring).
        self._set_pending = self._unapplied > 1
        if not self._set_pending:
            self._enter_height()
        self._reset_slot()
        self.ticks_waiting = self.idle_ticks = 0
        self.backoff = 0
        self.request = None
        self.pending_new_view = None
        self._count("committed")
        done = self.committed_height
        self.signed = {k: d for k, d in self.signed.items() if k[1] > done or k[2] in (PHASE_VIEW_CHANGE, PHASE_NEW_VIEW)}
        self.own_pre_prepares = {k: p for k, p in self.own_pre_prepares.items() if k[1] > done}
        self.own_votes = {k: v for k, v in self.own_votes.items() if k[2] > done}
        self._adopt_certified_view(cert)
        if self.mode == VIEW_CHANGE:
            self._send_view_change()  # re-issue with the higher checkpoint
        self._replay_due = True

    # --- primary duties -------------------------------------------------------------

    def _maybe_request_proposal(self) -> None:
        if (self.primary != self.me or not self.voting or self.view in self.pre_prepares
                or self.height < self.view_start_height or self.is_listening()):
            return
        own = self.own_pre_prepares.get((self.view, self.height))
        if own is not None:  # restarted after signing it: re-send, never a new digest
            self._send(own)
            self._accept_pre_prepare(own, fresh=own.block.header.view == self.view)
            return
        if self.request is None or (self.request.view, self.request.height) != (self.view, self.height):
            self.request = ProposeRequest(self.view, self.height, self.committed_hash, self.last_cert)
            self._out.propose_request = self.request

    def on_propose(self, block: Block) -> bool:
        req = self.request
        h = block.header
        if req is None or (h.view, h.height) != (req.view, req.height):
            if (h.view, h.height) < (self.view, self.height):
                self._count("stale_proposal")
                return False
            raise ProtocolError(f"proposal for view {h.view} height {h.height}, but none was requested "
                                f"(open request: {None if req is None else (req.view, req.height)})")
        if h.proposer != self.me:
            raise ProtocolError(f"proposal names proposer {h.proposer.hex()[:16]}, expected this replica")
        reason = self._check_block(block, req.view)
        if reason is not None:
            raise ProtocolError(f"proposal for height {h.height} breaks a header rule: {reason}")
        if not self._may_sign(req.view, req.height, PHASE_PRE_PREPARE, block.block_hash):
            raise ProtocolError(f"already signed a different pre-prepare for view {req.view} height {req.height}")
        self.request = None
        pp = PrePrepare.create(self.key, self.chain_id, req.view, block)
        self._record_signed(req.view, req.height, PHASE_PRE_PREPARE, pp.digest, pp, block)
        self.own_pre_prepares[(req.view, req.height)] = pp
        if self.pending_new_view is not None and self.pending_new_view[0] == req.view:
            self._finish_new_view(pp)
        else:
            self._send(pp)
            self._accept_pre_prepare(pp, fresh=True)
        return True

    # --- catch-up -------------------------------------------------------------------

    def on_block_request(self, request: BlockRequest) -> None:
        if request.from_height > self.committed_height:
            self._drop("block_request_ahead")
            return
        self._out.serve.append((self._sender, request.from_height, request.max_count))

    def on_blocks(self, blocks: Blocks) -> None:
        """A catch-up answer: buffer it, commit every consecutive height it completes, ask for more."""
        self.catchup.on_blocks(blocks.items, self.committed_height)
        self._drain_catchup()
        self._pump_catchup()

    def _drain_catchup(self) -> None:
        """Commit buffered catch-up blocks in order while the open height's set is known."""
        while True:
            if self._set_pending:  # the rest waits in the buffer for advance()
                if self.committed_height + 1 in self.catchup.buffer:
                    self._count("deliver_waits_for_set")
                return
            item = self.catchup.take_next(self.committed_height)
            if item is None or not self.on_deliver(*item):
                return  # a bad block or certificate is dropped; the next pump asks again

    def on_deliver(self, block: Block, cert: CommitCertificate) -> bool:
        if self._set_pending:
            self._count("deliver_waits_for_set")
            return False
        if block.height != self.height:
            self._drop("delivered_out_of_order")
            return False
        if block.header.chain_id != self.chain_id or block.header.prev_hash != self.committed_hash:
            self._drop("delivered_not_on_chain")
            return False
        try:
            block.check_shape()
            check_certificate(cert, self.validators, self.chain_id, self.verify, self.height, block.block_hash)
        except ValidationError:
            self._drop("delivered_bad_certificate")
            return False
        self._count("caught_up")
        self._commit(block, cert)
        return True
