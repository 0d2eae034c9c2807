"""View changes (Castro & Liskov 2002, §4.4 and §4.5.2), mixed into ``Replica``.

How it works: a backup whose timer expires moves to view v+1 and multicasts a
VIEW-CHANGE carrying its last committed height with the certificate and its prepared
certificate above it (the P component); from then on it defers normal-case messages.
A replica that sees f+1 VIEW-CHANGEs for higher views joins the smallest of them. The
primary of the new view, holding 2f+1 VIEW-CHANGEs, derives the NEW-VIEW
(consensus/certs.py ``compute_new_view_plan``): re-propose the highest-view prepared
block, else ask the runtime for a fresh one. Backups accept a NEW-VIEW only after
recomputing it. The timer of a view change starts once 2f+1 VIEW-CHANGEs for it are in
(§4.5.2) and doubles with each view change that brings no commit, up to a cap.
A replica already running a view answers a straggler's VIEW-CHANGE for it, or its
PRE-PREPARE or votes of an older view, with its NEW-VIEW, which is a proof the
straggler can check, so no one is left behind.
"""

from __future__ import annotations

from ledger.crypto import sha256
from ledger.errors import ValidationError
from ledger.types import PHASE_COMMIT, PHASE_PREPARE, Block

from consensus.certs import NewViewPlan, check_new_view, check_view_change, compute_new_view_plan
from consensus.messages import NewView, PrePrepare, ViewChange
from consensus.ready import PHASE_NEW_VIEW, PHASE_PRE_PREPARE, PHASE_VIEW_CHANGE, RECORD_VIEW, ProposeRequest, Record
from consensus.transitions import (MAX_BACKOFF_EXPONENT, NORMAL, RETRANSMIT_TICKS, UNREACHABLE_PRIMARY_DIVISOR, VIEW_CHANGE,
                                   VIEW_WINDOW)


