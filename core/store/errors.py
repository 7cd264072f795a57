"""Exceptions raised by stores."""

from __future__ import annotations

__all__ = ["StoreClosed", "StoreError", "StoreUnavailable"]


class StoreError(Exception):
    """Base class of every error a store raises on purpose."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached or refused the write; nothing is known to be persisted.

    In ``ack_after_write`` mode the engine must not acknowledge a message whose write raised this.
    """


class StoreClosed(StoreError):
    """An operation was attempted on a store that is not open."""
