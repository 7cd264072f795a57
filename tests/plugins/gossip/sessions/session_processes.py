"""Real hookmq processes in cluster mode on 127.0.0.1 sharing one real redis-server, for the cluster-session tests."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from gossip_oracle import Process

from hookmq.testing.ports import free_port

__all__ = ["SessionNode", "free_port", "until"]


async def until(predicate: Callable[[], object], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` in the event loop until true or ``timeout`` seconds pass."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


class SessionNode(Process):
    """A hookmq broker process: cluster mode (profile local), MQTT on a loopback port, Redis store with ack_after_write."""

    def __init__(self, tmp: Path, name: str, redis_url: str | None, members: list[str] | None = None, *,
                 address: str = "127.0.0.1", prefix: list[str] | None = None) -> None:
        """``address`` and ``prefix`` (``ip netns exec NS``) put the node in a network namespace of a test's own."""
        self.name = name
        self.address = address
        self.mqtt_port = free_port()
        lines = [
            'disabled_plugins = ["dashboard"]',
            "[cluster]",
            "mode = true",
            "port = 0",
            f'bind = "{address}"',
            f'advertise = "{address}"',
            f'node_name = "{name}"',
            'profile = "local"',
            f"members = {json.dumps(members or [])}",
            "[mqtt]",
            "sys_interval = 0",
            "[[listeners]]",
            'name = "tcp"',
            'type = "tcp"',
            f'address = "{address}:{self.mqtt_port}"',
            "[log]",
            'level = "INFO"',
        ]
        if redis_url is not None:
            lines += ["[storage]", 'backend = "redis"', 'durability = "ack_after_write"',
                      "[plugins.redis_store]", f'url = "{redis_url}"']
        config = tmp / f"{name}.toml"
        config.write_text("\n".join(lines) + "\n")
        super().__init__([*(prefix or []), sys.executable, "-m", "hookmq", "-c", str(config)],
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def logged(self, text: str) -> bool:
        """Whether an output line contains ``text``."""
        return any(text in line for _, line in self.output())

    def count(self, text: str) -> int:
        """How many output lines contain ``text``."""
        return sum(text in line for _, line in self.output())

    async def gossip_address(self, timeout: float = 30.0) -> str:
        """``ADDRESS:PORT`` of its gossip, from the ``Local member`` line (waits for it)."""
        found: list[str] = []

        def local_member() -> bool:
            for _, line in self.output():
                if f"Local member {self.address}:" in line:
                    found.append(line.rsplit(" ", 1)[1])
                    return True
            return False

        if not await until(local_member, timeout):
            raise AssertionError(f"{self.name} did not start:\n{self.text()[-3000:]}")
        return found[0]

    async def serving(self, timeout: float = 30.0) -> None:
        """Wait until its MQTT listener accepts connections."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            try:
                _, writer = await asyncio.open_connection(self.address, self.mqtt_port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            return
        raise AssertionError(f"{self.name} does not serve MQTT:\n{self.text()[-3000:]}")
