"""Every workload at a tiny size against real brokers: the message counts must be exact."""

from __future__ import annotations

import pytest

from hookmq.bench.runner import RunOptions, Target, run_workload
from hookmq.bench.workloads import Workload

OPTIONS = RunOptions(workers=2, setup_timeout=30, run_timeout=30, progress=False)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_pairs_deliver_every_message_once(target: Target, qos: int) -> None:
    result = run_workload(Workload("pairs", clients=4, messages=25, qos=qos), target, OPTIONS)

    assert result.errors == []
    assert result.complete
    assert result.expected == result.received == 4 * 25
    assert result.metrics["msg_per_s"] is not None and result.metrics["msg_per_s"] > 0
    assert result.metrics["publish_slowest"] is not None
    assert result.metrics["receive_slowest"] is not None


def test_pairs_over_mqtt5(target: Target) -> None:
    options = RunOptions(workers=1, level=5, setup_timeout=30, run_timeout=30, progress=False)

    result = run_workload(Workload("pairs", clients=3, messages=20, qos=1), target, options)

    assert result.errors == []
    assert result.received == 3 * 20


def test_fanout_reaches_every_subscriber(target: Target) -> None:
    result = run_workload(Workload("fanout", clients=5, messages=20, qos=1), target, OPTIONS)

    assert result.complete, result.errors
    assert result.received == 5 * 20


def test_fanin_collects_every_publisher(target: Target) -> None:
    result = run_workload(Workload("fanin", clients=5, messages=20, qos=2), target, OPTIONS)

    assert result.complete, result.errors
    assert result.received == 5 * 20
    # One subscriber received everything: fastest, median and slowest receiver are the same.
    assert result.metrics["receive_fastest"] == result.metrics["receive_slowest"]


def test_filters_held_by_another_client_do_not_change_counts(target: Target) -> None:
    workload = Workload("filters", clients=3, messages=20, qos=0, filters=2500)

    result = run_workload(workload, target, OPTIONS)

    assert result.complete, result.errors
    assert result.received == 3 * 20


def test_connections_all_open(target: Target) -> None:
    result = run_workload(Workload("connections", clients=40), target, OPTIONS)

    assert result.complete, result.errors
    assert result.received == 40
    assert result.metrics["connect_per_s"] is not None and result.metrics["connect_per_s"] > 0


def test_connections_memory_needs_the_broker_pid(mosquitto_target: Target) -> None:
    assert mosquitto_target.pid is not None

    result = run_workload(Workload("connections", clients=40), mosquitto_target, OPTIONS)

    assert result.received == 40
    assert result.metrics["rss_after_mib"] is not None and result.metrics["rss_after_mib"] > 0
    assert result.metrics["rss_per_conn_kib"] is not None


def test_latency_measures_every_message(target: Target) -> None:
    workload = Workload("latency", clients=2, qos=1, rate=100.0, duration=0.3)

    result = run_workload(workload, target, OPTIONS)

    assert result.complete, result.errors
    assert result.received == 2 * workload.latency_count
    p50, p99, p999 = (result.metrics[key] for key in ("p50_ms", "p99_ms", "p999_ms"))
    assert p50 is not None and p99 is not None and p999 is not None
    assert 0 < p50 <= p99 <= p999


def test_unreachable_broker_is_reported_not_raised() -> None:
    from hookmq.bench.brokers import free_port

    target = Target("nobody", "127.0.0.1", free_port())
    options = RunOptions(workers=1, setup_timeout=5, run_timeout=5, progress=False)

    result = run_workload(Workload("pairs", clients=2, messages=5), target, options)

    assert not result.complete
    assert result.received == 0
    assert any("setup failed" in error for error in result.errors)


def test_clients_placed_by_their_own_port_ignore_the_targets(target: Target) -> None:
    # The target's port is closed (1): every message arrives only if each connection goes to its plan's port.
    from hookmq.bench.plan import ClientPlan
    from hookmq.bench.runner import run_clients

    plans = []
    for index in range(3):
        topic = f"placed/{index}"
        plans.append(ClientPlan(f"placed-s{index}", "subscriber", (topic,), expected=20, port=target.port))
        plans.append(ClientPlan(f"placed-p{index}", "publisher", publish_topic=topic, publish_count=20, port=target.port))
    options = RunOptions(workers=2, setup_timeout=30, run_timeout=30, progress=False, settle=0.1)

    result = run_clients(Workload("pairs", clients=3, messages=20, qos=1), plans, Target("x", target.host, 1), options)

    assert result.complete, result.errors
    assert result.expected == result.received == 3 * 20
