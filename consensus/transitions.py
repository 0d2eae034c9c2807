"""The replica's transition table, input kinds and every limit, in one place.

How it works: a replica is in one of two modes, NORMAL (agreeing on blocks in its view)
or VIEW_CHANGE (waiting for the NEW-VIEW of the view it moved to). Each input has a
kind; ``TRANSITIONS[(mode, kind)]`` names the ``Replica`` method that handles it, or
``DEFER`` to hold it until the next view starts. Nothing else decides where an input
goes, so the protocol's shape can be read here. Handlers still check views, heights
and signatures, and drop (counting the reason) whatever does not fit.
"""

from __future__ import annotations

from ledger.types import PHASE_PREPARE, Vote

from consensus.messages import BlockRequest, Blocks, Message, NewView, PrePrepare, ViewChange
from consensus.ready import ProtocolError

#: Ticks without a commit before a backup suspects the primary (paper §4.4 timer T).
VIEW_TIMEOUT_TICKS = 20
#: The timer doubles with each view change that brings no commit, up to T * 2**this.
MAX_BACKOFF_EXPONENT = 4
#: The timer is divided by this once the runtime reports the primary unreachable.
UNREACHABLE_PRIMARY_DIVISOR = 2
#: Own messages for the open height or view change are re-sent this often (the paper
#: assumes retransmission over a lossy network).
RETRANSMIT_TICKS = 6
#: A replica that starts without records (fresh, or rebuilt from an empty store) first
#: listens this long before it proposes or suspects a primary, and then until it has
#: caught up with the heights it heard of: it cannot know what it signed before.
STARTUP_LISTEN_TICKS = 10
#: ...but for at most this many view timeouts, so a peer lying about heights cannot
#: keep it quiet for good.
AMNESIA_MAX_TIMEOUTS = 64
#: Messages for heights above committed + this are dropped (after asking for blocks).
HEIGHT_WINDOW = 4
#: Messages for views above the current view + this are dropped.
VIEW_WINDOW = 32
#: COMMIT votes from views this far below the current one are still collected.
PAST_VIEWS_KEPT = 4
#: Future messages buffered per peer; the oldest is dropped beyond this.
MAX_BUFFERED_PER_PEER = 24
#: Candidate blocks kept for the open height (one per view's PRE-PREPARE at most).
MAX_CANDIDATE_BLOCKS = 8
#: Replays of buffered messages per input (each replay can unlock the next).
MAX_REPLAY_ROUNDS = 8

NORMAL = "normal"
VIEW_CHANGE = "view-change"

# Input kinds.
IN_PRE_PREPARE, IN_PREPARE, IN_COMMIT = "pre-prepare", "prepare", "commit"
IN_VIEW_CHANGE, IN_NEW_VIEW = "view-change", "new-view"
IN_BLOCK_REQUEST, IN_BLOCKS = "block-request", "blocks"
IN_TICK, IN_PROPOSE, IN_DELIVER = "tick", "propose", "deliver"

#: Held back until the NEW-VIEW for its view arrives (paper §4.4: during a view change a
#: replica accepts only VIEW-CHANGE, NEW-VIEW and checkpoint messages).
DEFER = "defer"

TRANSITIONS: dict[tuple[str, str], str] = {
    (NORMAL, IN_PRE_PREPARE): "on_pre_prepare",  # §4.2
    (NORMAL, IN_PREPARE): "on_prepare",  # §4.2
    (NORMAL, IN_COMMIT): "on_commit",  # §4.2
    (NORMAL, IN_VIEW_CHANGE): "on_view_change",  # §4.4 (f+1 rule: §4.5.2)
    (NORMAL, IN_NEW_VIEW): "on_new_view",  # §4.4
    (NORMAL, IN_BLOCK_REQUEST): "on_block_request",
    (NORMAL, IN_BLOCKS): "on_blocks",
    (NORMAL, IN_TICK): "on_tick",
    (NORMAL, IN_PROPOSE): "on_propose",
    (NORMAL, IN_DELIVER): "on_deliver",
    (VIEW_CHANGE, IN_PRE_PREPARE): DEFER,
    (VIEW_CHANGE, IN_PREPARE): DEFER,
    (VIEW_CHANGE, IN_COMMIT): "on_commit",  # a COMMIT certificate is proof in any mode
    (VIEW_CHANGE, IN_VIEW_CHANGE): "on_view_change",
    (VIEW_CHANGE, IN_NEW_VIEW): "on_new_view",
    (VIEW_CHANGE, IN_BLOCK_REQUEST): "on_block_request",
    (VIEW_CHANGE, IN_BLOCKS): "on_blocks",
    (VIEW_CHANGE, IN_TICK): "on_tick",
    (VIEW_CHANGE, IN_PROPOSE): "on_propose",  # the fresh block of a NEW-VIEW
    (VIEW_CHANGE, IN_DELIVER): "on_deliver",
}


def kind_of(message: Message) -> str:
    if isinstance(message, Vote):
        return IN_PREPARE if message.phase == PHASE_PREPARE else IN_COMMIT
    kinds = {PrePrepare: IN_PRE_PREPARE, ViewChange: IN_VIEW_CHANGE, NewView: IN_NEW_VIEW,
             BlockRequest: IN_BLOCK_REQUEST, Blocks: IN_BLOCKS}
    kind = kinds.get(type(message))
    if kind is None:
        raise ProtocolError(f"expected a consensus message, found {type(message).__name__}")
    return kind
