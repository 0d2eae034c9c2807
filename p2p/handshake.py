"""The authenticated handshake between two validators, as two I/O-free state machines.

How this works: the dialer and the listener each hold a fresh 32-byte nonce. Four
canonical-encoded messages cross the websocket before any application data:

    dialer   -> HELLO      [tag, version, chain_id, dialer_pk, dialer_nonce]
    listener -> CHALLENGE  [tag, version, chain_id, listener_pk, listener_nonce, listener_sig]
    dialer   -> AUTH       [tag, dialer_sig]
    listener -> READY      [tag]

Both signatures are ``SigningKey.sign(DOMAIN_HANDSHAKE, chain_id, transcript(role))``
where the transcript names the role ("dialer"/"listener"), both public keys and both
nonces. Each side therefore signs the other's fresh nonce (no replay), and the role tag
stops a peer from reflecting our own signature back at us. The listener checks the
dialer's key against the validator set before doing any signature work, so a stranger
costs one decode. The dialer knows whom it dialed and refuses any other key.

Before any of that, the dialer proves its key in the HTTP upgrade request itself
(``upgrade_headers``): its public key, a microsecond timestamp, a fresh nonce and a
signature over ``["p2p-upgrade", version, dialer_pk, listener_pk, time_us, nonce]``
under the same domain and chain id. The listener checks it with one verify
(``check_upgrade``) before a websocket is created: unknown keys cost no signature
work, the timestamp must be within the allowed skew and strictly later than the last
one accepted from that key (so a captured request cannot be replayed), and it names
the listener (so it cannot be replayed to another validator). Strangers therefore
never get a pending handshake slot; a refusal is an HTTP 403 whose
``X-Shopchain-Refusal`` header carries the same close code and reason as a websocket
refusal would, so the dialer logs the same thing either way.

Every refusal is a ``HandshakeError`` carrying a websocket close code and a short
reason; the transport closes the socket with exactly that code and reason, so the
refused side (and its logs) learn why.

What this does not do: without TLS the channel after the handshake is neither
encrypted nor bound to the handshake, so a man in the middle could relay it and then
inject frames. Consensus messages and transactions carry their own signatures, so an
injected frame cannot forge a vote; confidentiality and integrity of the channel come
from the optional mutual TLS (``p2p.tls``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Collection, Mapping

from ledger.crypto import DOMAIN_HANDSHAKE, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, SigningKey, verify_signed
from ledger.encoding import decode, encode
from ledger.errors import ChainError, DecodeError

#: Version of this handshake and of the framing that follows it.
PROTOCOL_VERSION = 1
#: Size of each side's fresh random challenge.
NONCE_BYTES = 32
#: Largest handshake message; the real ones are under 300 bytes.
MAX_HANDSHAKE_MESSAGE_BYTES = 1024

TAG_HELLO = "shopchain-p2p/hello"
TAG_CHALLENGE = "shopchain-p2p/challenge"
TAG_AUTH = "shopchain-p2p/auth"
TAG_READY = "shopchain-p2p/ready"

# Websocket close codes. 1000-1015 are the standard ones; 4000-4999 are ours.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_FRAME_TOO_LARGE = 1009
CLOSE_PROTOCOL = 4000
CLOSE_WRONG_CHAIN = 4001
CLOSE_WRONG_VERSION = 4002
CLOSE_UNKNOWN_KEY = 4003
CLOSE_BAD_SIGNATURE = 4004
CLOSE_WRONG_DIRECTION = 4005
CLOSE_UNEXPECTED_PEER = 4006
CLOSE_HANDSHAKE_TIMEOUT = 4008
CLOSE_REPLACED = 4009
CLOSE_RATE_LIMITED = 4029
CLOSE_BANNED = 4030
CLOSE_STALLED = 4031
CLOSE_REMOVED = 4032


#: Headers of the authenticated upgrade request (hex values) and of a refusal.
HEADER_KEY = "X-Shopchain-Key"
HEADER_LISTENER = "X-Shopchain-Listener"
HEADER_TIME = "X-Shopchain-Time"
HEADER_NONCE = "X-Shopchain-Nonce"
HEADER_SIGNATURE = "X-Shopchain-Signature"
HEADER_REFUSAL = "X-Shopchain-Refusal"
#: Longest accepted value of any of our upgrade headers (a 64-byte signature in hex).
MAX_UPGRADE_HEADER_CHARS = 2 * SIGNATURE_BYTES


class P2PError(ChainError):
    """Root of the transport's own errors."""


