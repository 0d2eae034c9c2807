"""Metrics on prometheus_client: declarations, registration, scrape-time probes, series caps.

The helpers here (``parse_exposition``, ``sample``, ``check_histograms``) read an
exposition the way a Prometheus scraper does, with prometheus_client's own parser;
the RPC server and node tests use them too.
"""

from __future__ import annotations

import math

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from node.ops.metric_defs import ALL_METRICS, NODE_METRICS, RPC_METRICS, STANDARD_METRICS, MetricDef, register
from node.ops.metrics import OVERFLOW_LABEL, Bounded, MetricsError, new_registry, render

# --- reading an exposition like a scraper ---------------------------------------------


def parse_exposition(text: str | bytes) -> dict[str, Metric]:
    """Families by name (a counter's family name is without ``_total``, its samples with it)."""
    if isinstance(text, bytes):
        text = text.decode()
    families: dict[str, Metric] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"family {family.name} twice"
        families[family.name] = family
    return families


def sample(families: dict[str, Metric], name: str, **labels: str) -> float:
    """The value of the one sample called ``name`` with exactly ``labels``."""
    matches = [s.value for f in families.values() for s in f.samples if s.name == name and s.labels == labels]
    assert len(matches) == 1, (name, labels, [s for f in families.values() for s in f.samples if s.name == name])
    return matches[0]


def check_histograms(families: dict[str, Metric]) -> None:
    """Buckets are cumulative, end in +Inf, and +Inf equals _count."""
    for fam in families.values():
        if fam.type != "histogram":
            continue
        series: dict[tuple, list[tuple[float, float]]] = {}
        counts: dict[tuple, float] = {}
        for s in fam.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            if s.name.endswith("_bucket"):
                series.setdefault(key, []).append((float(s.labels["le"]), s.value))
            elif s.name.endswith("_count"):
                counts[key] = s.value
        for key, buckets in series.items():
            bounds = [b for b, _ in buckets]
            assert bounds == sorted(bounds) and bounds[-1] == math.inf
            values = [v for _, v in buckets]
            assert values == sorted(values), f"{fam.name}{key} buckets not cumulative"
            assert values[-1] == counts[key]


def check_counters_end_in_total(families: dict[str, Metric]) -> None:
    """What Prometheus and the OpenMetrics naming rules expect of every counter."""
    for fam in families.values():
        if fam.type == "counter":
            assert fam.samples is not None
            for s in fam.samples:
                assert s.name.endswith("_total"), f"counter {fam.name} exposes {s.name}"


# --- tests ----------------------------------------------------------------------------

DEFS = (
    MetricDef("app_requests_total", "counter", "Requests served.", ("method", "outcome")),
    MetricDef("app_up", "gauge", "1 when serving."),
    MetricDef("app_latency_seconds", "histogram", "Latency.", ("method",), (0.1, 1.0)),
)


def test_registered_families_update_and_render() -> None:
    reg = CollectorRegistry()
    f = register(reg, DEFS)
    f["app_requests_total"].labels("get", "ok").inc()
    f["app_requests_total"].labels(method="get", outcome="ok").inc(2)
    f["app_requests_total"].labels("put", "error").inc()
    f["app_up"].set(1)  # type: ignore[union-attr]
    for v in (0.05, 0.1, 0.5, 3.0):
        f["app_latency_seconds"].labels("get").observe(v)
    families = parse_exposition(render(reg))
    assert list(families) == ["app_requests", "app_up", "app_latency_seconds"]
    assert families["app_requests"].type == "counter" and families["app_requests"].documentation == "Requests served."
    assert sample(families, "app_requests_total", method="get", outcome="ok") == 3
    assert sample(families, "app_requests_total", method="put", outcome="error") == 1
    assert sample(families, "app_up") == 1
    assert sample(families, "app_latency_seconds_bucket", method="get", le="0.1") == 2  # 0.1 is <= 0.1
    assert sample(families, "app_latency_seconds_bucket", method="get", le="1.0") == 3
    assert sample(families, "app_latency_seconds_bucket", method="get", le="+Inf") == 4
    assert sample(families, "app_latency_seconds_count", method="get") == 4
    assert sample(families, "app_latency_seconds_sum", method="get") == pytest.approx(3.65)
    check_histograms(families)
    check_counters_end_in_total(families)
    assert not any(s.name.endswith("_created") for fam in families.values() for s in fam.samples)


def test_declarations_are_checked() -> None:
    with pytest.raises(MetricsError, match="ends in _total"):
        MetricDef("app_hits", "counter", "H.")
    with pytest.raises(MetricsError, match="only a counter's name may end in _total"):
        MetricDef("app_hits_total", "gauge", "H.")
    with pytest.raises(MetricsError, match="'le'"):
        MetricDef("app_h_seconds", "histogram", "H.", ("le",))
    with pytest.raises(MetricsError, match="strictly increasing"):
        MetricDef("app_h_seconds", "histogram", "H.", (), (2.0, 1.0))
    with pytest.raises(MetricsError, match="only a histogram has buckets"):
        MetricDef("app_g", "gauge", "G.", (), (1.0,))
    with pytest.raises(MetricsError, match="not declared"):
        register(CollectorRegistry(), DEFS, {"app_nope": lambda: 1})
    with pytest.raises(MetricsError, match="only a gauge or a counter"):
        register(CollectorRegistry(), DEFS, {"app_latency_seconds": lambda: 1})
    reg = CollectorRegistry()
    register(reg, DEFS)
    with pytest.raises(ValueError, match="Duplicated"):
        register(reg, DEFS)  # one registry holds a family once


