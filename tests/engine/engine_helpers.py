"""Helpers shared by the engine tests: starting brokers and driving raw MQTT clients."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.mqtt.packets import NO_PROPERTIES, Connack, Disconnect, Packet, Properties, Publish, Will
from hookmq.testing.raw import RawClient

T = TypeVar("T")

#: The default `[mqtt]` overrides of test brokers: no `$SYS` chatter unless a test asks for it.
TEST_MQTT_DEFAULTS: dict[str, Any] = {"sys_interval": 0}


class StartBroker(Protocol):
    """The ``start_broker`` fixture: start a broker with per-test settings."""

    async def __call__(
        self,
        mqtt: Mapping[str, Any] | None = None,
        *,
        listeners: list[dict[str, Any]] | None = None,
        extra_plugins: Mapping[str, object] | None = None,
        **config: Any,
    ) -> Broker:
        """Start and return a broker; it is stopped at teardown."""
        ...


class Connect(Protocol):
    """The ``connect`` fixture: a raw client connected to a broker, closed at teardown."""

    async def __call__(
        self,
        broker: Broker,
        client_id: str = "raw",
        level: int = 5,
        clean_start: bool = True,
        keep_alive: int = 60,
        username: str | None = None,
        password: bytes | None = None,
        will: Will | None = None,
        properties: Properties = NO_PROPERTIES,
    ) -> tuple[RawClient, Connack]:
        """Connect over the broker's TCP listener and return the client and its CONNACK."""
        ...


def loopback_listeners() -> list[dict[str, Any]]:
    """A TCP and a WebSocket listener on free loopback ports."""
    return [
        {"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"},
        {"name": "ws", "type": "ws", "address": "127.0.0.1:0"},
    ]


def make_config(mqtt: Mapping[str, Any] | None = None, listeners: list[dict[str, Any]] | None = None,
                **extra: Any) -> Config:
    """A validated test configuration: loopback listeners, no dashboard, `mqtt` overrides."""
    return Config.model_validate({
        "listeners": listeners if listeners is not None else loopback_listeners(),
        "disabled_plugins": ["dashboard"],
        "mqtt": {**TEST_MQTT_DEFAULTS, **(mqtt or {})},
        **extra,
    })


def port_of(broker: Broker, name: str = "tcp") -> int:
    """The bound port of the broker's listener called ``name``."""
    for listener in broker.listeners:
        if listener.name == name:
            return int(listener.address[1])
    raise LookupError(f"no listener named {name!r}")


def port_is_free(port: int) -> bool:
    """Whether ``port`` can be bound on every interface right now."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


async def messages(client: RawClient, count: int, timeout: float = 5.0, ack: bool = True) -> list[Publish]:
    """The next ``count`` PUBLISH packets, other packets in between are an error."""
    return [await client.receive_message(timeout, ack=ack) for _ in range(count)]


async def no_message(client: RawClient, seconds: float = 0.3) -> bool:
    """True when no packet at all arrives within ``seconds``."""
    return await client.nothing_within(seconds)


async def disconnect_reason(client: RawClient, timeout: float = 5.0) -> int | None:
    """Wait for the broker to close; the reason code of its DISCONNECT, None when it sent none."""
    received = await client.closed_within(timeout)
    codes = [p.reason_code for p in received if isinstance(p, Disconnect)]
    return codes[-1] if codes else None


async def still_serves(broker: Broker, topic: str = "health/check") -> bool:
    """Whether the broker still routes a message between two fresh clients."""
    port = port_of(broker)
    sub, _ = await RawClient.connect("127.0.0.1", port, f"health-sub-{topic}", level=5)
    pub, _ = await RawClient.connect("127.0.0.1", port, f"health-pub-{topic}", level=4)
    try:
        await sub.subscribe(topic, 1)
        await pub.publish(topic, b"ok", 1)
        message = await sub.receive_message(3.0)
        return message.payload == b"ok"
    finally:
        await sub.disconnect()
        await pub.disconnect()


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; returns its last value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            return predicate()
        await asyncio.sleep(step)
    return True


async def bounded(awaitable: Awaitable[T], timeout: float = 5.0) -> T:
    """Await with an upper bound, so a hanging broker fails the test instead of stalling it."""
    return await asyncio.wait_for(awaitable, timeout)


def packet_kinds(packets: list[Packet]) -> list[str]:
    """Class names of packets, for readable assertion messages."""
    return [type(p).__name__ for p in packets]
