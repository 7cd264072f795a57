"""The links of one node: a persistent TCP connection to every other hookmq node, as an API.

:class:`Links` follows membership (:class:`~hookmq.plugins.gossip.api.Cluster` events): a
peer that joins gets a :class:`~.peer.PeerLink`; the node whose name sorts first dials, with
bounded, jittered backoff, for as long as membership says the peer is alive or suspect; the
other accepts. A peer that left is dropped at once; a peer declared dead is dropped once its
link has been silent for ``failure_hold`` seconds too (until then it is *held*, and released
when membership says it is alive again: :mod:`.hold`). A dropped peer's ``on_gone``
callbacks run, its unacknowledged reliable frames go to ``on_unacked`` and their futures fail
with :class:`PeerGone`.

Inbound connections arrive on the gossip TCP port: the gossip listener (membership's thread)
hands every connection whose first byte is the link preamble's over through
:meth:`Links.adopt_threadsafe`; from then on it lives in the broker's loop like everything
here.

**Unix sockets.** A node given ``unix_path`` (the workers of one host, ``[server] workers``)
also accepts links on that Unix socket (:meth:`Links.listen_unix`) and advertises it in its
metadata (:data:`UNIX_META_KEY`); a peer whose socket lies in the same directory is dialled
there instead of over TCP. The same protocol and frames run over it, but without a key: the
socket's directory is private to the user (mode 0700), which is what authenticates the peer,
and nothing leaves the host. Everything else (order, acknowledgements, bounds) is the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import random
import socket
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hookmq.ratelimit import LogLimiter

from ..api import Cluster, ClusterEvent
from ..membership import EventKind, NodeState
from ..wire import Keyring
from .connection import LinkConnection
from .errors import LinkError
from .frames import FIRST_USER_KIND, LAST_USER_KIND, Data
from .handshake import LocalIdentity
from .hold import hold_remaining
from .peer import LinkLimits, PeerLink, Received
from .sequencing import Overloaded
from .transport import LinkProtocol

__all__ = ["LINK_META_KEY", "UNIX_META_KEY", "LinkOverloaded", "Links", "PeerGone", "RemoteFailure", "link_endpoint", "unix_endpoint"]

log = logging.getLogger("hookmq.plugins.gossip.link")

LINK_META_KEY = "link"
"""The metadata key (``NodeMetadata.extra``) that says a node speaks links and where:
``"gossip"`` for its gossip TCP port, or a port number of its own."""
SHARED_PORT = "gossip"
UNIX_META_KEY = "unix"
"""The metadata key holding the path of a node's Unix link socket (see the module docstring)."""
BACKOFF_MIN = 0.05
BACKOFF_MAX = 2.0
MAX_HANDSHAKING = 64
"""Inbound connections still in their handshake at once; more are closed at once."""

_ORDINARY = frozenset({"unknown-node", "dead-node", "refused", "wrong-direction", "timeout", "handshake-timeout"})
"""Reasons to close that membership timing or a lost peer explain (logged at INFO; the others at WARNING)."""

UpCallback = Callable[[str], None]
ReceiveCallback = Callable[[str, int, bytes], "Awaitable[None] | None"]
UnackedCallback = Callable[[str, list[tuple[int, bytes]]], None]


class PeerGone(Exception):
    """The peer was declared dead or left (or this node stopped) before it acknowledged the frame."""


class LinkOverloaded(Exception):
    """The peer's outbox was full (its bound of reliable frames or bytes): the frame was not taken."""


class RemoteFailure(Exception):
    """The peer's handler for the frame raised (the peer sent a NACK)."""


Endpoint = tuple[str, int] | str
"""Where a link is dialled: ``(host, port)`` over TCP, or the path of a Unix socket."""


def unix_endpoint(own_path: str | None, extra: Any) -> str | None:
    """A peer's Unix link socket when it lies in the same directory as ours (a sibling worker), else None."""
    value = extra.get(UNIX_META_KEY) if hasattr(extra, "get") else None
    if own_path is None or not isinstance(value, str) or not value:
        return None
    return value if os.path.dirname(value) == os.path.dirname(own_path) else None


def link_endpoint(address: str, gossip_port: int, extra: Any) -> tuple[str, int] | None:
    """Where a member's link listens, from its metadata's ``extra``; None if it speaks no links."""
    value = extra.get(LINK_META_KEY) if hasattr(extra, "get") else None
    if value == SHARED_PORT:
        return address, gossip_port
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65_536:
        return address, value
    return None


