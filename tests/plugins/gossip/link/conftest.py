"""The fixture the link tests over real sockets share."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from hookmq.engine import Broker


@pytest.fixture
async def started() -> AsyncIterator[list[Broker]]:
    """The brokers a test appends here are stopped after it, newest first."""
    brokers: list[Broker] = []
    yield brokers
    for broker in reversed(brokers):
        with contextlib.suppress(Exception):
            await broker.stop()
