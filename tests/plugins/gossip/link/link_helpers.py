"""Helpers of the link tests: brokers in cluster mode on 127.0.0.1, a recording handler, waiting."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hookmq.config import Config
from hookmq.engine import Broker
from hookmq.plugins.gossip import cluster_of, links_of
from hookmq.plugins.gossip.link import Links

KEY = base64.b64encode(os.urandom(32)).decode()


def node_config(name: str, members: list[str] | None = None, **cluster: Any) -> Config:
    """A cluster node on 127.0.0.1, gossip on a free port, membership in the broker's loop unless told."""
    table = {"mode": True, "port": 0, "bind": "127.0.0.1", "advertise": "127.0.0.1", "node_name": name,
             "profile": "local", "members": members or [], **cluster}
    return Config.from_mapping(
        {"listeners": [{"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"}], "cluster": table,
         "disabled_plugins": ["dashboard"]},
        source="<link tests>",
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``predicate`` every 10 ms for at most ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
    return True


def gossip_port(broker: Broker) -> int:
    cluster = cluster_of(broker)
    assert cluster is not None
    return cluster.local.port


def links(broker: Broker) -> Links:
    found = links_of(broker)
    assert found is not None
    return found


async def pair(started: list[Broker], **cluster: Any) -> tuple[Broker, Broker]:
    """Two joined nodes, ``node-a`` (the dialer) and ``node-b``, with their link up."""
    a = Broker(node_config("node-a", **cluster))
    await a.start()
    started.append(a)
    b = Broker(node_config("node-b", [f"127.0.0.1:{gossip_port(a)}"], **cluster))
    await b.start()
    started.append(b)
    await eventually(lambda: links(a).is_up("node-b") and links(b).is_up("node-a"), 20)
    return a, b


TEST_KINDS = range(1, 16)
"""The frame kinds these tests send. Cluster routing, which shares the links in cluster mode,
numbers its own from 32: the tests leave those to it (never record, hold or fail them)."""


def pause_dialing(broker: Broker, peer: str) -> None:
    """Stop ``broker`` redialling ``peer`` (so a raw dialer posing as ``broker`` keeps its place)."""
    state = links(broker)._peers[peer]
    assert state.dialer is not None
    state.dialer.cancel()
    # A pending stand-in: a membership event (an alive update, a refutation) starts a new dialer
    # only when the last one is done, and would otherwise replace the raw dialer mid-test.
    state.dialer = asyncio.get_running_loop().create_future()  # type: ignore[assignment]


def resume_dialing(broker: Broker) -> None:
    """Dial every member again (what membership's next event would do)."""
    for state in links(broker)._peers.values():
        if state.dialer is not None and not isinstance(state.dialer, asyncio.Task):
            state.dialer.cancel()  # the stand-in pause_dialing left
    links(broker).start()


async def settled(broker: Broker, peer: str) -> None:
    """Wait until every reliable frame ``broker`` has queued for ``peer`` is acknowledged.

    Cluster routing shares the link and sends its own frames when it comes up (the route
    table): a test that counts frames or outbox room starts from an empty outbox.
    """
    await eventually(lambda: links(broker).stats(peer)["queue_frames"] == 0, 20)


def data_frames(broker: Broker, peer: str, key: str) -> int:
    """``stats(peer)[key]`` as an int (for differences before and after a test's own frames)."""
    value = links(broker).stats(peer)[key]
    assert isinstance(value, int)
    return value


@dataclass
class Recorder:
    """An ``on_receive`` handler that records (node, kind, body) of the tests' kinds and can hold their awaitables."""

    frames: list[tuple[str, int, bytes]] = field(default_factory=list)
    hold: bool = False
    held: list[asyncio.Future[None]] = field(default_factory=list)
    fail_on: bytes | None = None

    def __call__(self, node: str, kind: int, body: bytes) -> Awaitable[None] | None:
        if kind not in TEST_KINDS:
            return None
        if self.fail_on is not None and body == self.fail_on:
            raise RuntimeError("the handler refuses this frame")
        self.frames.append((node, kind, body))
        if not self.hold:
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.held.append(future)
        return future

    def release(self) -> None:
        for future in self.held:
            if not future.done():
                future.set_result(None)
        self.held.clear()

    def bodies(self) -> list[bytes]:
        return [body for _, _, body in self.frames]


class RawDialer:
    """A hand-driven link dialer on a real socket: the sans-I/O connection, our own bytes when wanted."""

    def __init__(self, connection: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connection = connection
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, name: str, target: str, keys: list[bytes] | None, label: str = "") -> RawDialer:
        from hookmq.plugins.gossip.link.connection import LinkConnection
        from hookmq.plugins.gossip.link.handshake import LocalIdentity
        from hookmq.plugins.gossip.wire import Keyring

        identity = LocalIdentity(name, os.urandom(8), Keyring(keys) if keys else None, label, 1 << 21)
        connection = LinkConnection("dialer", identity, base=lambda _: 1, expected_peer=target)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(connection, reader, writer)

    def flush(self) -> bytes:
        data = b"".join(self.connection.take_output())
        self.writer.write(data)
        return data

    async def handshake(self, timeout: float = 5.0) -> None:
        """Run the handshake; raises LinkError if the acceptor refuses, EOFError if it just closes."""
        self.flush()
        async with asyncio.timeout(timeout):
            while self.connection.established is None:
                data = await self.reader.read(65_536)
                if not data:
                    raise EOFError("the acceptor closed the connection")
                self.connection.receive(data)
                self.flush()

    async def closed_by_peer(self, timeout: float = 5.0) -> bool:
        """True once the other side closed (EOF or reset), reading and discarding meanwhile."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    if not await self.reader.read(65_536):
                        return True
                except ConnectionError:
                    return True

    def close(self) -> None:
        self.writer.close()
