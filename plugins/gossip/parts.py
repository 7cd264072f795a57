"""Which cluster part (routing, sessions) each broker runs, registered with its hooks while it runs."""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar
from weakref import WeakKeyDictionary


class Part(Protocol):
    """What a per-broker part must offer: start before its hooks are registered, stop after."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


P = TypeVar("P", bound=Part)


class BrokerParts(Generic[P]):
    """One part of a kind per broker: started, then its hooks registered; unregistered, then stopped."""

    def __init__(self, kind: str) -> None:
        self._kind = kind
        self._parts: WeakKeyDictionary[Any, P] = WeakKeyDictionary()

    def of(self, broker: Any) -> P | None:
        """The broker's part, or None when it has none."""
        return self._parts.get(broker)

    async def install(self, broker: Any, part: P, name: str) -> P:
        """Start ``part`` and register its hooks with the broker's plugin manager as ``gossip.<kind>.<name>``."""
        await part.start()
        broker.hooks.pm.register(part, name=f"gossip.{self._kind}.{name}")
        self._parts[broker] = part
        return part

    async def uninstall(self, broker: Any) -> None:
        """Unregister and stop the broker's part (the broker is stopping); nothing when it has none."""
        part = self._parts.pop(broker, None)
        if part is None:
            return
        pm = broker.hooks.pm
        if pm.is_registered(part):
            pm.unregister(part)
        await part.stop()
