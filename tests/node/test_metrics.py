"""Prometheus text exposition: rendering, escaping, histograms, label rules, limits."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

import node.ops.metrics as metrics_module
from node.ops.metrics import CONTENT_TYPE, MetricsError, Registry, format_value

# --- a tiny parser of the text format 0.0.4, strict enough to catch format mistakes ---

_SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
_LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


@dataclass
class Family:
    name: str
    help: str = ""
    type: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _unescape(text: str, quote: bool) -> str:
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1]
            assert nxt in ("\\n\"" if quote else "\\n"), f"bad escape \\{nxt}"
            out.append("\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _parse_labels(text: str) -> dict[str, str]:
    inner = text[1:-1]
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(inner):
        m = _LABEL_RE.match(inner, pos)
        assert m, f"bad label set {text!r} at {pos}"
        assert m.group(1) not in labels, f"repeated label {m.group(1)}"
        labels[m.group(1)] = _unescape(m.group(2), quote=True)
        pos = m.end()
    return labels


def _parse_value(text: str) -> float:
    return {"+Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}.get(text) or float(text)


def parse_exposition(text: str) -> dict[str, Family]:
    """Families by name; asserts HELP/TYPE come first, once, and samples belong to them."""
    assert text.endswith("\n")
    families: dict[str, Family] = {}
    current: Family | None = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in families, f"family {name} twice"
            current = families[name] = Family(name, help=_unescape(help_text, quote=False))
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert current is not None and current.name == name and not current.samples, line
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), kind
            current.type = kind
        else:
            m = _SAMPLE_RE.match(line)
            assert m and current is not None, f"bad sample line {line!r}"
            name, labels, value = m.group(1), m.group(2), m.group(3)
            suffixes = ("_bucket", "_sum", "_count") if current.type == "histogram" else ("",)
            assert any(name == current.name + s for s in suffixes), f"{name} outside family {current.name}"
            current.samples.append((name, _parse_labels(labels) if labels else {}, _parse_value(value)))
    return families


def sample(families: dict[str, Family], name: str, **labels: str) -> float:
    family_name = re.sub(r"_(bucket|sum|count)$", "", name) if name not in families else name
    matches = [v for n, lab, v in families[family_name].samples if n == name and lab == labels]
    assert len(matches) == 1, (name, labels, families[family_name].samples)
    return matches[0]


def check_histograms(families: dict[str, Family]) -> None:
    """Buckets are cumulative, end in +Inf, and +Inf equals _count."""
    for fam in families.values():
        if fam.type != "histogram":
            continue
        series: dict[tuple, list[tuple[float, float]]] = {}
        counts: dict[tuple, float] = {}
        for name, labels, value in fam.samples:
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            if name.endswith("_bucket"):
                series.setdefault(key, []).append((_parse_value(labels["le"]), value))
            elif name.endswith("_count"):
                counts[key] = value
        for key, buckets in series.items():
            bounds = [b for b, _ in buckets]
            assert bounds == sorted(bounds) and bounds[-1] == math.inf
            values = [v for _, v in buckets]
            assert values == sorted(values), f"{fam.name}{key} buckets not cumulative"
            assert values[-1] == counts[key]


# --- tests ----------------------------------------------------------------------------


def test_counter_gauge_histogram_render_and_parse() -> None:
    reg = Registry()
    requests = reg.counter("app_requests_total", "Requests served.", ("method", "outcome"))
    up = reg.gauge("app_up", "1 when serving.")
    latency = reg.histogram("app_latency_seconds", "Latency.", ("method",), buckets=(0.1, 1.0))
    requests.labels("get", "ok").inc()
    requests.labels(method="get", outcome="ok").inc(2)
    requests.labels("put", "error").inc()
    up.set(1)
    for v in (0.05, 0.1, 0.5, 3.0):
        latency.labels("get").observe(v)
    families = parse_exposition(reg.render())
    assert [f for f in families] == ["app_requests_total", "app_up", "app_latency_seconds"]
    assert families["app_requests_total"].type == "counter" and families["app_requests_total"].help == "Requests served."
    assert sample(families, "app_requests_total", method="get", outcome="ok") == 3
    assert sample(families, "app_requests_total", method="put", outcome="error") == 1
    assert sample(families, "app_up") == 1
    assert sample(families, "app_latency_seconds_bucket", method="get", le="0.1") == 2  # 0.1 is <= 0.1
    assert sample(families, "app_latency_seconds_bucket", method="get", le="1.0") == 3
    assert sample(families, "app_latency_seconds_bucket", method="get", le="+Inf") == 4
    assert sample(families, "app_latency_seconds_count", method="get") == 4
    assert sample(families, "app_latency_seconds_sum", method="get") == pytest.approx(3.65)
    check_histograms(families)
    assert CONTENT_TYPE.startswith("text/plain; version=0.0.4")


def test_exact_text_of_a_small_registry() -> None:
    reg = Registry()
    c = reg.counter("x_total", "Help with \\ and\nnewline.", ("path",))
    c.labels('a"b\\c\nd').inc()
    h = reg.histogram("y_seconds", "H.", buckets=(1, 2))
    h.observe(1.5)
    assert reg.render() == (
        "# HELP x_total Help with \\\\ and\\nnewline.\n"
        "# TYPE x_total counter\n"
        'x_total{path="a\\"b\\\\c\\nd"} 1\n'
        "# HELP y_seconds H.\n"
        "# TYPE y_seconds histogram\n"
        'y_seconds_bucket{le="1.0"} 0\n'
        'y_seconds_bucket{le="2.0"} 1\n'
        'y_seconds_bucket{le="+Inf"} 1\n'
        "y_seconds_sum 1.5\n"
        "y_seconds_count 1\n"
    )


@given(value=st.text(max_size=30), help_text=st.text(max_size=30))
def test_escaping_round_trips_through_the_parser(value: str, help_text: str) -> None:
    reg = Registry()
    reg.gauge("g", help_text, ("label",)).labels(value).set(2.5)
    families = parse_exposition(reg.render())
    assert families["g"].help == help_text
    assert families["g"].samples == [("g", {"label": value}, 2.5)]


def test_values_format() -> None:
    assert format_value(3) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(math.nan) == "NaN"


def test_gauge_operations_and_functions() -> None:
    reg = Registry()
    g = reg.gauge("queue_len", "Items.")
    g.inc(5)
    g.dec(2)
    assert g.get() == 3
    size = [7]
    g.set_function(lambda: size[0])
    size[0] = 9
    assert sample(parse_exposition(reg.render()), "queue_len") == 9
    g.set_function(lambda: 1 / 0)  # a broken probe reports NaN, the scrape survives
    assert math.isnan(sample(parse_exposition(reg.render()), "queue_len"))


def test_a_counter_collector_reports_a_components_own_totals_at_scrape() -> None:
    reg = Registry()
    totals = {"pre_auth_timeouts": 3}
    c = reg.counter("p2p_events_total", "Events.", ("event",))
    c.set_collector(lambda: totals)
    totals["upgrades_refused"] = 2
    families = parse_exposition(reg.render())
    assert families["p2p_events_total"].type == "counter"
    assert sample(families, "p2p_events_total", event="pre_auth_timeouts") == 3
    assert sample(families, "p2p_events_total", event="upgrades_refused") == 2
    with pytest.raises(MetricsError, match="exactly one label"):
        reg.counter("plain_total", "P.").set_collector(lambda: {})


def test_misuse_is_refused_with_clear_errors() -> None:
    reg = Registry()
    c = reg.counter("c_total", "C.", ("a",))
    with pytest.raises(MetricsError, match="only goes up"):
        c.labels("x").inc(-1)
    with pytest.raises(MetricsError, match=r"expected 1 label values \['a'\], found 2"):
        c.labels("x", "y")
    with pytest.raises(MetricsError, match=r"expected labels \['a'\], found \['b'\]"):
        c.labels(b="x")
    with pytest.raises(MetricsError, match="call .labels"):
        c.inc()
    with pytest.raises(MetricsError, match="metric name"):
        reg.counter("bad-name", "x")
    with pytest.raises(MetricsError, match="label name"):
        reg.counter("ok_total", "x", ("__reserved",))
    with pytest.raises(MetricsError, match="'le'"):
        reg.histogram("h", "x", ("le",))
    with pytest.raises(MetricsError, match="strictly increasing"):
        reg.histogram("h", "x", buckets=(2, 1))
    with pytest.raises(MetricsError, match="already registered as a counter"):
        reg.gauge("c_total", "C.", ("a",))
    # An identical definition returns the same family (shared registries).
    assert reg.counter("c_total", "C.", ("a",)) is c


def test_series_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "MAX_SERIES_PER_METRIC", 3)
    c = Registry().counter("c_total", "C.", ("peer",))
    for i in range(3):
        c.labels(str(i)).inc()
    c.labels("0").inc()  # existing series still usable
    with pytest.raises(MetricsError, match="already has 3 label combinations"):
        c.labels("new")


def test_empty_registry_and_unlabelled_families_show_zero() -> None:
    assert Registry().render() == ""
    reg = Registry()
    reg.counter("c_total", "C.")
    reg.counter("d_total", "D.", ("x",))  # labelled, no child yet: only HELP and TYPE
    families = parse_exposition(reg.render())
    assert families["c_total"].samples == [("c_total", {}, 0)]
    assert families["d_total"].samples == []
