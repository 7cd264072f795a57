"""The device workloads (per-packet writes, one message in flight, connects timed) at tiny sizes.

Against real brokers (mosquitto and hookmq): delivery counts must be exact; nothing here
asserts a speed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from hookmq.bench import wire
from hookmq.bench.client import BenchClient
from hookmq.bench.compare import run_comparison
from hookmq.bench.paho_driver import run_paho_workload
from hookmq.bench.report import format_ratios, markdown_table
from hookmq.bench.runner import RunOptions, Target, _Coordinator, _split, run_workload
from hookmq.bench.workloads import Workload

OPTIONS = RunOptions(workers=2, setup_timeout=30, run_timeout=60, progress=False)


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_device_workload_delivers_every_message(target: Target, qos: int) -> None:
    result = run_workload(Workload("device", clients=6, messages=15, qos=qos), target, OPTIONS)

    assert result.errors == []
    assert result.complete
    assert result.expected == result.received == 6 * 15
    assert result.metrics["wall_s"] is not None and result.metrics["wall_s"] > 0
    assert result.metrics["loadgen_cpu_s"] is not None


def test_device_clients_connect_inside_the_timed_phase(mosquitto_target: Target) -> None:
    device = Workload("device", clients=4, messages=5, qos=1)
    pairs = Workload("pairs", clients=4, messages=5, qos=1)

    def connect_times(workload: Workload) -> tuple[float, list[float]]:
        clients = workload.client_plans("t" + workload.kind, mosquitto_target.host)
        plans = _split(clients, OPTIONS, workload, mosquitto_target)
        reports, _ = _Coordinator(plans, OPTIONS, workload, mosquitto_target).run()
        go = min(report.go for report in reports)
        return go, [client.connected_at for report in reports for client in report.clients]

    go, connected = connect_times(device)
    assert len(connected) == 4 and all(at >= go for at in connected)
    go, connected = connect_times(pairs)
    assert len(connected) == 4 and all(0 < at < go for at in connected)


def test_device_plans_use_one_message_in_flight_and_per_packet_writes(mosquitto_target: Target) -> None:
    workload = Workload("device", clients=3, messages=5, qos=2)
    plans = _split(workload.client_plans("x", "127.0.0.1"), OPTIONS, workload, mosquitto_target)

    assert {(plan.window, plan.per_packet) for plan in plans} == {(1, True)}
    assert all(client.session_in_run for plan in plans for client in plan.clients)


def test_broker_cpu_is_read_from_the_broker_process(mosquitto_target: Target) -> None:
    result = run_workload(Workload("device", clients=4, messages=50, qos=1), mosquitto_target, OPTIONS)

    assert result.complete, result.errors
    assert result.metrics["broker_cpu_s"] is not None and result.metrics["broker_cpu_s"] >= 0
    assert result.metrics["broker_cpu_share"] is not None


class _RecordingTransport(asyncio.Transport):
    """Stands at the socket boundary: records each write the client makes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return False


def _client_with_transport(per_packet: bool) -> tuple[BenchClient, _RecordingTransport]:
    client = BenchClient("c", 4, lambda _client: None, per_packet=per_packet)
    transport = _RecordingTransport()
    client.transport = transport
    return client, transport


@pytest.mark.parametrize(("per_packet", "writes"), [(True, 2), (False, 1)])
def test_answers_to_one_chunk_leave_in_one_write_each_only_when_per_packet(per_packet: bool, writes: int) -> None:
    client, transport = _client_with_transport(per_packet)
    template = wire.PublishTemplate("t/1", b"x" * 8, 1, 4)
    client._template = template
    client._window = 1
    client.published = client._inflight = client._next_id = 1  # message 1 is in flight
    client.publish_total = 3
    # One read holding the delivery of our own message and the broker's PUBACK for it.
    client.data_received(template.frame(7) + wire.ack_packet(wire.PUBACK, 1))

    assert len(transport.writes) == writes
    sent = b"".join(transport.writes)
    assert sent.startswith(wire.ack_packet(wire.PUBACK, 7))  # our PUBACK of the delivery first
    assert sent[4:] == template.frame(2)  # then the next message, and only one (window 1)
    if per_packet:
        assert transport.writes == [wire.ack_packet(wire.PUBACK, 7), template.frame(2)]


