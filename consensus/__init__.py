"""PBFT consensus as a pure state machine (see consensus/replica.py)."""

from consensus.certs import Verifier, check_certificate, compute_new_view_plan, primary_of
from consensus.messages import (Blocks, BlockRequest, Message, NewView, PrePrepare, PreparedCert, ViewChange,
                                decode_message, encode_message)
from consensus.ready import BlockValidator, ProposeRequest, ProtocolError, Ready, Record
from consensus.replica import TRANSITIONS, VIEW_TIMEOUT_TICKS, Replica

__all__ = [
    "BlockRequest", "BlockValidator", "Blocks", "Message", "NewView", "PrePrepare", "PreparedCert", "ProposeRequest",
    "ProtocolError", "Ready", "Record", "Replica", "TRANSITIONS", "VIEW_TIMEOUT_TICKS", "Verifier", "ViewChange",
    "check_certificate", "compute_new_view_plan", "decode_message", "encode_message", "primary_of",
]
