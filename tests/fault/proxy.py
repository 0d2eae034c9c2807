"""A fault-injecting TCP proxy between every ordered pair of validators.

How this works: validator X reaches validator Y through ``Link(X, Y)``, an asyncio
streams server on its own loopback port that forwards to Y's real p2p address (the
node's ``[p2p] peer_addresses`` points X at it). One ``FaultNet`` runs all links on one
event loop in a background thread, so a synchronous test driver can change faults at
any moment with plain method calls.

Faults are set on *flows*: the bytes validator X sends to validator Y. A flow crosses
``Link(X, Y)`` upstream (X dialed) or ``Link(Y, X)`` downstream (Y dialed); the
transport dials in one direction per pair, and the model does not care which. What a
TCP-level proxy can do, and so what this one offers:

* ``DELAY``     every chunk is held ``delay_ms`` (+ seeded jitter), order kept;
* ``STALL``     the proxy stops reading: the sender's socket buffers fill, then its
                queue (the p2p layer's "peer stopped reading" path);
* ``BLACKHOLE`` bytes are read and discarded, the connection stays open (a silent
                loss: the receiver sees a live but mute peer);
* ``cut``       every connection of the pair is reset and new ones are closed at once
                (a refused / broken link, what a crashed router or firewall RST does);
* partitions    (``partition``, ``isolate``) are cuts or blackholes of every flow
                between groups; one-way faults on flows give asymmetric links.

What it cannot do, by construction of TCP: duplicate, reorder or corrupt single
messages. A byte stream carries websocket frames without boundaries the proxy knows,
so replaying or reordering bytes would only desynchronise framing (the peer closes the
connection, which is just a cut). Duplication and reordering of consensus messages are
exercised by the deterministic simulator (``tests/sim``), not here.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

PASS = "pass"
DELAY = "delay"
STALL = "stall"
BLACKHOLE = "blackhole"
FLOW_MODES = (PASS, DELAY, STALL, BLACKHOLE)

#: Bytes read from a socket at a time.
CHUNK_BYTES = 64 * 1024
#: Most chunks held in one direction's delay line before the proxy stops reading.
MAX_DELAYED_CHUNKS = 1024
#: How long a stalled or cut pump sleeps between looks at its flow's mode.
POLL_S = 0.02
#: How long start/stop and control calls wait for the proxy loop.
CONTROL_TIMEOUT_S = 10.0


@dataclass
class Flow:
    """What happens to the bytes one validator sends another."""

    mode: str = PASS
    delay_ms: int = 0
    jitter_ms: int = 0


@dataclass
class _Pair:
    """Live connections of one link, so a cut can reset them."""

    writers: set[asyncio.StreamWriter] = field(default_factory=set)


class FaultNet:
    """Proxies for every ordered pair of ``n`` validators; thread-safe control methods."""

    def __init__(self, targets: list[tuple[str, int]], ports: dict[tuple[int, int], int], seed: int = 0) -> None:
        self.targets = targets
        self.ports = ports
        self.n = len(targets)
        self.rng = random.Random(seed)
        self.flows: dict[tuple[int, int], Flow] = {(a, b): Flow() for a in range(self.n) for b in range(self.n) if a != b}
        self.cut_pairs: set[frozenset[int]] = set()
        self.pairs: dict[tuple[int, int], _Pair] = {k: _Pair() for k in ports}
        self.bytes_forwarded = 0
        self.bytes_dropped = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._servers: list[asyncio.base_events.Server] = []
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> "FaultNet":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="faultnet", daemon=True)
        self._thread.start()
        self._call(self._start_servers())
        return self

    def stop(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            return
        self._call(self._stop_servers())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CONTROL_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    def _call(self, coro) -> object:  # type: ignore[no-untyped-def]
        future: Future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(CONTROL_TIMEOUT_S)

    async def _start_servers(self) -> None:
        for (a, b), port in self.ports.items():
            server = await asyncio.start_server(lambda r, w, a=a, b=b: self._on_dial(a, b, r, w), "127.0.0.1", port,
                                                reuse_address=True)
            self._servers.append(server)

    async def _stop_servers(self) -> None:
        for server in self._servers:
            server.close()
        for pair in self.pairs.values():
            for writer in list(pair.writers):
                writer.transport.abort()
        for server in self._servers:
            await server.wait_closed()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- control (any thread) ----------------------------------------------------------

    def set_flow(self, src: int, dst: int, mode: str, delay_ms: int = 0, jitter_ms: int = 0) -> None:
        if mode not in FLOW_MODES:
            raise ValueError(f"flow mode: expected one of {FLOW_MODES}, found {mode!r}")
        self.flows[(src, dst)] = Flow(mode, delay_ms, jitter_ms)

    def cut(self, a: int, b: int) -> None:
        """Reset every connection between ``a`` and ``b`` and refuse new ones until healed."""
        self.cut_pairs.add(frozenset((a, b)))
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._abort_pair, a, b)

    def partition(self, groups: list[list[int]], how: str = "cut") -> None:
        """No traffic between different groups (``how`` = "cut" or BLACKHOLE)."""
        where = {node: g for g, members in enumerate(groups) for node in members}
        for a in range(self.n):
            for b in range(a + 1, self.n):
                if where.get(a) != where.get(b):
                    if how == "cut":
                        self.cut(a, b)
                    else:
                        self.set_flow(a, b, BLACKHOLE)
                        self.set_flow(b, a, BLACKHOLE)

    def isolate(self, node: int, how: str = "cut") -> None:
        self.partition([[node], [i for i in range(self.n) if i != node]], how)

    def heal(self) -> None:
        """Every flow passes again and cut pairs may reconnect."""
        for key in self.flows:
            self.flows[key] = Flow()
        self.cut_pairs.clear()

    def describe(self) -> str:
        faults = [f"{a}->{b}:{f.mode}" for (a, b), f in sorted(self.flows.items()) if f.mode != PASS]
        faults += [f"cut {sorted(p)}" for p in self.cut_pairs]
        return ", ".join(faults) or "healthy"

    # --- data path (proxy loop) ---------------------------------------------------------

    def _abort_pair(self, a: int, b: int) -> None:
        for key in ((a, b), (b, a)):
            pair = self.pairs.get(key)
            if pair:
                for writer in list(pair.writers):
                    writer.transport.abort()

    async def _on_dial(self, a: int, b: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if frozenset((a, b)) in self.cut_pairs:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.targets[b])
        except OSError:
            writer.transport.abort()
            return
        pair = self.pairs[(a, b)]
        pair.writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pump(reader, up_writer, (a, b)), self._pump(up_reader, writer, (b, a)),
                                 return_exceptions=True)
        finally:
            for w in (writer, up_writer):
                pair.writers.discard(w)
                w.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flow_key: tuple[int, int]) -> None:
        """Copy one direction, applying the flow's current mode to every chunk."""
        line: asyncio.Queue = asyncio.Queue(MAX_DELAYED_CHUNKS)
        sender = asyncio.ensure_future(self._deliver(line, writer))
        try:
            while not sender.done():
                flow = self.flows[flow_key]
                if flow.mode == STALL:
                    await asyncio.sleep(POLL_S)
                    continue
                chunk = await reader.read(CHUNK_BYTES)
                if not chunk:
                    break
                flow = self.flows[flow_key]
                if flow.mode == BLACKHOLE:
                    self.bytes_dropped += len(chunk)
                    continue
                due = time.monotonic()
                if flow.mode == DELAY:
                    due += (flow.delay_ms + self.rng.randint(0, flow.jitter_ms)) / 1000
                await line.put((due, chunk))
        finally:
            await line.put(None)
            await asyncio.wait([sender], timeout=1.0)
            writer.transport.abort()

    async def _deliver(self, line: asyncio.Queue, writer: asyncio.StreamWriter) -> None:
        while True:
            item = await line.get()
            if item is None:
                return
            due, chunk = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            self.bytes_forwarded += len(chunk)
            try:
                await writer.drain()
            except (ConnectionError, OSError):
                return
