"""How a replica comes back: restart from records, rebuild from nothing, rejoin the view.

How it works: a restarted replica is rebuilt from its persisted ``Record``s
(``_restore``): the same view, the same signatures (so it never signs a second digest
for one (view, height, phase)), its prepared certificate. It then catches up by
fetching certified blocks, and that is also how it learns the view the others run in.

A replica that restarted or was rebuilt while the others changed views also learns the
view from the blocks it catches up on: a commit certificate of view v holds 2f+1 COMMITs
signed in v, so at least f+1 honest replicas ran v in normal operation, which they do
only after checking v's NEW-VIEW. Having committed that block, the replica stands where
those honest replicas stood and enters v in normal operation (``_adopt_certified_view``).
Its first height in v is above the certified one, so the NEW-VIEW's derived PRE-PREPARE
(for a height at or below it) never concerns it; like every replica in a view it takes
fresh PRE-PREPAREs only from the view's first height on (``view_start_height``).

A replica that starts without any records (a fresh validator, or one rebuilt from an
empty store) cannot know what its key signed before, so it first listens
(``is_listening``): no proposal and no view change until it has caught up with the
heights it hears of, so it cannot sign a second PRE-PREPARE or VIEW-CHANGE for a height
decided while it was gone.
"""

from __future__ import annotations

from ledger.types import PHASE_COMMIT, PHASE_PREPARE, CommitCertificate, Vote

from consensus.ready import (PHASE_NEW_VIEW, PHASE_PRE_PREPARE, PHASE_VIEW_CHANGE, RECORD_PREPARED, RECORD_SIGNED,
                             RECORD_VIEW, Record)
from consensus.transitions import AMNESIA_MAX_TIMEOUTS, NORMAL, STARTUP_LISTEN_TICKS, VIEW_CHANGE

#: ``Record.phase`` of a VIEW record written on entering a view through a commit
#: certificate (``digest`` is then the certificate's hash) instead of a NEW-VIEW.
PHASE_CERTIFIED_VIEW = PHASE_COMMIT


class Rejoin:
    """The restart half of ``Replica`` (state lives on the replica)."""

    def is_listening(self) -> bool:
        """Started without records and not yet caught up: propose nothing, suspect no one.

        A validator rebuilt from an empty store may have signed PRE-PREPAREs and
        VIEW-CHANGEs for the heights it now passes again; proposing or changing views
        before it has caught up with the heights it hears of could sign a second digest
        for one of them. Votes need no such care: peers only send PRE-PREPAREs for the
        heights they work on, which are above anything it signed before it went down.
        """
        if not self.amnesic:
            return False
        if self.now >= AMNESIA_MAX_TIMEOUTS * self.view_timeout_ticks or (
                self.now >= STARTUP_LISTEN_TICKS and self.known_height < self.height):
            self.amnesic = False
            self._count("listened")
            return False
        return True

    def _adopt_certified_view(self, cert: CommitCertificate) -> None:
        """Just committed ``cert``'s block: enter its view if we are behind it (module docstring).

        Called with ``cert`` already verified (2f+1 valid COMMITs of ``cert.view``) and the
        replica at height ``cert.height + 1``. A replica in a view change to ``cert.view``
        itself also stops waiting for the NEW-VIEW: the view is running. One changing to a
        higher view keeps its VIEW-CHANGE promise and waits.
        """
        if cert.view < self.view or (cert.view == self.view and self.mode == NORMAL):
            return
        self._start_normal(cert.view, cert.height + 1)
        self.request = None
        self._out.persist.append(Record(RECORD_VIEW, cert.view, cert.height + 1, PHASE_CERTIFIED_VIEW, cert.cert_hash))
        self._count("certified_views")

    def _restore(self, records: list[Record]) -> None:
        """Rebuild from persisted records: same view, same signatures, same prepared certificate."""
        normal_views = {0}
        for rec in records:
            if rec.kind == RECORD_SIGNED:
                if rec.height > self.committed_height or rec.phase in (PHASE_VIEW_CHANGE, PHASE_NEW_VIEW):
                    self.signed[(rec.view, rec.height, rec.phase)] = rec.digest
                self.view = max(self.view, rec.view)
                if rec.phase == PHASE_PRE_PREPARE and rec.height > self.committed_height:
                    self.own_pre_prepares[(rec.view, rec.height)] = rec.message
                if rec.phase == PHASE_VIEW_CHANGE and rec.message is not None:
                    self.view_changes.setdefault(rec.view, {})[self.me] = rec.message
                    self.own_view_changes[(rec.view, rec.height)] = rec.message
            elif rec.kind == RECORD_PREPARED and rec.height == self.height:
                if self.prepared is None or rec.view > self.prepared.view:
                    self.prepared, self.prepared_block = rec.message, rec.block
            elif rec.kind == RECORD_VIEW:
                normal_views.add(rec.view)
                if rec.view >= self.view:
                    self.view_start_height = rec.height
                self.view = max(self.view, rec.view)
        if self.view not in normal_views and self.view in self.view_changes:
            self.mode = VIEW_CHANGE
            self.my_view_change = self.view_changes[self.view][self.me]
            self.backoff = 1
            self._send_view_change()
        for (view, height, phase), digest in sorted(self.signed.items()):
            if view == self.view and height == self.height and phase in (PHASE_PREPARE, PHASE_COMMIT):
                vote = Vote.create(self.key, self.chain_id, phase, view, height, digest)
                self.own_votes[(phase, view, height)] = vote
                self._add_vote(vote)
                self._send(vote)
        self._count("restored" if records else "started")
