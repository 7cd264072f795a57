"""Why membership runs in its own thread: a stalled broker loop must not look like a dead node."""

from __future__ import annotations

import asyncio
import time

import pytest
from gossip_nodes import eventually, make_node, names
from gossip_oracle import free_port

from hookmq.plugins.gossip.driver import NodeEvent
from hookmq.plugins.gossip.membership import EventKind, MemberEvent
from hookmq.plugins.gossip.runner import GossipRunner, RunnerMode


def _spin(seconds: float) -> None:
    """Hold the CPU and the GIL (pure Python work), as a burst of MQTT traffic does."""
    end = time.monotonic() + seconds
    total = 0
    while time.monotonic() < end:
        total += sum(range(1000))


@pytest.mark.parametrize("stall", [time.sleep, _spin], ids=["blocked", "cpu-bound"])
@pytest.mark.parametrize(("mode", "suspected"), [("thread", False), ("loop", True)])
async def test_a_stalled_event_loop_is_suspected_only_when_gossip_shares_it(
    mode: RunnerMode, suspected: bool, stall: object
) -> None:
    seen: list[tuple[EventKind, str]] = []

    def observe(event: NodeEvent) -> None:
        if isinstance(event, MemberEvent):
            seen.append((event.kind, event.member.name))

    watcher_node, _ = make_node("watcher", free_port())
    watcher = GossipRunner(watcher_node, "thread", observe)  # always in a thread: it watches
    busy_node, _ = make_node("busy", free_port())
    busy = GossipRunner(busy_node, mode, lambda event: None)
    await watcher.start()
    await busy.start()
    try:
        await busy.call(lambda: busy_node.join([f"127.0.0.1:{watcher_node.port}"]))
        assert await eventually(lambda: names(watcher_node) == {"watcher", "busy"}, 10)
        await eventually(lambda: False, 1.0)
        stall(3.5)  # type: ignore[operator]  # the broker's loop is stuck (a long callback, a CPU-bound burst)
        await eventually(lambda: False, 1.0)
        assert ((EventKind.SUSPECT, "busy") in seen) is suspected
    finally:
        await busy.stop(1.0)
        await watcher.stop(1.0)
    await asyncio.sleep(0)
