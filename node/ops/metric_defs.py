"""Every metric a node serves at /metrics, declared as data.

How it works: ``NODE_METRICS`` (the node's own) and ``RPC_METRICS`` (the RPC server's)
are tuples of ``MetricDef``: name as exposed (counters end in ``_total``), kind, help
text, label names, the most label combinations the family may hold and, for
histograms, bucket bounds. ``register(registry, defs, probes)`` creates them on a
node's prometheus_client registry (``node.ops.metrics.new_registry``) in declaration
order: a def with a probe is read at scrape time (``ScrapeCollector``), any other
becomes a Counter, Gauge or Histogram the caller updates as events happen.
``STANDARD_METRICS`` declares, for the reference only, what the registry's standard
process, GC and platform collectors add. ``node.rpc.openrpc_docs`` renders
docs/metrics.md straight from ``ALL_METRICS``, so the reference needs no node and a test
can check that a scrape shows exactly the declared families.

Declarations are checked when the module loads: a counter's name ends in ``_total``
(prometheus_client exposes counters so), no other kind's does, and a histogram neither
uses the label ``le`` nor lacks strictly increasing buckets.

This module imports only ``node.ops.metrics``: anything may read the declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from node.ops.metrics import (
    DEFAULT_BUCKETS,
    MAX_SERIES_PER_METRIC,
    Bounded,
    Family,
    MetricsError,
    Probe,
    ScrapeCollector,
)

Kind = Literal["counter", "gauge", "histogram"]

#: Block-interval buckets (s): commits come every few ms under load, every few s idle.
BLOCK_INTERVAL_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
#: RPC handler latency buckets (s): most reads answer in well under a millisecond.
LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                                      5.0, 10.0)

# --- label-combination limits (past one, new combinations count under "other") -------
#: A label whose values are a fixed list in the code (refusal reasons, events, topics).
REASON_SERIES = 256
#: transport x method: the route table (~50 methods; unknown names are "unknown") twice.
RPC_METHOD_SERIES = 512
#: transport x method x outcome x code: most methods answer a handful of codes.
RPC_REQUEST_SERIES = 4_000
#: The one build a process runs.
BUILD_SERIES = 1


@dataclass(frozen=True)
class MetricDef:
    """One metric family as /metrics shows it; values are attached by whoever registers it."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None  # histograms only
    max_series: int = MAX_SERIES_PER_METRIC  # label combinations; see node.ops.metrics.Bounded

    def __post_init__(self) -> None:
        if self.kind == "counter" and not self.name.endswith("_total"):
            raise MetricsError(f"counter {self.name}: a counter's name ends in _total")
        if self.kind != "counter" and self.name.endswith("_total"):
            raise MetricsError(f"{self.kind} {self.name}: only a counter's name may end in _total")
        if self.kind == "histogram":
            bounds = self.buckets or DEFAULT_BUCKETS
            if "le" in self.labels or any(a >= b for a, b in zip(bounds, bounds[1:])):
                raise MetricsError(f"histogram {self.name}: no label 'le', strictly increasing buckets; "
                                   f"found labels {list(self.labels)}, buckets {list(bounds)}")
        elif self.buckets is not None:
            raise MetricsError(f"{self.kind} {self.name}: only a histogram has buckets")


NODE_METRICS: tuple[MetricDef, ...] = (
    MetricDef("shopchain_build_info", "gauge", "Always 1: the shopchain version, Python version and chain id "
              "this node runs.", ("version", "python", "chain_id"), max_series=BUILD_SERIES),
    MetricDef("shopchain_height", "gauge", "Height of the last committed block."),
    MetricDef("shopchain_view", "gauge", "Current PBFT view."),
    MetricDef("shopchain_view_changes_total", "counter", "View changes this node started or joined since it started."),
    MetricDef("shopchain_mempool_size", "gauge", "Pending transactions."),
    MetricDef("shopchain_peers", "gauge", "Connected validators."),
    MetricDef("shopchain_syncing", "gauge", "1 while this node is catching up on blocks."),
    MetricDef("shopchain_mempool_refusals_total", "counter", "Transactions refused at admission, by reason.",
              ("reason",), max_series=REASON_SERIES),
    MetricDef("shopchain_txs_committed_total", "counter", "Transactions committed."),
    MetricDef("shopchain_blocks_committed_total", "counter", "Blocks committed."),
    MetricDef("shopchain_block_interval_seconds", "histogram", "Time between consecutive commits.", (),
              BLOCK_INTERVAL_BUCKETS),
    MetricDef("shopchain_p2p_dropped_messages_total", "counter", "Peer messages dropped, by reason.", ("reason",),
              max_series=REASON_SERIES),
    MetricDef("shopchain_p2p_events_total", "counter", "Validator transport events since start: connections, "
              "pre-auth timeouts and evictions, refused upgrades, budget disconnects, bytes and messages.", ("event",),
              max_series=REASON_SERIES),
    MetricDef("shopchain_p2p_unauthenticated_connections", "gauge",
              "Accepted p2p connections not yet authenticated."),
    MetricDef("shopchain_previews_total", "counter", "Proposal previews received, by what became of them.",
              ("result",), max_series=REASON_SERIES),
    MetricDef("shopchain_preview_hits_total", "counter", "Proposed blocks whose execution a preview had already done."),
    MetricDef("shopchain_tx_signature_verifications_total", "counter",
              "Transactions whose signatures this node verified: at admission (client or gossip) and, for a proposed "
              "block's transactions admission had not verified, at validation. Per committed transaction this stays "
              "near 1: each is verified once per node."),
    MetricDef("shopchain_mailbox_envelopes", "gauge", "Sealed envelopes held in this node's mailbox (off chain)."),
    MetricDef("shopchain_mailbox_refusals_total", "counter",
              "Mailbox envelopes refused, by where they came from (client, peer) and the rule.", ("source", "reason"),
              max_series=REASON_SERIES),
    MetricDef("shopchain_indexer_height", "gauge", "Height of the last block in the SQL index (0 when [indexer] is off)."),
    MetricDef("shopchain_indexer_lag_blocks", "gauge",
              "Committed blocks not yet in the SQL index (head minus indexed height; 0 when [indexer] is off)."),
)

