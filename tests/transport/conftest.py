"""Fixtures for the transport tests: test certificates, a capturing handler, listener start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from transport_helpers import Captured, Handler, Start

from hookmq.testing.certs import TestCertificates, generate_certificates
from hookmq.transport import ListenerConfig, RunningListener, start_listeners


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    """One CA and server certificate shared by the session (generation is the slow part)."""
    return generate_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
async def captured() -> AsyncIterator[Captured]:
    """A `Captured` handler, released at teardown."""
    handler = Captured()
    yield handler
    handler.released.set()


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Start one listener on 127.0.0.1 with a free port; every listener is closed at teardown."""
    running: list[RunningListener] = []

    async def start_one(handler: Handler, type: str = "tcp", **options: object) -> RunningListener:
        options.setdefault("address", "127.0.0.1:0")
        config = ListenerConfig(name=f"{type}-{len(running)}", type=type, **options)
        (listener,) = await start_listeners([config], handler)
        running.append(listener)
        return listener

    yield start_one
    for listener in running:
        await listener.aclose()
