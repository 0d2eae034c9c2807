"""Shared helpers for benchmarks: timing loops and the JSON line format."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable


def result(bench: str, metric: str, value: float, unit: str, baseline: float | None) -> dict:
    """One benchmark line; ratio = value / baseline (None without a baseline)."""
    ratio = None if not baseline else round(value / baseline, 4)
    return {"bench": bench, "metric": metric, "value": round(value, 6), "unit": unit,
            "baseline": None if baseline is None else round(baseline, 6), "ratio": ratio}


def emit(line: dict) -> None:
    print(json.dumps(line), flush=True)


def per_second(fn: Callable[[], object], min_seconds: float = 1.0, batch: int = 100) -> float:
    """Calls of ``fn`` per second, timed over at least ``min_seconds``."""
    fn()  # warm caches
    count = 0
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        count += batch
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return count / elapsed


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
