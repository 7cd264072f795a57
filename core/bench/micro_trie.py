"""Micro-benchmark: how the subscription trie's match time grows with unrelated subscriptions.

Run ``python -m hookmq.bench.micro_trie``. For each trie size it fills a trie with filters that
do not match the probe topic (a mix of exact, ``+`` and ``#`` filters that share the probe's
first levels, so the walk passes through big nodes), adds the four filters that do match, and
times ``match``. The architecture's routing rule is that the 100 000 row stays within 2x of
the 0 row. It also reports what a subscription costs to add and to keep in memory.
"""

from __future__ import annotations

import argparse
import time
import timeit
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass

from ..mqtt.packets import SubscriptionOptions
from ..mqtt.trie import SubscriberEntry, SubscriptionTrie

PROBE_TOPIC = "devices/sensor-42/telemetry/temperature"
#: Filters that match the probe: one exact, one '+', one '#', and one shared group.
MATCHING_FILTERS = (
    "devices/sensor-42/telemetry/temperature",
    "devices/+/telemetry/temperature",
    "devices/sensor-42/#",
    "$share/workers/devices/+/telemetry/#",
)
SIZES = (0, 10_000, 100_000)
_OPTIONS = SubscriptionOptions(qos=1)


@dataclass(frozen=True, slots=True)
class Row:
    """The figures for one trie size."""

    unrelated: int
    match_us: float
    matched: int
    subscribe_us: float
    bytes_per_subscription: float


def unrelated_filters(count: int) -> Iterator[str]:
    """``count`` distinct filters, none of which matches :data:`PROBE_TOPIC`."""
    shapes = (
        "unrelated/{i}/+/x",
        "devices/{i}/#",
        "devices/+/telemetry/humidity-{i}",
        "devices/sensor-42/telemetry/temperature-{i}",
        "+/{i}/telemetry/temperature",
    )
    for i in range(count):
        yield shapes[i % len(shapes)].format(i=i)


def build_trie(unrelated: int) -> SubscriptionTrie:
    """A trie with ``unrelated`` non-matching filters plus :data:`MATCHING_FILTERS`."""
    trie = SubscriptionTrie()
    for index, topic_filter in enumerate(unrelated_filters(unrelated)):
        trie.subscribe(SubscriberEntry(f"bystander-{index % 1000}", topic_filter, _OPTIONS))
    for index, topic_filter in enumerate(MATCHING_FILTERS):
        trie.subscribe(SubscriberEntry(f"subscriber-{index}", topic_filter, _OPTIONS))
    return trie


def time_match(trie: SubscriptionTrie, topic: str, repeat: int = 5, number: int = 20_000) -> float:
    """Best-of-``repeat`` microseconds per ``trie.match(topic)``."""
    timer = timeit.Timer(lambda: trie.match(topic))
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def measure(unrelated: int, number: int) -> Row:
    """Build one trie (timed, then again under tracemalloc) and time its match."""
    started = time.perf_counter()
    trie = build_trie(unrelated)
    subscribe_us = (time.perf_counter() - started) / len(trie) * 1e6
    # A second build under tracemalloc: tracing slows the build, so it is not the timed one.
    del trie
    tracemalloc.start()
    trie = build_trie(unrelated)
    allocated, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    matches = trie.match(PROBE_TOPIC)
    matched = len(matches.direct) + sum(len(members) for members in matches.shared.values())
    return Row(
        unrelated=unrelated,
        match_us=time_match(trie, PROBE_TOPIC, number=number),
        matched=matched,
        subscribe_us=subscribe_us,
        bytes_per_subscription=allocated / len(trie),
    )


def main(argv: list[str] | None = None) -> None:
    """Print the figures for each trie size and the match-time ratio to the smallest one."""
    parser = argparse.ArgumentParser(prog="python -m hookmq.bench.micro_trie")
    parser.add_argument("--number", type=int, default=20_000, help="matches per timing run")
    args = parser.parse_args(argv)
    rows = [measure(size, args.number) for size in SIZES]
    baseline = rows[0].match_us
    print(f"probe topic: {PROBE_TOPIC}  (matching subscriptions: {len(MATCHING_FILTERS)})")
    print(f"{'unrelated':>10} {'us/match':>9} {'ratio':>6} {'matched':>8} {'us/subscribe':>13} {'B/sub':>7}")
    for row in rows:
        print(
            f"{row.unrelated:>10,} {row.match_us:>9.3f} {row.match_us / baseline:>5.2f}x {row.matched:>8}"
            f" {row.subscribe_us:>13.2f} {row.bytes_per_subscription:>7.0f}"
        )


if __name__ == "__main__":
    main()