@dataclass(eq=False)
class _Peer:
    link: PeerLink
    futures: dict[int, asyncio.Future[None]] = field(default_factory=dict)
    protocol: LinkProtocol | None = None
    dialer: asyncio.Task[None] | None = None
    endpoint: Endpoint | None = None
    #: Senders waiting for room in the outbox: (body size, future told True/False).
    room_waiters: deque[tuple[int, asyncio.Future[bool]]] = field(default_factory=deque)
    #: When membership declared the peer dead while its link still vouched for it (None: not held).
    held_since: float | None = None
    hold_timer: asyncio.TimerHandle | None = None


def _fail(future: asyncio.Future[None], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: a caller that dropped the future is not warned about it


class Links:
    """The inter-node data links of one node (see the package docstring for the API contract)."""

    def __init__(self, cluster: Cluster, *, keyring: Keyring | None, label: str, limits: LinkLimits,
                 clock: Callable[[], float] | None = None, unix_path: str | None = None) -> None:
        self.cluster = cluster
        self.name = cluster.name
        self.limits = limits
        boot = os.urandom(8)
        self.identity = LocalIdentity(self.name, boot, keyring, label, limits.max_frame)
        #: Over the Unix socket: the same stream, no key (the private directory authenticates).
        self.unix_identity = LocalIdentity(self.name, boot, None, label, limits.max_frame)
        self.unix_path = unix_path
        self._unix_server: asyncio.AbstractServer | None = None
        self.totals: Counter[str] = Counter()
        self.limiter = LogLimiter(log, burst=10, per_second=1.0)
        self._loop = asyncio.get_running_loop()
        self._clock = clock or self._loop.time
        self._peers: dict[str, _Peer] = {}
        self._handshaking: set[LinkProtocol] = set()
        self._up: list[UpCallback] = []
        self._down: list[UpCallback] = []
        self._receivers: list[ReceiveCallback] = []
        self._unacked: list[UnackedCallback] = []
        self._gone: list[UpCallback] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self._unsubscribe = cluster.on_event(self._membership)

    # ------------------------------------------------------------------ the API

    def on_up(self, callback: UpCallback) -> Callable[[], None]:
        """``callback(node)`` each time a link to ``node`` is (re)established; returns an unsubscribe function."""
        self._up.append(callback)
        return lambda: self._up.remove(callback)

    def on_down(self, callback: UpCallback) -> Callable[[], None]:
        """``callback(node)`` each time an established link to ``node`` is lost (or the node is gone)."""
        self._down.append(callback)
        return lambda: self._down.remove(callback)

    def on_receive(self, callback: ReceiveCallback) -> Callable[[], None]:
        """``callback(node, kind, body)`` for every data frame, in the order sent.

        For a reliable frame the acknowledgement waits until the awaitable returned (if any)
        completes; if the callback or its awaitable raises, the frame is NACKed instead: the
        sender's future fails with :class:`RemoteFailure`. Callbacks are called one frame after
        the other, without waiting for earlier awaitables.
        """
        self._receivers.append(callback)
        return lambda: self._receivers.remove(callback)

    def on_unacked(self, callback: UnackedCallback) -> Callable[[], None]:
        """``callback(node, [(kind, body), ...])``: ``node`` was declared dead or left with these
        reliable frames unacknowledged (oldest first); called before their futures fail."""
        self._unacked.append(callback)
        return lambda: self._unacked.remove(callback)

    def on_gone(self, callback: UpCallback) -> Callable[[], None]:
        """``callback(node)`` when ``node`` is gone for good (it left, or was declared dead and its
        link stayed silent: :mod:`.hold`), after its link closed and before its unacknowledged
        frames go to ``on_unacked``; returns an unsubscribe function."""
        self._gone.append(callback)
        return lambda: self._gone.remove(callback)

    def held(self, node: str) -> bool:
        """Whether ``node`` is declared dead by membership but held, its link still vouching for it."""
        peer = self._peers.get(node)
        return peer is not None and peer.held_since is not None

    def send(self, node: str, kind: int, body: bytes, *, reliable: bool) -> asyncio.Future[None] | None:
        """Send a frame to ``node``.

        reliable: a future resolved when the peer acknowledged it (after its handler finished);
        failed with :class:`PeerGone` (the node is unknown, dead or left; frames that were held
        went to ``on_unacked`` first), :class:`LinkOverloaded` or :class:`RemoteFailure`.
        unreliable: sent once if the link is up and the send buffer has room, else dropped and
        counted; returns None. :raises ValueError: a kind outside 1-239, or a body too large.
        """
        if not FIRST_USER_KIND <= kind <= LAST_USER_KIND:
            raise ValueError(f"a link frame kind is {FIRST_USER_KIND}-{LAST_USER_KIND}, not {kind}")
        peer = self._peers.get(node)
        if peer is not None and peer.protocol is not None:
            peer.link.set_transport_buffered(peer.protocol.buffered())
        if not reliable:
            if peer is None:
                self.totals["unreliable_dropped_no_peer"] += 1
            elif peer.link.send_unreliable(kind, body):
                if peer.protocol is not None:
                    peer.protocol.schedule_flush()
            else:
                self._dropped(peer)
            return None
        future: asyncio.Future[None] = self._loop.create_future()
        if peer is None:
            self.totals["reliable_refused_no_peer"] += 1
            _fail(future, PeerGone(f"{node!r} is no live link peer"))
            return future
        try:
            seq = peer.link.send_reliable(kind, body)
        except Overloaded as error:
            peer.link.stats["overloaded"] += 1
            _fail(future, LinkOverloaded(f"link to {node}: {error}"))
            return future
        peer.futures[seq] = future
        if peer.protocol is not None:
            peer.protocol.schedule_flush()
        return future

    def has_room(self, node: str, size: int = 0) -> bool:
        """Whether a reliable frame of ``size`` body bytes to ``node`` would be taken now.

        False for a node that is no link peer. This is the back-pressure signal: when it is
        False, :meth:`send` would fail with :class:`LinkOverloaded`; wait with
        :meth:`wait_for_room` instead (and so hold the publisher's PUBACK, which its Receive
        Maximum turns into push-back).
        """
        peer = self._peers.get(node)
        return peer is not None and peer.link.outbox.fits(size)

    def wait_for_room(self, node: str, size: int = 0) -> asyncio.Future[bool]:
        """A future told True once ``node``'s outbox has room again (at once if it has now), False if
        ``node`` is or becomes no link peer (dead, left, unknown, or this node stops).

        Waiters are woken in the order they came, when acknowledgements bring the outbox down
        to half its bounds, as many as fit then. Another sender may still take the room
        first: check :meth:`has_room` again (or handle :class:`LinkOverloaded`).
        """
        future: asyncio.Future[bool] = self._loop.create_future()
        peer = self._peers.get(node)
        if peer is None or self._closed:
            future.set_result(False)
        elif peer.link.outbox.fits(size) and not peer.room_waiters:
            future.set_result(True)
        else:
            peer.room_waiters.append((size, future))
            peer.link.stats["room_waits"] += 1
            if peer.link.outbox.low:  # no acknowledgement may come to wake it: the outbox is near empty
                self._wake_room_waiters(peer)
        return future

    def is_up(self, node: str) -> bool:
        """Whether an established connection to ``node`` exists now."""
        peer = self._peers.get(node)
        return peer is not None and peer.link.up

    def peers(self) -> list[str]:
        """Every node we keep a link for (up or reconnecting)."""
        return sorted(self._peers)

    def stats(self, node: str) -> dict[str, object]:
        """Figures for one peer: up, queue depth, frames and bytes each way, rtt, drops, ... (KeyError if unknown)."""
        peer = self._peers[node]
        return {**peer.link.snapshot(), "dialer": self._dials(node), "room_waiting": len(peer.room_waiters),
                "endpoint": _describe(peer.endpoint)}

    def all_stats(self) -> dict[str, dict[str, object]]:
        """:meth:`stats` of every peer, by node name (the operator's view; node-wide counters are :attr:`totals`)."""
        return {name: self.stats(name) for name in sorted(self._peers)}

    def max_body(self, node: str | None = None) -> int:
        """The largest body a frame to ``node`` (or to any node with our limits) can carry."""
        peer = self._peers.get(node) if node is not None else None
        limit = min(peer.link.peer_max_frame, self.limits.max_frame) if peer is not None else self.limits.max_frame
        return limit - 10

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Take in the members membership already knows."""
        for member in self.cluster.members():
            if member.name != self.name:
                self._member_alive(member.name, member.address, member.port, member.metadata)

    async def close(self, drain_timeout: float = 1.0) -> None:
        """Wait up to ``drain_timeout`` for outstanding reliable frames, then close every link."""
        if self._closed:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout):
                while any(peer.link.outbox and peer.link.up for peer in self._peers.values()):
                    await asyncio.sleep(0.02)
        self._closed = True
        self._unsubscribe()
        if self._unix_server is not None:
            self._unix_server.close()
            with contextlib.suppress(OSError):
                os.unlink(self.unix_path or "")
        for name in list(self._peers):
            self._drop(name, "this node is stopping", hand_back=False)
        for protocol in list(self._handshaking):
            protocol.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ------------------------------------------------------------------ membership

    def _dials(self, peer: str) -> bool:
        """The rule that leaves exactly one connection per pair: the name that sorts first dials."""
        return self.name < peer

    def _membership(self, event: ClusterEvent) -> None:
        member = event.member
        if member.name == self.name or self._closed:
            return
        if event.kind == EventKind.LEFT:
            self._drop(member.name, "left the cluster")
        elif event.kind == EventKind.DEAD:
            self._declared_dead(member.name)
        elif event.kind in (EventKind.JOIN, EventKind.UPDATE):
            self._release(member.name)
            self._member_alive(member.name, member.address, member.port, member.metadata)

    def _declared_dead(self, name: str) -> None:
        """Drop the peer, or hold it while its link still hears from it (:mod:`.hold`)."""
        peer = self._peers.get(name)
        if peer is None:
            return
        if peer.held_since is None:
            peer.held_since = self._clock()
            heard = peer.link.last_heard
            if hold_remaining(peer.held_since, heard, self.limits.failure_hold) > 0:
                assert heard is not None
                self.totals["holds"] += 1
                log.info("Link to %s held: declared dead, but heard from %.1f s ago (dropped after %g s of silence "
                         "unless it is alive again)", name, peer.held_since - heard, self.limits.failure_hold)
        self._check_hold(name, peer)

    def _check_hold(self, name: str, peer: _Peer) -> None:
        if self._peers.get(name) is not peer or peer.held_since is None:
            return
        peer.hold_timer = None
        now = self._clock()
        remaining = hold_remaining(now, peer.link.last_heard, self.limits.failure_hold)
        if remaining > 0:
            peer.hold_timer = self._loop.call_later(remaining + 0.01, self._check_hold, name, peer)
            return
        if now > peer.held_since:
            self.totals["holds_confirmed"] += 1
        self._drop(name, "declared dead")

    def _release(self, name: str) -> None:
        """Membership says a held peer is alive again: keep everything as it is."""
        peer = self._peers.get(name)
        if peer is None or peer.held_since is None:
            return
        if peer.hold_timer is not None:
            peer.hold_timer.cancel()
            peer.hold_timer = None
        log.info("Link to %s kept: alive again %.1f s after it was declared dead", name, self._clock() - peer.held_since)
        peer.held_since = None
        self.totals["holds_released"] += 1

    def _member_alive(self, name: str, address: str, port: int, metadata: Any) -> None:
        endpoint: Endpoint | None = None
        if metadata is not None:
            endpoint = unix_endpoint(self.unix_path, metadata.extra) or link_endpoint(address, port, metadata.extra)
        if endpoint is None:
            return  # a memberlist node, or a hookmq node without links
        peer = self._ensure_peer(name)
        peer.endpoint = endpoint
        if self._dials(name) and (peer.dialer is None or peer.dialer.done()):
            peer.dialer = self._spawn(self._dial(name, peer))

    def _ensure_peer(self, name: str) -> _Peer:
        peer = self._peers.get(name)
        if peer is None:
            peer = self._peers[name] = _Peer(PeerLink(name, self.limits, rtt_clock=time.perf_counter))
        return peer

    def _admit(self, name: str) -> str | None:
        """Why a node may not open a link to us (None: it may)."""
        member = self.cluster.member(name)
        held = self.held(name)  # declared dead, but its link vouched for it: it may reconnect
        if member is None and not held:
            return "unknown-node"
        if member is not None and member.state not in (NodeState.ALIVE, NodeState.SUSPECT) and not held:
            return "dead-node"
        if not name < self.name:
            return "wrong-direction"
        return None

    def _drop(self, name: str, why: str, *, hand_back: bool = True) -> None:
        """``name`` is gone for good: close its link, hand back and fail what it never acknowledged."""
        peer = self._peers.pop(name, None)
        if peer is None:
            return
        if peer.dialer is not None:
            peer.dialer.cancel()
        if peer.hold_timer is not None:
            peer.hold_timer.cancel()
        was_up = peer.link.up
        protocol, peer.protocol = peer.protocol, None
        if protocol is not None:
            protocol.close()
        peer.link.detach()
        if was_up:
            log.info("Link down: %s (%s)", name, why)
            self._notify(self._down, name)
        if hand_back:
            self._notify(self._gone, name)
        pending = peer.link.drain()
        if pending and hand_back:
            frames = [(frame.kind, frame.body) for frame in pending]
            for callback in list(self._unacked):
                try:
                    callback(name, frames)
                except Exception:
                    log.exception("link on_unacked callback %r failed", callback)
        error = PeerGone(f"{name} {why}")
        for future in peer.futures.values():
            _fail(future, error)
        peer.futures.clear()
        while peer.room_waiters:
            _, waiter = peer.room_waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)

    # ------------------------------------------------------------------ dialing

    async def _dial(self, name: str, peer: _Peer) -> None:
        """Keep one connection to ``name`` up while it is a peer, backing off between failures."""
        delay = BACKOFF_MIN
        while not self._closed and self._peers.get(name) is peer:
            endpoint = peer.endpoint
            established = False
            if endpoint is not None and peer.protocol is None:
                protocol = await self._connect(name, peer, endpoint)
                if protocol is not None:
                    await protocol.closed
                    established = protocol.connection.established is not None
            delay = BACKOFF_MIN if established else min(delay * 2, BACKOFF_MAX)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))

    async def _connect(self, name: str, peer: _Peer, endpoint: Endpoint) -> LinkProtocol | None:
        identity = self.unix_identity if isinstance(endpoint, str) else self.identity
        connection = LinkConnection("dialer", identity, base=lambda _: peer.link.outbox.base, expected_peer=name,
                                    stream=lambda _: peer.link.stream)

        def factory() -> LinkProtocol:
            protocol = LinkProtocol(self, connection, name, send_buffer=self.limits.send_buffer,
                                    handshake_timeout=self.limits.handshake_timeout)
            peer.link.attach(connection, self._clock())
            peer.protocol = protocol
            return protocol

        try:
            async with asyncio.timeout(self.limits.handshake_timeout):
                if isinstance(endpoint, str):
                    _, protocol = await self._loop.create_unix_connection(factory, endpoint)
                else:
                    _, protocol = await self._loop.create_connection(factory, *endpoint)
        except (OSError, TimeoutError) as error:
            if peer.link.connection is connection:
                peer.link.detach()
                peer.protocol = None
            self.totals["dial_failures"] += 1
            self.limiter.log(f"dial {name}", logging.DEBUG, "link: cannot reach %s at %s: %r", name, _describe(endpoint), error)
            return None
        self.totals["dialed"] += 1
        return protocol

    # ------------------------------------------------------------------ accepting

    def adopt_threadsafe(self, sock: socket.socket, first: bytes) -> None:
        """Take over an inbound connection from any thread (the gossip listener's tap)."""
        try:
            self._loop.call_soon_threadsafe(self._adopt, sock, first)
        except RuntimeError:  # the broker's loop is closed
            sock.close()

    def _adopt(self, sock: socket.socket, first: bytes) -> None:
        if self._closed or len(self._handshaking) >= MAX_HANDSHAKING:
            self.totals["refused_busy"] += 1
            sock.close()
            return
        self._spawn(self._accept(sock, first))

    async def listen_unix(self) -> None:
        """Accept links on :attr:`unix_path` too (its directory must be private: these links have no key)."""
        path = self.unix_path
        if path is None or self._unix_server is not None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # left by a killed process of the same worker
        self._unix_server = await self._loop.create_unix_server(self._unix_protocol, path)
        os.chmod(path, 0o600)

    def _unix_protocol(self) -> LinkProtocol:
        connection = LinkConnection("acceptor", self.unix_identity,
                                    base=lambda name: self._ensure_peer(name).link.outbox.base,
                                    admit=self._admit, stream=lambda name: self._ensure_peer(name).link.stream)
        refuse = self._closed or len(self._handshaking) >= MAX_HANDSHAKING
        # A refused connection gets no time for its handshake: it is closed once it is made.
        protocol = LinkProtocol(self, connection, None, send_buffer=self.limits.send_buffer,
                                handshake_timeout=0.0 if refuse else self.limits.handshake_timeout)
        if refuse:
            self.totals["refused_busy"] += 1
            return protocol
        self._handshaking.add(protocol)
        self.totals["accepted"] += 1
        protocol.closed.add_done_callback(lambda _: self._handshaking.discard(protocol))
        return protocol

    async def _accept(self, sock: socket.socket, first: bytes) -> None:
        connection = LinkConnection("acceptor", self.identity, base=lambda name: self._ensure_peer(name).link.outbox.base,
                                    admit=self._admit, stream=lambda name: self._ensure_peer(name).link.stream)
        protocol = LinkProtocol(self, connection, None, first, send_buffer=self.limits.send_buffer,
                                handshake_timeout=self.limits.handshake_timeout)
        self._handshaking.add(protocol)
        try:
            await self._loop.connect_accepted_socket(lambda: protocol, sock=sock)
        except OSError:
            self._handshaking.discard(protocol)
            sock.close()
            return
        self.totals["accepted"] += 1
        await protocol.closed
        self._handshaking.discard(protocol)

    # ------------------------------------------------------------------ LinkOwner: protocol events

    def _current(self, protocol: LinkProtocol) -> _Peer | None:
        peer = self._peers.get(protocol.peer) if protocol.peer is not None else None
        return peer if peer is not None and peer.protocol is protocol else None

    def link_data(self, protocol: LinkProtocol, data: bytes) -> None:
        """Bytes arrived on a connection."""
        now = self._clock()
        try:
            peer = self._current(protocol)
            if peer is not None:
                received = peer.link.receive(data, now)
            elif protocol.peer is None:  # an inbound connection in its handshake
                events = protocol.connection.receive(data)
                protocol.schedule_flush()
                if protocol.connection.established is None:
                    return
                peer = self._take_inbound(protocol, now)
                received = peer.link.handle(events, now)
            else:
                return  # a connection that was replaced or dropped, closing
        except LinkError as error:
            protocol.fail(error)
            return
        self._received(peer, protocol, received)

    def _take_inbound(self, protocol: LinkProtocol, now: float) -> _Peer:
        established = protocol.connection.established
        assert established is not None
        self._handshaking.discard(protocol)
        peer = self._ensure_peer(established.peer)
        old, peer.protocol = peer.protocol, None
        if old is not None:  # the dialer knows best: its new connection replaces the old one
            old.close()
            self._lost_current(peer, "replaced by a new connection")
        protocol.peer = established.peer
        peer.link.attach(protocol.connection, now)
        peer.protocol = protocol
        return peer

    def _received(self, peer: _Peer, protocol: LinkProtocol, received: Received) -> None:
        name = peer.link.peer
        if received.established is not None:
            log.info("Link up: %s (%s)", name, "encrypted" if received.established.send_key else "not encrypted")
            protocol.established()
            self._notify(self._up, name)
        for frame in received.frames:
            self._deliver(peer, frame)
        for seq in received.failed:  # NACKs come before the ACK that covers them
            future = peer.futures.pop(seq, None)
            if future is not None:
                _fail(future, RemoteFailure(f"{name} could not handle frame {seq}"))
        for seq in received.acked:
            future = peer.futures.pop(seq, None)
            if future is not None and not future.done():
                future.set_result(None)
        if received.acked and peer.room_waiters and peer.link.outbox.low:
            self._wake_room_waiters(peer)
        if peer.link.inbox.in_progress >= self.limits.receive_window:
            protocol.pause_reading()
        protocol.schedule_flush()

    def _deliver(self, peer: _Peer, frame: Data) -> None:
        name, boot = peer.link.peer, peer.link.peer_boot
        waits: list[Awaitable[None]] = []
        ok = True
        for callback in self._receivers:
            try:
                result = callback(name, frame.kind, frame.body)
            except Exception:
                ok = False
                self.totals["handler_errors"] += 1
                self.limiter.log("handler", logging.ERROR, "link handler failed on a frame from %s", name)
                log.debug("link handler failure", exc_info=True)
                continue
            if result is not None and inspect.isawaitable(result):
                waits.append(result)
        seq = frame.seq
        if not waits:
            if seq is not None:
                peer.link.finished(boot, seq, ok)
            return
        waiting = asyncio.ensure_future(waits[0]) if len(waits) == 1 else asyncio.gather(*waits)
        waiting.add_done_callback(lambda done: self._handled(peer, boot, seq, ok, done))

    def _handled(self, peer: _Peer, boot: bytes, seq: int | None, ok: bool, done: asyncio.Future[Any]) -> None:
        if done.cancelled() or done.exception() is not None:
            ok = False
            self.totals["handler_errors"] += 1
            self.limiter.log("handler", logging.ERROR, "link handler failed on a frame from %s: %r", peer.link.peer,
                             None if done.cancelled() else done.exception())
        if seq is None or self._peers.get(peer.link.peer) is not peer:
            return
        peer.link.finished(boot, seq, ok)
        protocol = peer.protocol
        if protocol is not None:
            if peer.link.inbox.in_progress < self.limits.receive_window // 2:
                protocol.resume_reading()
            protocol.schedule_flush()

    def link_output(self, protocol: LinkProtocol) -> list[bytes]:
        """What a connection should write now."""
        peer = self._current(protocol)
        if peer is None:
            return protocol.connection.take_output()
        link = peer.link
        link.set_transport_buffered(protocol.buffered())
        out = link.take_output()
        if link.outbox.unwritten and link.up and not protocol.paused_writing:
            protocol.schedule_flush()
        return out

    def link_tick(self, protocol: LinkProtocol) -> float | None:
        """Keep-alive: the next time to tick. :raises LinkError: the peer went silent."""
        peer = self._current(protocol)
        return peer.link.tick(self._clock()) if peer is not None else None

    def link_lost(self, protocol: LinkProtocol, error: LinkError | None) -> None:
        """A connection closed (``error`` says why, when we closed it for one)."""
        self._handshaking.discard(protocol)
        if error is not None:
            self.totals[f"closed_{error.reason}"] += 1
            level = logging.INFO if error.reason in _ORDINARY else logging.WARNING
            self.limiter.log(f"closed {error.reason}", level, "link %s closed: %s", protocol.peer or "(handshake)", error)
        elif protocol.connection.established is None:
            self.totals["handshake_incomplete"] += 1  # the other side gave up (or was no link at all)
        peer = self._current(protocol)
        if peer is None:
            return
        peer.protocol = None
        self._lost_current(peer, error.reason if error is not None else "connection closed")

    def _lost_current(self, peer: _Peer, why: str) -> None:
        was_up = peer.link.up
        peer.link.detach()
        if was_up:
            self.limiter.log(f"down {peer.link.peer}", logging.INFO, "Link down: %s (%s)", peer.link.peer, why)
            self._notify(self._down, peer.link.peer)

    def _wake_room_waiters(self, peer: _Peer) -> None:
        """Tell waiting senders, oldest first, that there is room, as many as the room holds."""
        outbox = peer.link.outbox
        frames, held = len(outbox), outbox.held_bytes
        waiters = peer.room_waiters
        while waiters:
            size, waiter = waiters[0]
            if waiter.done():  # cancelled by its sender
                waiters.popleft()
                continue
            if frames >= outbox.max_frames or (held + size > outbox.max_bytes and frames):
                break
            waiters.popleft()
            waiter.set_result(True)
            frames += 1
            held += size

    # ------------------------------------------------------------------ helpers

    def _dropped(self, peer: _Peer) -> None:
        """An unreliable frame was dropped: say so now and then (counted per frame, logged at most once a second)."""
        link = peer.link
        why = "no connection" if not link.up else "reliable frames waiting" if link.outbox.unwritten else "send buffer full"
        self.limiter.log(f"dropped {link.peer}", logging.WARNING,
                         "link to %s: dropping unreliable (QoS 0) frames, %s (%d dropped so far)",
                         link.peer, why, link.stats["unreliable_dropped"])

    def _notify(self, callbacks: list[UpCallback], name: str) -> None:
        for callback in list(callbacks):
            try:
                callback(name)
            except Exception:
                log.exception("link callback %r failed", callback)

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def _describe(endpoint: Endpoint | None) -> str | None:
    """An endpoint as the operator reads it: ``host:port`` or ``unix:PATH``."""
    if endpoint is None:
        return None
    if isinstance(endpoint, str):
        return f"unix:{endpoint}"
    return f"{endpoint[0]}:{endpoint[1]}"
