"""Every bound of the validator transport, plus the two small machines that enforce them.

How this works: each limit is a module constant documented where it is defined, and
``TransportLimits`` gathers them so a node (or a test) can tighten one without
monkeypatching. ``TokenBucket`` is the inbound flood guard: a peer's bucket refills at
a steady rate up to a burst capacity and every received message takes one token from
the message bucket and ``len(frame)`` tokens from the byte bucket; an empty bucket
means the peer sent faster than any honest validator would and gets disconnected.
``TokenBucket.charge`` also lets a bucket go into (bounded) debt, for costs known only
after the work (handler seconds, bytes of a block read from disk): the *next* piece of
work is refused until the debt is repaid, so a peer gets at most one item past its
budget. The remaining constants bound what happens before the signed handshake (who
may hold a pending slot) and what each message class and catch-up serving may cost per
peer; ``p2p.budgets`` and ``p2p.admission`` enforce them.
``Backoff`` spaces reconnection attempts exponentially with jitter so that a restarted
cluster does not reconnect in lock-step. Both take their clock or random source as a
parameter so tests drive them deterministically.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

from ledger.errors import ChainError
from ledger.types import MAX_BLOCK_BYTES

MiB = 1024 * 1024

#: Largest websocket frame (one message) accepted or sent. A PRE-PREPARE or a sync
#: response carries a whole block (at most ``MAX_BLOCK_BYTES``); one extra MiB leaves
#: room for its certificate and the consensus envelope. A bigger inbound frame closes
#: the connection with code 1009 (aiohttp's ``max_msg_size``).
MAX_FRAME_BYTES = MAX_BLOCK_BYTES + 1 * MiB
#: Messages waiting to be written to one peer. ``send`` returns False past this.
MAX_SEND_QUEUE_MESSAGES = 4096
#: Bytes waiting to be written to one peer (a few full blocks). ``send`` returns False past this.
MAX_SEND_QUEUE_BYTES = 64 * MiB
#: Longest a single frame write may block before the peer is judged stalled (it stopped
#: reading) and the connection is dropped, so one slow peer cannot pin memory forever.
SEND_STALL_TIMEOUT_SECONDS = 30.0
#: Time a connection has, from TCP accept or dial, to finish the signed handshake.
HANDSHAKE_TIMEOUT_SECONDS = 5.0
#: Time to open the TCP (and TLS) connection and upgrade it to a websocket. An honest
#: validator answers within a few round trips; a dial that hangs (a link that silently
#: drops packets) holds the redial for this long, and in the soak a 5 s hang started
#: during a partition kept a link down 4 s past the heal.
CONNECT_TIMEOUT_SECONDS = 2.0
#: Time to wait for the peer's close frame when we close; then the socket is dropped.
CLOSE_TIMEOUT_SECONDS = 2.0
#: Websocket ping interval; no pong within half of it closes the connection, so a
#: peer whose machine vanished is noticed without waiting for TCP timeouts.
HEARTBEAT_SECONDS = 10.0
#: Connections accepted but not yet authenticated, all peers together. Beyond this new
#: upgrades get HTTP 503 before any signature work. aiohttp fixes a websocket's frame
#: limit when it opens, so strangers can make us buffer at most this many maximum-size
#: frames (16 x 9 MiB) for at most ``HANDSHAKE_TIMEOUT_SECONDS``; honest peers that hit
#: the cap (a mass reconnect) simply retry after their backoff.
MAX_PENDING_HANDSHAKES = 16
#: Steady inbound messages per second allowed from one peer. Consensus is a few messages
#: per block per validator; transaction gossip is the bulk, and the runtime should batch
#: it. One process handles roughly 20k small frames/s on loopback, so this caps what one
#: peer can make us spend at about half of that.
INBOUND_MESSAGES_PER_SECOND = 10_000.0
#: Messages a peer may send in a burst above the steady rate (catch-up after a reconnect).
INBOUND_MESSAGE_BURST = 20_000.0
#: Steady inbound bytes per second allowed from one peer (several full blocks per second).
INBOUND_BYTES_PER_SECOND = 64.0 * MiB
#: Bytes a peer may send in a burst; many maximum-size frames (block sync).
INBOUND_BYTE_BURST = 128.0 * MiB
#: After a peer is disconnected for flooding, its new connections are refused for this long.
FLOOD_BAN_SECONDS = 10.0
#: First reconnection delay after a failed dial or a dropped connection.
BACKOFF_BASE_SECONDS = 0.25
#: Longest reconnection delay; the exponential growth stops here. Validators are few
#: and a failed dial costs one TCP connect, so this stays short: after a partition heals
#: the link must be back within about one view timeout, or one healed link plus one
#: crashed validator is two faults and stalls a 4-validator chain (seen in the soak: with
#: 30 s a link came back 17 s after the heal; with 4 s, primary recovery took 3-4 s when
#: the previous fault's link was still down).
BACKOFF_CAP_SECONDS = 1.0
#: Growth factor of the reconnection delay per consecutive failure.
BACKOFF_MULTIPLIER = 2.0
#: Share of a peer's inbound limits that we allow ourselves when sending to it. Every
#: validator runs the same limits, so pacing our writes just under them means honest
#: load meets backpressure (``send`` returns False) instead of a flood disconnect.
OUTBOUND_PACING_FRACTION = 0.9
#: Longest close reason: the websocket close frame allows 123 bytes after the code.
MAX_CLOSE_REASON_BYTES = 123
#: Longest a repeat offender is refused; each further flood/budget disconnect within the
#: ban doubles ``flood_ban_seconds`` up to this.
FLOOD_BAN_CAP_SECONDS = 300.0

# --- before the signed handshake: who may hold a pending slot --------------------------

#: Time from TCP accept (before any HTTP byte, covering the TLS handshake and the whole
#: websocket upgrade) until the upgrade request must have proven a validator key. A
#: silent or slowloris client is cut at this deadline; an honest dialer needs a few ms.
#: (A shorter ``handshake_timeout_seconds``, which also runs from accept, wins.)
PRE_AUTH_TIMEOUT_SECONDS = 2.0
#: TCP connections accepted whose upgrade request has not yet proven a validator key, all
#: remote addresses together. When full, the *oldest* such connection is cut to admit the
#: new one, so strangers cannot hold the door shut: an honest dialer authenticates within
#: milliseconds of connecting, long before this many later connections evict it.
MAX_UNAUTHENTICATED_CONNECTIONS = 64
#: The same cap per remote IP address (oldest evicted first). On a devnet every peer is
#: 127.0.0.1, which is why eviction, not refusal, is what keeps validators able to connect.
MAX_UNAUTHENTICATED_PER_ADDRESS = 16
#: Largest accepted difference between the dialer's timestamp in its signed upgrade
#: request and our clock; older requests are refused as possible replays.
UPGRADE_AUTH_MAX_SKEW_SECONDS = 60.0
#: Upgrade requests per second from one remote address that failed authentication
#: (bad signature, unknown key, stale time) before that address's further attempts are
#: refused without a signature check. Loopback addresses are exempt: every devnet peer
#: shares them, and the eviction rule already keeps them from holding slots.
FAILED_UPGRADES_PER_SECOND = 5.0
#: Failed upgrade attempts one address may make at once before the rate above applies.
FAILED_UPGRADE_BURST = 20.0
#: Remote addresses whose failed-upgrade buckets are remembered; the least recently seen is
#: forgotten beyond this, so a spoofing scan cannot grow our memory.
MAX_TRACKED_ADDRESSES = 1024

# --- after the handshake: cost budgets per peer and message class ----------------------
#
# Every inbound frame is classified by the runtime (``consensus`` votes and proposals,
# ``catchup`` block requests and answers, ``gossip`` transaction batches). Each class has
# its own per-peer budget of messages and of handler time (seconds the event loop spent
# handling that peer's messages of the class), so a flood of one kind is dropped before
# it is decoded and cannot starve another kind. A frame over budget is dropped (and
# counted by reason); a peer whose drops go on past ``budget_drop_burst`` is disconnected
# and banned like a flooder.

#: Consensus messages (PRE-PREPARE, PREPARE, COMMIT, VIEW-CHANGE, NEW-VIEW, previews) per
#: second from one peer. Honest validators send a handful per block.
CONSENSUS_MESSAGES_PER_SECOND = 2000.0
#: Consensus messages from one peer in a burst (a view change with re-sent votes).
CONSENSUS_MESSAGE_BURST = 4000.0
#: Share of the event loop one peer's consensus messages may use. A backup executes the
#: primary's proposals (and previews) while handling them, which under full load is most
#: of its loop; dropping an honest PRE-PREPARE would cost a view change, so this only
#: stops one peer from taking the whole loop. (A backup's own votes are cheap: signature
#: checks are cached, so duplicates cost a lookup.)
CONSENSUS_HANDLER_SECONDS_PER_SECOND = 0.9
#: Consensus handling time one peer may use in a burst (executing a few large blocks).
CONSENSUS_HANDLER_BURST_SECONDS = 5.0
#: Catch-up messages (BLOCK-REQUEST, BLOCKS) per second from one peer. An honest syncing
#: node keeps at most 6 requests out, each answered with up to 32 blocks.
CATCHUP_MESSAGES_PER_SECOND = 50.0
#: Catch-up messages from one peer in a burst.
CATCHUP_MESSAGE_BURST = 100.0
#: Share of the event loop one peer's catch-up traffic may use: serving reads disk, and
#: applying the blocks an honest peer sends us executes them. Sync spreads its requests
#: over every connected peer, so a lagging node still applies blocks with up to
#: 0.25 x (n - 1) of its loop; a dropped answer is simply asked again after 2 s.
CATCHUP_HANDLER_SECONDS_PER_SECOND = 0.25
#: Catch-up handling time one peer may use in a burst.
CATCHUP_HANDLER_BURST_SECONDS = 1.0
#: Transaction gossip batches per second from one peer (one is flushed every 5 ms at most).
GOSSIP_MESSAGES_PER_SECOND = 400.0
#: Gossip batches from one peer in a burst.
GOSSIP_MESSAGE_BURST = 800.0
#: Share of the event loop one peer's gossip may use (decoding and signature checks at
#: admission, ~60 us per transaction: 0.15 s/s is ~2,500 forwarded transactions/s).
GOSSIP_HANDLER_SECONDS_PER_SECOND = 0.15
#: Gossip handling time one peer may use in a burst.
GOSSIP_HANDLER_BURST_SECONDS = 1.0
#: Budget drops per second tolerated from one peer (honest bursts at the edge of a budget).
BUDGET_DROPS_PER_SECOND = 50.0
#: Drops one peer may cause at once before it is disconnected and banned.
BUDGET_DROP_BURST = 500.0

# --- serving catch-up (charged before any block is read from disk) ---------------------

#: Block bytes served to one peer per second. Charged before each block is read (the
#: block must fit in what is left), so a peer asking for more gets a refusal, not disk work.
SERVE_BYTES_PER_SECOND = 8.0 * MiB
#: Block bytes served to one peer in a burst; at least one full answer.
SERVE_BYTE_BURST = 16.0 * MiB
#: Blocks served to one peer per second (each costs a disk read whatever its size).
SERVE_BLOCKS_PER_SECOND = 512.0
#: Blocks served to one peer in a burst.
SERVE_BLOCK_BURST = 1024.0
#: A height served to a peer is not served to it again within this window: an honest
#: node re-asks only after its own 2 s request timeout, a flood re-asks at once.
SERVE_DEDUP_WINDOW_SECONDS = 1.5

#: Float slack in token comparisons, so waiting exactly the computed time always suffices.
_TOKEN_EPSILON = 1e-9

#: The message classes that each get their own per-peer budget (see above).
CLASS_CONSENSUS = "consensus"
CLASS_CATCHUP = "catchup"
CLASS_GOSSIP = "gossip"
MESSAGE_CLASSES = (CLASS_CONSENSUS, CLASS_CATCHUP, CLASS_GOSSIP)

Clock = Callable[[], float]
RandomSource = Callable[[], float]


class LimitsError(ChainError, ValueError):
    """A transport limit is inconsistent (e.g. a burst smaller than one frame)."""


@dataclass(frozen=True)
class TransportLimits:
    """The bounds one transport enforces; defaults are the module constants."""

    max_frame_bytes: int = MAX_FRAME_BYTES
    max_send_queue_messages: int = MAX_SEND_QUEUE_MESSAGES
    max_send_queue_bytes: int = MAX_SEND_QUEUE_BYTES
    send_stall_timeout_seconds: float = SEND_STALL_TIMEOUT_SECONDS
    handshake_timeout_seconds: float = HANDSHAKE_TIMEOUT_SECONDS
    connect_timeout_seconds: float = CONNECT_TIMEOUT_SECONDS
    close_timeout_seconds: float = CLOSE_TIMEOUT_SECONDS
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    max_pending_handshakes: int = MAX_PENDING_HANDSHAKES
    inbound_messages_per_second: float = INBOUND_MESSAGES_PER_SECOND
    inbound_message_burst: float = INBOUND_MESSAGE_BURST
    inbound_bytes_per_second: float = INBOUND_BYTES_PER_SECOND
    inbound_byte_burst: float = INBOUND_BYTE_BURST
    flood_ban_seconds: float = FLOOD_BAN_SECONDS
    backoff_base_seconds: float = BACKOFF_BASE_SECONDS
    backoff_cap_seconds: float = BACKOFF_CAP_SECONDS
    backoff_multiplier: float = BACKOFF_MULTIPLIER
    flood_ban_cap_seconds: float = FLOOD_BAN_CAP_SECONDS
    pre_auth_timeout_seconds: float = PRE_AUTH_TIMEOUT_SECONDS
    max_unauthenticated_connections: int = MAX_UNAUTHENTICATED_CONNECTIONS
    max_unauthenticated_per_address: int = MAX_UNAUTHENTICATED_PER_ADDRESS
    upgrade_auth_max_skew_seconds: float = UPGRADE_AUTH_MAX_SKEW_SECONDS
    failed_upgrades_per_second: float = FAILED_UPGRADES_PER_SECOND
    failed_upgrade_burst: float = FAILED_UPGRADE_BURST
    max_tracked_addresses: int = MAX_TRACKED_ADDRESSES
    consensus_messages_per_second: float = CONSENSUS_MESSAGES_PER_SECOND
    consensus_message_burst: float = CONSENSUS_MESSAGE_BURST
    consensus_handler_seconds_per_second: float = CONSENSUS_HANDLER_SECONDS_PER_SECOND
    consensus_handler_burst_seconds: float = CONSENSUS_HANDLER_BURST_SECONDS
    catchup_messages_per_second: float = CATCHUP_MESSAGES_PER_SECOND
    catchup_message_burst: float = CATCHUP_MESSAGE_BURST
    catchup_handler_seconds_per_second: float = CATCHUP_HANDLER_SECONDS_PER_SECOND
    catchup_handler_burst_seconds: float = CATCHUP_HANDLER_BURST_SECONDS
    gossip_messages_per_second: float = GOSSIP_MESSAGES_PER_SECOND
    gossip_message_burst: float = GOSSIP_MESSAGE_BURST
    gossip_handler_seconds_per_second: float = GOSSIP_HANDLER_SECONDS_PER_SECOND
    gossip_handler_burst_seconds: float = GOSSIP_HANDLER_BURST_SECONDS
    budget_drops_per_second: float = BUDGET_DROPS_PER_SECOND
    budget_drop_burst: float = BUDGET_DROP_BURST
    serve_bytes_per_second: float = SERVE_BYTES_PER_SECOND
    serve_byte_burst: float = SERVE_BYTE_BURST
    serve_blocks_per_second: float = SERVE_BLOCKS_PER_SECOND
    serve_block_burst: float = SERVE_BLOCK_BURST
    serve_dedup_window_seconds: float = SERVE_DEDUP_WINDOW_SECONDS

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise LimitsError(f"transport limit {name} must be positive, found {value!r}")
        if self.inbound_byte_burst < self.max_frame_bytes:
            raise LimitsError(
                f"inbound_byte_burst must hold at least one frame ({self.max_frame_bytes} bytes), "
                f"found {self.inbound_byte_burst}; otherwise a legal maximum-size frame would be a flood"
            )
        if self.inbound_message_burst < 1:
            raise LimitsError(f"inbound_message_burst must be at least 1, found {self.inbound_message_burst}")
        if self.max_send_queue_bytes < self.max_frame_bytes:
            raise LimitsError(
                f"max_send_queue_bytes must hold at least one frame ({self.max_frame_bytes} bytes), "
                f"found {self.max_send_queue_bytes}"
            )
        if self.backoff_cap_seconds < self.backoff_base_seconds:
            raise LimitsError(
                f"backoff_cap_seconds ({self.backoff_cap_seconds}) must be >= backoff_base_seconds "
                f"({self.backoff_base_seconds})"
            )
        if self.backoff_multiplier < 1:
            raise LimitsError(f"backoff_multiplier must be >= 1, found {self.backoff_multiplier}")
        if self.flood_ban_cap_seconds < self.flood_ban_seconds:
            raise LimitsError(f"flood_ban_cap_seconds ({self.flood_ban_cap_seconds}) must be >= flood_ban_seconds "
                              f"({self.flood_ban_seconds})")
        if self.max_unauthenticated_per_address > self.max_unauthenticated_connections:
            raise LimitsError(f"max_unauthenticated_per_address ({self.max_unauthenticated_per_address}) must be <= "
                              f"max_unauthenticated_connections ({self.max_unauthenticated_connections})")
        for cls in MESSAGE_CLASSES:
            if getattr(self, f"{cls}_message_burst") < 1:
                raise LimitsError(f"{cls}_message_burst must be at least 1, found {getattr(self, f'{cls}_message_burst')}")

    def class_budget(self, cls: str) -> tuple[float, float, float, float]:
        """(messages/s, message burst, handler s/s, handler burst s) of one message class."""
        if cls not in MESSAGE_CLASSES:
            raise LimitsError(f"message class must be one of {', '.join(MESSAGE_CLASSES)}, found {cls!r}")
        return (getattr(self, f"{cls}_messages_per_second"), getattr(self, f"{cls}_message_burst"),
                getattr(self, f"{cls}_handler_seconds_per_second"), getattr(self, f"{cls}_handler_burst_seconds"))


class TokenBucket:
    """Allows ``rate`` units per second on average and ``burst`` units at once.

    Starts full, so a freshly connected peer may send a burst straight away (catch-up
    after a reconnect is legitimately bursty).
    """

    __slots__ = ("rate", "burst", "_clock", "_tokens", "_last")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._last = clock()

    def take(self, amount: float) -> bool:
        """Spend ``amount`` tokens if available; False (and spend nothing) otherwise."""
        now = self._clock()
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._last = now
        if self._tokens + _TOKEN_EPSILON >= amount:
            self._tokens = max(0.0, self._tokens - amount)
            return True
        return False

    def wait_seconds(self, amount: float) -> float:
        """How long until ``amount`` tokens are available (0 if they are now); spends nothing."""
        now = self._clock()
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = max(self._last, now)
        if self._tokens + _TOKEN_EPSILON >= amount:
            return 0.0
        return max(_TOKEN_EPSILON, (min(amount, self.burst) - self._tokens) / self.rate)

    def refund(self, amount: float) -> None:
        """Give back tokens taken for something that did not happen after all."""
        self._tokens = min(self.burst, self._tokens + amount)

    def has_tokens(self) -> bool:
        """True while the bucket is not empty (or in debt); spends nothing."""
        self._refill()
        return self._tokens > _TOKEN_EPSILON

    def charge(self, amount: float) -> None:
        """Spend ``amount`` that was already used (measured after the fact), going into
        debt down to ``-burst`` at most; ``has_tokens`` stays False until it is repaid."""
        self._refill()
        self._tokens = max(-self.burst, self._tokens - amount)

    def _refill(self) -> None:
        now = self._clock()
        if now > self._last:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = max(self._last, now)

    @property
    def tokens(self) -> float:
        return self._tokens


class InboundLimiter:
    """One peer's message and byte buckets; ``admit`` says whether a frame is within both."""

    __slots__ = ("messages", "bytes")

    def __init__(self, limits: TransportLimits, clock: Clock = time.monotonic) -> None:
        self.messages = TokenBucket(limits.inbound_messages_per_second, limits.inbound_message_burst, clock)
        self.bytes = TokenBucket(limits.inbound_bytes_per_second, limits.inbound_byte_burst, clock)

    def admit(self, frame_bytes: int) -> bool:
        # Both buckets are charged only when both allow it, so a refused frame costs nothing.
        if not self.messages.take(1):
            return False
        if not self.bytes.take(frame_bytes):
            self.messages.refund(1)
            return False
        return True


