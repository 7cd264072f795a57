"""Real third-party clients against a hookmq broker: a paho-mqtt wrapper with bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import ssl
import threading
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hookmq.config import Config
from hookmq.engine import Broker

T = TypeVar("T")

#: Seconds any single wait on a paho client may take before the test fails.
WAIT = 5.0

Transport = Literal["tcp", "websockets"]


class Paho:
    """A paho-mqtt 2.x client run by its own thread (`loop_start`), with events for every answer."""

    def __init__(self, client_id: str, protocol: int = 5, transport: Transport = "tcp",
                 clean: bool = True) -> None:
        version = {4: MQTTProtocolVersion.MQTTv311, 5: MQTTProtocolVersion.MQTTv5}[protocol]
        kwargs: dict[str, Any] = {}
        if protocol == 4:
            kwargs["clean_session"] = clean
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=version,
                                  transport=transport, **kwargs)
        if transport == "websockets":
            self.client.ws_set_options(path="/mqtt")
        self.protocol = protocol
        self.clean = clean
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.connack_code: ReasonCode | None = None
        self.connack_properties: Properties | None = None
        self.session_present = False
        self.disconnect_code: ReasonCode | None = None
        self.disconnect_from_server = False
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.subacks: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: ReasonCode,
                    properties: Properties | None) -> None:
        self.connack_code = reason_code
        self.connack_properties = properties
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: ReasonCode,
                       properties: Properties | None) -> None:
        self.disconnect_code = reason_code
        self.disconnect_from_server = bool(flags.is_disconnect_packet_from_server)
        self.disconnected.set()

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      properties: Properties | None) -> None:
        self.subacks.put(reason_codes)

    def tls(self, cafile: str, certfile: str | None = None, keyfile: str | None = None) -> Paho:
        """Use TLS with the given CA, optionally presenting a client certificate."""
        self.client.tls_set(ca_certs=cafile, certfile=certfile, keyfile=keyfile, cert_reqs=ssl.CERT_REQUIRED)
        return self

    def connect(self, port: int, keepalive: int = 30, properties: Properties | None = None,
                will: tuple[str, bytes, int, bool] | None = None) -> Paho:
        """Connect, start the network thread and wait for CONNACK (success is not asserted here)."""
        if will is not None:
            self.client.will_set(*will)
        kwargs: dict[str, Any] = {"keepalive": keepalive}
        if self.protocol == 5:
            kwargs["clean_start"] = self.clean
            kwargs["properties"] = properties
        self.client.connect("127.0.0.1", port, **kwargs)
        self.client.loop_start()
        if not self.connected.wait(WAIT):
            self.stop()
            raise AssertionError("no CONNACK from the broker")
        return self

    def subscribe(self, topic: str, qos: int = 0, **options: Any) -> list[ReasonCode]:
        """Subscribe and wait for SUBACK; returns its reason codes."""
        if self.protocol == 5:
            from paho.mqtt.subscribeoptions import SubscribeOptions

            self.client.subscribe(topic, options=SubscribeOptions(qos=qos, **options))
        else:
            self.client.subscribe(topic, qos)
        return self.subacks.get(timeout=WAIT)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False,
                properties: Properties | None = None) -> None:
        """Publish and, for QoS 1/2, wait until the broker completed the flow."""
        info = self.client.publish(topic, payload, qos, retain, properties)
        info.wait_for_publish(WAIT)
        assert info.is_published(), f"publish to {topic!r} not completed"

    def message(self, timeout: float = WAIT) -> mqtt.MQTTMessage:
        """The next message received."""
        return self.messages.get(timeout=timeout)

    def no_message(self, seconds: float = 0.3) -> bool:
        """True when no message arrives within ``seconds``."""
        try:
            self.messages.get(timeout=seconds)
        except queue.Empty:
            return True
        return False

    def stop(self) -> None:
        """Disconnect cleanly (if still connected) and stop the network thread."""
        if self.connected.is_set() and not self.disconnected.is_set():
            self.client.disconnect()
            self.disconnected.wait(WAIT)
        self.client.loop_stop()

    def drop(self) -> None:
        """Close the socket without DISCONNECT (the broker sees an abnormal end)."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


def loopback_config(mqtt: dict[str, Any] | None = None, listeners: list[dict[str, Any]] | None = None) -> Config:
    """TCP and WebSocket on free loopback ports, no dashboard, `$SYS` off unless asked."""
    return Config.model_validate({
        "listeners": listeners or [
            {"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"},
            {"name": "ws", "type": "ws", "address": "127.0.0.1:0"},
        ],
        "disabled_plugins": ["dashboard"],
        "mqtt": {"sys_interval": 0, **(mqtt or {})},
    })


class BrokerThread:
    """A broker served by an event loop in a daemon thread."""

    def __init__(self, config: Config) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hookmq-interop", daemon=True)
        self.thread.start()
        self.broker = self.call(self._create(config))
        self.call(self.broker.start())

    @staticmethod
    async def _create(config: Config) -> Broker:
        # Built inside the loop: the broker's asyncio objects belong to it.
        return Broker(config)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the broker's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def port(self, name: str = "tcp") -> int:
        """The bound port of one listener."""
        return next(int(listener.address[1]) for listener in self.broker.listeners if listener.name == name)

    def stop(self) -> None:
        """Stop the broker, then the loop and its thread."""
        with contextlib.suppress(Exception):
            self.call(self.broker.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
