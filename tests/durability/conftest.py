"""Fixtures of the durability tests: broker subprocesses and a Redis that fsyncs every write."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from durability_helpers import BrokerFactory, BrokerProcess, DurableRedis, check_config

from hookmq.testing.redis import redis_server

__all__ = ["brokers", "durable_redis", "redis_server"]


@pytest.fixture
def brokers() -> Iterator[BrokerFactory]:
    """Start checked broker processes: ``brokers(config_path, name="a")``; all killed at teardown."""
    started: list[BrokerProcess] = []

    def start(config: Path, name: str = "broker") -> BrokerProcess:
        check_config(config)
        process = BrokerProcess(config, name)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.kill()


@pytest.fixture
def durable_redis() -> Iterator[DurableRedis]:
    """A redis-server with ``appendonly yes`` and ``appendfsync always``."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary not installed (apt-get install redis-server)")
    with DurableRedis() as server:
        yield server
