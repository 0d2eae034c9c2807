"""Socket-free tests of the transport's parts: handshake machines, limits, backoff, TLS helpers."""

from __future__ import annotations

import ssl

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from ledger.crypto import DOMAIN_HANDSHAKE, SigningKey
from ledger.encoding import decode, encode
from p2p.connection import clip_reason
from p2p.handshake import (
    CLOSE_BAD_SIGNATURE,
    CLOSE_PROTOCOL,
    CLOSE_UNEXPECTED_PEER,
    CLOSE_UNKNOWN_KEY,
    CLOSE_WRONG_CHAIN,
    CLOSE_WRONG_DIRECTION,
    CLOSE_WRONG_VERSION,
    TAG_CHALLENGE,
    TAG_HELLO,
    DialerHandshake,
    HandshakeError,
    ListenerHandshake,
    is_dialer,
    new_nonce,
    transcript,
)
from p2p.limits import (
    MAX_CLOSE_REASON_BYTES,
    MAX_FRAME_BYTES,
    Backoff,
    InboundLimiter,
    LimitsError,
    OutboundPacer,
    TokenBucket,
    TransportLimits,
)
from p2p.tls import (
    TLSConfigError,
    client_ssl_context,
    create_ca,
    issue_node_certificate,
    node_key_from_certificate,
    server_ssl_context,
)

CHAIN = "p2p-unit"
KEYS = sorted((SigningKey.from_label(f"unit-{i}") for i in range(3)), key=lambda k: k.public_key)
LOW, MID, HIGH = KEYS
VALIDATORS = {k.public_key for k in KEYS}


def refused(code: int, call, *args) -> HandshakeError:
    with pytest.raises(HandshakeError) as info:
        call(*args)
    assert info.value.code == code, info.value
    return info.value


# ----- handshake ------------------------------------------------------------------------


def test_handshake_succeeds_and_each_side_learns_the_other_key():
    dialer = DialerHandshake(LOW, CHAIN, HIGH.public_key)
    listener = ListenerHandshake(HIGH, CHAIN, VALIDATORS)
    challenge = listener.on_hello(dialer.hello())
    ready, inbound = listener.on_auth(dialer.on_challenge(challenge))
    outbound = dialer.on_ready(ready)
    assert (inbound.peer_key, inbound.outbound) == (LOW.public_key, False)
    assert (outbound.peer_key, outbound.outbound) == (HIGH.public_key, True)


def test_listener_refuses_strangers_wrong_direction_own_key_chain_and_version():
    listener = ListenerHandshake(MID, CHAIN, VALIDATORS)
    stranger = SigningKey.from_label("stranger")
    error = refused(CLOSE_UNKNOWN_KEY, listener.on_hello, DialerHandshake(stranger, CHAIN, MID.public_key).hello())
    assert "not in the validator set" in error.reason and not error.by_peer
    refused(CLOSE_WRONG_DIRECTION, listener.on_hello, DialerHandshake(HIGH, CHAIN, MID.public_key).hello())
    refused(CLOSE_PROTOCOL, listener.on_hello, DialerHandshake(MID, CHAIN, MID.public_key).hello())
    refused(CLOSE_WRONG_CHAIN, listener.on_hello, DialerHandshake(LOW, "other", MID.public_key).hello())
    hello = encode([TAG_HELLO, 99, CHAIN, LOW.public_key, new_nonce()])
    refused(CLOSE_WRONG_VERSION, listener.on_hello, hello)


def test_listener_refuses_an_auth_signed_by_another_key_or_replayed_from_another_session():
    nonce = new_nonce()  # the dialer chooses its nonce, so an attacker can reuse one
    first = DialerHandshake(LOW, CHAIN, HIGH.public_key, nonce=nonce)
    listener = ListenerHandshake(HIGH, CHAIN, VALIDATORS)
    recorded_auth = first.on_challenge(listener.on_hello(first.hello()))
    listener.on_auth(recorded_auth)

    # Same dialer nonce, fresh listener nonce: the recorded AUTH no longer verifies.
    replay = ListenerHandshake(HIGH, CHAIN, VALIDATORS)
    replay.on_hello(first.hello())
    refused(CLOSE_BAD_SIGNATURE, replay.on_auth, recorded_auth)

    # Someone holding a different key cannot answer for LOW.
    impostor = SigningKey.from_label("impostor")
    victim = ListenerHandshake(HIGH, CHAIN, VALIDATORS)
    challenge = victim.on_hello(first.hello())  # claims LOW's key
    exact = transcript("dialer", LOW.public_key, HIGH.public_key, nonce, decode(challenge)[4])
    forged = impostor.sign(DOMAIN_HANDSHAKE, CHAIN, exact)
    error = refused(CLOSE_BAD_SIGNATURE, victim.on_auth, encode(["shopchain-p2p/auth", forged]))
    assert "does not verify" in error.reason
    # The same transcript signed by LOW itself is accepted: only the key was wrong.
    victim.on_auth(encode(["shopchain-p2p/auth", LOW.sign(DOMAIN_HANDSHAKE, CHAIN, exact)]))