RPC_METRICS: tuple[MetricDef, ...] = (
    MetricDef("shopchain_rpc_requests_total", "counter", "JSON-RPC request objects handled, by outcome: ok, "
              "client_error (the request or the chain refused it: parse, invalid request or params, unknown method, "
              "NotFound, HeightPruned, chain rule, limit), timeout, server_error (internal error only); code is the "
              "JSON-RPC error code (empty when ok).", ("transport", "method", "outcome", "code"),
              max_series=RPC_REQUEST_SERIES),
    MetricDef("shopchain_rpc_request_duration_seconds", "histogram", "Time spent in RPC method handlers.",
              ("transport", "method"), LATENCY_BUCKETS, max_series=RPC_METHOD_SERIES),
    MetricDef("shopchain_rpc_limit_rejections_total", "counter",
              "Requests or connections refused by a transport limit.", ("limit",), max_series=REASON_SERIES),
    MetricDef("shopchain_rpc_ws_disconnects_total", "counter", "Websocket connections closed, by reason.", ("reason",),
              max_series=REASON_SERIES),
    MetricDef("shopchain_rpc_notifications_total", "counter", "Subscription notifications queued, by topic.",
              ("topic",), max_series=REASON_SERIES),
    MetricDef("shopchain_rpc_ws_connections", "gauge", "Websocket connections open."),
    MetricDef("shopchain_rpc_subscriptions", "gauge", "Live websocket subscriptions."),
)

#: What the standard collectors of ``node.ops.metrics.new_registry`` add (declared for
#: the reference and the scrape test; prometheus_client registers them itself).
STANDARD_METRICS: tuple[MetricDef, ...] = (
    MetricDef("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes."),
    MetricDef("process_resident_memory_bytes", "gauge", "Resident memory size in bytes."),
    MetricDef("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds."),
    MetricDef("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."),
    MetricDef("process_open_fds", "gauge", "Number of open file descriptors."),
    MetricDef("process_max_fds", "gauge", "Maximum number of open file descriptors."),
    MetricDef("python_gc_objects_collected_total", "counter", "Objects collected during gc", ("generation",)),
    MetricDef("python_gc_objects_uncollectable_total", "counter", "Uncollectable objects found during GC",
              ("generation",)),
    MetricDef("python_gc_collections_total", "counter", "Number of times this generation was collected",
              ("generation",)),
    MetricDef("python_info", "gauge", "Python platform information",
              ("implementation", "major", "minor", "patchlevel", "version")),
)

#: Every metric in the order a running node registers them (the node's, then its RPC server's).
ALL_METRICS: tuple[MetricDef, ...] = NODE_METRICS + RPC_METRICS + STANDARD_METRICS


def register(registry: CollectorRegistry, defs: Sequence[MetricDef],
             probes: Mapping[str, Probe] | None = None) -> dict[str, Family]:
    """Create ``defs`` on ``registry`` and return the event-driven families by name.

    A def named in ``probes`` is read at scrape time instead (a number, or for one label a
    mapping of label value to number) and is not in the result. A labelled family comes
    wrapped in ``Bounded`` (its ``max_series``); an unlabelled one is the bare metric."""
    probes = dict(probes or {})
    unknown = sorted(set(probes) - {d.name for d in defs})
    if unknown:
        raise MetricsError(f"probes for metrics that are not declared: {unknown}")
    families: dict[str, Family] = {}
    for d in defs:
        if d.name in probes:
            registry.register(ScrapeCollector(d, probes[d.name]))
            continue
        metric: Counter | Gauge | Histogram
        if d.kind == "histogram":
            metric = Histogram(d.name, d.help, d.labels, registry=registry,
                               buckets=DEFAULT_BUCKETS if d.buckets is None else d.buckets)
        elif d.kind == "counter":
            metric = Counter(d.name, d.help, d.labels, registry=registry)  # exposed as d.name (with _total)
        else:
            metric = Gauge(d.name, d.help, d.labels, registry=registry)
        families[d.name] = Bounded(d.name, metric, d.labels, d.max_series) if d.labels else metric
    return families
