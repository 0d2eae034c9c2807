"""Liveness figures for a fault window: committed rate, RPC latency, memory.

How this works: a ``LatencyProbe`` thread calls ``chain_status`` on one honest node
every ``PROBE_INTERVAL_S`` and keeps (time, seconds the answer took, height) for every
call; a call that fails or takes longer than ``PROBE_TIMEOUT_S`` counts with that
timeout as its latency, so a stuck node shows up as slow rather than as missing data.
``Window`` marks the start and end of a measured interval: at each end it reads the
commit counters (``shopchain_txs_committed_total``, ``shopchain_blocks_committed_total``
from ``/metrics``) of the nodes that must keep going, and at the end their resident
memory from ``/proc``. The committed rate of a window is the slowest of those nodes
(transactions and blocks per second); a fault's ratio is its window's transaction rate
over that of the fault-free window measured just before it under the same load.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from node.client import Client
from tests.fault.checks import percentile

#: How often the probe asks an honest node for ``chain_status``.
PROBE_INTERVAL_S = 0.1
#: Longest the probe waits for one answer; a slower answer is recorded as this.
PROBE_TIMEOUT_S = 5.0
#: Longest a /metrics read may take at a window's edge before the node counts as unknown.
METRICS_TIMEOUT_S = 10.0


def read_counters(rpc_url: str) -> tuple[float, float] | None:
    """(transactions, blocks) committed since the node started, or None if it does not answer."""
    try:
        with urllib.request.urlopen(rpc_url.rstrip("/") + "/metrics", timeout=METRICS_TIMEOUT_S) as response:
            text = response.read().decode()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("shopchain_txs_committed_total", "shopchain_blocks_committed_total"):
            values[name] = float(value)
    if len(values) != 2:
        return None
    return values["shopchain_txs_committed_total"], values["shopchain_blocks_committed_total"]


def memory_mib(pid: int | None) -> tuple[float, float] | None:
    """(resident now, peak resident) of a process in MiB, from /proc/<pid>/status."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        return None


class LatencyProbe:
    """A background thread timing ``chain_status`` on one node."""

    def __init__(self, rpc_url: str) -> None:
        self.url = rpc_url
        self.samples: list[tuple[float, float, int | None]] = []  # (monotonic start, seconds, height or None)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-probe", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> "LatencyProbe":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT_S + 1)

    def retarget(self, rpc_url: str) -> None:
        self.url = rpc_url

    def _run(self) -> None:
        while not self._stop.is_set():
            client = Client(self.url, timeout=PROBE_TIMEOUT_S)
            started = time.monotonic()
            height = None
            try:
                height = client.status()["height"]
                took = time.monotonic() - started
            except Exception:  # noqa: BLE001 - any failure is a slow answer for this measure
                took = max(PROBE_TIMEOUT_S, time.monotonic() - started)
            with self._lock:
                self.samples.append((started, took, height))
            self._stop.wait(max(0.0, PROBE_INTERVAL_S - (time.monotonic() - started)))

    def between(self, start: float, end: float) -> list[tuple[float, float, int | None]]:
        with self._lock:
            return [s for s in self.samples if start <= s[0] < end]


@dataclass
class WindowFigures:
    """What one measured interval showed (rates are the slowest of the measured nodes)."""

    seconds: float
    tx_rate: float | None
    block_rate: float | None
    status_p50_s: float | None
    status_max_s: float | None
    status_failures: int
    longest_commit_gap_s: float | None
    rss_mib: dict[str, float] = field(default_factory=dict)
    peak_rss_mib: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in vars(self).items()}


class Window:
    """``begin()``, let time pass, ``end()`` -> WindowFigures for the given nodes."""

    def __init__(self, urls: dict[str, str], pids: dict[str, int | None], probe: LatencyProbe) -> None:
        self.urls = urls
        self.pids = pids
        self.probe = probe
        self.started = 0.0
        self.first: dict[str, tuple[float, float] | None] = {}

    def _counters(self) -> dict[str, tuple[float, float] | None]:
        with ThreadPoolExecutor(len(self.urls)) as pool:  # a stuck node must not delay the others' reading
            return dict(zip(self.urls, pool.map(read_counters, self.urls.values())))

    def begin(self) -> "Window":
        self.first = self._counters()
        self.started = time.monotonic()
        return self

    def end(self) -> WindowFigures:
        ended = time.monotonic()
        last = self._counters()
        seconds = ended - self.started
        tx_rates, block_rates = [], []
        for name in self.urls:
            a, b = self.first.get(name), last.get(name)
            if a is None or b is None or b[1] < a[1]:
                # No answer within METRICS_TIMEOUT_S, or the node restarted: its rate is unknown,
                # and an unknown rate fails any floor (a later reading would count the recovery).
                tx_rates.append(None)
                block_rates.append(None)
                continue
            tx_rates.append((b[0] - a[0]) / seconds)
            block_rates.append((b[1] - a[1]) / seconds)
        samples = self.probe.between(self.started, ended)
        latencies = [took for _, took, _ in samples]
        memory = {name: memory_mib(pid) for name, pid in self.pids.items()}
        return WindowFigures(
            seconds, _slowest(tx_rates), _slowest(block_rates), percentile(latencies, 50),
            max(latencies, default=None), sum(1 for _, _, h in samples if h is None),
            _longest_gap(samples, self.started, ended),
            {n: round(m[0], 1) for n, m in memory.items() if m}, {n: round(m[1], 1) for n, m in memory.items() if m})


def _slowest(rates: list[float | None]) -> float | None:
    return None if not rates or None in rates else min(rates)  # type: ignore[type-var]


def _longest_gap(samples: list[tuple[float, float, int | None]], start: float, end: float) -> float | None:
    """Longest time in [start, end] during which the probed node's height did not move."""
    points = [(t + took, h) for t, took, h in samples if h is not None]
    if not points:
        return None
    longest, since, height = 0.0, start, points[0][1]
    for t, h in points:
        if h != height:
            longest = max(longest, t - since)
            since, height = t, h
    return max(longest, end - since)


def ratio(fault: WindowFigures, baseline: WindowFigures) -> float | None:
    """Committed transactions per second in the fault window over the baseline's."""
    if fault.tx_rate is None or not baseline.tx_rate:
        return None
    return fault.tx_rate / baseline.tx_rate


def summary_line(kind: str, baseline: WindowFigures, fault: WindowFigures, extra: str = "") -> str:
    """One printable line per fault: rates, their ratio, chain_status latency, memory."""
    r = ratio(fault, baseline)
    rss = max(fault.peak_rss_mib.values(), default=0.0)

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    return (f"{kind:<12} tx/s {fmt(baseline.tx_rate, '.1f')} -> {fmt(fault.tx_rate, '.1f')} (ratio {fmt(r, '.2f')}), "
            f"blocks/s {fmt(baseline.block_rate, '.1f')} -> {fmt(fault.block_rate, '.1f')}, "
            f"chain_status p50 {fmt(fault.status_p50_s, '.3f')} s max {fmt(fault.status_max_s, '.3f')} s "
            f"({fault.status_failures} failed), longest gap {fmt(fault.longest_commit_gap_s, '.2f')} s, "
            f"honest peak RSS {rss:.0f} MiB{extra}")
