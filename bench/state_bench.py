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

Two more figures of the same run: ``_bytes``, the bytes one commit writes (trie
nodes with their birth heights, flat rows, the death row) against the raw write-set's
bytes; and ``_pruned``, the commit with its state-pruning step in the same batch
(``ledger.state_prune``, a window of ``PRUNED_RETAIN_STATES``), as a pruning node
commits, against the raw write.

``--disk TXS,TXS,...`` measures disk instead: a steady workload that keeps rewriting
the same ``DISK_HOT_KEYS`` keys (``DISK_KEYS_PER_TX`` per transaction, like an order
and its escrow and index rows, ``DISK_TXS_PER_BLOCK`` per block) is committed in an
archive store and in one with ``retain_states = DISK_RETAIN_STATES``, and the bytes of
the LevelDB directory after each number of transactions are printed per transaction
(as found, and after a full compaction), the archive's figure as the baseline of the
pruned one and the raw write-set bytes per transaction as the archive's.

Run: ``python -m bench.state_bench [--keys N] [--write-set N] [--path DIR] [--settle-seconds S] [--disk TXS,...]``.
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
from ledger.state_prune import PRUNE_NODES_PER_COMMIT, StatePruner
from ledger.storage import schema
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
#: The state-pruning window of the ``_pruned`` figure (small, so every commit prunes).
PRUNED_RETAIN_STATES = 2
#: The disk workload: keys rewritten, keys per transaction, transactions per block,
#: value size, and the pruned store's window.
DISK_HOT_KEYS = 20_000
DISK_KEYS_PER_TX = 3
DISK_TXS_PER_BLOCK = 200
DISK_VALUE_BYTES = 100
DISK_RETAIN_STATES = 100
#: Most transactions one --disk run may ask for (a million takes minutes per store).
MAX_DISK_TXS = 10_000_000


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


def time_pruned(state: StateStore, pruner: StatePruner, writes: dict[bytes, bytes]) -> float:
    """Wall seconds of the commit with its pruning step in the same synced batch (node.core.chain's order)."""
    started = time.perf_counter()
    overlay = state.overlay()
    for key, value in writes.items():
        overlay.put(key, value)
    diff = overlay.commit()
    prune_ops, marker = pruner.plan(diff.height, PRUNE_NODES_PER_COMMIT, diff.ops)
    state.kv.write(prune_ops + diff.ops, sync=True)
    pruner.written(marker, prune_ops)
    state.mark_committed(diff)
    return time.perf_counter() - started


def _measure_pruned(state: StateStore, kv: LevelDBKV, keys: list[bytes], write_set: int,
                    rng: random.Random) -> tuple[float, float]:
    """Medians of (commit with pruning, raw batch write), once the backlog of the build is pruned."""
    pruner = StatePruner(kv, PRUNED_RETAIN_STATES)
    pruner.catch_up(state.height, max_steps=10**6, sync=False)
    pruned: list[float] = []
    raw: list[float] = []
    for repetition in range(WARMUP_COMMITS + REPETITIONS):
        writes, inserts = _write_set(rng, keys, write_set)
        keys.extend(inserts)
        if repetition < WARMUP_COMMITS:
            time_pruned(state, pruner, writes)
            continue
        raw.append(time_raw(kv, writes))
        pruned.append(time_pruned(state, pruner, writes))
    return statistics.median(pruned), statistics.median(raw)


def _commit_bytes(state: StateStore, keys: list[bytes], write_set: int, rng: random.Random) -> tuple[int, int]:
    """(bytes one authenticated commit writes, bytes of the raw write-set), committing it."""
    writes, inserts = _write_set(rng, keys, write_set)
    keys.extend(inserts)
    overlay = state.overlay()
    for key, value in writes.items():
        overlay.put(key, value)
    diff = overlay.commit()
    state.apply(diff, sync=False)
    ours = sum(len(key) + len(value or b"") for key, value in diff.ops)
    return ours, sum(len(RAW_PREFIX + key) + len(value) for key, value in writes.items())


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
        written, raw_bytes = _commit_bytes(state, keys, write_set, rng)
        pruned_value, pruned_baseline = _measure_pruned(state, kv, keys, write_set, rng)
        # Cold: the same store reopened with an empty node cache, as right after a restart.
        cold_state = StateStore(kv, state.root, height=state.height)
        cold_value, _, cold_baseline = _measure(cold_state, kv, keys, write_set, rng)
        return [
            _line(metric, warm_value, warm_baseline),
            _line(metric + "_compute_cpu", warm_compute, warm_baseline),
            _line(metric + "_bytes", written, raw_bytes, "bytes"),
            _line(metric + "_pruned", pruned_value, pruned_baseline),
            _line(metric + "_cold_cache", cold_value, cold_baseline),
        ]
    finally:
        kv.close()
        if own_directory:
            shutil.rmtree(directory, ignore_errors=True)


