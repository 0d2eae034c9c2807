"""Transport tests over real loopback sockets on ephemeral ports.

Every test runs in its own event loop under a hard ``asyncio`` timeout and waits on
conditions (connections formed, messages counted), never on fixed sleeps. Limits are
tightened (short handshake timeout, millisecond backoff) so failures show up fast.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

import aiohttp
import pytest

from ledger.crypto import DOMAIN_HANDSHAKE, SigningKey
from ledger.encoding import decode, encode
from p2p import FrameTooLargeError, P2PError, Transport, TransportLimits
from p2p.handshake import (
    CLOSE_BAD_SIGNATURE,
    CLOSE_BANNED,
    CLOSE_FRAME_TOO_LARGE,
    CLOSE_HANDSHAKE_TIMEOUT,
    CLOSE_PROTOCOL,
    CLOSE_RATE_LIMITED,
    CLOSE_REMOVED,
    CLOSE_REPLACED,
    CLOSE_STALLED,
    CLOSE_UNEXPECTED_PEER,
    CLOSE_UNKNOWN_KEY,
    CLOSE_WRONG_CHAIN,
    HEADER_REFUSAL,
    TAG_AUTH,
    DialerHandshake,
    transcript,
    upgrade_headers,
)
from p2p.tls import client_ssl_context, create_ca, issue_node_certificate, server_ssl_context
from p2p.transport import ROUTE
from node.process import event_loop_factory

pytestmark = pytest.mark.integration  # real loopback sockets between transports

CHAIN = "p2p-test"
#: Hard bound on any one test; a hang fails the test instead of the suite.
TEST_TIMEOUT_SECONDS = 20.0
#: Bound on each awaited condition inside a test.
WAIT_SECONDS = 8.0

FAST = dict(handshake_timeout_seconds=1.0, connect_timeout_seconds=2.0, close_timeout_seconds=0.5,
            backoff_base_seconds=0.02, backoff_cap_seconds=0.2, heartbeat_seconds=5.0)


def fast_limits(**overrides: float) -> TransportLimits:
    return TransportLimits(**{**FAST, **overrides})


#: The loop ``run`` uses: every test runs on asyncio's own loop and on the one nodes use.
_LOOP_FACTORY = [None]


@pytest.fixture(autouse=True, params=["asyncio", "node-loop"])
def event_loop_kind(request):
    _LOOP_FACTORY[0] = None if request.param == "asyncio" else event_loop_factory()
    yield request.param
    _LOOP_FACTORY[0] = None


def run(coro) -> object:
    async def bounded():
        async with asyncio.timeout(TEST_TIMEOUT_SECONDS):
            return await coro
    with asyncio.Runner(loop_factory=_LOOP_FACTORY[0]) as runner:
        return runner.run(bounded())


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Node:
    """A transport plus an inbox that records (sender, data) and wakes waiters."""

    def __init__(self, label: str, limits: TransportLimits | None = None, **kwargs) -> None:
        self.label = label
        self.key = SigningKey.from_label(label)
        self.pk = self.key.public_key
        self.received: list[tuple[bytes, bytes]] = []
        self._arrived = asyncio.Event()
        self.transport = Transport(self.key, CHAIN, "127.0.0.1", kwargs.pop("port", 0), {}, self.on_message,
                                   limits=limits or fast_limits(), **kwargs)

    def on_message(self, sender: bytes, data: bytes) -> None:
        self.received.append((sender, data))
        self._arrived.set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.transport.listen_port}"

    def from_peer(self, sender: bytes) -> list[bytes]:
        return [d for s, d in self.received if s == sender]

    async def wait_messages(self, count: int, sender: bytes | None = None) -> None:
        async with asyncio.timeout(WAIT_SECONDS):
            while len(self.received if sender is None else self.from_peer(sender)) < count:
                self._arrived.clear()
                await self._arrived.wait()


async def mesh(nodes: list[Node]) -> None:
    """Start every node, then give each the others' addresses in one synchronous step."""
    for node in nodes:
        await node.transport.start()
    book = {n.pk: n.address for n in nodes}
    for node in nodes:
        node.transport.set_peers(book)
    for node in nodes:
        assert await node.transport.wait_connected(timeout=WAIT_SECONDS), node.transport.peer_status()


async def stop_all(nodes: list[Node]) -> None:
    await asyncio.gather(*(n.transport.stop() for n in nodes))


