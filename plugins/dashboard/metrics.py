"""`/metrics`: the sampled broker figures in the Prometheus text format.

A custom collector reads the latest sample when Prometheus scrapes, so a scrape costs a
dictionary walk and never touches the broker's per-message path. Each dashboard has its own
CollectorRegistry: several brokers in one process (tests, embedding) never share or clash in
prometheus-client's global registry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

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


def build_registry(latest: Callable[[], Sample | None], extra: Callable[[], dict[str, float]]) -> CollectorRegistry:
    """A private registry holding only this dashboard's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SampleCollector(latest, extra))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition of a registry."""
    return generate_latest(registry)
