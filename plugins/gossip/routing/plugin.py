"""Cluster routing for one broker: the hook implementations, wired to membership and the data links.

One `ClusterRouting` per broker is registered with that broker's plugin manager while the
gossip plugin starts (so its hooks cost nothing outside cluster mode, and several brokers in
one process each have their own). It stands only on public hooks and Broker API calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from hookmq import Message, hookimpl
from hookmq.mqtt.packets import Publish
from hookmq.ratelimit import LogLimiter

from ..membership import EventKind
from .announce import RouteAnnouncer
from .forwarding import Forwarder
from .frames import (
    FORWARD,
    KINDS,
    RETAINED,
    ROUTES_BEGIN,
    ROUTES_CHUNK,
    ROUTES_DELTA,
    ROUTES_END,
    Forward,
    FrameError,
    RoutesBegin,
    RoutesChunk,
    RoutesDelta,
    RoutesEnd,
    decode,
)
from .links import DataLinks
from .remote import RemoteRoutes
from .retained import RetainedSync, VersionedStore
from .shares import ShareChooser

__all__ = ["ClusterRouting"]

log = logging.getLogger("hookmq.plugins.gossip.routing")
_limited = LogLimiter(log)

#: Routes applied to the trie in one go before the loop gets a turn: a node's 100 000-filter
#: snapshot must not stall message delivery here.
ROUTES_PER_STEP = 500


class ClusterRouting:
    """Routes, forwarding, share groups, retained messages and `$SYS/cluster` figures of one node."""

    def __init__(self, broker: Any, cluster: Any, links: DataLinks, name: str,
                 store: VersionedStore | None = None, *, chunk_size: int = 2000, ack_timeout: float = 5.0) -> None:
        self.broker = broker
        self.cluster = cluster
        self.links = links
        self.name = name
        self.remote = RemoteRoutes(broker)
        self.announcer = RouteAnnouncer(links, chunk_size=chunk_size, ack_timeout=ack_timeout)
        self.forwarder = Forwarder(broker, links, self.remote, name)
        self.retained = RetainedSync(broker, links, store, ack_timeout=ack_timeout)
        connected = getattr(broker, "connected", {})
        self.shares = ShareChooser(self.remote.share_weight, lambda client_id: client_id in connected)
        #: Nodes' last membership state, for `$SYS/cluster/nodes/…`.
        self.node_states: dict[str, str] = {}
        self.bad_frames = 0
        self._unsubscribe: list[Callable[[], Any]] = []
        #: Per node, route work not applied yet (steps of at most ROUTES_PER_STEP routes), in frame order.
        self._route_steps: dict[str, deque[Callable[[], Any]]] = {}
        self._route_workers: dict[str, asyncio.Task[None]] = {}

    # ------------------------------------------------------------------ lifespan

    async def start(self) -> None:
        """Listen to the links and membership; take the shared store's retained states in."""
        links = self.links
        for undo in (links.on_up(self._link_up), links.on_down(self._link_down), links.on_receive(self._receive),
                     links.on_unacked(self._unacked), links.on_gone(self._node_gone)):
            if callable(undo):
                self._unsubscribe.append(undo)
        if self.cluster is not None:
            self._unsubscribe.append(self.cluster.on_event(self._member_event))
            for member in self.cluster.members():
                self.node_states[member.name] = member.state.name.lower()
        try:
            await self.retained.load_from_store()
        except Exception as error:  # Redis down at start: the peers' snapshots still bring the set
            log.warning("could not read the cluster's retained states from the store: %s", error)
        for node in links.peers():
            if links.is_up(node):
                self._link_up(node)

    async def stop(self) -> None:
        """Stop streaming snapshots and close what was opened."""
        for undo in self._unsubscribe:
            with contextlib.suppress(Exception):  # an unsubscribe function of an already closed part
                undo()
        self._unsubscribe.clear()
        workers = list(self._route_workers.values())
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await self.forwarder.close()
        await self.announcer.close()
        await self.retained.close()

    # ------------------------------------------------------------------ links and membership

    def _link_up(self, node: str) -> None:
        self.announcer.link_up(node)
        self.retained.link_up(node)

    def _link_down(self, node: str) -> None:
        self.announcer.link_down(node)
        self.retained.link_down(node)

    def _member_event(self, event: Any) -> None:
        # A failed or left node's routes go when the links say it is gone (`_node_gone`): a node
        # declared failed while its link still hears from it is held (docs/cluster.md, "A node
        # declared failed"), its routes kept and its QoS 1/2 messages queued for it.
        name = event.member.name
        self.node_states[name] = {EventKind.DEAD: "dead", EventKind.LEFT: "left",
                                  EventKind.SUSPECT: "suspect"}.get(event.kind, "alive")

    def _node_gone(self, name: str) -> None:
        if name != self.name:
            self.node_gone(name)

    def node_gone(self, name: str) -> int:
        """``name`` is gone (it left, or failed and its link went silent): its routes go; returns how many."""
        self._route_steps.pop(name, None)  # what it said and we have not applied yet goes too
        worker = self._route_workers.pop(name, None)
        if worker is not None:
            worker.cancel()
        removed = self.remote.forget(name)
        self.announcer.link_down(name)
        self.retained.link_down(name)
        log.info("Routes of node %s removed (%d)", name, removed)
        return removed

    def _receive(self, node: str, kind: int, body: bytes) -> Any:
        if kind not in KINDS:
            return None  # not ours: another plugin's kind
        try:
            frame = decode(kind, body)
        except FrameError as error:
            self.bad_frames += 1
            _limited.log("bad frame", logging.WARNING, "unreadable frame of kind %d from node %s: %s", kind, node, error)
            return None
        if kind == FORWARD:
            assert isinstance(frame, Forward)
            return self.forwarder.receive(node, frame)
        if kind == ROUTES_DELTA:
            assert isinstance(frame, RoutesDelta)
            return self._route_work(node, [partial(self.remote.delta, node, part) for part in _parts(frame.routes)])
        if kind == ROUTES_CHUNK:
            assert isinstance(frame, RoutesChunk)
            chunk = partial(self.remote.chunk, node, frame.snapshot_id)
            return self._route_work(node, [partial(chunk, part) for part in _parts(frame.routes)])
        if kind == ROUTES_BEGIN:
            assert isinstance(frame, RoutesBegin)
            return self._route_work(node, [partial(self.remote.begin, node, frame.snapshot_id)])
        if kind == ROUTES_END:
            assert isinstance(frame, RoutesEnd)
            return self._route_work(node, [partial(self.remote.end, node, frame.snapshot_id)])
        if kind == RETAINED:
            assert isinstance(frame, tuple)
            self.retained.received(frame)
        return None

    def _route_work(self, node: str, steps: list[Callable[[], Any]]) -> asyncio.Future[None] | None:
        """Apply a route frame's steps in frame order: at once when it is one step and nothing waits,
        else by a worker that lets the loop run between steps. The frame's ack waits for its last step."""
        queue = self._route_steps.get(node)
        if queue is None and len(steps) == 1:
            steps[0]()
            return None
        if queue is None:
            queue = self._route_steps[node] = deque()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.extend(steps)
        queue.append(partial(_settle, done))
        if node not in self._route_workers:
            self._route_workers[node] = asyncio.get_running_loop().create_task(self._apply_routes(node, queue))
        return done

    async def _apply_routes(self, node: str, queue: deque[Callable[[], Any]]) -> None:
        try:
            while queue:
                queue.popleft()()
                if queue:
                    await asyncio.sleep(0)
        finally:
            if self._route_workers.get(node) is asyncio.current_task():
                del self._route_workers[node]
            if self._route_steps.get(node) is queue and not queue:
                del self._route_steps[node]

    def _unacked(self, node: str, frames: list[tuple[int, bytes]]) -> None:
        self.forwarder.handed_back(node, frames)

    # ------------------------------------------------------------------ hooks

    @hookimpl
    async def on_subscription_added(self, entry: Any, replaced: Any, restored: bool) -> None:
        """Count the filter; a new one is announced, and SUBACK waits until the up peers have the route."""
        if replaced is not None and replaced.topic_filter == entry.topic_filter:
            return
        waiting = self.announcer.added(entry.topic_filter, wait=not restored)
        if waiting is not None:
            await waiting

    @hookimpl
    def on_subscription_removed(self, entry: Any) -> None:
        """Uncount the filter; the last one is announced gone."""
        self.announcer.removed(entry.topic_filter)

    @hookimpl
    def on_forward(self, message: Message, destinations: dict[str, tuple[tuple[str, str], ...]]) -> Any:
        """Queue the message on each destination node's link; QoS 1/2: the future of their acknowledgements."""
        return self.forwarder.forward(message, destinations)

    @hookimpl
    def on_select_share_member(self, message: Message, share_group: str, topic_filter: str,
                               members: list[Any]) -> Any:
        """Weighted turns over local members and other nodes' member counts."""
        return self.shares.choose((share_group, topic_filter), members)

    @hookimpl
    async def on_retain_message(self, packet: Publish, stored: bool, version: int) -> None:
        """Tell the store and the peers; the retained publish completes once they have it."""
        if packet.topic.startswith("$"):
            return
        await self.retained.changed(packet, stored, version)

    @hookimpl
    def on_sys_info_tick(self) -> None:
        """Refresh `$SYS/cluster/…` on this node."""
        try:
            self.publish_figures()
        except Exception:
            log.exception("$SYS/cluster update failed")

    # ------------------------------------------------------------------ figures

    def figures(self) -> dict[str, int | str]:
        """`$SYS/cluster/…` suffix → value: nodes by state, and per peer messages, routes and link state."""
        by_state = {"alive": 0, "suspect": 0, "dead": 0, "left": 0}
        for state in self.node_states.values():
            by_state[state] = by_state.get(state, 0) + 1
        figures: dict[str, int | str] = {f"nodes/{state}": count for state, count in by_state.items()}
        figures["routes/count"] = self.remote.route_count()
        figures["filters/count"] = len(self.announcer.interest)
        peers = set(self.links.peers()) | set(self.forwarder.forwarded) | set(self.forwarder.received)
        for node in sorted(peers):
            figures[f"peers/{node}/messages/forwarded"] = self.forwarder.forwarded[node]
            figures[f"peers/{node}/messages/received"] = self.forwarder.received[node]
            figures[f"peers/{node}/routes"] = self.remote.route_count(node)
            figures[f"peers/{node}/link"] = "up" if self.links.is_up(node) else "down"
        return figures

    def publish_figures(self) -> None:
        """Set every figure as a local `$SYS/cluster/…` retained message."""
        for suffix, value in self.figures().items():
            self.broker.publish_system(f"$SYS/cluster/{suffix}", str(value).encode())

    def routable(self, node: str) -> bool:
        """Whether ``node``'s routes are here and complete (no snapshot of it under way)."""
        return node in self.remote.nodes() and not self.remote.receiving_snapshot(node)


def _parts(routes: Any) -> list[Any]:
    """A frame's routes in steps of at most ROUTES_PER_STEP."""
    if len(routes) <= ROUTES_PER_STEP:
        return [routes]
    return [routes[start:start + ROUTES_PER_STEP] for start in range(0, len(routes), ROUTES_PER_STEP)]


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)


async def wait_routable(routing: ClusterRouting, node: str, timeout: float) -> bool:
    """Wait until ``routing`` holds ``node``'s complete routes (tests and tools)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if routing.routable(node):
            return True
        await asyncio.sleep(0.01)
    return routing.routable(node)