async def poll(condition, what: str) -> None:
    """For conditions with no event to wait on (a remote refusal): check every 10 ms."""
    async with asyncio.timeout(WAIT_SECONDS):
        while not condition():
            await asyncio.sleep(0.01)


def sorted_nodes(labels: list[str], **kwargs) -> list[Node]:
    return sorted((Node(label, **kwargs) for label in labels), key=lambda n: n.pk)


#: The last upgrade timestamp raw_connect sent per dialer key.
_LAST_UPGRADE_US: dict[bytes, int] = {}


async def raw_connect(session: aiohttp.ClientSession, node: Node, key: SigningKey | None = None,
                      **kwargs) -> aiohttp.ClientWebSocketResponse:
    """A websocket to ``node``; with ``key``, the upgrade request proves that key as a dialer would,
    with a timestamp strictly later than this key's previous one (as Transport._dial keeps it):
    two wall-clock reads may be equal, or the clock may step back, and a listener refuses a
    timestamp that is not after the last it accepted from the key."""
    headers = None
    if key is not None:
        stamp = max(time.time_ns() // 1000, _LAST_UPGRADE_US.get(key.public_key, 0) + 1)
        _LAST_UPGRADE_US[key.public_key] = stamp
        headers = upgrade_headers(key, CHAIN, node.pk, stamp)
    return await session.ws_connect(f"ws://{node.address}{ROUTE}", headers=headers, **kwargs)


async def expect_refused(connecting) -> tuple[int, int, str]:
    """(HTTP status, close code, reason) of an upgrade refused before any websocket existed."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await connecting
    code, _, reason = (info.value.headers or {}).get(HEADER_REFUSAL, "0 ").partition(" ")
    return info.value.status, int(code), reason


async def expect_close(ws: aiohttp.ClientWebSocketResponse) -> tuple[int, str]:
    msg = await ws.receive()
    assert msg.type is aiohttp.WSMsgType.CLOSE, msg
    return msg.data, msg.extra


# ----- mesh and delivery ---------------------------------------------------------------


def test_four_node_mesh_broadcast_tags_each_message_with_its_authenticated_sender():
    async def main():
        nodes = sorted_nodes([f"mesh-{i}" for i in range(4)])
        await mesh(nodes)
        try:
            for node in nodes:
                assert node.transport.broadcast(b"hello from " + node.pk) == 3
            for node in nodes:
                await node.wait_messages(3)
            for node in nodes:
                assert sorted(node.received) == sorted((o.pk, b"hello from " + o.pk) for o in nodes if o is not node)
            # Exactly one connection per pair, dialed by the lower key.
            stats = [n.transport.stats() for n in nodes]
            assert [s["connections_outbound"] for s in stats] == [3, 2, 1, 0]
            assert [s["connections_inbound"] for s in stats] == [0, 1, 2, 3]
            assert all(s["peers_connected"] == 3 for s in stats)
        finally:
            await stop_all(nodes)
    run(main())


def test_send_to_self_and_oversized_send_are_caller_errors_and_unknown_peer_is_refused():
    async def main():
        nodes = sorted_nodes(["self-0", "self-1"], limits=fast_limits(max_frame_bytes=1000, max_send_queue_bytes=2500))
        await mesh(nodes)
        a, b = nodes
        try:
            with pytest.raises(P2PError):
                a.transport.send(a.pk, b"x")
            with pytest.raises(FrameTooLargeError):
                a.transport.send(b.pk, b"x" * 1001)
            assert a.transport.send(SigningKey.from_label("stranger").public_key, b"x") is False
            assert a.transport.stats()["send_rejected_not_connected"] == 1
        finally:
            await stop_all(nodes)
    run(main())


def test_full_queue_refuses_further_sends_and_keeps_what_it_accepted():
    async def main():
        limits = fast_limits(max_send_queue_messages=5, max_frame_bytes=1000, max_send_queue_bytes=2500)
        nodes = sorted_nodes(["queue-0", "queue-1"], limits=limits)
        await mesh(nodes)
        a, b = nodes
        try:
            # send() is synchronous, so the writer task cannot drain between these calls.
            assert [a.transport.send(b.pk, bytes([i])) for i in range(6)] == [True] * 5 + [False]
            assert a.transport.stats()["send_rejected_queue_full"] == 1
            assert a.transport.stats()["queued_messages"] == 5
            await b.wait_messages(5)
            assert b.from_peer(a.pk) == [bytes([i]) for i in range(5)]
            # The byte bound: two 1000-byte frames fit in 2500 bytes, a third does not.
            assert [a.transport.send(b.pk, b"y" * 1000) for _ in range(3)] == [True, True, False]
            assert a.transport.stats()["send_rejected_queue_full"] == 2
            await b.wait_messages(7)
        finally:
            await stop_all(nodes)
    run(main())


def test_a_failing_or_slow_async_handler_does_not_cost_the_connection():
    async def main():
        nodes = sorted_nodes(["handler-0", "handler-1"])
        await mesh(nodes)
        a, b = nodes
        seen: list[bytes] = []

        async def handler(sender: bytes, data: bytes) -> None:
            await asyncio.sleep(0)  # a coroutine handler is awaited before the next frame is read
            if data == b"boom":
                raise ValueError("handler bug")
            seen.append(data)
            b.on_message(sender, data)

        b.transport._on_message = handler
        try:
            for data in (b"one", b"boom", b"two"):
                assert a.transport.send(b.pk, data)
            await b.wait_messages(2)
            assert seen == [b"one", b"two"]
            assert b.transport.stats()["handler_errors"] == 1
            assert b.transport.connected_peers() == [a.pk]
        finally:
            await stop_all(nodes)
    run(main())


def test_validator_set_changes_disconnect_removed_peers_and_dial_added_ones():
    async def main():
        nodes = sorted_nodes([f"change-{i}" for i in range(3)])
        await mesh(nodes)
        book = {n.pk: n.address for n in nodes}
        low, middle, high = nodes
        try:
            middle.transport.set_peers({k: v for k, v in book.items() if k != high.pk})
            assert await middle.transport.wait_disconnected(high.pk, timeout=WAIT_SECONDS)
            assert await high.transport.wait_disconnected(middle.pk, timeout=WAIT_SECONDS)
            assert middle.transport.connected_peers() == [low.pk]
            assert middle.transport.send(high.pk, b"gone") is False
            # high still lists middle; it learns why the link ended.
            high_view = lambda: {s.public_key: s for s in high.transport.peer_status()}[middle.pk]  # noqa: E731
            assert high_view().last_close_code == CLOSE_REMOVED

            middle.transport.set_peers(book)
            assert await middle.transport.wait_connected(timeout=WAIT_SECONDS)
            assert await high.transport.wait_connected(timeout=WAIT_SECONDS)
            with pytest.raises(P2PError, match="host:port"):
                middle.transport.set_peers({high.pk: "no-port"})
            assert middle.transport.connected_peers() == sorted([low.pk, high.pk])  # unchanged by the bad call
        finally:
            await stop_all(nodes)
    run(main())


# ----- handshake refusals ----------------------------------------------------------------


def test_key_outside_the_validator_set_is_refused_with_a_reason(caplog):
    caplog.set_level(logging.WARNING, logger="shopchain.p2p")

    async def main():
        nodes = sorted_nodes(["auth-0", "auth-1"])
        await mesh(nodes)
        target = nodes[-1]
        try:
            outsider = SigningKey.from_label("outsider")
            async with aiohttp.ClientSession() as session:
                # Refused in the upgrade request itself: no websocket, no slot, no signature check.
                status, code, reason = await expect_refused(raw_connect(session, target, outsider))
            assert status == 403 and code == CLOSE_UNKNOWN_KEY
            assert "not in the validator set" in reason
            assert target.transport.stats()["handshakes_refused"] == 1
            assert any("not in the validator set" in r.getMessage() for r in caplog.records)

            # A whole outsider transport learns the same reason on its dialing side.
            label = next(f"outsider-{i}" for i in range(100)
                         if SigningKey.from_label(f"outsider-{i}").public_key < target.pk)
            rogue = Node(label)
            await rogue.transport.start()
            rogue.transport.set_peers({target.pk: target.address})
            try:
                await poll(lambda: rogue.transport.peer_status()[0].last_close_code == CLOSE_UNKNOWN_KEY, "refusal")
                assert "not in the validator set" in rogue.transport.peer_status()[0].last_error
                assert rogue.pk not in target.transport.connected_peers()
            finally:
                await rogue.transport.stop()
        finally:
            await stop_all(nodes)
    run(main())


def test_wrong_handshake_signature_wrong_chain_and_silence_are_refused():
    async def main():
        nodes = sorted_nodes(["sig-0", "sig-1"], limits=fast_limits(handshake_timeout_seconds=0.3))
        await mesh(nodes)
        low, high = nodes
        try:
            async with aiohttp.ClientSession() as session:
                # A validator key in the set, but AUTH signed by some other key.
                ws = await raw_connect(session, high, low.key)
                dialer = DialerHandshake(low.key, CHAIN, high.pk)
                await ws.send_bytes(dialer.hello())
                challenge = await ws.receive_bytes()
                dialer.on_challenge(challenge)  # the listener's own signature is fine
                listener_nonce = decode(challenge)[4]
                impostor = SigningKey.from_label("impostor")
                forged = impostor.sign(DOMAIN_HANDSHAKE, CHAIN, transcript("dialer", low.pk, high.pk, dialer.nonce, listener_nonce))
                await ws.send_bytes(encode([TAG_AUTH, forged]))
                code, reason = await expect_close(ws)
                assert code == CLOSE_BAD_SIGNATURE and "does not verify" in reason, (code, reason)

                ws = await raw_connect(session, high, low.key)
                await ws.send_bytes(DialerHandshake(low.key, "other-chain", high.pk).hello())
                code, reason = await expect_close(ws)
                assert code == CLOSE_WRONG_CHAIN and "other-chain" in reason

                ws = await raw_connect(session, high, low.key)  # says nothing
                code, reason = await expect_close(ws)
                assert code == CLOSE_HANDSHAKE_TIMEOUT and "not completed" in reason
            stats = high.transport.stats()
            assert stats["handshakes_refused"] == 3 and stats["handshake_timeouts"] == 1
            # The real link was never disturbed.
            assert high.transport.connected_peers() == [low.pk]
        finally:
            await stop_all(nodes)
    run(main())


def test_authenticated_connections_beyond_the_pending_cap_get_503():
    async def main():
        target = Node("busy-target", limits=fast_limits(max_pending_handshakes=1, handshake_timeout_seconds=0.3))
        dialers = [k for k in (SigningKey.from_label(f"busy-{i}") for i in range(100)) if k.public_key < target.pk][:2]
        await target.transport.start()
        target.transport.set_peers({k.public_key: "127.0.0.1:9" for k in dialers})  # they dial us
        try:
            async with aiohttp.ClientSession() as session:
                silent = await raw_connect(session, target, dialers[0])  # occupies the only slot
                with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                    await raw_connect(session, target, dialers[1])
                assert info.value.status == 503
                # The refusal closes its connection: a pooled one would be reused by the next
                # upgrade, and aiohttp resends a request unchanged when a pooled connection turns
                # out dead, which the listener then refuses as a replayed timestamp.
                assert (info.value.headers or {}).get("Connection", "").lower() == "close"
                assert target.transport.stats()["busy_refusals"] == 1
                code, _ = await expect_close(silent)
                assert code == CLOSE_HANDSHAKE_TIMEOUT
                # The slot is free again once the silent socket was dropped.
                ws = await raw_connect(session, target, dialers[1])
                await ws.send_bytes(DialerHandshake(dialers[0], CHAIN, target.pk).hello())
                assert (await expect_close(ws))[0] == CLOSE_PROTOCOL  # HELLO must name the upgrade's key
        finally:
            await target.transport.stop()
    run(main())


async def authenticate(session: aiohttp.ClientSession, key: SigningKey, node: Node) -> aiohttp.ClientWebSocketResponse:
    """A hand-driven dialer that completes the real handshake and then does what the test says."""
    ws = await raw_connect(session, node, key)
    dialer = DialerHandshake(key, CHAIN, node.pk)
    await ws.send_bytes(dialer.hello())
    await ws.send_bytes(dialer.on_challenge(await ws.receive_bytes()))
    dialer.on_ready(await ws.receive_bytes())
    return ws


def test_misbehaving_authenticated_peers_are_closed_with_their_own_reason():
    async def main():
        node = Node("misbehave-high", limits=fast_limits(send_stall_timeout_seconds=0.3, max_frame_bytes=1 << 20,
                                                          max_send_queue_bytes=64 << 20))
        key = next(k for k in (SigningKey.from_label(f"misbehave-{i}") for i in range(100)) if k.public_key < node.pk)
        await node.transport.start()
        node.transport.set_peers({key.public_key: "127.0.0.1:9"})  # never dialed: the lower key dials
        try:
            async with aiohttp.ClientSession() as session:
                first = await authenticate(session, key, node)
                assert await node.transport.wait_connected(timeout=WAIT_SECONDS)
                # The same validator connecting again replaces the old link.
                second = await authenticate(session, key, node)
                assert (await expect_close(first))[0] == CLOSE_REPLACED
                await second.send_str("text is not a message")
                code, reason = await expect_close(second)
                assert code == CLOSE_PROTOCOL and "text frames" in reason
                assert node.transport.stats()["protocol_violations"] == 1

                # A peer that stops reading: once one write blocks past the stall timeout, it is dropped.
                silent = await authenticate(session, key, node)  # and then never reads
                assert await node.transport.wait_connected(timeout=WAIT_SECONDS)
                for _ in range(48):
                    assert node.transport.send(key.public_key, b"s" * (1 << 20))
                assert await node.transport.wait_disconnected(key.public_key, timeout=WAIT_SECONDS)
                stats = node.transport.stats()
                assert stats["stalled_disconnects"] == 1
                assert stats["queued_discarded_on_close"] > 0
                assert node.transport.peer_status()[0].last_close_code == CLOSE_STALLED
                await silent.close()
        finally:
            await node.transport.stop()
    run(main())


def test_dialer_refuses_a_listener_that_answers_with_another_key():
    async def main():
        nodes = sorted_nodes([f"addr-{i}" for i in range(3)])
        for node in nodes:
            await node.transport.start()
        low, middle, high = nodes
        high.transport.set_peers({low.pk: low.address})
        low.transport.set_peers({middle.pk: high.address})  # a wrong address book entry
        try:
            await poll(lambda: low.transport.peer_status()[0].last_close_code == CLOSE_UNEXPECTED_PEER, "refusal")
            assert "but key" in low.transport.peer_status()[0].last_error
            assert low.transport.connected_peers() == [] and high.transport.connected_peers() == []
        finally:
            await stop_all(nodes)
    run(main())


# ----- limits ----------------------------------------------------------------------------


def test_oversized_frame_closes_only_that_connection():
    async def main():
        small = fast_limits(max_frame_bytes=64 * 1024)
        target = Node("big-target", limits=small)
        others = [Node("big-a"), Node("big-b")]
        nodes = sorted([target, *others], key=lambda n: n.pk)
        await mesh(nodes)
        sender, bystander = others
        try:
            assert sender.transport.send(target.pk, b"z" * 100_000)  # legal for the sender's own limit
            assert await target.transport.wait_disconnected(sender.pk, timeout=WAIT_SECONDS)
            assert await sender.transport.wait_disconnected(target.pk, timeout=WAIT_SECONDS)
            sender_view = {s.public_key: s for s in sender.transport.peer_status()}[target.pk]
            assert sender_view.last_close_code == CLOSE_FRAME_TOO_LARGE, sender_view
            assert target.transport.stats()["frames_too_large"] == 1
            assert target.from_peer(sender.pk) == []
            assert bystander.transport.send(target.pk, b"still here")
            await target.wait_messages(1, bystander.pk)
            assert bystander.pk in target.transport.connected_peers()
            # The closed link comes back by itself and carries legal frames again.
            assert await target.transport.wait_connected([sender.pk], timeout=WAIT_SECONDS)
            await sender.transport.wait_connected([target.pk], timeout=WAIT_SECONDS)
            assert sender.transport.send(target.pk, b"small")
            await target.wait_messages(1, sender.pk)
        finally:
            await stop_all(nodes)
    run(main())


def test_flooding_peer_is_disconnected_banned_and_readmitted_later_others_unaffected():
    async def main():
        clock = FakeClock()  # frozen: buckets refill and bans expire only when the test says so
        strict = fast_limits(inbound_message_burst=50, inbound_messages_per_second=1.0, flood_ban_seconds=60.0)
        labels = [f"flood-{i}" for i in range(4)]
        # The target has the highest key, so the flooder dials it and meets the ban itself.
        top = max(labels, key=lambda label: SigningKey.from_label(label).public_key)
        target = Node(top, limits=strict, clock=clock)
        others = [Node(label) for label in labels if label != top]
        nodes = sorted([target, *others], key=lambda n: n.pk)
        await mesh(nodes)
        flooder, *honest = others
        try:
            for i in range(200):
                assert flooder.transport.send(target.pk, b"spam %d" % i)
            for i, node in enumerate(honest):
                for j in range(10):
                    assert node.transport.send(target.pk, b"tx %d %d" % (i, j))
            assert await target.transport.wait_disconnected(flooder.pk, timeout=WAIT_SECONDS)
            for node in honest:
                await target.wait_messages(10, node.pk)
            assert len(target.from_peer(flooder.pk)) == 50  # the burst, then nothing
            stats = target.transport.stats()
            assert stats["rate_limit_disconnects"] == 1
            assert sorted(target.transport.connected_peers()) == sorted(n.pk for n in honest)

            # While banned, the flooder's reconnections are refused with their own reason.
            status = {s.public_key: s for s in target.transport.peer_status()}[flooder.pk]
            assert status.last_close_code == CLOSE_RATE_LIMITED
            flooder_view = lambda: {s.public_key: s for s in flooder.transport.peer_status()}[target.pk]  # noqa: E731
            await poll(lambda: flooder_view().last_close_code == CLOSE_BANNED, "ban refusal")
            assert "rate limit" in flooder_view().last_error
            assert flooder.pk not in target.transport.connected_peers()

            clock.now += 120.0  # ban over, buckets refilled
            assert await target.transport.wait_connected([flooder.pk], timeout=WAIT_SECONDS)
            await flooder.transport.wait_connected([target.pk], timeout=WAIT_SECONDS)
            assert flooder.transport.send(target.pk, b"behaving now")
            await target.wait_messages(51, flooder.pk)
        finally:
            await stop_all(nodes)
    run(main())


def test_the_dialer_redials_a_peer_it_banned_as_soon_as_the_ban_ends_not_a_capped_backoff_later():
    """Seen in the soak: a ban of 20 s left the dial backoff at its cap, so the link came
    back seconds after the ban, and the next fault met a 4-validator mesh already missing
    a link. Waiting out a ban is not a failed dial and must not grow the backoff."""
    async def main():
        ban = 1.2
        # rand=0: every backoff delay is its minimum, so the old behaviour is deterministic.
        strict = fast_limits(inbound_message_burst=20, inbound_messages_per_second=1.0, flood_ban_seconds=ban,
                             backoff_base_seconds=0.3, backoff_cap_seconds=3.0)
        # The lower key dials, so the node that bans is the one that redials.
        low, high = sorted(["redial-0", "redial-1"], key=lambda label: SigningKey.from_label(label).public_key)
        dialer, flooder = Node(low, limits=strict, rand=lambda: 0.0), Node(high)
        nodes = [dialer, flooder]
        await mesh(nodes)
        assert {s.public_key: s for s in dialer.transport.peer_status()}[flooder.pk].we_dial
        try:
            for i in range(100):
                flooder.transport.send(dialer.pk, b"spam %d" % i)
            assert await dialer.transport.wait_disconnected(flooder.pk, timeout=WAIT_SECONDS)
            await asyncio.sleep(ban * 0.9)
            status = {s.public_key: s for s in dialer.transport.peer_status()}[flooder.pk]
            assert not status.connected
            assert status.consecutive_failures <= 1, status  # the ban is waited out, not counted
            # (The old loop had counted 4 by now: minimum delays 0.15, 0.3, 0.6 s, then a
            # 1.2 s one that would redial 2.25 s after the ban began.)
            assert await dialer.transport.wait_connected([flooder.pk], timeout=WAIT_SECONDS)
        finally:
            await stop_all(nodes)
    run(main())


def test_honest_senders_pace_themselves_under_the_peer_limit_instead_of_being_banned():
    async def main():
        # Same limits on both sides, as every validator runs; real clock.
        limits = fast_limits(inbound_messages_per_second=200.0, inbound_message_burst=20.0)
        nodes = sorted_nodes(["pace-0", "pace-1"], limits=limits)
        await mesh(nodes)
        a, b = nodes
        try:
            for i in range(60):  # 3x the burst: the writer has to wait
                assert a.transport.send(b.pk, b"%d" % i)
            await b.wait_messages(60)
            assert b.from_peer(a.pk) == [b"%d" % i for i in range(60)]
            assert a.transport.stats()["pacing_waits"] > 0
            assert b.transport.stats()["rate_limit_disconnects"] == 0
            assert b.transport.connected_peers() == [a.pk]
        finally:
            await stop_all(nodes)
    run(main())


# ----- reconnection ----------------------------------------------------------------------


def test_peer_that_restarts_is_reconnected_automatically():
    async def main():
        nodes = sorted_nodes([f"restart-{i}" for i in range(3)])
        await mesh(nodes)
        low, middle, high = nodes
        port = middle.transport.listen_port
        book = {n.pk: n.address for n in nodes}
        try:
            await middle.transport.stop()
            assert await low.transport.wait_disconnected(middle.pk, timeout=WAIT_SECONDS)
            assert await high.transport.wait_disconnected(middle.pk, timeout=WAIT_SECONDS)
            attempts_before = low.transport.stats()["dial_attempts"]
            # low dials middle and keeps failing (backoff) until middle is back.
            await poll(lambda: low.transport.stats()["dial_failures"] >= 2, "failed redials")

            reborn = Node(middle.label, port=port)
            nodes[1] = reborn
            await reborn.transport.start()
            reborn.transport.set_peers(book)
            assert await reborn.transport.wait_connected(timeout=WAIT_SECONDS)
            assert await low.transport.wait_connected(timeout=WAIT_SECONDS)
            assert await high.transport.wait_connected(timeout=WAIT_SECONDS)
            assert low.transport.stats()["dial_attempts"] > attempts_before + 1
            assert reborn.transport.broadcast(b"back") == 2
            await low.wait_messages(1, reborn.pk)
            await high.wait_messages(1, reborn.pk)
        finally:
            await stop_all(nodes)
    run(main())


# ----- mutual TLS ------------------------------------------------------------------------


def test_mutual_tls_mesh_works_and_a_client_without_a_consortium_cert_is_refused(tmp_path):
    ca = create_ca()
    labels = [f"tls-{i}" for i in range(3)]

    def contexts(name: str, authority, node_pk: bytes | None):
        cert = issue_node_certificate(authority, name, ["127.0.0.1", "localhost"], node_pk)
        cert.save(str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key"))
        (tmp_path / "ca.crt").write_bytes(ca.cert_pem)
        args = (str(tmp_path / "ca.crt"), str(tmp_path / f"{name}.crt"), str(tmp_path / f"{name}.key"))
        return server_ssl_context(*args), client_ssl_context(*args)

    async def main():
        nodes = []
        for label in labels:
            server_ctx, client_ctx = contexts(label, ca, SigningKey.from_label(label).public_key)
            nodes.append(Node(label, ssl_server=server_ctx, ssl_client=client_ctx,
                              limits=fast_limits(pre_auth_timeout_seconds=0.3)))
        nodes.sort(key=lambda n: n.pk)
        await mesh(nodes)
        try:
            for node in nodes:
                assert node.transport.broadcast(b"over tls") == 2
            for node in nodes:
                await node.wait_messages(2)

            target = nodes[-1]
            url = f"wss://{target.address}{ROUTE}"
            _, rogue_ctx = contexts("rogue", create_ca("rogue CA"), None)  # trusts our CA, own cert from another CA
            rogue_ctx.load_verify_locations(cadata=ca.cert_pem.decode())
            bare_ctx = ssl.create_default_context(cadata=ca.cert_pem.decode())  # no client cert at all
            bare_ctx.check_hostname = False
            async with aiohttp.ClientSession() as session:
                for ctx in (rogue_ctx, bare_ctx):
                    # The server checks the client certificate before it reads the upgrade
                    # request, so no websocket (and no HTTP response) ever comes back.
                    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
                        await session.ws_connect(url, ssl=ctx)
            assert target.transport.stats()["connections_inbound"] == 2
            assert target.transport.stats()["handshakes_refused"] == 0  # refused before any websocket

            # A consortium certificate is not enough: the key check still applies on top.
            _, member_ctx = contexts("member-without-validator-key", ca, None)
            outsider = SigningKey.from_label("tls-outsider")
            async with aiohttp.ClientSession() as session:
                headers = upgrade_headers(outsider, CHAIN, target.pk, time.time_ns() // 1000)
                status, code, _ = await expect_refused(session.ws_connect(url, ssl=member_ctx, headers=headers))
                assert status == 403 and code == CLOSE_UNKNOWN_KEY
            assert target.transport.stats()["handshakes_refused"] == 1

            # A client that opens TCP and never starts TLS is cut at the pre-auth deadline.
            reader, writer = await asyncio.open_connection("127.0.0.1", target.transport.listen_port)
            async with asyncio.timeout(WAIT_SECONDS):
                assert await reader.read() == b""
            writer.close()
        finally:
            await stop_all(nodes)
    run(main())
