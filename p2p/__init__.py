"""Validator-to-validator transport: authenticated aiohttp websockets in a full mesh.

The node runtime uses ``Transport`` (send/broadcast/on_message); ``p2p.tls`` makes the
consortium CA and mutual-TLS contexts; ``TransportLimits`` holds every bound;
``p2p.admission`` guards connections from TCP accept until a validator key is proven;
``p2p.budgets`` charges each peer's frames to per-class cost budgets.
"""

from p2p.handshake import HandshakeError, P2PError
from p2p.limits import TransportLimits
from p2p.transport import FrameTooLargeError, PeerStatus, Transport

__all__ = ["FrameTooLargeError", "HandshakeError", "P2PError", "PeerStatus", "Transport", "TransportLimits"]
