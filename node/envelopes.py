"""The one-byte envelopes of peer frames, and the transport budget class of each.

How it works: every frame between nodes starts with one of these bytes, which says
what follows (consensus messages, a batch of gossiped transactions, a proposal
preview, state sync, or one sealed mailbox envelope, node/mailbox.py). ``ENVELOPE_CLASSES`` tells the transport which per-peer
budget each is charged to (node.catchup.frame_class refines the consensus envelope:
block requests and answers inside it are catch-up). Both the running node
(node.service) and a newcomer still state-syncing (node.statesync.run) use it, so a
peer's traffic is charged alike whichever of the two is listening.
"""

from __future__ import annotations

from p2p.limits import CLASS_CATCHUP, CLASS_CONSENSUS, CLASS_GOSSIP

ENVELOPE_CONSENSUS = 1
ENVELOPE_TXS = 2
ENVELOPE_PREVIEW = 3
ENVELOPE_STATESYNC = 4
ENVELOPE_MAILBOX = 5

ENVELOPE_CLASSES = {ENVELOPE_CONSENSUS: CLASS_CONSENSUS, ENVELOPE_PREVIEW: CLASS_CONSENSUS,
                    ENVELOPE_TXS: CLASS_GOSSIP, ENVELOPE_STATESYNC: CLASS_CATCHUP, ENVELOPE_MAILBOX: CLASS_GOSSIP}
