"""Fixtures of the store tests: a real redis-server per test."""

from hookmq.testing.redis import redis_server

__all__ = ["redis_server"]
