"""`/metrics`: the sampled broker figures in the Prometheus text format.

A custom collector reads the latest sample when Prometheus scrapes, so a scrape costs a
dictionary walk and never touches the broker's per-message path. Each dashboard has its own
CollectorRegistry: several brokers in one process (tests, embedding) never share or clash in
prometheus-client's global registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .sampling import Sample, is_counter, is_number

PREFIX = "hookmq_"
CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The Content-Type of the text exposition format."""

_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(figure: str) -> str:
    """The Prometheus name of a broker figure (counters lose a `_total` suffix: the client adds it)."""
    name = PREFIX + _UNSAFE.sub("_", figure)
    return name.removesuffix("_total") if is_counter(figure) else name


class SampleCollector(Collector):
    """Exposes the numbers of the latest sample: cumulative figures as counters, the rest as gauges."""

    def __init__(self, latest: Callable[[], Sample | None], extra: Callable[[], dict[str, float]]) -> None:
        self._latest = latest
        self._extra = extra

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus-client on every scrape."""
        sample = self._latest()
        if sample is not None:
            yield from self._figures(sample)
        for name, value in self._extra().items():
            yield GaugeMetricFamily(PREFIX + name, f"Dashboard figure {name}.", value=value)

    @staticmethod
    def _figures(sample: Sample) -> Iterator[Metric]:
        texts: dict[str, str] = {}
        for figure, value in sorted(sample.figures.items()):
            if isinstance(value, str):
                texts[_UNSAFE.sub("_", figure)] = value
            elif is_number(value):
                family = CounterMetricFamily if is_counter(figure) else GaugeMetricFamily
                yield family(metric_name(figure), f"Broker figure {figure} ($SYS).", value=float(value))
        if texts:
            yield InfoMetricFamily(PREFIX + "broker", "Broker text figures (version, start time).", value=texts)
        yield GaugeMetricFamily(PREFIX + "sample_timestamp_seconds", "When the figures were sampled.",
                                value=sample.time)


_LINK_GAUGES = (("up", "link_up", "1 when the data link to the peer is established."),
                ("queue_frames", "link_queue_frames", "Reliable frames held for the peer (sent, not acknowledged, or waiting)."),
                ("queue_bytes", "link_queue_bytes", "Bytes of the frames held for the peer."),
                ("rtt_seconds", "link_rtt_seconds", "Round-trip time of the link's last ping."))
_LINK_COUNTERS = (("frames_sent", "link_frames_sent", "Frames sent to the peer."),
                  ("frames_received", "link_frames_received", "Frames received from the peer."),
                  ("bytes_sent", "link_bytes_sent", "Bytes sent to the peer on the link."),
                  ("bytes_received", "link_bytes_received", "Bytes received from the peer on the link."))
_PEER_COUNTERS = (("messages_forwarded", "messages_forwarded", "Messages forwarded to the peer."),
                  ("messages_received", "messages_received", "Messages received from the peer."))
_NODE_FIGURES = ("clients", "subscriptions", "messages_in_per_second", "messages_out_per_second")
"""The figures every node sends once a second (plugins/gossip/figures.py), exported per node."""
_MEMBERSHIP_COUNTERS = (("probes", "Failure-detector probes started by this node."),
                        ("probes_indirect", "Probes that needed indirect pings."),
                        ("probes_failed", "Probes with no ack at all (the target became suspect)."),
                        ("suspicions", "Suspicions this node started (of any member)."),
                        ("refutations", "Times this node refuted a suspicion of itself."))


class ClusterCollector(Collector):
    """The cluster's figures (``hookmq_cluster_…``) from the operator view, read at each scrape."""

    def __init__(self, view: Callable[[], dict[str, Any]]) -> None:
        self._view = view

    def collect(self) -> Iterator[Metric]:
        """Nothing outside cluster mode; members by state, per-peer links and routes, counters otherwise."""
        view = self._view()
        if not view.get("enabled"):
            return
        name = PREFIX + "cluster_"
        members = GaugeMetricFamily(name + "members", "Members by state, as this node sees them.", labels=["state"])
        for state, count in sorted(view["members_by_state"].items()):
            members.add_metric([state], float(count))
        yield members
        peers = [m for m in view["members"] if not m["local"] and m["state"] in ("alive", "suspect")]
        for key, metric, text in _LINK_GAUGES:
            family = GaugeMetricFamily(name + metric, text, labels=["peer"])
            for peer in peers:
                value = (peer["link"] or {}).get(key)
                if value is not None:
                    family.add_metric([peer["name"]], float(value))
            yield family
        for key, metric, text in _LINK_COUNTERS:
            counter = CounterMetricFamily(name + metric, text, labels=["peer"])
            for peer in peers:
                value = (peer["link"] or {}).get(key)
                if value is not None:
                    counter.add_metric([peer["name"]], float(value))
            yield counter
        routes = GaugeMetricFamily(name + "routes", "Topic filters of the peer routed to it.", labels=["peer"])
        for peer in peers:
            routes.add_metric([peer["name"]], float(peer["routes"] or 0))
        yield routes
        for key, metric, text in _PEER_COUNTERS:
            counter = CounterMetricFamily(name + metric, text, labels=["peer"])
            for peer in peers:
                counter.add_metric([peer["name"]], float(peer[key] or 0))
            yield counter
        yield GaugeMetricFamily(name + "route_count", "Routes to other nodes in this node's trie.",
                                value=float(view["routes"]["count"] or 0))
        for key, text in _MEMBERSHIP_COUNTERS:
            yield CounterMetricFamily(name + key, text, value=float(view["membership"].get(key, 0)))
        for key, value in sorted(view["sessions"].items()):  # issue 15's takeovers and adoptions, when present
            yield CounterMetricFamily(name + key, f"Sessions across nodes: {key}.", value=float(value))
        live = [m for m in view["members"] if m["state"] in ("alive", "suspect") and (m.get("figures") or {}).get("fresh")]
        for key in _NODE_FIGURES:  # each node's own figures: with `hookmq --workers`, each worker's
            family = GaugeMetricFamily(name + "node_" + key, f"Each live node's {key} (fresh figures only).", labels=["node"])
            for member in live:
                family.add_metric([member["name"]], float(member["figures"].get(key) or 0))
            yield family
        totals = view.get("totals") or {}
        for key in ("nodes_reporting", "clients", "subscriptions", "messages_in_per_second", "messages_out_per_second"):
            if key in totals:
                yield GaugeMetricFamily(name + "total_" + key, f"Summed over the live nodes: {key}.",
                                        value=float(totals[key]))


def build_registry(latest: Callable[[], Sample | None], extra: Callable[[], dict[str, float]],
                   cluster: Callable[[], dict[str, Any]] | None = None) -> CollectorRegistry:
    """A private registry holding only this dashboard's collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SampleCollector(latest, extra))
    if cluster is not None:
        registry.register(ClusterCollector(cluster))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of a registry."""
    return generate_latest(registry)