class OutboundPacer:
    """Our own sending budget toward one peer, just under that peer's inbound limits."""

    __slots__ = ("messages", "bytes")

    def __init__(self, limits: TransportLimits, clock: Clock = time.monotonic) -> None:
        f = OUTBOUND_PACING_FRACTION
        self.messages = TokenBucket(limits.inbound_messages_per_second * f, max(1.0, limits.inbound_message_burst * f), clock)
        self.bytes = TokenBucket(limits.inbound_bytes_per_second * f,
                                 max(float(limits.max_frame_bytes), limits.inbound_byte_burst * f), clock)

    def delay(self, frame_bytes: int) -> float:
        """0 (and the frame is charged) if it may go now, else seconds to wait first."""
        wait = max(self.messages.wait_seconds(1), self.bytes.wait_seconds(frame_bytes))
        if wait > 0:
            return wait
        self.messages.take(1)
        self.bytes.take(frame_bytes)
        return 0.0


class Backoff:
    """Exponential reconnection delays with "equal jitter", capped.

    The n-th consecutive failure waits ``d/2 + rand()*d/2`` with
    ``d = min(cap, base * multiplier**n)``: never less than half the nominal delay (so
    a failing peer is not hammered) and spread over the other half (so peers that failed
    together do not retry together).
    """

    __slots__ = ("base", "cap", "multiplier", "_rand", "failures")

    def __init__(self, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS,
                 multiplier: float = BACKOFF_MULTIPLIER, rand: RandomSource = random.random) -> None:
        self.base = base
        self.cap = cap
        self.multiplier = multiplier
        self._rand = rand
        self.failures = 0

    @classmethod
    def from_limits(cls, limits: TransportLimits, rand: RandomSource = random.random) -> "Backoff":
        return cls(limits.backoff_base_seconds, limits.backoff_cap_seconds, limits.backoff_multiplier, rand)

    def nominal(self, failures: int) -> float:
        # Compare exponents instead of computing huge powers after many failures.
        if self.multiplier > 1 and failures > 0:
            steps_to_cap = 0
            delay = self.base
            while delay < self.cap and steps_to_cap < failures:
                delay *= self.multiplier
                steps_to_cap += 1
            return min(self.cap, delay)
        return min(self.cap, self.base)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one more failure."""
        nominal = self.nominal(self.failures)
        self.failures += 1
        return nominal / 2 + self._rand() * nominal / 2

    def reset(self) -> None:
        """Forget past failures after a connection that authenticated successfully."""
        self.failures = 0