class HandshakeError(P2PError):
    """The handshake failed; ``code`` and ``reason`` go into the websocket close frame.

    ``by_peer`` is True when the other side refused us (we read its close frame).
    """

    def __init__(self, code: int, reason: str, by_peer: bool = False) -> None:
        self.code = code
        self.reason = reason
        self.by_peer = by_peer
        who = "refused by peer" if by_peer else "refused"
        super().__init__(f"handshake {who}: {reason} (close code {code})")


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def is_dialer(own_key: bytes, peer_key: bytes) -> bool:
    """The lower public key dials, so each pair of validators has exactly one connection."""
    return own_key < peer_key


def transcript(role: str, dialer_key: bytes, listener_key: bytes, dialer_nonce: bytes, listener_nonce: bytes) -> bytes:
    """The payload each side signs (the chain id is added by ``SigningKey.sign``)."""
    return encode(["p2p-handshake", PROTOCOL_VERSION, role, dialer_key, listener_key, dialer_nonce, listener_nonce])


def short_key(key: bytes) -> str:
    return key[:8].hex()


def _decode_message(data: Any, tag: str, length: int) -> list:
    if not isinstance(data, (bytes, bytearray)):
        raise HandshakeError(CLOSE_PROTOCOL, f"expected a binary {tag} frame, found {type(data).__name__}")
    if len(data) > MAX_HANDSHAKE_MESSAGE_BYTES:
        raise HandshakeError(CLOSE_PROTOCOL, f"{tag} of {len(data)} bytes exceeds {MAX_HANDSHAKE_MESSAGE_BYTES}")
    try:
        value = decode(bytes(data))
    except DecodeError as exc:
        raise HandshakeError(CLOSE_PROTOCOL, f"{tag} is not canonical: {str(exc)[:60]}") from None
    if type(value) is not list or len(value) != length or value[0] != tag:
        raise HandshakeError(CLOSE_PROTOCOL, f"expected a {length}-item {tag} message")
    return value


def _check_bytes(value: Any, size: int, what: str) -> bytes:
    if type(value) is not bytes or len(value) != size:
        found = len(value) if type(value) is bytes else type(value).__name__
        raise HandshakeError(CLOSE_PROTOCOL, f"{what} must be {size} bytes, found {found}")
    return value


def _check_header(version: Any, chain_id: Any, own_chain_id: str) -> None:
    if version != PROTOCOL_VERSION:
        raise HandshakeError(CLOSE_WRONG_VERSION, f"protocol version {PROTOCOL_VERSION} expected, found {version!r}")
    if chain_id != own_chain_id:
        raise HandshakeError(CLOSE_WRONG_CHAIN, f"chain id {own_chain_id!r} expected, found {str(chain_id)[:40]!r}")


@dataclass(frozen=True)
class HandshakeResult:
    peer_key: bytes
    outbound: bool


class DialerHandshake:
    """The connecting side: ``hello()``, then ``on_challenge(frame) -> auth``, then ``on_ready(frame)``."""

    def __init__(self, node_key: SigningKey, chain_id: str, expected_peer: bytes, nonce: bytes | None = None) -> None:
        self.node_key = node_key
        self.chain_id = chain_id
        self.expected_peer = expected_peer
        self.nonce = nonce if nonce is not None else new_nonce()
        self._listener_nonce: bytes | None = None

    def hello(self) -> bytes:
        return encode([TAG_HELLO, PROTOCOL_VERSION, self.chain_id, self.node_key.public_key, self.nonce])

    def on_challenge(self, frame: Any) -> bytes:
        _, version, chain_id, listener_key, listener_nonce, signature = _decode_message(frame, TAG_CHALLENGE, 6)
        _check_header(version, chain_id, self.chain_id)
        _check_bytes(listener_key, PUBLIC_KEY_BYTES, "listener public key")
        _check_bytes(listener_nonce, NONCE_BYTES, "listener nonce")
        _check_bytes(signature, SIGNATURE_BYTES, "listener signature")
        if listener_key != self.expected_peer:
            raise HandshakeError(
                CLOSE_UNEXPECTED_PEER,
                f"dialed validator {short_key(self.expected_peer)}.. but key {short_key(listener_key)}.. answered",
            )
        me = self.node_key.public_key
        signed = transcript("listener", me, listener_key, self.nonce, listener_nonce)
        if not verify_signed(DOMAIN_HANDSHAKE, self.chain_id, listener_key, signed, signature):
            raise HandshakeError(CLOSE_BAD_SIGNATURE, f"listener signature does not verify for key {short_key(listener_key)}..")
        self._listener_nonce = listener_nonce
        mine = transcript("dialer", me, listener_key, self.nonce, listener_nonce)
        return encode([TAG_AUTH, self.node_key.sign(DOMAIN_HANDSHAKE, self.chain_id, mine)])

    def on_ready(self, frame: Any) -> HandshakeResult:
        if self._listener_nonce is None:
            raise HandshakeError(CLOSE_PROTOCOL, "READY before CHALLENGE")
        _decode_message(frame, TAG_READY, 1)
        return HandshakeResult(self.expected_peer, outbound=True)


