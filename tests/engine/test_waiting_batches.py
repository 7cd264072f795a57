"""A read batch of many packets that each wait (an async hook, a cluster's forwards) is handled in order."""

from __future__ import annotations

import asyncio
from typing import Any

from engine_helpers import Connect, StartBroker

from hookmq import hookimpl
from hookmq.mqtt.codec import encode
from hookmq.mqtt.packets import Puback, Publish

BURST = 5000  # well over the interpreter's recursion limit of 1000


class YieldingPublishHook:
    """An `on_publish` that waits one loop step, so every PUBLISH handler returns something to await."""

    def __init__(self) -> None:
        self.seen = 0

    @hookimpl
    async def on_publish(self, client: Any, packet: Any) -> None:
        await asyncio.sleep(0)
        self.seen += 1


async def test_thousands_of_waiting_publishes_in_one_write_are_all_acknowledged_in_order(
        start_broker: StartBroker, connect: Connect) -> None:
    hook = YieldingPublishHook()
    broker = await start_broker(extra_plugins={"yielding": hook})
    sub, _ = await connect(broker, "burst-sub")
    await sub.subscribe("burst/#", 0)
    pub, _ = await connect(broker, "burst-pub")
    burst = b"".join(encode(Publish("burst/t", str(n).encode(), 1, False, False, n + 1), 5) for n in range(BURST))
    await pub.send_bytes(burst)  # one write: the broker reads it in a few large chunks
    acked = [(await pub.expect(Puback, timeout=30)).packet_id for _ in range(BURST)]
    assert acked == list(range(1, BURST + 1))
    received = [int((await sub.receive_message(timeout=30)).payload) for _ in range(BURST)]
    assert received == list(range(BURST))
    assert hook.seen == BURST
