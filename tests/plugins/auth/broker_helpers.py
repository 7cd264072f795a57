"""Helpers of the auth plugin's socket tests: a broker with `[plugins.auth]`, and paho clients in threads."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from paho.mqtt.client import CallbackAPIVersion, Client, MQTTProtocolVersion

from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.testing.raw import RawClient

WAIT = 10.0
"""Seconds any single exchange with the broker may take before a test fails."""


def broker_config(auth: dict[str, Any], listeners: list[dict[str, Any]] | None = None) -> Config:
    """A loopback broker configuration with the auth plugin enabled by ``auth``."""
    return Config.from_mapping(
        {
            "listeners": listeners or [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
            "storage": {"backend": "memory"},
            "disabled_plugins": ["dashboard"],
            "mqtt": {"sys_interval": 0},
            "plugins": {"auth": auth},
        },
        source="<auth test>",
    )


@asynccontextmanager
async def running_broker(auth: dict[str, Any], listeners: list[dict[str, Any]] | None = None) -> AsyncIterator[Broker]:
    """Start a broker with ``auth`` as its `[plugins.auth]` table; stop it afterwards."""
    broker = Broker(broker_config(auth, listeners))
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


def port_of(broker: Broker, kind: str = "tcp") -> int:
    """The bound port of the broker's first listener of ``kind``."""
    return next(int(listener.address[1]) for listener in broker.listeners if listener.kind == kind)


async def raw(broker: Broker, level: int, username: str | None = None, password: bytes | None = None,
              client_id: str = "raw") -> tuple[RawClient, int]:
    """Connect a packet-exact client; return it with the CONNACK reason (v3: return) code."""
    client, connack = await RawClient.connect(
        "127.0.0.1", port_of(broker), client_id=client_id, level=level, username=username, password=password,
    )
    return client, connack.reason_code


class PahoSession:
    """A paho-mqtt 2.x client driven from a thread; each call waits for the broker's answer."""

    def __init__(self, protocol: int, client_id: str, tls: ssl.SSLContext | None = None) -> None:
        version = MQTTProtocolVersion.MQTTv5 if protocol == 5 else MQTTProtocolVersion.MQTTv311
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version)
        if tls is not None:
            self.client.tls_set_context(tls)
        self._events: dict[str, threading.Event] = {}
        self._results: dict[str, Any] = {}
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish

    def _done(self, key: str, value: Any) -> None:
        self._results[key] = value
        self._events.setdefault(key, threading.Event()).set()

    def _wait(self, key: str) -> Any:
        if not self._events.setdefault(key, threading.Event()).wait(WAIT):
            raise TimeoutError(f"no answer for {key} within {WAIT} s")
        return self._results[key]

    def _on_connect(self, client: Client, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._done("connect", reason_code)

    def _on_subscribe(self, client: Client, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        self._done(f"sub{mid}", [code.value for code in reason_codes])

    def _on_publish(self, client: Client, userdata: Any, mid: int, reason_code: Any, properties: Any) -> None:
        self._done(f"pub{mid}", reason_code.value)

    def connect(self, port: int, username: str | None = None, password: str | None = None) -> int:
        """Connect; return the CONNACK code as paho reports it (v3 codes mapped to v5 values)."""
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        return int(self._wait("connect").value)

    def subscribe(self, *filters: str) -> list[int]:
        """Subscribe at QoS 1; return the SUBACK codes."""
        _, mid = self.client.subscribe([(topic, 1) for topic in filters])
        return list(self._wait(f"sub{mid}"))

    def publish(self, topic: str, qos: int = 1) -> int:
        """Publish; return the PUBACK reason code (v3: always 0)."""
        info = self.client.publish(topic, b"x", qos=qos)
        return int(self._wait(f"pub{info.mid}"))

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


@asynccontextmanager
async def paho(protocol: int, client_id: str, tls: ssl.SSLContext | None = None) -> AsyncIterator[PahoSession]:
    """A :class:`PahoSession` closed afterwards; call its methods through ``asyncio.to_thread``."""
    session = PahoSession(protocol, client_id, tls)
    try:
        yield session
    finally:
        await asyncio.to_thread(session.close)