def test_listener_signature_cannot_be_reflected_as_a_dialer_signature():
    # A listener's CHALLENGE signature covers role "listener"; offering it back as AUTH fails.
    dialer = DialerHandshake(LOW, CHAIN, HIGH.public_key)
    listener = ListenerHandshake(HIGH, CHAIN, VALIDATORS)
    challenge = listener.on_hello(dialer.hello())
    listener_sig = decode(challenge)[5]
    refused(CLOSE_BAD_SIGNATURE, listener.on_auth, encode(["shopchain-p2p/auth", listener_sig]))


def test_dialer_refuses_the_wrong_listener_key_and_a_bad_listener_signature():
    dialer = DialerHandshake(LOW, CHAIN, HIGH.public_key)
    other = ListenerHandshake(MID, CHAIN, VALIDATORS)
    error = refused(CLOSE_UNEXPECTED_PEER, dialer.on_challenge, other.on_hello(dialer.hello()))
    assert "but key" in error.reason

    listener = ListenerHandshake(HIGH, CHAIN, VALIDATORS)
    fields = decode(listener.on_hello(dialer.hello()))
    fields[5] = bytes([fields[5][0] ^ 1]) + fields[5][1:]
    refused(CLOSE_BAD_SIGNATURE, dialer.on_challenge, encode(fields))
    # A signature made for another chain does not count on this one.
    foreign = ListenerHandshake(HIGH, "other-chain", VALIDATORS)
    fields = decode(foreign.on_hello(DialerHandshake(LOW, "other-chain", HIGH.public_key, dialer.nonce).hello()))
    fields[2] = CHAIN
    refused(CLOSE_BAD_SIGNATURE, dialer.on_challenge, encode(fields))


def test_out_of_order_and_malformed_handshake_messages_are_protocol_errors():
    refused(CLOSE_PROTOCOL, ListenerHandshake(HIGH, CHAIN, VALIDATORS).on_auth, encode(["shopchain-p2p/auth", b"x" * 64]))
    refused(CLOSE_PROTOCOL, DialerHandshake(LOW, CHAIN, HIGH.public_key).on_ready, encode(["shopchain-p2p/ready"]))
    listener = ListenerHandshake(HIGH, CHAIN, VALIDATORS)
    refused(CLOSE_PROTOCOL, listener.on_hello, "text")
    refused(CLOSE_PROTOCOL, listener.on_hello, b"\x00" * 2000)
    refused(CLOSE_PROTOCOL, listener.on_hello, encode([TAG_HELLO, 1, CHAIN, b"short", new_nonce()]))
    refused(CLOSE_PROTOCOL, listener.on_hello, encode([TAG_CHALLENGE, 1, CHAIN, LOW.public_key, new_nonce()]))


@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_ever_raise_handshake_errors(data):
    for step in (ListenerHandshake(HIGH, CHAIN, VALIDATORS).on_hello,
                 DialerHandshake(LOW, CHAIN, HIGH.public_key).on_challenge):
        with pytest.raises(HandshakeError):
            step(data)


def test_exactly_one_side_of_each_pair_dials():
    for a in KEYS:
        for b in KEYS:
            if a is not b:
                assert is_dialer(a.public_key, b.public_key) != is_dialer(b.public_key, a.public_key)


