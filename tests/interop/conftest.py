"""Fixtures of the interop tests: a hookmq broker in its own thread and event loop, real clients.

The tests themselves are synchronous: paho-mqtt and the mosquitto command-line clients block,
and the broker must keep running meanwhile, so it gets a loop of its own.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from interop_helpers import BrokerThread, Paho, loopback_config

from hookmq.testing.certs import TestCertificates, generate_certificates


@pytest.fixture
def start_broker_thread() -> Iterator[Callable[..., BrokerThread]]:
    """Start brokers in threads (with `[mqtt]` overrides or custom listeners); stopped at teardown."""
    running: list[BrokerThread] = []

    def start(mqtt: dict[str, Any] | None = None, listeners: list[dict[str, Any]] | None = None) -> BrokerThread:
        broker = BrokerThread(loopback_config(mqtt, listeners))
        running.append(broker)
        return broker

    yield start
    for broker in reversed(running):
        broker.stop()


@pytest.fixture
def hookmq_broker(start_broker_thread: Callable[..., BrokerThread]) -> BrokerThread:
    """A broker with default settings and TCP + WebSocket listeners."""
    return start_broker_thread()


@pytest.fixture
def paho() -> Iterator[Callable[..., Paho]]:
    """Make paho clients (`paho("id", protocol=5, transport="tcp")`); all stopped at teardown."""
    clients: list[Paho] = []

    def make(client_id: str, protocol: int = 5, transport: str = "tcp", clean: bool = True) -> Paho:
        client = Paho(client_id, protocol, transport, clean)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
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
