"""The ``memory_store`` plugin: registers the in-memory backend ``memory`` (the default)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from ..hookspecs import hookimpl
from .base import StoreFactory
from .memory import MemoryStore

#: Built-in and harmless: on unless the configuration switches it off.
HOOKMQ_DEFAULT_ENABLED = True


def _build(config: Any) -> MemoryStore:
    """The factory: the memory store takes no settings."""
    return MemoryStore()


@hookimpl
def register_stores(register: Callable[[str, StoreFactory], None], settings: BaseModel | None) -> None:
    """Offer the ``memory`` backend."""
    register(MemoryStore.name, _build)