# ----- limits ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_the_steady_rate_and_never_exceeds_the_burst():
    clock = Clock()
    bucket = TokenBucket(rate=10.0, burst=5.0, clock=clock)
    assert [bucket.take(1) for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.25  # 2.5 tokens
    assert [bucket.take(1) for _ in range(3)] == [True, True, False]
    clock.now += 1000.0
    assert bucket.take(5) and not bucket.take(1)


def test_inbound_limiter_charges_nothing_for_a_refused_frame():
    clock = Clock()
    limits = TransportLimits(max_frame_bytes=100, max_send_queue_bytes=100, inbound_byte_burst=150.0,
                             inbound_message_burst=10.0, inbound_bytes_per_second=1.0, inbound_messages_per_second=1.0)
    limiter = InboundLimiter(limits, clock)
    assert limiter.admit(100)
    assert not limiter.admit(100)  # bytes exhausted...
    assert limiter.messages.tokens == 9  # ...and the message token was given back
    assert limiter.admit(50)


def test_outbound_pacer_stays_under_the_inbound_limit_of_a_peer_with_the_same_limits():
    clock = Clock()
    limits = TransportLimits(inbound_messages_per_second=100.0, inbound_message_burst=10.0)
    pacer, receiver = OutboundPacer(limits, clock), InboundLimiter(limits, clock)
    sent = 0
    while clock.now < 5.0:
        wait = pacer.delay(100)
        if wait:
            clock.now += wait
            continue
        assert receiver.admit(100), f"honest frame {sent} refused at t={clock.now}"
        sent += 1
    assert 400 <= sent <= 0.9 * (10 + 100 * 5.0) + 1  # paced at 90% of the peer's rate


def test_transport_limits_reject_inconsistent_values():
    with pytest.raises(LimitsError, match="must be positive"):
        TransportLimits(handshake_timeout_seconds=0)
    with pytest.raises(LimitsError, match="at least one frame"):
        TransportLimits(inbound_byte_burst=MAX_FRAME_BYTES - 1)
    with pytest.raises(LimitsError, match="at least one frame"):
        TransportLimits(max_send_queue_bytes=MAX_FRAME_BYTES - 1)
    with pytest.raises(LimitsError, match="backoff_cap_seconds"):
        TransportLimits(backoff_base_seconds=5.0, backoff_cap_seconds=1.0)


def test_backoff_doubles_with_jitter_in_the_upper_half_and_stops_at_the_cap():
    low = Backoff(base=1.0, cap=8.0, rand=lambda: 0.0)
    assert [low.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    high = Backoff(base=1.0, cap=8.0, rand=lambda: 1.0)
    assert [high.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    high.reset()
    assert high.next_delay() == 1.0
    many = Backoff(base=0.5, cap=30.0, rand=lambda: 0.5)
    many.failures = 10_000  # no overflow, still capped
    assert many.next_delay() == 22.5


# ----- TLS helpers ----------------------------------------------------------------------


def test_node_certificate_is_signed_by_the_ca_and_records_the_node_key(tmp_path):
    ca = create_ca("unit CA")
    node = issue_node_certificate(ca, "validator-0", ["127.0.0.1", "node0.example"], LOW.public_key)
    cert = node.certificate
    cert.verify_directly_issued_by(ca.certificate)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["node0.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert node_key_from_certificate(node.cert_pem) == LOW.public_key
    assert node_key_from_certificate(issue_node_certificate(ca, "x", ["localhost"]).cert_pem) is None

    (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
    node.save(str(tmp_path / "n.crt"), str(tmp_path / "n.key"))
    assert (tmp_path / "n.key").stat().st_mode & 0o777 == 0o600
    args = (str(tmp_path / "ca.crt"), str(tmp_path / "n.crt"), str(tmp_path / "n.key"))
    for context in (server_ssl_context(*args), client_ssl_context(*args)):
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.minimum_version == ssl.TLSVersion.TLSv1_3


def test_tls_helpers_report_unusable_inputs(tmp_path):
    with pytest.raises(TLSConfigError, match="at least one host"):
        issue_node_certificate(create_ca(), "n", [])
    with pytest.raises(TLSConfigError, match="cannot load TLS files"):
        server_ssl_context(str(tmp_path / "missing-ca"), str(tmp_path / "c"), str(tmp_path / "k"))


def test_close_reasons_are_clipped_to_the_frame_limit_on_a_character_boundary():
    assert clip_reason("short") == b"short"
    clipped = clip_reason("é" * 100)
    assert len(clipped) <= MAX_CLOSE_REASON_BYTES and clipped.decode("utf-8") == "é" * (MAX_CLOSE_REASON_BYTES // 2)


# ----- admission before the signed handshake ------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_failed_upgrades_are_rate_limited_per_remote_address_but_never_on_loopback():
    from p2p.admission import AdmissionGuard
    from p2p.handshake import CLOSE_RATE_LIMITED, HandshakeError, upgrade_headers
    from p2p.limits import TransportLimits

    clock = _Clock()
    counts: dict[str, int] = {}
    guard = AdmissionGuard(TransportLimits(failed_upgrades_per_second=1.0, failed_upgrade_burst=3.0,
                                           max_tracked_addresses=2), clock,
                           lambda name, n: counts.__setitem__(name, counts.get(name, 0) + n))
    now_us = int(clock.now * 1_000_000)
    good = upgrade_headers(LOW, CHAIN, HIGH.public_key, now_us)

    def attempt(address: str, headers: dict) -> int:
        try:
            guard.check_upgrade(headers, address, CHAIN, HIGH.public_key, VALIDATORS, now_us)
        except HandshakeError as exc:
            return exc.code
        return 0

    for _ in range(3):
        assert attempt("203.0.113.9", {}) != 0
        guard.note_failure("203.0.113.9")
    # The address used up its allowance: refused before any parsing or signature work,
    # even with a valid request; other addresses and loopback are unaffected.
    assert attempt("203.0.113.9", good) == CLOSE_RATE_LIMITED and counts["upgrades_rate_limited"] == 1
    assert attempt("198.51.100.7", good) == 0
    for _ in range(100):
        guard.note_failure("127.0.0.1")
    assert guard.check_upgrade(good, "127.0.0.1", CHAIN, HIGH.public_key, VALIDATORS, now_us).dialer_key == LOW.public_key
    clock.now += 1.5  # the allowance refills
    assert attempt("203.0.113.9", good) == 0
    # Memory is bounded: the least recently seen address is forgotten first.
    guard.note_failure("192.0.2.1")
    guard.note_failure("192.0.2.2")
    assert len(guard._failed) == 2 and "203.0.113.9" not in guard._failed
