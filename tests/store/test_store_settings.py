"""The ``[storage]`` settings model and the ``memory_store`` plugin."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from hookmq.store import memory_plugin
from hookmq.store.memory import MemoryStore
from hookmq.store.settings import StorageSettings


def test_defaults() -> None:
    settings = StorageSettings()
    assert settings.backend == "memory" and settings.durability == "ack_after_write"
    assert settings.write_batch_ms == 0


def test_unknown_keys_and_bad_values_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="bakend"):
        StorageSettings.model_validate({"bakend": "sqlite"})
    with pytest.raises(pydantic.ValidationError, match="durability"):
        StorageSettings.model_validate({"durability": "sometimes"})
    with pytest.raises(pydantic.ValidationError, match="write_batch_ms"):
        StorageSettings.model_validate({"write_batch_ms": -1})


def test_memory_plugin_registers_memory() -> None:
    registered: dict[str, Any] = {}
    memory_plugin.register_stores(register=registered.__setitem__, settings=None)
    assert set(registered) == {"memory"}
    assert isinstance(registered["memory"](object()), MemoryStore)
    assert memory_plugin.HOOKMQ_DEFAULT_ENABLED is True
