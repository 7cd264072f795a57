"""The store contract suite over every built-in backend (Redis runs against a real redis-server)."""

from __future__ import annotations

import pytest
from hookmq.store.memory import MemoryStore
from hookmq.testing.store_contract import StoreContract, StoreFactory


class TestMemoryStore(StoreContract):
    """The default in-memory backend; it keeps nothing across store objects."""

    persistent = False

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return MemoryStore
