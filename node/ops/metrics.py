"""Prometheus metrics: counters, gauges and histograms with labels, rendered as text.

How it works: a ``Registry`` holds metric families in registration order. A family
has a name, help text and label names; ``family.labels(...)`` returns (creating on
first use) the child for one combination of label values, which holds the numbers.
A family without label names is its own single child, so ``counter.inc()`` works
directly. ``Registry.render()`` writes the text exposition format 0.0.4: per family
a ``# HELP`` and a ``# TYPE`` line, then one sample line per child (histograms:
cumulative ``_bucket{le=...}`` lines ending in ``+Inf``, then ``_sum`` and ``_count``),
children sorted by label values so the output is deterministic.

Escaping follows the format: in HELP text backslash and newline; in label values
backslash, double quote and newline. Values: integers as written, floats by repr,
``+Inf``/``-Inf``/``NaN``.

Every family has a cap on its children (``MAX_SERIES_PER_METRIC``): an unbounded label
(a peer address, a method name taken from a request) would otherwise grow memory and
the scrape without limit. Past it ``labels()`` raises ``MetricsError``.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Callable, Iterator, Mapping, Sequence

from ledger.errors import ChainError

#: Content-Type of the text exposition format served at /metrics.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Most label-value combinations one family may hold.
MAX_SERIES_PER_METRIC = 10_000
#: Most buckets in one histogram (each is a line per child in every scrape).
MAX_BUCKETS = 64
#: Prometheus client defaults, in seconds: fine for request latencies.
DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class MetricsError(ChainError, ValueError):
    """A metric was defined or used wrongly (bad name, wrong labels, negative increment)."""


def format_value(value: float) -> str:
    """A sample value as the text format writes it."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Family:
    kind = ""

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        if not _METRIC_NAME_RE.match(name):
            raise MetricsError(f"metric name must match {_METRIC_NAME_RE.pattern}, found {name!r}")
        for label in labelnames:
            if not _LABEL_NAME_RE.match(label) or label.startswith("__"):
                raise MetricsError(f"label name must match {_LABEL_NAME_RE.pattern} without a leading __, found {label!r}")
        if len(set(labelnames)) != len(labelnames):
            raise MetricsError(f"metric {name} repeats a label name: {list(labelnames)}")
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        self._children: dict[tuple[str, ...], object] = {}
        if not self.labelnames:
            self._children[()] = self._new_child()

    def _new_child(self) -> object:
        raise NotImplementedError

    def labels(self, *values: object, **named: object):  # type: ignore[no-untyped-def]
        """The child for one combination of label values (positional or by name)."""
        if values and named:
            raise MetricsError(f"metric {self.name}: give label values by position or by name, not both")
        if named:
            if set(named) != set(self.labelnames):
                raise MetricsError(f"metric {self.name}: expected labels {list(self.labelnames)}, found {sorted(named)}")
            values = tuple(named[n] for n in self.labelnames)
        if len(values) != len(self.labelnames):
            raise MetricsError(
                f"metric {self.name}: expected {len(self.labelnames)} label values {list(self.labelnames)}, found {len(values)}"
            )
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            with self._lock:
                child = self._children.get(key)
                if child is None:
                    if len(self._children) >= MAX_SERIES_PER_METRIC:
                        raise MetricsError(
                            f"metric {self.name} already has {MAX_SERIES_PER_METRIC} label combinations "
                            f"(MAX_SERIES_PER_METRIC); refusing new labels {dict(zip(self.labelnames, key))}"
                        )
                    child = self._new_child()
                    self._children[key] = child
        return child

    def _only_child(self):  # type: ignore[no-untyped-def]
        if self.labelnames:
            raise MetricsError(f"metric {self.name} has labels {list(self.labelnames)}: call .labels(...) first")
        return self._children[()]

    def _sorted_children(self) -> list[tuple[tuple[str, ...], object]]:
        with self._lock:
            return sorted(self._children.items())

    def _same_definition(self, other: _Family) -> bool:
        return type(self) is type(other) and self.labelnames == other.labelnames and self.help == other.help

    def render(self) -> Iterator[str]:
        yield f"# HELP {self.name} {escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        for key, child in self._sorted_children():
            yield from self._render_child(key, child)

    def _render_child(self, key: tuple[str, ...], child: object) -> Iterator[str]:
        yield f"{self.name}{_labels_text(self.labelnames, key)} {format_value(child.get())}"  # type: ignore[attr-defined]


class _CounterChild:
    __slots__ = ("_value", "_lock")

    def __init__(self) -> None:
        self._value: float = 0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1) -> None:
        if amount < 0 or (isinstance(amount, float) and math.isnan(amount)):
            raise MetricsError(f"a counter only goes up: expected an increment >= 0, found {amount}")
        with self._lock:
            self._value += amount

    def get(self) -> float:
        return self._value


class Counter(_Family):
    """A value that only goes up (requests served, bytes sent). Name it ``*_total``."""

    kind = "counter"
    _collector: Callable[[], Mapping[str, float]] | None = None

    def set_collector(self, function: Callable[[], Mapping[str, float]]) -> None:
        """Read the counts at scrape time from a component that keeps its own running
        totals (label value -> count), e.g. the p2p transport, which may not import node/.
        Only for a family with exactly one label."""
        if len(self.labelnames) != 1:
            raise MetricsError(f"metric {self.name}: a collector needs exactly one label, found {list(self.labelnames)}")
        self._collector = function

    def render(self) -> Iterator[str]:
        if self._collector is None:
            yield from super().render()
            return
        yield f"# HELP {self.name} {escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        try:
            counts = sorted(self._collector().items())
        except Exception:  # noqa: BLE001 - a broken probe must not break the scrape
            return
        for label, value in counts[:MAX_SERIES_PER_METRIC]:
            yield f"{self.name}{_labels_text(self.labelnames, (str(label),))} {format_value(value)}"

    def _new_child(self) -> _CounterChild:
        return _CounterChild()

    def inc(self, amount: float = 1) -> None:
        self._only_child().inc(amount)

    def get(self) -> float:
        return self._only_child().get()


