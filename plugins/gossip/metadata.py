"""The metadata a hookmq node gossips about itself (at most 512 bytes, memberlist's limit).

It says how other nodes reach this node's data plane: its MQTT listeners now, and whatever
the cluster-routing plugin adds (``extra``, e.g. the port of an inter-node link). Encoded as
a small msgpack map tagged ``hookmq``, so metadata of foreign memberlist nodes (any bytes) is
recognised as not ours rather than misread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack  # type: ignore[import-untyped]

from .membership import META_MAX_SIZE

__all__ = ["ListenerEndpoint", "NodeMetadata"]

FORMAT_VERSION = 1
Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class ListenerEndpoint:
    """One MQTT listener: its type (``tcp``, ``tls``, ``ws``, ``wss``), host and port."""

    kind: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class NodeMetadata:
    """A node's gossiped metadata: its listeners and extension fields for other plugins."""

    listeners: tuple[ListenerEndpoint, ...] = ()
    #: Extension fields (short keys, scalar values): the next plugins add theirs here.
    extra: Mapping[str, Scalar] = field(default_factory=dict)

    def encode(self) -> bytes:
        """The bytes gossiped; ValueError beyond 512 bytes."""
        body: dict[str, Any] = {"hookmq": FORMAT_VERSION, "l": [[e.kind, e.host, e.port] for e in self.listeners]}
        if self.extra:
            body["x"] = dict(self.extra)
        encoded: bytes = msgpack.packb(body, use_bin_type=True)
        if len(encoded) > META_MAX_SIZE:
            raise ValueError(f"node metadata encodes to {len(encoded)} bytes; at most {META_MAX_SIZE}")
        return encoded

    @classmethod
    def decode(cls, data: bytes) -> NodeMetadata | None:
        """The metadata of a hookmq node, or None for anything else (a foreign node, garbage)."""
        try:
            body = msgpack.unpackb(data, raw=False, strict_map_key=True)
        except Exception:  # any bytes may arrive; not ours is the answer
            return None
        if not isinstance(body, dict) or not isinstance(body.get("hookmq"), int):
            return None
        listeners = []
        for item in body.get("l") or []:
            if isinstance(item, list) and len(item) == 3 and isinstance(item[0], str) and isinstance(item[1], str) \
                    and isinstance(item[2], int):
                listeners.append(ListenerEndpoint(item[0], item[1], item[2]))
        extra = body.get("x") or {}
        if not isinstance(extra, dict):
            extra = {}
        scalars = {key: value for key, value in extra.items() if isinstance(value, str | int | float | bool)}
        return cls(tuple(listeners), scalars)

    def listener(self, kind: str) -> ListenerEndpoint | None:
        """The first listener of a type, or None."""
        return next((endpoint for endpoint in self.listeners if endpoint.kind == kind), None)
