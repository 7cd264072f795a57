"""Links to a real broker process: killed with SIGKILL mid-stream and restarted under the same name."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from link_helpers import eventually, gossip_port, links

from hookmq.config import Config
from hookmq.engine import Broker

sys.path.insert(0, str(Path(__file__).parent.parent))
from gossip_oracle import Process, free_port

NODE = Path(__file__).parent / "link_node.py"
FRAMES = 3000
# Long suspicion: the restarted process must come back before membership declares it dead
# (then its frames would be handed back instead of resent, which another test covers).
CLUSTER = {"mode": True, "bind": "127.0.0.1", "advertise": "127.0.0.1", "profile": "local", "suspicion_mult": 30}


def node_b(port: int, seed: int, record: Path) -> Process:
    config = {"listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}], "disabled_plugins": ["dashboard"],
              "cluster": {**CLUSTER, "port": port, "node_name": "node-b", "members": [f"127.0.0.1:{seed}"]},
              "log": {"level": "INFO"}}
    return Process([sys.executable, str(NODE), json.dumps(config), str(record)])


@pytest.fixture
async def node_a() -> AsyncIterator[Broker]:
    config = Config.from_mapping(
        {"listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}], "disabled_plugins": ["dashboard"],
         "cluster": {**CLUSTER, "port": 0, "node_name": "node-a"}}, source="<link process tests>")
    broker = Broker(config)
    await broker.start()
    yield broker
    with contextlib.suppress(Exception):
        await broker.stop()


def recorded(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


async def wait_line(process: Process, text: str, timeout: float = 30.0) -> None:
    if not await asyncio.to_thread(lambda: _wait(lambda: any(text in line for _, line in process.output()), timeout)):
        raise AssertionError(f"no {text!r} from node-b:\n{process.text()[-3000:]}")


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.timeout(180)
async def test_a_peer_killed_with_sigkill_and_restarted_gets_every_unacknowledged_frame(node_a: Broker, tmp_path: Path) -> None:
    record = tmp_path / "frames.txt"
    port = free_port()
    first = node_b(port, gossip_port(node_a), record)
    second: Process | None = None
    try:
        await wait_line(first, "recorder ready")
        await eventually(lambda: links(node_a).is_up("node-b"), 30)
        futures: list[asyncio.Future[None]] = []
        for seq in range(FRAMES):
            future = links(node_a).send("node-b", 1, seq.to_bytes(4, "big"), reliable=True)
            assert future is not None
            futures.append(future)
            if seq % 50 == 49:
                await asyncio.sleep(0.005)  # a stream spread over time, so the kill lands in the middle
            if seq == FRAMES // 3:
                await eventually(lambda: sum(f.done() for f in futures) > FRAMES // 6, 30)
            if seq == FRAMES // 3 + 200:
                await asyncio.sleep(0)  # the last 200 are written to the socket, then the process dies
                first.kill()
                killed_at = len(recorded(record))
                second = node_b(port, gossip_port(node_a), record)
        assert second is not None
        await wait_line(second, "recorder ready")
        await asyncio.wait_for(asyncio.gather(*futures), 90)
        seen = recorded(record)
        first_run, second_run = seen[:killed_at], seen[killed_at:]
        # Each process took a contiguous, ordered run without duplicates; together they hold every frame.
        assert first_run == list(range(len(first_run)))
        restart_from = second_run[0]
        assert second_run == list(range(restart_from, FRAMES))
        assert restart_from <= len(first_run)
        stats = links(node_a).stats("node-b")
        print(f"\nkill -9 after {len(first_run)} frames taken: the restarted process got {restart_from}..{FRAMES - 1} "
              f"({len(first_run) - restart_from} taken before the kill but never acknowledged, sent again); "
              f"connects {stats['connects']}, rewound for resending {stats['resent']}")
        assert stats["connects"] == 2
        assert await eventually(lambda: links(node_a).stats("node-b")["queue_frames"] == 0)  # routing's frames too
    finally:
        for process in (first, second):
            if process is not None:
                process.terminate()
