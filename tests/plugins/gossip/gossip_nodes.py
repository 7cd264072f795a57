"""In-process hookmq gossip nodes for tests: a GossipNode on 127.0.0.1 that records its events."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from hookmq.plugins.gossip.driver import GossipNode, NodeEvent
from hookmq.plugins.gossip.membership import EventKind, MemberEvent, MembershipConfig, UserMessage, profile
from hookmq.plugins.gossip.wire import Keyring, WireCodec


@dataclass
class Recorded:
    """What a node's listener saw, with wall-clock times."""

    events: list[tuple[float, EventKind, str, bytes]] = field(default_factory=list)
    messages: list[tuple[bytes, bool]] = field(default_factory=list)

    def __call__(self, event: NodeEvent) -> None:
        if isinstance(event, MemberEvent):
            self.events.append((time.time(), event.kind, event.member.name, event.member.meta))
        elif isinstance(event, UserMessage):
            self.messages.append((event.payload, event.reliable))

    def first(self, kind: EventKind, name: str, since: float = 0.0) -> float | None:
        return next((t for t, k, n, _ in self.events if k == kind and n == name and t >= since), None)


def make_node(name: str, port: int = 0, members: tuple[str, ...] = (), key: bytes | None = None,
              config: MembershipConfig | None = None, label: str = "") -> tuple[GossipNode, Recorded]:
    """A node bound and advertised on 127.0.0.1 with a recording listener."""
    recorded = Recorded()
    codec = WireCodec(keyring=Keyring([key]) if key else None, label=label)
    node = GossipNode(config or profile("local"), name=name, bind="127.0.0.1", port=port, advertise="127.0.0.1",
                      codec=codec, members=members, listener=recorded)
    return node, recorded


async def eventually(predicate: object, timeout: float, step: float = 0.05) -> bool:
    """Await until ``predicate()`` is true or ``timeout`` seconds pass (the loop keeps running)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(step)
    return bool(predicate())  # type: ignore[operator]


def names(node: GossipNode) -> set[str]:
    return {member.name for member in node.members()}
