"""Where the clients of a workload go on a cluster broker of compare (``hookmq:x2``, ``hookmq:n2``)."""

from __future__ import annotations

import pytest

from hookmq.bench.brokers import known_broker, split_workers
from hookmq.bench.placement import place, split_cluster
from hookmq.bench.workloads import Workload

A, B, C = 1001, 1002, 1003


def test_cluster_names_say_the_layout_and_the_node_count() -> None:
    assert split_cluster("hookmq:x2") == ("hookmq", "x", 2)
    assert split_cluster("hookmq:n3") == ("hookmq", "n", 3)
    for name in ("hookmq", "hookmq:w2", "hookmq:x1", "hookmq:x", "hookmq:xx", ":x2", "hookmq:y2"):
        assert split_cluster(name) is None, name
    assert known_broker("hookmq:x2") and known_broker("hookmq:n2")
    assert not known_broker("mosquitto:x2") and not known_broker("hookmq@/venv:x2") and not known_broker("hookmq:x1")
    assert split_workers("hookmq:x2") == ("hookmq:x2", 1)


def test_cross_node_splits_each_pair_publisher_on_node_one_subscriber_on_node_two() -> None:
    plans = Workload("pairs", clients=3, messages=10).client_plans("r", "127.0.0.1")

    placed = place(plans, "x", [A, B])

    publishers = [p for p in placed if p.role == "publisher"]
    subscribers = [p for p in placed if p.role == "subscriber"]
    assert len(publishers) == len(subscribers) == 3 and len(placed) == 6
    assert {p.port for p in publishers} == {A} and {p.port for p in subscribers} == {B}
    for original in plans:
        subscriber = next(p for p in subscribers if p.subscriptions == original.subscriptions)
        publisher = next(p for p in publishers if p.publish_topic == original.publish_topic)
        assert subscriber.expected == original.expected and publisher.expected == 0
        assert publisher.publish_count == original.publish_count and subscriber.publish_count == 0
        assert publisher.subscriptions == () and subscriber.publish_topic is None
    assert len({p.client_id for p in placed}) == 6
    assert sum(p.expected for p in placed) == sum(p.expected for p in plans)


def test_cross_node_keeps_a_device_subscriber_in_setup_and_the_latency_rate_on_the_publisher() -> None:
    device = place(Workload("device", clients=2, messages=5).client_plans("r", "127.0.0.1"), "x", [A, B])
    assert all(p.session_in_run == (p.role == "publisher") for p in device)

    latency = place(Workload("latency", clients=2, rate=100, duration=1).client_plans("r", "127.0.0.1"), "x", [A, B])
    assert {p.rate for p in latency if p.role == "publisher"} == {50.0}
    assert {p.rate for p in latency if p.role == "subscriber"} == {None}


def test_cross_node_over_three_nodes_spreads_the_subscribers_over_the_others() -> None:
    fanout = place(Workload("fanout", clients=4, messages=5).client_plans("r", "127.0.0.1"), "x", [A, B, C])

    assert [p.port for p in fanout if p.role == "publisher"] == [A]
    assert [p.port for p in fanout if p.role == "subscriber"] == [B, C, B, C]

    filters = place(Workload("filters", clients=1, filters=10).client_plans("r", "127.0.0.1"), "x", [A, B])
    assert next(p for p in filters if p.role == "holder").port == B


def test_spread_puts_the_pairs_in_turn_on_each_node_unsplit() -> None:
    plans = Workload("pairs", clients=5, messages=10).client_plans("r", "127.0.0.1")

    placed = place(plans, "n", [A, B])

    assert [p.port for p in placed] == [A, B, A, B, A]
    assert [p.client_id for p in placed] == [p.client_id for p in plans]
    assert all(p.role == "pair" for p in placed)


def test_a_layout_needs_two_nodes_and_a_known_letter() -> None:
    plans = Workload("pairs", clients=1).client_plans("r", "127.0.0.1")
    with pytest.raises(ValueError, match="two nodes"):
        place(plans, "x", [A])
    with pytest.raises(ValueError, match="unknown cluster layout"):
        place(plans, "q", [A, B])
