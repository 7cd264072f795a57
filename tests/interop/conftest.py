"""Fixtures of the interop tests: a hookmq broker on free loopback ports and paho clients."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.testing.certs import TestCertificates, generate_certificates
from interop_helpers import Paho


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


def listener_port(broker: Broker, name: str) -> int:
    """The bound port of one listener."""
    return next(int(listener.address[1]) for listener in broker.listeners if listener.name == name)


@pytest.fixture
async def start_interop_broker() -> AsyncIterator[Callable[..., Any]]:
    """Start brokers (with `[mqtt]` overrides or custom listeners); stopped at teardown."""
    brokers: list[Broker] = []

    async def start(mqtt: dict[str, Any] | None = None, listeners: list[dict[str, Any]] | None = None) -> Broker:
        broker = Broker(loopback_config(mqtt, listeners))
        await asyncio.wait_for(broker.start(), 10)
        brokers.append(broker)
        return broker

    yield start
    for broker in reversed(brokers):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(broker.stop(), 10)


@pytest.fixture
async def interop_broker(start_interop_broker: Callable[..., Any]) -> Broker:
    """A broker with default settings and TCP + WebSocket listeners."""
    broker: Broker = await start_interop_broker()
    return broker


@pytest.fixture
def paho_clients() -> Iterator[list[Paho]]:
    """A list a test appends its paho clients to; every one is stopped at teardown."""
    clients: list[Paho] = []
    yield clients
    for client in clients:
        with contextlib.suppress(Exception):
            client.stop()


@pytest.fixture(scope="session")
def interop_certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    """A CA and server certificate for the TLS interop tests."""
    return generate_certificates(tmp_path_factory.mktemp("interop-certs"))


@pytest.fixture(scope="session")
def mosquitto_tools() -> tuple[str, str]:
    """Paths of mosquitto_pub and mosquitto_sub; skips when they are not installed."""
    pub, sub = shutil.which("mosquitto_pub"), shutil.which("mosquitto_sub")
    if pub is None or sub is None:
        pytest.skip("mosquitto-clients is not installed")
    return pub, sub
