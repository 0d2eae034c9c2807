"""Prometheus metrics of one node, on prometheus_client (the standard exposition).

How it works: ``new_registry()`` makes a node's own ``CollectorRegistry``, never the
library's global default: tests run several nodes in one process, and each must show
only its own numbers. The standard collectors go on it (``ProcessCollector``: CPU,
memory, file descriptors; ``GCCollector``: ``python_gc_*``; ``PlatformCollector``:
``python_info``). ``node.ops.metric_defs.register`` then creates the declared families
there, in one of two ways:

- values that change as events happen are prometheus_client ``Counter``, ``Gauge``
  and ``Histogram`` objects the node calls ``inc``/``set``/``observe`` on;
- values a component keeps itself (the mempool's size, the replica's running count of
  view changes, the transport's event totals) are read at scrape time by a
  ``ScrapeCollector``, which yields a ``GaugeMetricFamily`` or ``CounterMetricFamily``
  (so a running count is typed a counter and exposed with ``_total``, not as a gauge).
  A probe that raises shows NaN for a gauge and no sample for a counter: a broken
  probe must not break the whole scrape.

``render(registry)`` is what /metrics serves (``generate_latest``, with ``CONTENT_TYPE``).
Counters' and histograms' ``_created`` samples are switched off, process-wide, when this
module is imported: in the text format each becomes an extra gauge family per counter
or histogram, doubling the families, and nothing here reads them.

Bounded series: a labelled family is wrapped in ``Bounded``, which lets at most the
family's declared ``max_series`` label combinations exist (``MAX_SERIES_PER_METRIC``
unless the declaration names a smaller limit). Past it a new combination is counted
under ``OVERFLOW_LABEL`` in every label and logged once, so an unbounded label (a peer
address, a method name taken from a request) cannot grow memory or the scrape without
limit, and totals over the family stay right.
"""

from __future__ import annotations

import logging
import math
import platform
import threading
from importlib import metadata
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence, Union

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    GCCollector,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from ledger.errors import ChainError

log = logging.getLogger("shopchain.metrics")

disable_created_metrics()  # see the module docstring

#: Content-Type of what /metrics serves (the text format prometheus_client writes).
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Default cap on the label combinations of one family (see ``Bounded``).
MAX_SERIES_PER_METRIC = 10_000
#: Label value that every label of a family takes once the family is at its cap.
OVERFLOW_LABEL = "other"
#: Prometheus client defaults, in seconds: fine for request latencies.
DEFAULT_BUCKETS: tuple[float, ...] = Histogram.DEFAULT_BUCKETS[:-1]  # without +Inf: it is always added


class MetricsError(ChainError, ValueError):
    """A metric was declared or attached wrongly (bad name, probe for an undeclared metric)."""


class Declared(Protocol):
    """What a collector needs of a declaration (``node.ops.metric_defs.MetricDef``)."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...]
    max_series: int


def new_registry() -> CollectorRegistry:
    """A node's own registry, with the process, GC and platform collectors on it."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The exposition /metrics serves, in the registry's registration order."""
    return generate_latest(registry)


def build_info_labels(chain_id: str) -> dict[str, str]:
    """Labels of ``shopchain_build_info``: which code, on which Python, serves which chain."""
    try:
        version = metadata.version("shopchain")
    except metadata.PackageNotFoundError:
        version = "0.0.0"
    return {"version": version, "python": platform.python_version(), "chain_id": chain_id}


class Bounded:
    """A labelled prometheus_client metric with a cap on its label combinations.

    ``labels(...)`` is the wrapped metric's, except that past ``max_series`` distinct
    combinations a new one is given ``OVERFLOW_LABEL`` in every label (logged once)."""

    def __init__(self, name: str, metric: Counter | Gauge | Histogram, labelnames: Sequence[str],
                 max_series: int) -> None:
        self.name, self.metric = name, metric
        self.labelnames = tuple(labelnames)
        self.max_series = max_series
        self._seen: set[tuple[str, ...]] = set()
        self._lock = threading.Lock()
        self._warned = False

    def labels(self, *values: object, **named: object) -> Any:
        if named and not values and set(named) == set(self.labelnames):
            values = tuple(named[n] for n in self.labelnames)
        elif named or len(values) != len(self.labelnames):
            raise MetricsError(f"metric {self.name}: expected label values for {list(self.labelnames)}, "
                               f"found {list(values)} {sorted(named)}")
        key = tuple(str(v) for v in values)
        if key not in self._seen:
            with self._lock:
                if key not in self._seen:
                    if len(self._seen) >= self.max_series:
                        key = (OVERFLOW_LABEL,) * len(self.labelnames)
                        if not self._warned:
                            self._warned = True
                            log.warning("metric %s reached its %d label combinations; counting new ones under %r",
                                        self.name, self.max_series, OVERFLOW_LABEL)
                    self._seen.add(key)
        return self.metric.labels(*key)

    @property
    def series(self) -> int:
        """Label combinations in use (the overflow one included)."""
        return len(self._seen)


#: What ``register`` returns per family: a bare metric when unlabelled, else ``Bounded``.
Family = Union[Counter, Gauge, Histogram, Bounded]
#: A scrape-time probe: a number (unlabelled) or {label value: number} (one label).
Probe = Callable[[], Union[float, Mapping[Any, float]]]


class ScrapeCollector:
    """One declared gauge or counter whose value a probe reads at each scrape."""

    def __init__(self, declared: Declared, probe: Probe) -> None:
        if declared.kind not in ("gauge", "counter"):
            raise MetricsError(f"metric {declared.name}: only a gauge or a counter can be read at scrape time, "
                               f"found a {declared.kind}")
        if len(declared.labels) > 1:
            raise MetricsError(f"metric {declared.name}: a scrape-time probe supports at most one label, "
                               f"found {list(declared.labels)}")
        self.declared, self.probe = declared, probe

    def _family(self) -> Metric:
        d = self.declared
        labels = list(d.labels) if d.labels else None
        if d.kind == "counter":
            return CounterMetricFamily(d.name, d.help, labels=labels)
        return GaugeMetricFamily(d.name, d.help, labels=labels)

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        d, family = self.declared, self._family()
        try:
            value = self.probe()
        except Exception:  # noqa: BLE001 - a broken probe must not break the scrape
            log.debug("metric probe %s failed", d.name, exc_info=True)
            if d.kind == "gauge" and not d.labels:
                family.add_metric([], math.nan)
            yield family
            return
        if not d.labels:
            family.add_metric([], float(value))  # type: ignore[arg-type]
        else:
            items = sorted(value.items(), key=lambda kv: str(kv[0]))  # type: ignore[union-attr]
            for label, v in items[: d.max_series]:
                family.add_metric([str(label)], float(v))
        yield family