def test_every_declared_counter_is_named_total_and_every_running_count_is_a_counter() -> None:
    for d in ALL_METRICS:
        assert (d.kind == "counter") == d.name.endswith("_total"), d.name
    kinds = {d.name: d.kind for d in ALL_METRICS}
    # Running counts the issue found typed as gauges.
    assert kinds["shopchain_view_changes_total"] == "counter" and "shopchain_view_changes" not in kinds
    assert kinds["shopchain_preview_hits_total"] == "counter" and "shopchain_preview_hits" not in kinds


def test_scrape_time_probes() -> None:
    reg = CollectorRegistry()
    defs = (
        MetricDef("queue_len", "gauge", "Items."),
        MetricDef("p2p_events_total", "counter", "Events.", ("event",)),
        MetricDef("hits_total", "counter", "Hits."),
    )
    size, totals, hits = [7], {"pre_auth_timeouts": 3}, [0]
    f = register(reg, defs, {"queue_len": lambda: size[0], "p2p_events_total": lambda: totals,
                             "hits_total": lambda: hits[0]})
    assert f == {}  # nothing to update by hand
    size[0], hits[0] = 9, 4
    totals["upgrades_refused"] = 2
    families = parse_exposition(render(reg))
    assert sample(families, "queue_len") == 9
    assert families["p2p_events"].type == "counter" and families["hits"].type == "counter"
    assert sample(families, "p2p_events_total", event="pre_auth_timeouts") == 3
    assert sample(families, "p2p_events_total", event="upgrades_refused") == 2
    assert sample(families, "hits_total") == 4
    check_counters_end_in_total(families)


def test_a_broken_probe_does_not_break_the_scrape() -> None:
    reg = CollectorRegistry()
    defs = (MetricDef("queue_len", "gauge", "Items."), MetricDef("events_total", "counter", "E.", ("event",)),
            MetricDef("ok_g", "gauge", "Fine."))
    register(reg, defs, {"queue_len": lambda: 1 / 0, "events_total": lambda: 1 / 0, "ok_g": lambda: 5})
    families = parse_exposition(render(reg))
    assert math.isnan(sample(families, "queue_len"))  # a gauge says it does not know
    assert families["events"].samples == []  # a counter shows nothing rather than a wrong number
    assert sample(families, "ok_g") == 5


def test_series_cap_counts_new_label_sets_under_other() -> None:
    reg = CollectorRegistry()
    f = register(reg, (MetricDef("c_total", "counter", "C.", ("peer", "kind"), max_series=3),))
    c = f["c_total"]
    assert isinstance(c, Bounded)
    for i in range(3):
        c.labels(str(i), "x").inc()
    c.labels("0", "x").inc()  # an existing series stays usable
    c.labels("new", "x").inc()
    c.labels("newer", "y").inc(2)
    assert c.series == 4  # the cap plus the one overflow series
    families = parse_exposition(render(reg))
    assert sample(families, "c_total", peer="0", kind="x") == 2
    assert sample(families, "c_total", peer=OVERFLOW_LABEL, kind=OVERFLOW_LABEL) == 3
    assert sum(s.value for s in families["c"].samples) == 7  # totals stay right
    with pytest.raises(MetricsError, match="expected label values"):
        c.labels("only-one")


def test_each_node_has_its_own_registry_with_the_standard_collectors() -> None:
    before = set(REGISTRY._names_to_collectors)
    a, b = new_registry(), new_registry()
    fa, fb = register(a, NODE_METRICS[1:3], {}), register(b, NODE_METRICS[1:3], {})
    fa["shopchain_height"].set(5)  # type: ignore[union-attr]
    fb["shopchain_height"].set(9)  # type: ignore[union-attr]
    assert sample(parse_exposition(render(a)), "shopchain_height") == 5
    assert sample(parse_exposition(render(b)), "shopchain_height") == 9
    assert set(REGISTRY._names_to_collectors) == before  # nothing on the global default registry
    families = parse_exposition(render(a))
    for name in ("process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds", "python_gc_objects_collected",
                 "python_gc_collections", "python_info"):
        assert name in families and families[name].samples, name
    assert sample(families, "process_resident_memory_bytes") > 0
    check_counters_end_in_total(families)


def test_the_standard_declarations_match_the_collectors() -> None:
    """The reference (docs/metrics.md) lists what the standard collectors expose."""
    families = parse_exposition(render(new_registry()))
    exposed = {(f.name + "_total" if f.type == "counter" else f.name, f.type) for f in families.values()}
    assert exposed == {(d.name, d.kind) for d in STANDARD_METRICS}
    assert {d.name for d in RPC_METRICS}.isdisjoint(d.name for d in NODE_METRICS)
