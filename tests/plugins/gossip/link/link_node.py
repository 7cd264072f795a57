"""A real hookmq broker process in cluster mode whose link frames are written to a file as they arrive.

``python link_node.py CONFIG_JSON RECORD_FILE``: the broker is the same ``Broker`` that ``hookmq``
serves (real gossip plugin, real links), with one embedded plugin that appends ``seq`` of every
frame (the body's first 4 bytes) to RECORD_FILE with an unbuffered write before the frame is
acknowledged, so what the file holds after a kill -9 is exactly what this process took.
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


class Recorder:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def frame(self, node: str, kind: int, body: bytes) -> None:
        os.write(self.fd, b"%d\n" % int.from_bytes(body[:4], "big"))

    @hookimpl
    async def on_started(self, broker: Any) -> None:
        links = links_of(broker)
        assert links is not None
        links.on_receive(self.frame)
        print("recorder ready", flush=True)


def main() -> None:
    config = Config.from_mapping(json.loads(sys.argv[1]), source="<link_node>")
    configure_logging(config.log.level, config.log.format)
    broker = Broker(config, extra_plugins={"recorder": Recorder(sys.argv[2])})
    asyncio.run(broker.serve())


if __name__ == "__main__":
    main()