class _GaugeChild:
    __slots__ = ("_value", "_lock", "_function")

    def __init__(self) -> None:
        self._value: float = 0
        self._lock = threading.Lock()
        self._function: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self._value = value

    def inc(self, amount: float = 1) -> None:
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1) -> None:
        self.inc(-amount)

    def set_function(self, function: Callable[[], float]) -> None:
        """Read the value at scrape time (e.g. the mempool's current size)."""
        self._function = function

    def get(self) -> float:
        if self._function is None:
            return self._value
        try:
            return self._function()
        except Exception:  # noqa: BLE001 - a broken probe must not break the scrape
            return math.nan


class Gauge(_Family):
    """A value that goes up and down (connections open, mempool size)."""

    kind = "gauge"

    def _new_child(self) -> _GaugeChild:
        return _GaugeChild()

    def set(self, value: float) -> None:
        self._only_child().set(value)

    def inc(self, amount: float = 1) -> None:
        self._only_child().inc(amount)

    def dec(self, amount: float = 1) -> None:
        self._only_child().dec(amount)

    def set_function(self, function: Callable[[], float]) -> None:
        self._only_child().set_function(function)

    def get(self) -> float:
        return self._only_child().get()


class _HistogramChild:
    __slots__ = ("_bounds", "_counts", "_sum", "_count", "_lock")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self._counts = [0] * len(bounds)  # per bucket, not cumulative
        self._sum: float = 0
        self._count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        if math.isnan(value):
            raise MetricsError("a histogram observation must be a number, found NaN")
        with self._lock:
            for i, bound in enumerate(self._bounds):
                if value <= bound:
                    self._counts[i] += 1
                    break
            self._sum += value
            self._count += 1

    def snapshot(self) -> tuple[list[int], float, int]:
        """Cumulative bucket counts (one per bound, +Inf last), sum, count."""
        with self._lock:
            cumulative, running = [], 0
            for c in self._counts:
                running += c
                cumulative.append(running)
            return cumulative, self._sum, self._count


class Histogram(_Family):
    """Distribution of observations in cumulative buckets (latencies, sizes)."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        if "le" in labelnames:
            raise MetricsError(f"histogram {name} may not use the label name 'le' (it names the buckets)")
        bounds = [float(b) for b in buckets]
        if not bounds or any(b >= c for b, c in zip(bounds, bounds[1:])) or any(math.isnan(b) for b in bounds):
            raise MetricsError(f"histogram {name}: expected strictly increasing bucket bounds, found {list(buckets)}")
        if bounds[-1] != math.inf:
            bounds.append(math.inf)
        if len(bounds) > MAX_BUCKETS:
            raise MetricsError(f"histogram {name}: at most {MAX_BUCKETS} buckets, found {len(bounds)}")
        self.bounds = tuple(bounds)
        super().__init__(name, help, labelnames)

    def _new_child(self) -> _HistogramChild:
        return _HistogramChild(self.bounds)

    def _same_definition(self, other: _Family) -> bool:
        return super()._same_definition(other) and self.bounds == other.bounds  # type: ignore[attr-defined]

    def observe(self, value: float) -> None:
        self._only_child().observe(value)

    def snapshot(self) -> tuple[list[int], float, int]:
        return self._only_child().snapshot()

    def _render_child(self, key: tuple[str, ...], child: object) -> Iterator[str]:
        cumulative, total, count = child.snapshot()  # type: ignore[attr-defined]
        for bound, n in zip(self.bounds, cumulative):
            le = f'le="{format_value(bound)}"'
            yield f"{self.name}_bucket{_labels_text(self.labelnames, key, le)} {n}"
        labels = _labels_text(self.labelnames, key)
        yield f"{self.name}_sum{labels} {format_value(total)}"
        yield f"{self.name}_count{labels} {count}"


class Registry:
    """All metrics of one process; ``render()`` is what /metrics serves."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._lock = threading.Lock()

    def register(self, family: _Family) -> _Family:
        """Add a family; an identical re-definition returns the existing one (so two
        components, or two servers in one test, can ask for the same metric)."""
        with self._lock:
            existing = self._families.get(family.name)
            if existing is not None:
                if not existing._same_definition(family):
                    raise MetricsError(
                        f"metric {family.name} is already registered as a {existing.kind} with labels "
                        f"{list(existing.labelnames)}; found a conflicting {family.kind} with labels {list(family.labelnames)}"
                    )
                return existing
            self._families[family.name] = family
            return family

    def counter(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Counter:
        return self.register(Counter(name, help, labelnames))  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labelnames: Sequence[str] = ()) -> Gauge:
        return self.register(Gauge(name, help, labelnames))  # type: ignore[return-value]

    def histogram(
        self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = DEFAULT_BUCKETS
    ) -> Histogram:
        return self.register(Histogram(name, help, labelnames, buckets))  # type: ignore[return-value]

    def get(self, name: str) -> _Family | None:
        return self._families.get(name)

    def render(self) -> str:
        with self._lock:
            families = list(self._families.values())
        lines: list[str] = []
        for family in families:
            lines.extend(family.render())
        return "\n".join(lines) + "\n" if lines else ""
