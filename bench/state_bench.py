"""Benchmark: committing a write-set to the authenticated state vs a raw LevelDB batch.

How it works: build a LevelDB-backed state of ``total_keys`` keys by committing
chunks of ``BUILD_CHUNK_KEYS`` (progress on stderr), then, ``REPETITIONS`` times,
take a fresh random write-set (half updates of existing keys, half new keys) and
time two things on the same store: the authenticated commit (overlay puts, batched
trie update, one synced atomic write of nodes and flat-table rows, mark_committed)
and writing the same key/value pairs unauthenticated as one synced LevelDB batch
under a bench-only namespace. The medians are reported, the raw write as the
baseline. The main figure keeps the node cache the build filled, as a running node
would; ``_compute_cpu`` is the CPU time of the calling thread for its part before
any I/O (puts, trie update, building the batch), which other processes and LevelDB's
background compaction threads cannot inflate on a shared machine; ``_cold_cache`` reopens the state with an empty node cache first (LevelDB's
own cache and the OS page cache stay warm).

Run: ``python -m bench.state_bench [--keys N] [--write-set N] [--path DIR] [--settle-seconds S]``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time

from ledger.state import StateStore
from ledger.storage.leveldb import LevelDBKV

#: Keys per commit while building the state (bounds the memory of one overlay).
BUILD_CHUNK_KEYS = 50_000
#: Timed repetitions per figure; the median is reported.
REPETITIONS = 7
#: Untimed commits of the same size before timing, so caches and LevelDB's memtable
#: are in their steady state.
WARMUP_COMMITS = 3
#: Pause after the bulk build: loading a million keys in half a minute leaves LevelDB
#: a compaction backlog that would otherwise compete for the CPU and the disk with
#: whatever is measured next (raw and authenticated alike). Seconds; 0 to skip.
SETTLE_SECONDS = 20.0
#: State keys look like contract storage: a short namespace and a 16-byte id.
KEY_PREFIX = b"bal/"
KEY_ID_BYTES = 16
VALUE_BYTES = 64
#: Namespace of the unauthenticated baseline writes (not used by the node's schema).
RAW_PREFIX = b"Z"
#: Seed of the key and value generator, so runs are comparable.
SEED = 20261122


def _size_label(count: int) -> str:
    if count % 1_000_000 == 0:
        return f"{count // 1_000_000}m"
    if count % 1_000 == 0:
        return f"{count // 1_000}k"
    return str(count)


def _new_key(rng: random.Random) -> bytes:
    return KEY_PREFIX + rng.randbytes(KEY_ID_BYTES)


def build_state(kv: LevelDBKV, total_keys: int, rng: random.Random) -> tuple[StateStore, list[bytes]]:
    """Fill a state with ``total_keys`` random keys, a chunk per commit; return it and its keys."""
    state = StateStore(kv)
    keys: list[bytes] = []
    started = time.perf_counter()
    while len(keys) < total_keys:
        overlay = state.overlay()
        for _ in range(min(BUILD_CHUNK_KEYS, total_keys - len(keys))):
            key = _new_key(rng)
            overlay.put(key, rng.randbytes(VALUE_BYTES))
            keys.append(key)
        state.apply(overlay.commit(), sync=False)
        elapsed = time.perf_counter() - started
        print(f"built {len(keys):>9,} / {total_keys:,} keys in {elapsed:7.1f} s", file=sys.stderr, flush=True)
    return state, keys


def _write_set(rng: random.Random, keys: list[bytes], size: int) -> tuple[dict[bytes, bytes], list[bytes]]:
    """Half updates of existing keys, half new keys; returns the writes and the new keys."""
    updates = rng.sample(keys, size // 2)
    inserts = [_new_key(rng) for _ in range(size - len(updates))]
    return {key: rng.randbytes(VALUE_BYTES) for key in updates + inserts}, inserts


def time_authenticated(state: StateStore, writes: dict[bytes, bytes]) -> tuple[float, float]:
    """Wall seconds for the whole authenticated commit, and thread CPU seconds of its part before any I/O."""
    started = time.perf_counter()
    cpu_started = time.thread_time()
    overlay = state.overlay()
    for key, value in writes.items():
        overlay.put(key, value)
    diff = overlay.commit()
    cpu = time.thread_time() - cpu_started
    state.apply(diff, sync=True)
    return time.perf_counter() - started, cpu


def time_raw(kv: LevelDBKV, writes: dict[bytes, bytes]) -> float:
    started = time.perf_counter()
    kv.write([(RAW_PREFIX + key, value) for key, value in writes.items()], sync=True)
    return time.perf_counter() - started


def _measure(
    state: StateStore, kv: LevelDBKV, keys: list[bytes], write_set: int, rng: random.Random
) -> tuple[float, float, float]:
    """Medians of (authenticated commit, its in-memory part, raw batch write)."""
    authenticated: list[float] = []
    computed: list[float] = []
    raw: list[float] = []
    for _ in range(WARMUP_COMMITS):
        writes, inserts = _write_set(rng, keys, write_set)
        time_authenticated(state, writes)
        keys.extend(inserts)
    for _ in range(REPETITIONS):
        writes, inserts = _write_set(rng, keys, write_set)
        raw.append(time_raw(kv, writes))
        total, compute = time_authenticated(state, writes)
        authenticated.append(total)
        computed.append(compute)
        keys.extend(inserts)
    return statistics.median(authenticated), statistics.median(computed), statistics.median(raw)


def run_state_commit(
    total_keys: int = 1_000_000, write_set: int = 4000, path: str | None = None, settle_seconds: float = SETTLE_SECONDS
) -> list[dict]:
    """Build a state of ``total_keys`` and time committing ``write_set`` keys into it."""
    own_directory = path is None
    directory = tempfile.mkdtemp(prefix="shopchain-state-bench-") if own_directory else path
    rng = random.Random(SEED)
    kv = LevelDBKV(directory)
    try:
        build_started = time.perf_counter()
        state, keys = build_state(kv, total_keys, rng)
        print(f"build took {time.perf_counter() - build_started:.1f} s", file=sys.stderr, flush=True)
        if settle_seconds > 0:
            print(f"letting LevelDB compact for {settle_seconds:.0f} s", file=sys.stderr, flush=True)
            time.sleep(settle_seconds)
        metric = f"state_commit_{write_set}_of_{_size_label(total_keys)}"
        warm_value, warm_compute, warm_baseline = _measure(state, kv, keys, write_set, rng)
        # Cold: the same store reopened with an empty node cache, as right after a restart.
        cold_state = StateStore(kv, state.root)
        cold_value, _, cold_baseline = _measure(cold_state, kv, keys, write_set, rng)
        return [
            _line(metric, warm_value, warm_baseline),
            _line(metric + "_compute_cpu", warm_compute, warm_baseline),
            _line(metric + "_cold_cache", cold_value, cold_baseline),
        ]
    finally:
        kv.close()
        if own_directory:
            shutil.rmtree(directory, ignore_errors=True)


def _line(metric: str, value: float, baseline: float) -> dict:
    return {
        "bench": "ledger",
        "metric": metric,
        "value": round(value, 6),
        "unit": "s",
        "baseline": round(baseline, 6),
        "ratio": round(value / baseline, 3) if baseline > 0 else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys in the state before the timed commits")
    parser.add_argument("--write-set", type=int, default=4000, help="keys changed per timed commit")
    parser.add_argument("--path", default=None, help="LevelDB directory to use (default: a temporary one)")
    parser.add_argument("--settle-seconds", type=float, default=SETTLE_SECONDS, help="pause after the build")
    args = parser.parse_args(argv)
    for line in run_state_commit(args.keys, args.write_set, args.path, args.settle_seconds):
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
