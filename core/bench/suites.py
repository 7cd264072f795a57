"""The standard sets of workloads: the full run and the ``--quick`` one."""

from __future__ import annotations

from .workloads import Workload

#: Rounds of each device workload in a comparison: alternating brokers, medians and ranges reported.
DEVICE_ROUNDS = 3

FULL: tuple[Workload, ...] = (
    Workload("pairs", clients=100, messages=1000, qos=0),
    Workload("pairs", clients=100, messages=1000, qos=1),
    Workload("pairs", clients=100, messages=1000, qos=2),
    Workload("pairs", clients=500, messages=100, qos=0),
    *(Workload("device", clients=100, messages=1000, qos=q, rounds=DEVICE_ROUNDS) for q in (0, 1, 2)),
    *(Workload("device", clients=500, messages=100, qos=q, rounds=DEVICE_ROUNDS) for q in (0, 1, 2)),
    Workload("fanout", clients=100, messages=1000, qos=0),
    Workload("fanin", clients=100, messages=1000, qos=0),
    # Smaller pairs so that a broker whose routing cost grows with the subscription count
    # still delivers something before the timeout.
    Workload("filters", clients=50, messages=200, qos=0, filters=0),
    Workload("filters", clients=50, messages=200, qos=0, filters=10_000),
    Workload("filters", clients=50, messages=200, qos=0, filters=100_000),
    Workload("connections", clients=10_000, rounds=DEVICE_ROUNDS),
    Workload("latency", clients=10, qos=0, rate=1000.0, duration=5.0),
)

QUICK: tuple[Workload, ...] = (
    Workload("pairs", clients=20, messages=500, qos=0),
    Workload("pairs", clients=20, messages=500, qos=1),
    Workload("pairs", clients=20, messages=500, qos=2),
    Workload("pairs", clients=100, messages=50, qos=0),
    *(Workload("device", clients=20, messages=200, qos=q) for q in (0, 1, 2)),
    Workload("device", clients=100, messages=20, qos=0),
    Workload("fanout", clients=20, messages=500, qos=0),
    Workload("fanin", clients=20, messages=500, qos=0),
    Workload("filters", clients=20, messages=250, qos=0, filters=0),
    Workload("filters", clients=20, messages=250, qos=0, filters=1_000),
    Workload("filters", clients=20, messages=250, qos=0, filters=5_000),
    Workload("connections", clients=1_000),
    Workload("latency", clients=2, qos=0, rate=500.0, duration=2.0),
)


def suite(quick: bool, kinds: tuple[str, ...] = ()) -> list[Workload]:
    """The standard workloads, optionally only those of the given kinds."""
    chosen = QUICK if quick else FULL
    return [w for w in chosen if not kinds or w.kind in kinds]
