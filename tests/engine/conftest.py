"""Fixtures of the engine tests: brokers on free loopback ports and raw clients, all cleaned up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from engine_helpers import Connect, StartBroker, make_config, port_of

from hookmq.engine import Broker
from hookmq.mqtt.packets import NO_PROPERTIES, Connack, Properties, Will
from hookmq.testing.certs import TestCertificates, generate_certificates
from hookmq.testing.raw import RawClient


@pytest.fixture
async def start_broker() -> AsyncIterator[StartBroker]:
    """Start brokers with `[mqtt]` overrides; every one is stopped at teardown."""
    brokers: list[Broker] = []

    async def start(mqtt: Mapping[str, Any] | None = None, *, listeners: list[dict[str, Any]] | None = None,
                    extra_plugins: Mapping[str, object] | None = None, **config: Any) -> Broker:
        broker = Broker(make_config(mqtt, listeners, **config), extra_plugins=extra_plugins)
        await asyncio.wait_for(broker.start(), 10)
        brokers.append(broker)
        return broker

    yield start
    for broker in reversed(brokers):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(broker.stop(), 10)


@pytest.fixture
async def broker(start_broker: StartBroker) -> Broker:
    """A broker with the default test settings (overrides the hookmq pytest plugin's fixture)."""
    return await start_broker()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """Connect raw clients over TCP; every one still open is closed at teardown."""
    clients: list[RawClient] = []

    async def open_client(broker: Broker, client_id: str = "raw", level: int = 5, clean_start: bool = True,
                          keep_alive: int = 60, username: str | None = None, password: bytes | None = None,
                          will: Will | None = None, properties: Properties = NO_PROPERTIES,
                          ) -> tuple[RawClient, Connack]:
        client, connack = await asyncio.wait_for(RawClient.connect(
            "127.0.0.1", port_of(broker), client_id, level, clean_start, keep_alive, username, password,
            will, properties), 5)
        clients.append(client)
        return client, connack

    yield open_client
    for client in clients:
        await client.close()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    """One test CA and server certificate for the whole run."""
    return generate_certificates(tmp_path_factory.mktemp("engine-certs"))
