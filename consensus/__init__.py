"""PBFT consensus as a pure state machine: events in, actions out, no I/O.

How a runtime drives it (see consensus/ready.py for the order and why)::

    replica = Replica(chain_id=..., key=node_key, validators=ordered_keys, block_validator=executor,
                      committed_height=h, committed_hash=head_hash_or_genesis, last_certificate=cert_of_h,
                      records=[Record.decode(b) for b in saved_records])
    # on a network message:  replica.step(decode_message(raw), sender=peer_key)
    # on a timer:            replica.peers_unreachable(validators_not_connected); replica.tick()
    # catch-up answers (Blocks) are network messages too: replica.step(blocks, sender=peer_key)
    while replica.has_ready():
        rd = replica.ready()
        save(r.encode() for r in rd.persist)          # durably, BEFORE sending
        for to, msg in rd.messages: send(to, encode_message(msg))
        for block, cert in rd.committed: apply(block, cert)
        for peer, start, count in rd.fetch: send(peer, encode_message(BlockRequest(start, count)))
        for peer, from_height, count in rd.serve: send(peer, encode_message(Blocks(load(from_height, count))))
        replica.advance()
        if rd.propose_request: replica.propose(build_block(rd.propose_request))
"""

from consensus.catchup import CATCHUP_TIMEOUT_TICKS
from consensus.certs import CachingVerifier, Verifier, check_certificate, compute_new_view_plan, primary_of
from consensus.messages import (Blocks, BlockRequest, Message, NewView, PrePrepare, PreparedCert, ViewChange,
                                decode_message, encode_message)
from consensus.ready import BlockValidator, ProposeRequest, ProtocolError, Ready, Record, compact_records
from consensus.replica import Replica
from consensus.transitions import TRANSITIONS, VIEW_TIMEOUT_TICKS

__all__ = [
    "BlockRequest", "BlockValidator", "Blocks", "CATCHUP_TIMEOUT_TICKS", "Message", "NewView", "PrePrepare", "PreparedCert", "ProposeRequest",
    "CachingVerifier", "ProtocolError", "Ready", "Record", "Replica", "TRANSITIONS", "VIEW_TIMEOUT_TICKS", "Verifier", "ViewChange",
    "check_certificate", "compact_records", "compute_new_view_plan", "decode_message", "encode_message", "primary_of",
]