class ListenerHandshake:
    """The accepting side: ``on_hello(frame) -> challenge``, then ``on_auth(frame) -> ready``.

    ``validators`` is the set of keys allowed to connect; it is read when HELLO arrives.
    """

    def __init__(self, node_key: SigningKey, chain_id: str, validators: Collection[bytes], nonce: bytes | None = None) -> None:
        self.node_key = node_key
        self.chain_id = chain_id
        self.validators = validators
        self.nonce = nonce if nonce is not None else new_nonce()
        self._dialer_key: bytes | None = None
        self._dialer_nonce: bytes | None = None

    @property
    def claimed_key(self) -> bytes | None:
        """The key the dialer claimed in HELLO (not yet proven until ``on_auth`` returns)."""
        return self._dialer_key

    def on_hello(self, frame: Any) -> bytes:
        _, version, chain_id, dialer_key, dialer_nonce = _decode_message(frame, TAG_HELLO, 5)
        _check_header(version, chain_id, self.chain_id)
        _check_bytes(dialer_key, PUBLIC_KEY_BYTES, "dialer public key")
        _check_bytes(dialer_nonce, NONCE_BYTES, "dialer nonce")
        me = self.node_key.public_key
        if dialer_key == me:
            raise HandshakeError(CLOSE_PROTOCOL, "dialer presented this node's own key")
        if dialer_key not in self.validators:
            raise HandshakeError(CLOSE_UNKNOWN_KEY, f"key {short_key(dialer_key)}.. is not in the validator set")
        if not is_dialer(dialer_key, me):
            raise HandshakeError(CLOSE_WRONG_DIRECTION, "the lower public key dials; this node dials you")
        self._dialer_key = dialer_key
        self._dialer_nonce = dialer_nonce
        signed = transcript("listener", dialer_key, me, dialer_nonce, self.nonce)
        signature = self.node_key.sign(DOMAIN_HANDSHAKE, self.chain_id, signed)
        return encode([TAG_CHALLENGE, PROTOCOL_VERSION, self.chain_id, me, self.nonce, signature])

    def on_auth(self, frame: Any) -> tuple[bytes, HandshakeResult]:
        if self._dialer_key is None or self._dialer_nonce is None:
            raise HandshakeError(CLOSE_PROTOCOL, "AUTH before HELLO")
        _, signature = _decode_message(frame, TAG_AUTH, 2)
        _check_bytes(signature, SIGNATURE_BYTES, "dialer signature")
        signed = transcript("dialer", self._dialer_key, self.node_key.public_key, self._dialer_nonce, self.nonce)
        if not verify_signed(DOMAIN_HANDSHAKE, self.chain_id, self._dialer_key, signed, signature):
            raise HandshakeError(CLOSE_BAD_SIGNATURE, f"dialer signature does not verify for key {short_key(self._dialer_key)}..")
        return encode([TAG_READY]), HandshakeResult(self._dialer_key, outbound=False)


# ----- the authenticated upgrade request (before any websocket exists) -------------------


def upgrade_payload(dialer_key: bytes, listener_key: bytes, time_us: int, nonce: bytes) -> bytes:
    """What the dialer signs in its upgrade request (the chain id is added by ``sign``)."""
    return encode(["p2p-upgrade", PROTOCOL_VERSION, dialer_key, listener_key, time_us, nonce])


def upgrade_headers(node_key: SigningKey, chain_id: str, listener_key: bytes, time_us: int,
                    nonce: bytes | None = None) -> dict[str, str]:
    """The headers a dialer adds to its websocket upgrade request to ``listener_key``."""
    nonce = nonce if nonce is not None else new_nonce()
    signature = node_key.sign(DOMAIN_HANDSHAKE, chain_id, upgrade_payload(node_key.public_key, listener_key, time_us, nonce))
    return {HEADER_KEY: node_key.public_key.hex(), HEADER_LISTENER: listener_key.hex(), HEADER_TIME: str(time_us),
            HEADER_NONCE: nonce.hex(), HEADER_SIGNATURE: signature.hex()}


