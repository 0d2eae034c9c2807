"""The short version of ``python -m bench.tps``: a real 4-validator devnet under a light
order-placement load, run exactly as a user runs the benchmark.

Nothing here asserts a speed (figures depend on the machine); it checks that the
command works end to end and reports what it promises: every line is a
``{bench, metric, value, unit, baseline, ratio}`` object, the offered transactions all
committed with successful receipts, the ceiling and the per-step figures are present,
and the chart is a PNG.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration  # runs the benchmark as a process against a devnet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: Generous bound for start-up, one short step and the drain on a busy 2-core machine.
RUN_TIMEOUT_S = 240
RATE = 20


def test_short_order_benchmark_reports_every_figure(tmp_path):
    chart = tmp_path / "tps.png"
    run = subprocess.run(
        [sys.executable, "-m", "bench.tps", "--kind", "order", "--rates", str(RATE), "--seconds", "2",
         "--clients", "10", "--chart", str(chart)],
        cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert lines and all(set(line) == {"bench", "metric", "value", "unit", "baseline", "ratio"} for line in lines)
    figures = {line["metric"]: line for line in lines}

    assert figures["ceiling_tps"]["value"] > 0
    committed = figures[f"order/4v/committed_tps@{RATE}"]
    assert committed["baseline"] == RATE and committed["value"] > 0
    assert figures[f"order/4v/committed_share@{RATE}"]["value"] == 1.0
    assert figures[f"order/4v/failed_receipt_share@{RATE}"]["value"] == 0.0
    for name in ("latency_p50_ms", "latency_p99_ms", "block_interval_ms", "cpu_per_tx_per_node_us",
                 "generator_cpu_per_tx_us", "machine_busy_share"):
        assert figures[f"order/4v/{name}@{RATE}"]["value"] > 0, name
    # Every validator verifies each transaction's signatures once (gossip, then the block, reuse it).
    assert 0.95 <= figures[f"order/4v/verifications_per_tx_per_node_max@{RATE}"]["value"] <= 1.05
    sustained = figures["order/4v/sustained_tps"]
    assert sustained["baseline"] == figures["ceiling_tps"]["value"]
    assert "refused {}" in run.stderr, "the light load must be admitted in full"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
