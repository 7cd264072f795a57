"""The write path taken when a plugin implements `on_packet_sent`: same protocol behaviour as without."""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import Connect, StartBroker

from hookmq import hookimpl
from hookmq.engine import Broker
from hookmq.mqtt.packets import Properties
from hookmq.mqtt.reason_codes import ReasonCode


class PacketRecorder:
    """Implements `on_packet_sent`, which moves every write onto the hooked path."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    @hookimpl
    def on_packet_sent(self, client: Any, packet: Any, data: bytes) -> None:
        self.sent.append(type(packet).__name__)


@pytest.fixture
async def hooked_broker(start_broker: StartBroker) -> Broker:
    """A broker with a packet recorder and a short client-id limit to provoke refusals."""
    return await start_broker({"client_id_max_length": 23}, extra_plugins={"recorder": PacketRecorder()})


async def test_flows_work_with_packet_hooks(hooked_broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(hooked_broker, "hooked-sub")
    await sub.subscribe("hooked/#", 2)
    pub, _ = await connect(hooked_broker, "hooked-pub")
    for qos in (0, 1, 2):
        await pub.publish("hooked/x", str(qos).encode(), qos)
        message = await sub.receive_message()
        assert (message.payload, message.qos) == (str(qos).encode(), qos)
    recorder = hooked_broker.plugin_manager.get_plugin("recorder")
    assert "Publish" in recorder.sent and "Pubcomp" in recorder.sent


@pytest.mark.parametrize(("level", "code"), [(5, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID), (4, 0x02)])
async def test_refused_connack_delivered_with_packet_hooks(hooked_broker: Broker, connect: Connect, level: int,
                                                          code: int) -> None:
    # The refusal must reach the client before the connection closes, hooks or not.
    _client, connack = await connect(hooked_broker, "x" * 30, level=level)
    assert connack.reason_code == code


async def test_client_maximum_packet_size_respected_with_packet_hooks(hooked_broker: Broker,
                                                                      connect: Connect) -> None:
    sub, _ = await connect(hooked_broker, "small-hooked", properties=Properties(maximum_packet_size=100))
    await sub.subscribe("mph/#", 1)
    pub, _ = await connect(hooked_broker, "mph-pub")
    await pub.publish("mph/a", b"y" * 300, 0)
    await pub.publish("mph/a", b"y" * 300, 1)
    await pub.publish("mph/a", b"small", 1)
    assert (await sub.receive_message()).payload == b"small"
