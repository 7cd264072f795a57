"""Brokers for the benchmark tests: a real mosquitto process and an in-process hookmq Broker."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hookmq.bench.brokers import start_broker
from hookmq.bench.runner import Target


@pytest.fixture(scope="module")
def mosquitto_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A mosquitto started with the harness's own generated configuration."""
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    broker = start_broker("mosquitto", tmp_path_factory.mktemp("mosquitto"))
    try:
        yield broker.target
    finally:
        broker.stop()


class _BrokerThread(threading.Thread):
    """Runs ``hookmq.engine.Broker`` on its own event loop, since the benchmark runner blocks."""

    def __init__(self, broker_class: Any, config: Any) -> None:
        super().__init__(name="hookmq-broker", daemon=True)
        self.broker_class = broker_class
        self.config = config
        self.port = 0
        self.error: BaseException | None = None
        self.started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        try:
            broker = self.broker_class(self.config)
            await broker.start()
            self.port = int(next(li for li in broker.listeners if li.kind == "tcp").address[1])
        except BaseException as error:
            self.error = error
            self.started.set()
            return
        self.started.set()
        try:
            await self._stop_event.wait()
        finally:
            await broker.stop()

    def shutdown(self) -> None:
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self.join(15)


@pytest.fixture(scope="module")
def hookmq_target() -> Iterator[Target]:
    """hookmq's own Broker on a free loopback port (skipped only if the engine does not import)."""
    try:
        from hookmq.config import Config
        from hookmq.engine import Broker
    except ImportError as error:
        pytest.skip(f"hookmq.engine.Broker is not importable yet: {error}")
    config = Config.from_mapping(
        {
            "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
            "storage": {"backend": "memory"},
            "disabled_plugins": ["dashboard"],
            # As in hookmq.bench.brokers: the many-filters workload holds 2500 per client.
            "mqtt": {"max_queued_messages": 100_000, "max_subscriptions_per_client": 0},
        },
        source="<bench tests>",
    )
    thread = _BrokerThread(Broker, config)
    thread.start()
    assert thread.started.wait(30), "hookmq broker did not start within 30 s"
    if thread.error is not None:
        raise thread.error
    try:
        yield Target("hookmq", "127.0.0.1", thread.port)
    finally:
        thread.shutdown()


@pytest.fixture(params=["mosquitto", "hookmq"])
def target(request: pytest.FixtureRequest) -> Target:
    """Each smoke test runs against both brokers."""
    fixture_name = f"{request.param}_target"
    result: Target = request.getfixturevalue(fixture_name)
    return result
