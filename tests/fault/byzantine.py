"""One Byzantine validator, or an outsider without a key, as a separate process.

How this works: ``python -m tests.fault.byzantine validator --home H --pattern P`` runs
a real node (``node.service.Node``) on a validator's home, with that validator's key,
p2p address and store, after the driver killed the validator's own process. It catches
up and behaves honestly until it receives SIGUSR1; then for ``--seconds`` it runs one
pattern at a bounded rate, and after that it is honest again until it is killed. So the
driver measures a fault-free window (the same four validators, the same load) right
before the fault window, and only the pattern differs. The attack goes through the
real transport and handshake: honest peers see frames on an authenticated connection
of a genesis validator, which is what a compromised validator looks like.

Patterns (every loop stops by itself after ``--seconds``; ``--rate`` is per second):

* ``flood``      BLOCK-REQUEST(1, 32) to every peer at ``rate`` (each one asks a peer
                 to read and send up to 32 blocks), plus gossip batches of signed but
                 unregistered transactions and undecodable ones at ``rate / 20``
                 (``--flood-parts`` picks one of the two, to tell which one hurts);
* ``equivocate`` as primary, a second valid block (one transaction fewer, a later
                 timestamp) pre-prepared to half of the peers, with its COMMIT for that
                 block at once; every PREPARE and COMMIT it casts goes to the other half
                 for the other digest; and at ``rate`` signed PREPAREs and COMMITs for
                 random digests at the current slot (the runner makes it primary first);
* ``garbage``    random frames, unknown envelopes, consensus envelopes with
                 undecodable or truncated bodies, votes signed for another chain id,
                 and every ``OVERSIZE_EVERY_S`` one frame over the size limit or one
                 text frame (both close the connection, which the peers then redial);
* ``replay``     consensus frames recorded while honest, re-sent oldest first.

``python -m tests.fault.byzantine outsider`` needs no key: for ``--seconds`` it holds
raw TCP connections and never-finished websocket upgrades open on the p2p ports, and
slowloris requests (headers trickled one line a second) on the RPC ports.

Each process prints one ``BYZANTINE-REPORT {json}`` line (what it sent, what was
refused) when its pattern ends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
from collections import Counter, deque

import aiohttp

from consensus import BlockRequest, PrePrepare, encode_message
from ledger import encoding
from ledger.crypto import SigningKey
from ledger.types import PHASE_COMMIT, PHASE_PREPARE, TxBody, Vote
from node.ops.home import load_home
from node.ops.logs import setup_logging
from node.process import event_loop_factory
from node.service import ENVELOPE_CONSENSUS, ENVELOPE_PREVIEW, ENVELOPE_TXS, Node
from p2p.transport import ROUTE

PATTERNS = ("flood", "equivocate", "garbage", "replay")
FLOOD_PARTS = ("requests", "gossip")
#: Messages per second each pattern sends to every peer unless ``--rate`` says otherwise.
DEFAULT_RATES = {"flood": 1000.0, "equivocate": 200.0, "garbage": 1000.0, "replay": 500.0}
#: The attack loop wakes this often and sends ``rate * STEP_S`` messages per peer.
STEP_S = 0.01
#: Consensus frames remembered for replay (frames over REPLAY_MAX_FRAME_BYTES are skipped).
REPLAY_BUFFER = 4096
REPLAY_MAX_FRAME_BYTES = 256 * 1024
#: Junk transactions pre-signed for the flood, and how many go into one gossip batch.
JUNK_TXS = 512
JUNK_BATCH = 256
#: One connection-closing frame (oversized or text) per peer at most this often.
OVERSIZE_EVERY_S = 2.0
#: Outsider defaults: held connections per port, and the slowloris trickle interval.
OUTSIDER_TCP_PER_PORT = 48
OUTSIDER_WS_PER_PORT = 24
OUTSIDER_SLOWLORIS_PER_PORT = 48
SLOWLORIS_INTERVAL_S = 1.0
REPORT_PREFIX = "BYZANTINE-REPORT "

_BLOCKS_TAG = encoding.encode("pbft-blocks/1")


class ByzantineNode(Node):
    """A real node that runs one attack pattern for a bounded time after SIGUSR1."""

    def __init__(self, home: str, pattern: str, seconds: float, rate: float, seed: int,
                 flood_parts: tuple[str, ...] = FLOOD_PARTS) -> None:
        super().__init__(home)
        if pattern not in PATTERNS:
            raise ValueError(f"pattern: expected one of {PATTERNS}, found {pattern!r}")
        self.pattern = pattern
        self.flood_parts = flood_parts
        self.attack_seconds = seconds
        self.rate = rate
        self.rng = random.Random(seed)
        self.attacking = False
        self.recorded: deque[bytes] = deque(maxlen=REPLAY_BUFFER)
        self.stats: Counter[str] = Counter()
        self.alternatives: dict[tuple[int, int], bytes] = {}  # (view, height) -> digest of the second block
        self._armed = asyncio.Event()
        self._last_closer: dict[bytes, float] = {}
        self._replay_cursor = 0

    # --- what arrives -------------------------------------------------------------

    async def _on_peer_message(self, peer: bytes, data: bytes) -> None:
        if data[:1] == bytes([ENVELOPE_CONSENSUS]):
            if self.attacking and self.pattern == "flood" and _BLOCKS_TAG in data[:32]:
                self.stats["flood_answers_dropped"] += 1  # answers to our own flood: do not spend CPU on them
                return
            if not self.attacking and len(data) <= REPLAY_MAX_FRAME_BYTES:
                self.recorded.append(data)
        await super()._on_peer_message(peer, data)

    # --- what leaves: the equivocating primary and voter ---------------------------

    def _send(self, to: bytes | None, message) -> None:
        if not (self.attacking and self.pattern == "equivocate") or self.transport is None:
            super()._send(to, message)
            return
        peers = sorted(self.peer_addresses) if to is None else [to]
        half = set(sorted(self.peer_addresses)[: len(self.peer_addresses) // 2])
        if isinstance(message, PrePrepare) and message.block is not None and message.primary == self.me:
            other = self._second_pre_prepare(message)
            pp = message
            for peer in peers:
                self._frame(peer, message if peer in half or other is None else other)
            if other is not None:  # commit the second block at once, so its half can finish it without us
                twin = Vote.create(self.key, self.genesis.chain_id, PHASE_COMMIT, pp.view, pp.height, other.digest)
                for peer in peers:
                    if peer not in half:
                        self._frame(peer, twin)
            return
        if isinstance(message, Vote) and message.validator == self.me:
            digest = self.alternatives.get((message.view, message.height)) or self.rng.randbytes(32)
            twin = Vote.create(self.key, self.genesis.chain_id, message.phase, message.view, message.height, digest)
            for peer in peers:
                self._frame(peer, message if peer in half else twin)
            self.stats["conflicting_votes"] += len([p for p in peers if p not in half])
            return
        super()._send(to, message)

    def _second_pre_prepare(self, pp: PrePrepare) -> PrePrepare | None:
        """A different valid block for the same (view, height): one transaction fewer, 1 ms later."""
        block = pp.block
        try:
            other = self.chain.build_block(pp.view, pp.height, block.header.prev_hash, block.last_commit, self.me,
                                           list(block.txs[:-1]), block.header.timestamp_ms + 1)
        except Exception as exc:  # noqa: BLE001 - no second block this time; the report counts it
            self.stats["second_block_failed"] += 1
            logging.getLogger("shopchain.byzantine").warning("no second block: %s", exc)
            return None
        if other.block_hash == pp.digest:
            return None
        self.alternatives[(pp.view, pp.height)] = other.block_hash
        self.stats["conflicting_pre_prepares"] += 1
        return PrePrepare.create(self.key, self.genesis.chain_id, pp.view, other)

    def _frame(self, peer: bytes, message) -> None:
        self._raw(peer, bytes([ENVELOPE_CONSENSUS]) + encode_message(message))

    def _raw(self, peer: bytes, data: bytes) -> None:
        assert self.transport is not None
        self.stats["sent" if self.transport.send(peer, data) else "refused_by_own_queue"] += 1

    # --- the attack loop ------------------------------------------------------------

    async def run(self, install_signals: bool = True) -> int:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self._armed.set)
        task = asyncio.get_running_loop().create_task(self._attack_when_armed())
        try:
            return await super().run(install_signals)
        finally:
            task.cancel()

    async def _attack_when_armed(self) -> None:
        await self._armed.wait()
        junk = self._junk_transactions() if self.pattern == "flood" and "gossip" in self.flood_parts else []
        started = time.monotonic()
        self.attacking = True
        per_step = max(1, round(self.rate * STEP_S))
        step = 0
        try:
            while time.monotonic() - started < self.attack_seconds:
                peers = self.transport.connected_peers() if self.transport is not None else []
                for peer in peers:
                    for _ in range(per_step):
                        self._attack_once(peer, step, junk)
                step += 1
                await asyncio.sleep(STEP_S)
        finally:
            self.attacking = False
            report = {"pattern": self.pattern, "flood_parts": list(self.flood_parts), "seconds": round(time.monotonic() - started, 2), "rate": self.rate,
                      "steps": step, **self.stats}
            print(REPORT_PREFIX + json.dumps(report, sort_keys=True), flush=True)

    def _attack_once(self, peer: bytes, step: int, junk: list[bytes]) -> None:
        if self.pattern == "flood":
            if "requests" in self.flood_parts:
                self._raw(peer, bytes([ENVELOPE_CONSENSUS]) + BlockRequest(1, 32).encode())
            if junk and self.rng.random() < 1 / 20:
                start = self.rng.randrange(len(junk) - JUNK_BATCH + 1)
                self._raw(peer, bytes([ENVELOPE_TXS]) + encoding.encode(junk[start:start + JUNK_BATCH]))
        elif self.pattern == "equivocate":
            phase = self.rng.choice((PHASE_PREPARE, PHASE_COMMIT))
            vote = Vote.create(self.key, self.genesis.chain_id, phase, self.replica.view, self.replica.height,
                               self.rng.randbytes(32))
            self._frame(peer, vote)
            self.stats["conflicting_votes"] += 1
        elif self.pattern == "garbage":
            self._garbage(peer)
        elif self.recorded:
            self._raw(peer, self.recorded[self._replay_cursor % len(self.recorded)])
            self._replay_cursor += 1

    def _garbage(self, peer: bytes) -> None:
        rng = self.rng
        now = time.monotonic()
        if now - self._last_closer.get(peer, float("-inf")) >= OVERSIZE_EVERY_S:
            self._last_closer[peer] = now
            asyncio.get_running_loop().create_task(self._closing_frame(peer, rng.random() < 0.5))
            return
        kind = rng.randrange(6)
        body = rng.randbytes(rng.randint(1, 2048))
        if kind == 0:
            data = body
        elif kind == 1:
            data = bytes([rng.randint(4, 255)]) + body
        elif kind == 2:
            data = bytes([ENVELOPE_CONSENSUS]) + body
        elif kind == 3:
            data = bytes([rng.choice((ENVELOPE_TXS, ENVELOPE_PREVIEW))]) + body
        elif kind == 4 and self.recorded:
            real = self.recorded[rng.randrange(len(self.recorded))]
            data = real[: rng.randint(1, max(1, len(real) - 1))]
        else:
            vote = Vote.create(self.key, "not-" + self.genesis.chain_id, PHASE_PREPARE, self.replica.view,
                               self.replica.height, rng.randbytes(32))
            data = bytes([ENVELOPE_CONSENSUS]) + encode_message(vote)
        self.stats[f"garbage_{kind}"] += 1
        self._raw(peer, data)

    async def _closing_frame(self, peer: bytes, oversized: bool) -> None:
        """A frame the transport itself refuses to send: written on the peer's websocket directly."""
        state = self.transport._peers.get(peer) if self.transport is not None else None  # test-only reach-in
        conn = state.connection if state is not None else None
        if conn is None or conn.closing:
            return
        what = "oversized_frames" if oversized else "text_frames"
        self.stats[what] += 1
        try:
            if oversized:
                await conn.ws.send_bytes(bytes([ENVELOPE_CONSENSUS]) + bytes(self.transport.limits.max_frame_bytes))
            else:
                await conn.ws.send_str("hello, I am not binary")
        except (ConnectionError, RuntimeError, OSError) as exc:
            # The peer closes as soon as it reads the frame header, usually mid-write.
            self.stats[f"{what}_cut_off_{type(exc).__name__}"] += 1

    def _junk_transactions(self) -> list[bytes]:
        """Well-formed, correctly signed transfers from a key no organisation registered."""
        key = SigningKey.from_label(f"byzantine-junk-{self.rng.random()}")
        to = self.rng.randbytes(32)
        out = [TxBody(self.genesis.chain_id, key.public_key, n, "ledger", "transfer", [to, 1], 200_000).sign(key).encode()
               for n in range(JUNK_TXS - JUNK_TXS // 8)]
        out += [self.rng.randbytes(self.rng.randint(1, 300)) for _ in range(JUNK_TXS // 8)]
        self.rng.shuffle(out)
        return out


# --- the outsider ------------------------------------------------------------------------

async def _hold_tcp(host: str, port: int, until: float, stats: Counter) -> None:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        stats["tcp_refused"] += 1
        return
    stats["tcp_opened"] += 1
    try:
        while time.monotonic() < until and not writer.is_closing():
            await asyncio.sleep(0.2)
    finally:
        writer.transport.abort()


async def _hold_upgrade(session: aiohttp.ClientSession, host: str, port: int, until: float, stats: Counter) -> None:
    """Upgrade to the p2p websocket and never say HELLO; upgrade again when the node closes it."""
    while time.monotonic() < until:
        try:
            async with session.ws_connect(f"ws://{host}:{port}{ROUTE}", timeout=aiohttp.ClientWSTimeout(ws_close=1)) as ws:
                stats["ws_upgrades"] += 1
                left = until - time.monotonic()
                if left > 0:
                    await ws.receive(timeout=left)
                stats["ws_closed_by_node"] += 1
        except asyncio.TimeoutError:
            return
        except aiohttp.WSServerHandshakeError as exc:
            stats[f"ws_refused_{exc.status}"] += 1
            await asyncio.sleep(0.2)
        except (aiohttp.ClientError, OSError):
            stats["ws_failed"] += 1
            await asyncio.sleep(0.2)


async def _slowloris(host: str, port: int, until: float, rng: random.Random, stats: Counter) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        stats["slowloris_refused"] += 1
        return
    stats["slowloris_opened"] += 1
    try:
        writer.write(f"POST /rpc HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n".encode())
        while time.monotonic() < until and not writer.is_closing() and not reader.at_eof():
            await asyncio.sleep(SLOWLORIS_INTERVAL_S)
            writer.write(f"X-{rng.randrange(10**6)}: {rng.randrange(10**6)}\r\n".encode())
            await writer.drain()
            stats["slowloris_lines"] += 1
        if reader.at_eof():
            stats["slowloris_closed_by_node"] += 1
    except (ConnectionError, OSError):
        stats["slowloris_closed_by_node"] += 1
    finally:
        writer.transport.abort()


async def run_outsider(p2p: list[str], rpc: list[str], seconds: float, seed: int,
                       tcp_per_port: int = OUTSIDER_TCP_PER_PORT, ws_per_port: int = OUTSIDER_WS_PER_PORT,
                       slowloris_per_port: int = OUTSIDER_SLOWLORIS_PER_PORT) -> dict:
    """Hold connections open against every given address for ``seconds``; returns the counts."""
    rng = random.Random(seed)
    stats: Counter[str] = Counter()
    until = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        jobs = []
        for address in p2p:
            host, port = address.rsplit(":", 1)
            jobs += [_hold_tcp(host, int(port), until, stats) for _ in range(tcp_per_port)]
            jobs += [_hold_upgrade(session, host, int(port), until, stats) for _ in range(ws_per_port)]
        for address in rpc:
            host, port = address.rsplit(":", 1)
            jobs += [_slowloris(host, int(port), until, rng, stats) for _ in range(slowloris_per_port)]
            jobs += [_hold_tcp(host, int(port), until, stats) for _ in range(tcp_per_port // 2)]
        await asyncio.wait_for(asyncio.gather(*jobs, return_exceptions=True), seconds + 10)
    return {"pattern": "outsider", "seconds": seconds, **stats}


# --- command line ------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fault.byzantine", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    v = sub.add_parser("validator", help="run a validator's node that attacks after SIGUSR1")
    v.add_argument("--home", required=True)
    v.add_argument("--pattern", choices=PATTERNS, required=True)
    v.add_argument("--seconds", type=float, default=10.0)
    v.add_argument("--rate", type=float, default=None, help="messages per second per peer (default: per pattern)")
    v.add_argument("--seed", type=int, default=1)
    v.add_argument("--flood-parts", default=",".join(FLOOD_PARTS), help=f"flood only: comma-separated subset of {FLOOD_PARTS}")
    o = sub.add_parser("outsider", help="hold connections open, no key")
    o.add_argument("--p2p", default="", help="comma-separated host:port list")
    o.add_argument("--rpc", default="", help="comma-separated host:port list")
    o.add_argument("--seconds", type=float, default=10.0)
    o.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.role == "outsider":
        split = lambda text: [a for a in text.split(",") if a]  # noqa: E731
        report = asyncio.run(run_outsider(split(args.p2p), split(args.rpc), args.seconds, args.seed))
        print(REPORT_PREFIX + json.dumps(report, sort_keys=True), flush=True)
        return 0
    config, key, _ = load_home(args.home)
    setup_logging(f"byzantine-{config.get('node', 'moniker')}/{key.public_key.hex()[:8]}", config.get("log", "level"),
                  config.get("log", "format"))
    rate = args.rate if args.rate is not None else DEFAULT_RATES[args.pattern]
    parts = tuple(p for p in args.flood_parts.split(",") if p)
    if not parts or any(p not in FLOOD_PARTS for p in parts):
        parser.error(f"--flood-parts: expected a comma-separated subset of {FLOOD_PARTS}, found {args.flood_parts!r}")
    node = ByzantineNode(args.home, args.pattern, args.seconds, rate, args.seed, parts)
    print(f"byzantine {args.pattern} node pid {os.getpid()} on {args.home}", flush=True)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(node.run())


if __name__ == "__main__":
    sys.exit(main())