async def test_qos0_per_packet_publisher_writes_each_frame_on_its_own() -> None:
    client, transport = _client_with_transport(per_packet=True)
    template = wire.PublishTemplate("t/1", b"x" * 8, 0, 4)

    await client.publish(template, 5, window=20)

    assert transport.writes == [template.frame()] * 5


async def test_qos0_batched_publisher_writes_frames_together() -> None:
    client, transport = _client_with_transport(per_packet=False)
    template = wire.PublishTemplate("t/1", b"x" * 8, 0, 4)

    await client.publish(template, 5, window=20)

    assert transport.writes == [template.frame() * 5]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_paho_driver_delivers_every_message(target: Target, qos: int) -> None:
    workload = Workload("device", clients=5, messages=10, qos=qos)

    result = run_paho_workload(workload, target, OPTIONS, per_process=2, nodelay=True)

    assert result.errors == []
    assert result.complete
    assert result.received == 5 * 10
    assert result.metrics["loadgen_cpu_s"] is not None and result.metrics["loadgen_cpu_s"] > 0


def test_paho_driver_with_nagle_left_on_still_delivers(mosquitto_target: Target) -> None:
    result = run_paho_workload(Workload("device", clients=2, messages=5, qos=1), mosquitto_target, OPTIONS, 2)

    assert result.complete, result.errors
    assert result.received == 10


def test_paho_driver_refuses_other_workloads(mosquitto_target: Target) -> None:
    with pytest.raises(ValueError, match="device workloads only"):
        run_paho_workload(Workload("pairs", clients=2, messages=5), mosquitto_target, OPTIONS)


def test_rounds_alternate_brokers_and_report_medians_with_ranges(tmp_path: Path) -> None:
    workload = Workload("device", clients=3, messages=10, qos=1, rounds=2)

    comparison = run_comparison(["hookmq", "mosquitto"], [workload], RunOptions(workers=1, progress=False))

    assert sorted((r.broker, r.round, r.received) for r in comparison.results) == [
        ("hookmq", 0, 30), ("hookmq", 1, 30), ("mosquitto", 0, 30), ("mosquitto", 1, 30),
    ]
    # Round 1 ran the brokers in the other order.
    assert [r.broker for r in comparison.results] == ["hookmq", "mosquitto", "mosquitto", "hookmq"]
    table = markdown_table(comparison.results, ["hookmq", "mosquitto"])
    row = next(line for line in table.splitlines() if line.startswith("| device q1 3x10 | wall s ↓ |"))
    assert "(" in row.split("|")[-2] and "–" in row.split("|")[-2]


def test_format_ratios() -> None:
    assert format_ratios([]) == "-"
    assert format_ratios([1.5]) == "1.50"
    assert format_ratios([2.0, 1.0, 3.0]) == "2.00 (1.00–3.00)"


def test_timed_connect_and_per_packet_options_apply_to_pairs(mosquitto_target: Target) -> None:
    options = RunOptions(workers=1, setup_timeout=30, run_timeout=30, progress=False, per_packet=True, timed_connect=True)

    result = run_workload(Workload("pairs", clients=3, messages=10, qos=0), mosquitto_target, options)

    assert result.complete, result.errors
    assert result.received == 30


def test_amqtt_joins_device_workloads_only_when_asked() -> None:
    device = Workload("device", clients=2, messages=3, qos=0)
    options = RunOptions(workers=1, progress=False)

    # amqtt is not even started (nor installed) for a device workload unless asked.
    comparison = run_comparison(["mosquitto", "amqtt"], [device], options)

    assert [r.broker for r in comparison.results] == ["mosquitto"]
    assert "amqtt" not in comparison.unavailable