class ViewChanges:
    """The view-change half of ``Replica`` (state lives on the replica)."""

    def on_tick(self) -> None:
        self.now += 1
        # §4.5.2: a replica changing views starts its timer only once 2f+1 VIEW-CHANGEs
        # for that view arrived, so a lone replica cannot race ahead through views.
        if self.is_listening() or not self.voting:
            self.ticks_waiting = 0  # an observer never suspects a primary: it has no vote to move views with
        elif self.mode == NORMAL or len(self.view_changes.get(self.view, ())) >= self.quorum:
            self.ticks_waiting += 1
        self._pump_catchup()  # re-asks late catch-up requests
        # f+1 VIEW-CHANGEs stored while this replica was still listening (a rebuilt one) are
        # never delivered again (copies are dropped as duplicates): re-check joining here,
        # or a cluster whose replicas sit in different views never meets (found by the
        # real-core simulator: four replicas in views 1, 2, 2, 3 for 1000 ticks).
        self._maybe_join()
        self.idle_ticks += 1
        if self.ticks_waiting >= self._timeout_ticks():
            self._count("timeouts" if not self._primary_lost() else "timeouts.primary_unreachable")
            self._start_view_change(self.view + 1)
        elif self.idle_ticks % RETRANSMIT_TICKS == 0:
            self._retransmit()

    def peers_unreachable(self, validators: frozenset[bytes]) -> None:
        """Input from the runtime: the validators it has no connection to right now.

        Only ever shortens the view timer (``_timeout_ticks``); which view comes next
        stays v+1 for everyone, so replicas that disagree about who is reachable still
        meet in the same view.
        """
        self.unreachable = validators & self.members
        if self.primary == self.me or self.primary not in self.unreachable:
            self.primary_reached_view = self.view

    def _primary_lost(self) -> bool:
        """The runtime lost the connection to this view's primary, which it had in this view."""
        return (self.primary != self.me and self.primary in self.unreachable
                and self.primary_reached_view == self.view)

    def _timeout_ticks(self) -> int:
        """Timer T of §4.4, doubled per view change without a commit; halved once the primary is lost.

        A killed primary's connections drop at once, so its backups need not wait the
        whole timer to suspect it. Only half: a backup whose link alone is cut still
        commits through the certificates its peers send, which resets the timer, and
        should not leave a working view over one broken link. A replica that never
        reached the primary (just started, still connecting) waits the whole timer.
        """
        ticks = self.view_timeout_ticks << min(self.backoff, MAX_BACKOFF_EXPONENT)
        return max(1, ticks // UNREACHABLE_PRIMARY_DIVISOR) if self._primary_lost() else ticks

    def _retransmit(self) -> None:
        if self.mode == VIEW_CHANGE:
            if self.my_view_change is not None:
                self._send(self.my_view_change)
            return
        own = self.own_pre_prepares.get((self.view, self.height))
        if own is not None:
            self._send(own)
        for phase in (PHASE_PREPARE, PHASE_COMMIT):
            vote = self.own_votes.get((phase, self.view, self.height))
            if vote is not None:
                self._send(vote)

    def _start_view_change(self, new_view: int) -> None:
        """Move to view v+1 (or a higher one) and multicast VIEW-CHANGE (§4.4)."""
        self.view, self.mode = new_view, VIEW_CHANGE
        self.ticks_waiting = 0
        self.backoff = min(self.backoff + 1, MAX_BACKOFF_EXPONENT)
        self.new_view_msg = self.nv_pre_prepare = self.pending_new_view = None
        self.request = None
        self.view_changes = {v: vcs for v, vcs in self.view_changes.items() if v >= new_view}
        self._forget_old_views()
        self._count("view_changes")
        self._send_view_change()
        self._replay_due = True

    def _send_view_change(self) -> None:
        if not self.voting:
            return
        # One VIEW-CHANGE per (view, committed height), ever: after a restart that lost the
        # commit of a height (it was signed before the block was durable), the replica
        # reaches that height again with another valid certificate for the same block and
        # must re-send what it signed, not sign a second body (found by the real-core simulator).
        vc = self.own_view_changes.get((self.view, self.committed_height))
        if vc is None:
            prepared, blocks = self.view_change_prepared()
            vc = ViewChange.create(self.key, self.chain_id, self.view, self.committed_height, self.last_cert, prepared, blocks)
            digest = sha256(vc.signed_body())
            if not self._may_sign(self.view, self.committed_height, PHASE_VIEW_CHANGE, digest):
                return  # signed another body for this key and lost it: stay silent rather than equivocate
            self._record_signed(self.view, self.committed_height, PHASE_VIEW_CHANGE, digest, vc)
            self.own_view_changes[(self.view, self.committed_height)] = vc
        self.my_view_change = vc
        self.view_changes.setdefault(self.view, {})[self.me] = vc
        self._send(vc)

    def on_view_change(self, vc: ViewChange) -> None:
        if vc.new_view > self.view + VIEW_WINDOW:
            self._drop("far_future")
            return
        stale = vc.new_view < self.view or (vc.new_view == self.view and self.mode == NORMAL)
        if stale:
            self._help_lagging(vc)
            self._drop("old_view_change")
            return
        known = self.view_changes.get(vc.new_view, {}).get(vc.replica)
        if known is not None and known.committed_height >= vc.committed_height:
            self._drop("duplicate")
            return
        try:
            check_view_change(vc, self.sets, self.chain_id, self.verify)
        except ValidationError:
            self._drop("bad_view_change")
            return
        self.view_changes.setdefault(vc.new_view, {})[vc.replica] = vc
        if vc.committed_cert is not None and vc.committed_height >= self.height:
            self._learn_certificate(vc.committed_cert, vc.replica)
        self._maybe_join()

    def _help_lagging(self, vc: ViewChange) -> None:
        """A peer still changing to a view we already run in: show it our NEW-VIEW."""
        self._show_new_view(vc.replica)

    def _show_new_view(self, peer: bytes) -> None:
        """Send our NEW-VIEW to a peer seen in an older view, at most once per RETRANSMIT_TICKS.

        The peer checks it like any NEW-VIEW (2f+1 signed VIEW-CHANGEs), so it need not
        trust us; this is what pulls a replica that restarted in an old view, and sends
        that view's messages, into ours even when no block commits meanwhile.
        """
        if self.mode != NORMAL or self.new_view_msg is None or peer not in self.members or peer == self.me:
            return
        if self.now - self.view_entered_at < RETRANSMIT_TICKS:
            return  # messages of the old view still in flight right after the switch are no sign of a lagger
        last = self.nv_sent.get(peer)
        if last is None or self.now - last >= RETRANSMIT_TICKS:
            self.nv_sent[peer] = self.now
            self._send(self.new_view_msg, peer)

    def _maybe_join(self) -> None:
        """f+1 VIEW-CHANGEs for views above ours: join the smallest of them (§4.5.2)."""
        if self.is_listening() or not self.voting:
            return
        views_by_replica: dict[bytes, int] = {}
        for view, vcs in self.view_changes.items():
            if view > self.view:
                for replica in vcs:
                    if replica != self.me and replica in self.members:
                        views_by_replica[replica] = min(view, views_by_replica.get(replica, view))
        if len(views_by_replica) >= self.n - self.quorum + 1:  # f+1
            self._start_view_change(min(views_by_replica.values()))

    def _try_new_view(self) -> None:
        """As primary of the new view with 2f+1 VIEW-CHANGEs, derive and send NEW-VIEW (§4.4)."""
        if self.mode != VIEW_CHANGE or self.primary != self.me or not self.voting or self.pending_new_view is not None:
            return
        vcs = {r: vc for r, vc in self.view_changes.get(self.view, {}).items() if r in self.members}
        if len(vcs) < self.quorum or self.me not in vcs:
            return
        others = sorted((vc for r, vc in vcs.items() if r != self.me), key=lambda vc: (-vc.committed_height, vc.replica))
        chosen = [vcs[self.me]] + others[: self.quorum - 1]
        plan = self.new_view_plan(chosen)
        if plan.base_height >= self.height:
            self._learn_certificate(plan.base_cert, max(chosen, key=lambda vc: vc.committed_height).replica)
            return
        self.pending_new_view = (self.view, chosen, plan)
        if plan.selected is not None:
            block = self._find_block(plan.selected.digest, chosen)
            if block is None:
                self._count("prepared_block_missing")
                self.pending_new_view = None
                return
            if not self._may_sign(self.view, plan.height, PHASE_PRE_PREPARE, block.block_hash):
                self.pending_new_view = None
                return
            pp = PrePrepare.create(self.key, self.chain_id, self.view, block)
            self._record_signed(self.view, plan.height, PHASE_PRE_PREPARE, pp.digest, pp, block)
            self.own_pre_prepares[(self.view, plan.height)] = pp
            self._finish_new_view(pp)
            return
        own = self.own_pre_prepares.get((self.view, plan.height))
        if own is not None and own.block.header.view == self.view:
            self._finish_new_view(own)
            return
        self.request = ProposeRequest(self.view, plan.height, self.committed_hash, self.last_cert)
        self._out.propose_request = self.request

    def _find_block(self, digest: bytes, chosen: list[ViewChange]) -> Block | None:
        if digest in self.blocks:
            return self.blocks[digest]
        if self.prepared_block is not None and self.prepared_block.block_hash == digest:
            return self.prepared_block
        for vcs in self.view_changes.values():
            for vc in vcs.values():
                for block in vc.blocks:
                    if block.block_hash == digest:
                        return block
        return None

    def _finish_new_view(self, pp: PrePrepare) -> None:
        view, chosen, plan = self.pending_new_view
        nv = NewView.create(self.key, self.chain_id, view, chosen, pp)
        self._record_signed(view, plan.height, PHASE_NEW_VIEW, sha256(nv.signed_body()))
        self._send(nv)
        self._enter_view(nv, plan)

    def on_new_view(self, nv: NewView) -> None:
        # No VIEW_WINDOW here: a NEW-VIEW proves itself with 2f+1 VIEW-CHANGEs and is never
        # buffered, so one far ahead is what brings a long-absent replica back.
        if nv.view < self.view or (nv.view == self.view and self.mode == NORMAL):
            self._drop("old_new_view")
            return
        try:
            plan = check_new_view(nv, self.sets, self.chain_id, self.verify, self.new_view_plan)
        except ValidationError:
            self._drop("bad_new_view")
            return
        self._enter_view(nv, plan)

    def new_view_plan(self, view_changes: list[ViewChange]) -> NewViewPlan:
        return compute_new_view_plan(view_changes)

    def _enter_view(self, nv: NewView, plan: NewViewPlan) -> None:
        """Start normal operation in the NEW-VIEW's view with its derived PRE-PREPARE (§4.4)."""
        self._start_normal(nv.view, plan.height)
        self.new_view_msg, self.nv_pre_prepare = nv, nv.pre_prepare
        self._out.persist.append(Record(RECORD_VIEW, nv.view, plan.height, PHASE_NEW_VIEW, sha256(nv.signed_body())))
        self._count("new_views")
        if plan.base_cert is not None and plan.base_height >= self.height:
            self._learn_certificate(plan.base_cert, nv.primary)
        if plan.height > self.height:
            self._saw_height(plan.height, nv.primary)
        self._replay_due = True

    def _start_normal(self, view: int, start_height: int) -> None:
        """Leave any view change and run ``view`` from ``start_height`` on (§4.4, after NEW-VIEW)."""
        self.view, self.mode = view, NORMAL
        self.view_start_height = start_height
        self.view_entered_at = self.now
        self.ticks_waiting = self.idle_ticks = 0
        self.nv_pre_prepare = self.pending_new_view = None
        self.my_view_change = None
        self.view_changes = {v: vcs for v, vcs in self.view_changes.items() if v > view}
        self._forget_old_views()
