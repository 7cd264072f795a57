"""pytest fixtures for testing hookmq and hookmq plugins, loaded through the ``pytest11`` entry point.

- ``broker_config``: a :class:`hookmq.config.Config` with TCP and WebSocket listeners on
  127.0.0.1 port 0, the memory store and no dashboard. Override it (or ``broker_plugins``)
  in your own ``conftest.py`` to test a plugin.
- ``broker_plugins``: plugin objects to register by name (``{}`` unless overridden).
- ``broker``: a started :class:`hookmq.engine.Broker`; ``broker.listeners`` has the bound
  addresses. Stopped at teardown.
- ``mqtt_client``: an async factory of connected paho-mqtt 2.x clients
  (``await mqtt_client(protocol=5, transport="websockets")``), disconnected at teardown.
- ``redis_server``: a real ``redis-server`` on a free port (from :mod:`hookmq.testing.redis`).

Imports of hookmq itself happen inside the fixtures, so a broken module never stops pytest
from starting.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pytest

if TYPE_CHECKING:
    from paho.mqtt.client import Client as PahoClient

    from ..config import Config

# A slim install may lack the module; the other fixtures still work.
with contextlib.suppress(ImportError):
    from .redis import redis_server  # noqa: F401 - re-exported as a fixture

Transport = Literal["tcp", "websockets"]

CONNECT_TIMEOUT = 10.0
"""Seconds a test client may take to connect before the fixture fails."""


class MqttClientFactory(Protocol):
    """What the ``mqtt_client`` fixture returns."""

    def __call__(
        self,
        *,
        protocol: int = 5,
        transport: Transport = "tcp",
        client_id: str = "",
        clean_start: bool = True,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 60,
    ) -> Awaitable[PahoClient]:
        """Connect a new client to the ``broker`` fixture and return it once CONNACK arrived."""
        ...


@pytest.fixture
def broker_config() -> Config:
    """Loopback TCP and WebSocket listeners on free ports, the memory store, no dashboard."""
    from ..config import Config

    return Config.from_mapping(
        {
            "listeners": [
                {"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"},
                {"name": "ws", "type": "ws", "address": "127.0.0.1:0"},
            ],
            "storage": {"backend": "memory"},
            "disabled_plugins": ["dashboard"],
        },
        source="<broker_config fixture>",
    )


@pytest.fixture
def broker_plugins() -> Mapping[str, object]:
    """Plugin objects the ``broker`` fixture registers by name; override to test yours."""
    return {}


def broker_class() -> Any:
    """The engine's Broker class (imported late so pytest starts even when it does not import)."""
    from ..engine.broker import Broker

    return Broker


try:
    import pytest_asyncio
except ImportError:  # without pytest-asyncio only the synchronous fixtures exist
    pass
else:

    @pytest_asyncio.fixture
    async def broker(broker_config: Config, broker_plugins: Mapping[str, object]) -> AsyncIterator[Any]:
        """A started broker; stopped at teardown."""
        instance = broker_class()(broker_config, extra_plugins=broker_plugins)
        await instance.start()
        try:
            yield instance
        finally:
            await instance.stop()

    @pytest_asyncio.fixture
    async def mqtt_client(broker: Any) -> AsyncIterator[MqttClientFactory]:
        """Connect paho-mqtt clients to ``broker``; every one is disconnected at teardown."""
        clients: list[PahoClient] = []

        async def connect(
            *,
            protocol: int = 5,
            transport: Transport = "tcp",
            client_id: str = "",
            clean_start: bool = True,
            username: str | None = None,
            password: str | None = None,
            keepalive: int = 60,
        ) -> PahoClient:
            client = _new_client(protocol, transport, client_id, clean_start)
            if username is not None:
                client.username_pw_set(username, password)
            clients.append(client)
            await _connect(client, broker, transport, protocol, clean_start, keepalive)
            return client

        yield connect
        for client in clients:
            await asyncio.to_thread(_close, client)


def _new_client(protocol: int, transport: Transport, client_id: str, clean_start: bool) -> PahoClient:
    from paho.mqtt.client import Client
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    versions = {3: MQTTProtocolVersion.MQTTv31, 4: MQTTProtocolVersion.MQTTv311, 5: MQTTProtocolVersion.MQTTv5}
    # paho only takes clean_session for v3; v5 gets clean_start at connect().
    clean_session = clean_start if protocol != 5 else None
    client = Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=versions[protocol],
        transport=transport,
    )
    if transport == "websockets":
        client.ws_set_options(path="/mqtt")
    return client


def _listener_address(broker: Any, transport: Transport) -> tuple[str, int]:
    kind = "ws" if transport == "websockets" else "tcp"
    for listener in broker.listeners:
        if listener.kind == kind:
            return "127.0.0.1", int(listener.address[1])
    raise LookupError(f"the broker has no {kind} listener")


async def _connect(
    client: PahoClient, broker: Any, transport: Transport, protocol: int, clean_start: bool, keepalive: int
) -> None:
    """Connect without blocking the event loop that runs the broker, then wait for CONNACK."""
    host, port = _listener_address(broker, transport)
    connected = threading.Event()
    outcome: list[Any] = []

    def on_connect(client: PahoClient, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        outcome.append(reason_code)
        connected.set()

    client.on_connect = on_connect
    # The WebSocket handshake in connect() waits for the broker, which runs on this loop.
    if protocol == 5:
        await asyncio.to_thread(client.connect, host, port, keepalive, clean_start=clean_start)
    else:
        await asyncio.to_thread(client.connect, host, port, keepalive)
    client.loop_start()
    if not await asyncio.to_thread(connected.wait, CONNECT_TIMEOUT):
        raise TimeoutError(f"no CONNACK from {host}:{port} within {CONNECT_TIMEOUT} s")
    if outcome[0].is_failure:
        raise ConnectionRefusedError(f"the broker refused the connection: {outcome[0]}")


def _close(client: PahoClient) -> None:
    client.disconnect()
    client.loop_stop()

