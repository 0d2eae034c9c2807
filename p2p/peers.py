"""The transport's bookkeeping per validator, and the small helpers around it.

How this works: ``Transport`` keeps one ``PeerState`` per known validator for as long
as the validator is in the set, across reconnections: its dial backoff, inbound flood
limiter, outbound pacer, per-class cost budgets (``p2p.budgets``) and ban all live
here, so reconnecting refills nothing. ``PeerStatus`` is the read-only view operators
get; ``COUNTERS`` names every counter ``Transport.stats`` reports. ``handshake_frame``
reads one handshake frame and turns a close into the peer's ``HandshakeError``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Mapping

from aiohttp import WSMsgType

from ledger.crypto import PUBLIC_KEY_BYTES
from p2p.budgets import PeerBudgets
from p2p.connection import Connection
from p2p.handshake import CLOSE_PROTOCOL, HandshakeError, P2PError, short_key
from p2p.limits import Backoff, InboundLimiter, OutboundPacer

#: Every counter ``stats()`` reports, so metrics see zeros before the first event.
COUNTERS = (
    "dial_attempts", "dial_failures", "connections_inbound", "connections_outbound", "connections_closed",
    "handshakes_refused", "handshakes_refused_by_peer", "handshake_timeouts", "busy_refusals",
    "messages_received", "bytes_received", "messages_sent", "bytes_sent",
    "send_rejected_not_connected", "send_rejected_queue_full", "queued_discarded_on_close",
    "rate_limit_disconnects", "pacing_waits", "frames_too_large", "protocol_violations", "read_errors",
    "stalled_disconnects", "handler_errors",
    "pre_auth_timeouts", "pre_auth_evictions", "upgrades_refused", "upgrades_rate_limited", "pending_replaced",
    "budget_drops", "budget_disconnects",
)


class FrameTooLargeError(P2PError, ValueError):
    """The caller tried to send a message larger than one frame may be."""


@dataclass(frozen=True)
class PeerStatus:
    """What ``net_peers`` and operators want to know about one validator link."""

    public_key: bytes
    address: str
    connected: bool
    we_dial: bool
    queued_messages: int
    queued_bytes: int
    consecutive_failures: int
    last_error: str
    last_close_code: int | None


class PeerState:
    """Everything the transport remembers about one validator (see the module docstring)."""

    __slots__ = ("key", "address", "connection", "dial_task", "backoff", "limiter", "pacer", "budgets",
                 "banned_until", "last_error", "last_close_code", "last_upgrade_sent_us")

    def __init__(self, key: bytes, address: str, backoff: Backoff, limiter: InboundLimiter, pacer: OutboundPacer,
                 budgets: PeerBudgets) -> None:
        self.key = key
        self.address = address
        self.connection: Connection | None = None
        self.dial_task: asyncio.Task[None] | None = None
        self.backoff = backoff
        self.limiter = limiter
        self.pacer = pacer
        self.budgets = budgets
        self.banned_until = float("-inf")
        self.last_error = ""
        self.last_close_code: int | None = None
        #: Our last upgrade timestamp to this peer; each new one is later (its replay guard).
        self.last_upgrade_sent_us = 0


async def handshake_frame(ws: Any) -> bytes:
    """The next handshake frame, or the peer's refusal as a HandshakeError."""
    msg = await ws.receive()
    if msg.type is WSMsgType.BINARY:
        return msg.data
    if msg.type is WSMsgType.CLOSE:
        raise HandshakeError(int(msg.data), msg.extra or "closed without a reason", by_peer=True)
    if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
        raise HandshakeError(int(ws.close_code or CLOSE_PROTOCOL), "connection closed during the handshake", by_peer=True)
    if msg.type is WSMsgType.ERROR:
        raise HandshakeError(int(getattr(msg.data, "code", CLOSE_PROTOCOL)), f"read error: {msg.data}")
    raise HandshakeError(CLOSE_PROTOCOL, f"expected a binary handshake frame, found {msg.type.name}")


def check_peer_keys(peers: Mapping[bytes, str]) -> None:
    """Refuse a validator map with a malformed key or address, naming the entry."""
    for key, address in peers.items():
        if type(key) is not bytes or len(key) != PUBLIC_KEY_BYTES:
            raise P2PError(f"peer keys must be {PUBLIC_KEY_BYTES}-byte ed25519 public keys, found {key!r}")
        if not isinstance(address, str) or ":" not in address:
            raise P2PError(f"peer address must be 'host:port', found {address!r} for {short_key(key)}..")
