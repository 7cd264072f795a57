"""An in-memory stand-in for the data links (the link layer only; brokers are always real).

It keeps the link layer's promises that routing relies on: per pair of nodes, frames arrive in
the order sent; a reliable frame's future resolves once the receiver's handler (and the
awaitable it returned) completed; a cut keeps reliable frames for resending when it heals and
drops unreliable ones; duplicates after a resend are dropped; a node that fails hands its
unacknowledged frames back to each sender (`on_unacked`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Frame:
    seq: int
    kind: int
    body: bytes
    reliable: bool
    future: asyncio.Future[None] | None


@dataclass
class _Direction:
    """Frames from one node to another."""

    queue: asyncio.Queue[_Frame] = field(default_factory=asyncio.Queue)
    unacked: dict[int, _Frame] = field(default_factory=dict)
    delivered_up_to: int = 0
    next_seq: int = 0
    task: asyncio.Task[None] | None = None


class MemoryNetwork:
    """Several nodes' links in one process."""

    def __init__(self) -> None:
        self.nodes: dict[str, MemoryLinks] = {}
        self._directions: dict[tuple[str, str], _Direction] = {}
        self._up: set[frozenset[str]] = set()
        #: Frames delivered per (sender, receiver, kind).
        self.delivered: Counter[tuple[str, str, int]] = Counter()

    def links(self, name: str) -> MemoryLinks:
        links = self.nodes[name] = MemoryLinks(self, name)
        return links

    def _direction(self, sender: str, receiver: str) -> _Direction:
        found = self._directions.get((sender, receiver))
        if found is None:
            found = self._directions[(sender, receiver)] = _Direction()
            found.task = asyncio.get_running_loop().create_task(self._pump(sender, receiver, found))
        return found

    def is_up(self, a: str, b: str) -> bool:
        return frozenset((a, b)) in self._up

    def connect(self, a: str, b: str) -> None:
        """Bring the link between a and b up (again): resend what is unacknowledged, then tell both."""
        if self.is_up(a, b):
            return
        self._up.add(frozenset((a, b)))
        for sender, receiver in ((a, b), (b, a)):
            direction = self._direction(sender, receiver)
            for frame in sorted(direction.unacked.values(), key=lambda f: f.seq):
                direction.queue.put_nowait(frame)
        self.nodes[a]._fire_up(b)
        self.nodes[b]._fire_up(a)

    def connect_all(self) -> None:
        names = list(self.nodes)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                self.connect(a, b)

    def cut(self, a: str, b: str) -> None:
        """Break the link: frames in flight wait (reliable) or are lost (unreliable)."""
        if not self.is_up(a, b):
            return
        self._up.discard(frozenset((a, b)))
        for sender, receiver in ((a, b), (b, a)):
            direction = self._direction(sender, receiver)
            while not direction.queue.empty():
                direction.queue.get_nowait()
        self.nodes[a]._fire_down(b)
        self.nodes[b]._fire_down(a)

    def fail(self, name: str) -> None:
        """``name`` is gone for good: each sender gets its unacknowledged frames back."""
        for other in list(self.nodes):
            if other == name:
                continue
            self.cut(name, other)
            direction = self._direction(other, name)
            frames = sorted(direction.unacked.values(), key=lambda f: f.seq)
            direction.unacked.clear()
            self.nodes[other]._fire_gone(name)
            if frames:
                self.nodes[other]._fire_unacked(name, [(f.kind, f.body) for f in frames])
            for frame in frames:
                if frame.future is not None and not frame.future.done():
                    frame.future.set_exception(ConnectionError(f"{name} failed"))

    def send(self, sender: str, receiver: str, kind: int, body: bytes, reliable: bool) -> asyncio.Future[None] | None:
        if receiver not in self.nodes:
            return None
        direction = self._direction(sender, receiver)
        direction.next_seq += 1
        future = asyncio.get_running_loop().create_future() if reliable else None
        frame = _Frame(direction.next_seq, kind, body, reliable, future)
        if reliable:
            direction.unacked[frame.seq] = frame
        if self.is_up(sender, receiver):
            direction.queue.put_nowait(frame)
        return future

    async def _pump(self, sender: str, receiver: str, direction: _Direction) -> None:
        while True:
            frame = await direction.queue.get()
            await asyncio.sleep(0)  # as a socket reader would: other tasks run between frames
            if not self.is_up(sender, receiver):
                continue
            if frame.reliable and frame.seq <= direction.delivered_up_to:
                self._ack(direction, frame)  # a duplicate after a resend: acknowledged, not handled again
                continue
            result = self.nodes[receiver]._handle(sender, frame.kind, frame.body)
            if inspect.isawaitable(result):
                try:
                    await result
                except Exception:
                    continue  # a failed handler: not acknowledged, resent on the next connect
            if not self.is_up(sender, receiver):
                continue
            self.delivered[(sender, receiver, frame.kind)] += 1
            if frame.reliable:
                direction.delivered_up_to = max(direction.delivered_up_to, frame.seq)
                self._ack(direction, frame)

    @staticmethod
    def _ack(direction: _Direction, frame: _Frame) -> None:
        direction.unacked.pop(frame.seq, None)
        if frame.future is not None and not frame.future.done():
            frame.future.set_result(None)

    async def close(self) -> None:
        tasks = [d.task for d in self._directions.values() if d.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


class MemoryLinks:
    """One node's view, with the link layer's API (`hookmq.plugins.gossip.routing.links.DataLinks`)."""

    def __init__(self, network: MemoryNetwork, name: str) -> None:
        self.network = network
        self.name = name
        self._up: list[Callable[[str], None]] = []
        self._down: list[Callable[[str], None]] = []
        self._receive: list[Callable[[str, int, bytes], Any]] = []
        self._unacked: list[Callable[[str, list[tuple[int, bytes]]], None]] = []
        self._gone: list[Callable[[str], None]] = []

    def on_up(self, callback: Callable[[str], None]) -> Callable[[], None]:
        self._up.append(callback)
        return lambda: self._up.remove(callback)

    def on_down(self, callback: Callable[[str], None]) -> Callable[[], None]:
        self._down.append(callback)
        return lambda: self._down.remove(callback)

    def on_receive(self, callback: Callable[[str, int, bytes], Any]) -> Callable[[], None]:
        self._receive.append(callback)
        return lambda: self._receive.remove(callback)

    def on_unacked(self, callback: Callable[[str, list[tuple[int, bytes]]], None]) -> Callable[[], None]:
        self._unacked.append(callback)
        return lambda: self._unacked.remove(callback)

    def on_gone(self, callback: Callable[[str], None]) -> Callable[[], None]:
        self._gone.append(callback)
        return lambda: self._gone.remove(callback)

    def send(self, node: str, kind: int, body: bytes, *, reliable: bool) -> asyncio.Future[None] | None:
        return self.network.send(self.name, node, kind, body, reliable)

    def has_room(self, node: str, size: int = 0) -> bool:
        return True  # unbounded: back-pressure is tested over the real links

    def wait_for_room(self, node: str, size: int = 0) -> asyncio.Future[bool]:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        future.set_result(node in self.network.nodes and node != self.name)
        return future

    def is_up(self, node: str) -> bool:
        return self.network.is_up(self.name, node)

    def peers(self) -> list[str]:
        return [name for name in self.network.nodes if name != self.name]

    def stats(self, node: str) -> dict[str, Any]:
        return {"up": self.is_up(node)}

    def _fire_up(self, node: str) -> None:
        for callback in list(self._up):
            callback(node)

    def _fire_down(self, node: str) -> None:
        for callback in list(self._down):
            callback(node)

    def _fire_gone(self, node: str) -> None:
        for callback in list(self._gone):
            callback(node)

    def _fire_unacked(self, node: str, frames: list[tuple[int, bytes]]) -> None:
        for callback in list(self._unacked):
            callback(node, frames)

    def _handle(self, node: str, kind: int, body: bytes) -> Any:
        results = [callback(node, kind, body) for callback in list(self._receive)]
        awaitables = [r for r in results if inspect.isawaitable(r)]
        if not awaitables:
            return None
        return asyncio.gather(*awaitables)
