"""Fixtures of the store tests: a real redis-server per test; Sentinel and Cluster per module."""

from collections.abc import Iterator

import pytest

from hookmq.testing.redis import redis_server
from hookmq.testing.redis_ha import ClusterSetup, SentinelSetup

__all__ = ["redis_cluster", "redis_sentinel", "redis_server"]


@pytest.fixture(scope="module")
def redis_sentinel() -> Iterator[SentinelSetup]:
    """One primary, one replica, three sentinels: shared by a module's tests (each clears its keys)."""
    with SentinelSetup() as setup:
        yield setup


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[ClusterSetup]:
    """A three-primary Redis Cluster without replicas, shared by a module's tests."""
    with ClusterSetup(primaries=3) as setup:
        yield setup
