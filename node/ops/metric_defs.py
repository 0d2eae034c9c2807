"""Every metric a node serves at /metrics, declared as data.

How it works: ``NODE_METRICS`` (the node's own) and ``RPC_METRICS`` (the RPC server's)
are tuples of ``MetricDef``: name, kind, help text, label names and, for histograms,
bucket bounds. ``register(registry, defs)`` creates the families in declaration order
and returns them by name; the node and the RPC server then attach values (a scrape-time
function on a gauge, a collector on a counter, or ``inc``/``observe`` as events happen).
``node.rpc.openrpc_docs`` renders docs/metrics.md straight from these tuples, so the
reference needs no node and cannot list a metric the node does not register.

This module imports only ``node.ops.metrics``: anything may read the declarations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

from node.ops.metrics import DEFAULT_BUCKETS, Counter, Gauge, Histogram, Registry

Kind = Literal["counter", "gauge", "histogram"]

#: Block-interval buckets (s): commits come every few ms under load, every few s idle.
BLOCK_INTERVAL_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
#: RPC handler latency buckets (s): most reads answer in well under a millisecond.
LATENCY_BUCKETS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                                      5.0, 10.0)


@dataclass(frozen=True)
class MetricDef:
    """One metric family as /metrics shows it; values are attached by whoever registers it."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None  # histograms only


NODE_METRICS: tuple[MetricDef, ...] = (
    MetricDef("shopchain_height", "gauge", "Height of the last committed block."),
    MetricDef("shopchain_view", "gauge", "Current PBFT view."),
    MetricDef("shopchain_view_changes", "gauge", "View changes this node started or joined since it started."),
    MetricDef("shopchain_mempool_size", "gauge", "Pending transactions."),
    MetricDef("shopchain_peers", "gauge", "Connected validators."),
    MetricDef("shopchain_syncing", "gauge", "1 while this node is catching up on blocks."),
    MetricDef("shopchain_mempool_refusals_total", "counter", "Transactions refused at admission, by reason.",
              ("reason",)),
    MetricDef("shopchain_txs_committed_total", "counter", "Transactions committed."),
    MetricDef("shopchain_blocks_committed_total", "counter", "Blocks committed."),
    MetricDef("shopchain_block_interval_seconds", "histogram", "Time between consecutive commits.", (),
              BLOCK_INTERVAL_BUCKETS),
    MetricDef("shopchain_p2p_dropped_messages_total", "counter", "Peer messages dropped, by reason.", ("reason",)),
    MetricDef("shopchain_p2p_events_total", "counter", "Validator transport events since start: connections, "
              "pre-auth timeouts and evictions, refused upgrades, budget disconnects, bytes and messages.", ("event",)),
    MetricDef("shopchain_p2p_unauthenticated_connections", "gauge",
              "Accepted p2p connections not yet authenticated."),
    MetricDef("shopchain_previews_total", "counter", "Proposal previews received, by what became of them.",
              ("result",)),
    MetricDef("shopchain_preview_hits", "gauge", "Proposed blocks whose execution a preview had already done."),
    MetricDef("shopchain_mailbox_envelopes", "gauge", "Sealed envelopes held in this node's mailbox (off chain)."),
    MetricDef("shopchain_mailbox_refusals_total", "counter",
              "Mailbox envelopes refused, by where they came from (client, peer) and the rule.", ("source", "reason")),
    MetricDef("shopchain_indexer_height", "gauge", "Height of the last block in the SQL index (0 when [indexer] is off)."),
    MetricDef("shopchain_indexer_lag_blocks", "gauge",
              "Committed blocks not yet in the SQL index (head minus indexed height; 0 when [indexer] is off)."),
)

RPC_METRICS: tuple[MetricDef, ...] = (
    MetricDef("shopchain_rpc_requests_total", "counter", "JSON-RPC request objects handled, by outcome.",
              ("transport", "method", "outcome")),
    MetricDef("shopchain_rpc_request_duration_seconds", "histogram", "Time spent in RPC method handlers.",
              ("transport", "method"), LATENCY_BUCKETS),
    MetricDef("shopchain_rpc_limit_rejections_total", "counter",
              "Requests or connections refused by a transport limit.", ("limit",)),
    MetricDef("shopchain_rpc_ws_disconnects_total", "counter", "Websocket connections closed, by reason.", ("reason",)),
    MetricDef("shopchain_rpc_notifications_total", "counter", "Subscription notifications queued, by topic.",
              ("topic",)),
    MetricDef("shopchain_rpc_ws_connections", "gauge", "Websocket connections open."),
    MetricDef("shopchain_rpc_subscriptions", "gauge", "Live websocket subscriptions."),
)

#: Every metric in the order a running node registers them (the node's, then its RPC server's).
ALL_METRICS: tuple[MetricDef, ...] = NODE_METRICS + RPC_METRICS


def register(registry: Registry, defs: Sequence[MetricDef]) -> dict[str, Counter | Gauge | Histogram]:
    """Create ``defs`` in ``registry`` (an identical earlier registration is reused, as
    ``Registry.register`` does) and return the families by name for attaching values."""
    families: dict[str, Counter | Gauge | Histogram] = {}
    for d in defs:
        if d.kind == "histogram":
            families[d.name] = registry.histogram(d.name, d.help, d.labels, DEFAULT_BUCKETS if d.buckets is None else d.buckets)
        elif d.kind == "counter":
            families[d.name] = registry.counter(d.name, d.help, d.labels)
        else:
            families[d.name] = registry.gauge(d.name, d.help, d.labels)
    return families