def run_disk(checkpoints: list[int], path: str | None = None) -> list[dict]:
    """Bytes on disk per transaction of the rewrite workload, archive vs pruned (see the module docstring)."""
    if not checkpoints or any(not 0 < n <= MAX_DISK_TXS for n in checkpoints):
        raise ValueError(f"--disk: expected transaction counts in 1..{MAX_DISK_TXS:,}, found {checkpoints}")
    checkpoints = sorted(checkpoints)
    figures: dict[int, dict[int, tuple[float, float]]] = {}
    raw_per_tx = DISK_KEYS_PER_TX * (len(RAW_PREFIX) + len(KEY_PREFIX) + KEY_ID_BYTES + DISK_VALUE_BYTES)
    for retain in (0, DISK_RETAIN_STATES):
        directory = tempfile.mkdtemp(prefix="shopchain-disk-bench-", dir=path)
        rng = random.Random(SEED)
        kv = LevelDBKV(directory)
        try:
            state, pruner = StateStore(kv), StatePruner(kv, retain)
            hot = [_new_key(rng) for _ in range(DISK_HOT_KEYS)]
            done = 0
            started = time.perf_counter()
            for checkpoint in checkpoints:
                while done < checkpoint:
                    txs = min(DISK_TXS_PER_BLOCK, checkpoint - done)
                    overlay = state.overlay()
                    for key in rng.sample(hot, min(len(hot), txs * DISK_KEYS_PER_TX)):
                        overlay.put(key, rng.randbytes(DISK_VALUE_BYTES))
                    diff = overlay.commit()
                    prune_ops, marker = pruner.plan(diff.height, PRUNE_NODES_PER_COMMIT, diff.ops)
                    kv.write(prune_ops + diff.ops + [(schema.state_root_key(diff.height), diff.root)], sync=False)
                    pruner.written(marker, prune_ops)
                    state.mark_committed(diff)
                    done += txs
                found = kv.disk_bytes()
                kv.compact()
                figures.setdefault(checkpoint, {})[retain] = (found / checkpoint, kv.disk_bytes() / checkpoint)
                print(f"retain_states={retain}: {checkpoint:,} txs, {found:,} bytes on disk, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        finally:
            kv.close()
            shutil.rmtree(directory, ignore_errors=True)
    lines = []
    for checkpoint in checkpoints:
        archive, pruned = figures[checkpoint][0], figures[checkpoint][DISK_RETAIN_STATES]
        label = _size_label(checkpoint)
        for suffix, index in (("", 0), ("_compacted", 1)):
            lines.append(_line(f"disk_bytes_per_tx_{label}_archive{suffix}", archive[index], raw_per_tx, "bytes/tx"))
            lines.append(_line(f"disk_bytes_per_tx_{label}_retain{DISK_RETAIN_STATES}{suffix}", pruned[index],
                               archive[index], "bytes/tx"))
    return lines


def _line(metric: str, value: float, baseline: float, unit: str = "s") -> dict:
    return {
        "bench": "ledger",
        "metric": metric,
        "value": round(value, 6),
        "unit": unit,
        "baseline": round(baseline, 6),
        "ratio": round(value / baseline, 3) if baseline > 0 else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys in the state before the timed commits")
    parser.add_argument("--write-set", type=int, default=4000, help="keys changed per timed commit")
    parser.add_argument("--path", default=None, help="LevelDB directory to use (default: a temporary one)")
    parser.add_argument("--settle-seconds", type=float, default=SETTLE_SECONDS, help="pause after the build")
    parser.add_argument("--disk", default=None, help="measure bytes on disk after these transaction counts "
                                                      "(comma separated, e.g. 10000,100000) instead")
    args = parser.parse_args(argv)
    if args.disk:
        lines = run_disk([int(n) for n in args.disk.split(",")], args.path)
    else:
        lines = run_state_commit(args.keys, args.write_set, args.path, args.settle_seconds)
    for line in lines:
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