def _header_bytes(headers: Mapping[str, str], name: str, size: int) -> bytes:
    value = headers.get(name)
    if value is None:
        raise HandshakeError(CLOSE_PROTOCOL, f"upgrade request lacks the {name} header")
    if len(value) != 2 * size:
        raise HandshakeError(CLOSE_PROTOCOL, f"{name} must be {2 * size} hex digits, found {min(len(value), 999)}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise HandshakeError(CLOSE_PROTOCOL, f"{name} is not hex") from None


@dataclass(frozen=True)
class UpgradeClaim:
    """A parsed upgrade request: who it claims to be, not yet verified."""

    dialer_key: bytes
    listener_key: bytes
    time_us: int
    nonce: bytes
    signature: bytes


def parse_upgrade(headers: Mapping[str, str]) -> UpgradeClaim:
    """The claim in the upgrade headers; HandshakeError for anything malformed (no crypto)."""
    key = _header_bytes(headers, HEADER_KEY, PUBLIC_KEY_BYTES)
    raw_time = headers.get(HEADER_TIME, "")
    if not (0 < len(raw_time) <= 20 and raw_time.isdigit()):
        raise HandshakeError(CLOSE_PROTOCOL, f"{HEADER_TIME} must be a decimal microsecond timestamp")
    return UpgradeClaim(key, _header_bytes(headers, HEADER_LISTENER, PUBLIC_KEY_BYTES), int(raw_time), _header_bytes(headers, HEADER_NONCE, NONCE_BYTES),
                        _header_bytes(headers, HEADER_SIGNATURE, SIGNATURE_BYTES))


def check_upgrade(claim: UpgradeClaim, chain_id: str, own_key: bytes, validators: Collection[bytes],
                  now_us: int, max_skew_us: int, last_time_us: int) -> None:
    """Refuse (HandshakeError) unless ``claim`` is a fresh upgrade by a validator that should dial us.

    Cheap checks first; the one signature verify comes last. ``last_time_us`` is the
    newest timestamp already accepted from this key (0 if none): replays are refused.
    """
    key = claim.dialer_key
    if claim.listener_key != own_key:
        raise HandshakeError(CLOSE_UNEXPECTED_PEER, f"dialed validator {short_key(claim.listener_key)}.. but key "
                             f"{short_key(own_key)}.. answered")
    if key == own_key:
        raise HandshakeError(CLOSE_PROTOCOL, "dialer presented this node's own key")
    if key not in validators:
        raise HandshakeError(CLOSE_UNKNOWN_KEY, f"key {short_key(key)}.. is not in the validator set")
    if not is_dialer(key, own_key):
        raise HandshakeError(CLOSE_WRONG_DIRECTION, "the lower public key dials; this node dials you")
    if abs(now_us - claim.time_us) > max_skew_us:
        raise HandshakeError(CLOSE_PROTOCOL, f"upgrade timestamp {claim.time_us} is more than {max_skew_us // 1_000_000}s "
                             f"from this node's clock {now_us}; check the clocks")
    if claim.time_us <= last_time_us:
        raise HandshakeError(CLOSE_PROTOCOL, f"upgrade timestamp {claim.time_us} is not after the last accepted "
                             f"{last_time_us} from this key (a replay?)")
    payload = upgrade_payload(key, own_key, claim.time_us, claim.nonce)
    if not verify_signed(DOMAIN_HANDSHAKE, chain_id, key, payload, claim.signature):
        raise HandshakeError(CLOSE_BAD_SIGNATURE, f"upgrade signature does not verify for key {short_key(key)}..")


def refusal_header(error: HandshakeError) -> str:
    """The ``X-Shopchain-Refusal`` value of an HTTP refusal: "<close code> <reason>"."""
    return f"{error.code} {error.reason}"[:200]


def parse_refusal(value: str | None, status: int) -> HandshakeError:
    """The dialer's view of an HTTP refusal (a HandshakeError by the peer)."""
    if value:
        code, _, reason = value.partition(" ")
        if code.isdigit():
            return HandshakeError(int(code), reason or "refused", by_peer=True)
    return HandshakeError(CLOSE_PROTOCOL, f"upgrade refused with HTTP {status}", by_peer=True)
