"""The fixtures of hookmq.testing.pytest_plugin, used as a plugin author would use them."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from hookmq import hookimpl
from hookmq.config import Config
from hookmq.testing.pytest_plugin import MqttClientFactory


class Recorder:
    """A plugin that remembers which clients connected."""

    def __init__(self) -> None:
        self.connected: list[str] = []

    @hookimpl
    def on_session_established(self, client: Any) -> None:
        self.connected.append(client.client_id)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def broker_plugins(recorder: Recorder) -> dict[str, object]:
    return {"recorder": recorder}


def test_broker_config_listens_on_loopback_free_ports(broker_config: Config) -> None:
    assert [(lst.type, lst.address) for lst in broker_config.listeners] == [("tcp", "127.0.0.1:0"), ("ws", "127.0.0.1:0")]
    assert broker_config.storage.backend == "memory"
    assert "dashboard" in broker_config.disabled_plugins


async def test_broker_binds_real_ports(broker: Any) -> None:
    ports = {listener.kind: listener.address[1] for listener in broker.listeners}
    assert set(ports) == {"tcp", "ws"}
    assert all(port > 0 for port in ports.values())


@pytest.mark.parametrize("transport", ["tcp", "websockets"])
@pytest.mark.parametrize("protocol", [4, 5])
async def test_mqtt_client_round_trip(
    mqtt_client: MqttClientFactory, recorder: Recorder, protocol: int, transport: Any
) -> None:
    client = await mqtt_client(protocol=protocol, transport=transport, client_id=f"c-{protocol}-{transport}")
    received = threading.Event()
    payloads: list[bytes] = []

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        payloads.append(message.payload)
        received.set()

    subscribed = threading.Event()
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.subscribe("fixtures/test", qos=1)
    assert await asyncio.to_thread(subscribed.wait, 10)
    client.publish("fixtures/test", b"hello", qos=1)
    assert await asyncio.to_thread(received.wait, 10)
    assert payloads == [b"hello"]
    assert recorder.connected == [f"c-{protocol}-{transport}"]
