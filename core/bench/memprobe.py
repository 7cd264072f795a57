"""What an idle connection costs the broker: tracemalloc and RSS per connection, by source line.

``python -m hookmq.bench.memprobe --connections 2000`` starts a broker in this process (on
uvloop when installed, a TCP listener on a free loopback port), lets a child process open that
many connections (CONNECT, wait for CONNACK, stay idle), and prints the bytes the broker
allocated per connection (tracemalloc, grouped by the line that allocated them) and the growth
of its RSS per connection. The child's own memory is not counted: it is another process.

tracemalloc sees Python's allocations only; the RSS figure also holds what C code allocated
(uvloop's handles, the kernel-side socket objects' user part) and the allocator's slack.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import socket
import sys
import tracemalloc
from collections.abc import Sequence
from typing import Any

from .wire import connect_packet


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _open_idle(port: int, count: int, ready: Any, done: Any) -> None:
    """The child: ``count`` connections, each CONNECTed and acknowledged, held until ``done``."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sockets = []
    for index in range(count):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(connect_packet(f"idle-{index}", 4))
        got = b""
        while len(got) < 4:
            chunk = sock.recv(4 - len(got))
            if not chunk:
                raise SystemExit(f"connection {index} closed before CONNACK")
            got += chunk
        sockets.append(sock)
    ready.put(len(sockets))
    done.wait(600)
    for sock in sockets:
        sock.close()


async def _probe(connections: int, frames: int, top: int) -> str:
    from ..config import Config
    from ..engine import Broker

    config = Config.model_validate({
        "disabled_plugins": ["dashboard"],
        "mqtt": {"sys_interval": 0},
        "listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}],
    })
    broker = Broker(config)
    await broker.start()
    port = broker.listeners[0].address[1]
    context = multiprocessing.get_context("spawn")
    ready: Any = context.Queue()
    done = context.Event()
    # Warm up: one connection's worth of first-use allocations (caches, free lists) is not a connection's cost.
    child = context.Process(target=_open_idle, args=(port, 50, ready, done))
    child.start()
    await asyncio.get_running_loop().run_in_executor(None, ready.get)
    done.set()
    await asyncio.get_running_loop().run_in_executor(None, child.join)
    await asyncio.sleep(0.5)
    done.clear()
    gc.collect()
    if frames:
        tracemalloc.start(frames)
        before = tracemalloc.take_snapshot()
    rss_before = _rss_kib()
    child = context.Process(target=_open_idle, args=(port, connections, ready, done))
    child.start()
    opened = await asyncio.get_running_loop().run_in_executor(None, ready.get)
    await asyncio.sleep(0.5)
    gc.collect()
    rss_after = _rss_kib()
    after = tracemalloc.take_snapshot() if frames else None
    connected = len(broker.connected)
    done.set()
    await asyncio.get_running_loop().run_in_executor(None, child.join)
    tracemalloc.stop()
    await broker.stop()
    lines = [
        f"connections opened: {opened}, established at the broker: {connected}",
        f"RSS: {(rss_after - rss_before) * 1024 / opened:,.0f} bytes per idle connection "
        f"({rss_before:,} KiB before, {rss_after:,} KiB after"
        + (", tracemalloc's own records included)" if frames else ")"),
    ]
    if after is None:
        return "\n".join(lines)
    stats = after.compare_to(before, "traceback" if frames > 1 else "lineno")
    total = sum(stat.size_diff for stat in stats)
    lines += [f"tracemalloc: {total / opened:,.0f} bytes per idle connection", "", "bytes/conn  blocks/conn  where"]
    for stat in stats[:top]:
        where = " <- ".join(f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}" for frame in stat.traceback)
        lines.append(f"{stat.size_diff / opened:10.1f}  {stat.count_diff / opened:11.2f}  {where}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hookmq.bench.memprobe``."""
    parser = argparse.ArgumentParser(prog="python -m hookmq.bench.memprobe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=1, help="traceback depth per allocation (1: by line; 0: RSS only, no tracemalloc)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    from ..cli import run_async

    print(run_async(_probe(args.connections, args.frames, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
