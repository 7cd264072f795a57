"""A real hookmq broker process in cluster mode whose link frames are written to files as they arrive.

``python link_node.py CONFIG_JSON RECORD_FILE [TRAFFIC_JSON]``: the broker is the same ``Broker``
that ``hookmq`` serves (real gossip plugin, real links), with one embedded plugin that appends
``seq`` of every frame (the body's first 4 bytes) to RECORD_FILE with an unbuffered write before
the frame is acknowledged, so what the file holds after a kill -9 is exactly what this process took.

TRAFFIC_JSON, when given, makes the process a sender too: ``{"peer": NAME, "frames": N,
"rate": PER_SECOND, "acked": FILE, "handed": FILE}``.
Once its link to ``peer`` is first up it sends reliable frames ``0 … N-1`` at that rate
(waiting for room when the outbox is full), appends each acknowledged ``seq`` to ``acked`` and
each one handed back by ``on_unacked`` (the peer declared dead) to ``handed``; when every
frame is acknowledged or failed it prints ``sender done`` and ``sender stats {…}`` (the link's
figures as JSON).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from hookmq import hookimpl
from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.logsetup import configure_logging
from hookmq.plugins.gossip import links_of


def _appender(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


class Recorder:
    def __init__(self, path: str, traffic: dict[str, Any] | None) -> None:
        self.fd = _appender(path)
        self.traffic = traffic
        self.tasks: set[asyncio.Task[None]] = set()

    def frame(self, node: str, kind: int, body: bytes) -> None:
        if kind == 1:  # ours; cluster routing's frames (kinds from 32) share the link
            os.write(self.fd, b"%d\n" % int.from_bytes(body[:4], "big"))

    @hookimpl
    async def on_started(self, broker: Any) -> None:
        links = links_of(broker)
        assert links is not None
        links.on_receive(self.frame)
        if self.traffic is not None:
            traffic = self.traffic
            handed = _appender(traffic["handed"])
            links.on_unacked(lambda node, frames: [os.write(handed, b"%d\n" % int.from_bytes(body[:4], "big"))
                                                   for kind, body in frames if kind == 1])
            up = asyncio.get_running_loop().create_future()
            links.on_up(lambda node: up.done() or node != traffic["peer"] or up.set_result(None))
            if links.is_up(traffic["peer"]):
                up.set_result(None)
            task = asyncio.get_running_loop().create_task(self.send(links, up, traffic))
            self.tasks.add(task)
        print("recorder ready", flush=True)

    async def send(self, links: Any, up: asyncio.Future[None], traffic: dict[str, Any]) -> None:
        await up
        peer, acked = traffic["peer"], _appender(traffic["acked"])
        pause = 1.0 / traffic["rate"]
        futures = []
        for seq in range(traffic["frames"]):
            body = seq.to_bytes(4, "big") + bytes(200)
            if not links.has_room(peer, len(body)):
                await links.wait_for_room(peer, len(body))
            future = links.send(peer, 1, body, reliable=True)
            future.add_done_callback(
                lambda done, seq=seq: done.cancelled() or done.exception() or os.write(acked, b"%d\n" % seq))
            futures.append(future)
            await asyncio.sleep(pause)
        await asyncio.gather(*futures, return_exceptions=True)
        print("sender done", flush=True)
        print("sender stats " + json.dumps(links.stats(peer)) if peer in links.peers() else "sender stats {}", flush=True)


def main() -> None:
    config = Config.from_mapping(json.loads(sys.argv[1]), source="<link_node>")
    traffic = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    configure_logging(config.log.level, config.log.format)
    broker = Broker(config, extra_plugins={"recorder": Recorder(sys.argv[2], traffic)})
    asyncio.run(broker.serve())


if __name__ == "__main__":
    main()
