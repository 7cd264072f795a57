"""A deterministic simulation of many membership state machines: fake clock, fake network.

Every packet and stream really goes through the wire codecs (sealed by the sender, opened
by the receiver); only the sockets and the clock are fake. The network drops packets at a
rate (per direction if wanted), delays them, and can be partitioned; TCP streams succeed
across a lossy link (later, as retransmission would make them) but fail across a partition
(at their deadline) or to a killed node (at once, as a refused connection). Runs are
reproducible from their seed. Used by the tests and by ``hookmq bench gossip``
(:mod:`hookmq.plugins.gossip.bench.simulated`)::

    sim = Simulation(5, profile("local"), seed=1, loss=0.05)
    sim.start()
    sim.run_for(10)
    sim.kill("n4")
    sim.run_for(30)
    sim.first_event("dead", "n4")   # (time, observer) of the first failure report
"""

from __future__ import annotations

import functools
import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..wire import StreamDecoder, WireCodec, WireError
from .config import MembershipConfig
from .machine import Membership
from .outputs import (
    Address,
    LeaveDone,
    MemberEvent,
    Notice,
    OpenStream,
    RemoteState,
    SendPacket,
    StreamResult,
    UserMessage,
)

__all__ = ["SimEvent", "SimNode", "Simulation"]

BASE_PORT = 7946
TCP_RETRANSMIT = 0.2
"""The extra delay of a TCP segment lost once (Linux's minimum retransmission timeout)."""
TCP_RETRIES = 8


@dataclass(frozen=True, slots=True)
class SimEvent:
    """A member event as one node reported it, at simulated time ``time``."""

    time: float
    observer: str
    kind: str
    subject: str
    #: The subject's incarnation in the event (one false accusation = one incarnation).
    incarnation: int = 0


@dataclass(slots=True)
class SimNode:
    """One simulated process: its state machine and what it reported."""

    name: str
    address: Address
    machine: Membership
    codec: WireCodec
    running: bool = True
    wake_at: float | None = None
    messages: list[tuple[float, bytes, bool]] = field(default_factory=list)
    remote_states: list[bytes] = field(default_factory=list)
    stream_results: list[StreamResult] = field(default_factory=list)
    notices: list[tuple[float, Notice]] = field(default_factory=list)
    left_at: float | None = None

    def alive_view(self) -> set[str]:
        """Names this node considers alive or suspect (itself included)."""
        return {node.name for node in self.machine.nodes if not node.dead_or_left()}


class Simulation:
    """``n`` nodes named ``n0 … n{n-1}`` on 127.0.0.1 ports 7946…, all joining ``n0`` at start."""

    def __init__(
        self,
        n: int,
        config: MembershipConfig,
        *,
        seed: int = 0,
        loss: float = 0.0,
        delay: float = 0.0005,
        jitter: float = 0.0002,
        codec: Callable[[str], WireCodec] | None = None,
        keep_notices: bool = False,
    ) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self.loss = loss
        self.delay = delay
        self.jitter = jitter
        self.now = 0.0
        self.events: list[SimEvent] = []
        self.keep_notices = keep_notices
        self.packets_sent = 0
        self.packets_dropped = 0
        self.streams_opened = 0
        #: Called with (sender, output) for every packet and stream a node sends, before the network.
        self.taps: list[Callable[[SimNode, SendPacket | OpenStream], None]] = []
        self._codec = codec or (lambda _name: WireCodec(compression=config.compression))
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._link_loss: dict[tuple[str, str], float] = {}
        self._groups: dict[str, int] | None = None
        self.nodes: dict[str, SimNode] = {}
        self._by_address: dict[Address, SimNode] = {}
        for i in range(n):
            self.add_node(f"n{i}")

    # ------------------------------------------------------------------ building and driving

    def add_node(self, name: str, seeds: Iterable[Address] = ()) -> SimNode:
        """Create a node (not started); its port is the next free one."""
        address = ("127.0.0.1", BASE_PORT + len(self.nodes))
        codec = self._codec(name)
        machine = Membership(
            self.config, name=name, address=address[0], port=address[1], codec=codec,
            seeds=seeds or ([("127.0.0.1", BASE_PORT)] if self.nodes else []),
            rng=random.Random(self.rng.getrandbits(64)),
        )
        node = SimNode(name, address, machine, codec)
        self.nodes[name] = node
        self._by_address[address] = node
        return node

    def start(self, stagger: float = 0.01) -> None:
        """Start every node; each but the first joins the first, ``stagger`` seconds apart."""
        names = list(self.nodes)
        for index, name in enumerate(names):
            self.at(self.now + index * stagger, functools.partial(self._start_node, name))

    def _start_node(self, name: str) -> None:
        node = self.nodes[name]
        node.machine.start(self.now)
        if node.address[1] != BASE_PORT:
            node.machine.join([("127.0.0.1", BASE_PORT)], self.now)
        self._service(node)

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` at simulated time ``when``."""
        self._seq += 1
        heapq.heappush(self._queue, (when, self._seq, action))

    def run_until(self, until: float) -> None:
        """Advance the clock to ``until``, running everything due on the way."""
        queue = self._queue
        while queue and queue[0][0] <= until:
            when, _, action = heapq.heappop(queue)
            self.now = max(self.now, when)
            action()
        self.now = max(self.now, until)

    def run_for(self, seconds: float) -> None:
        """Advance the clock by ``seconds``."""
        self.run_until(self.now + seconds)

    def run_until_converged(self, timeout: float, step: float = 0.25) -> bool:
        """Run until every running node sees exactly the running nodes; False at ``timeout``."""
        end = self.now + timeout
        while self.now < end:
            if self.converged():
                return True
            self.run_for(step)
        return self.converged()

    # ------------------------------------------------------------------ faults

    def kill(self, name: str) -> None:
        """Crash a node (kill -9): it stops at once, its sockets are gone."""
        self.nodes[name].running = False

    def leave(self, name: str) -> None:
        """Gracefully stop a node: it broadcasts its leave and stops once that spread."""
        node = self.nodes[name]
        node.machine.leave(self.now)
        self._service(node)

    def partition(self, *groups: Iterable[str]) -> None:
        """Split the network: nodes in different groups (or in none) cannot reach each other."""
        self._groups = {}
        for index, group in enumerate(groups):
            for name in group:
                self._groups[name] = index

    def heal(self) -> None:
        """End the partition."""
        self._groups = None

    def set_link_loss(self, source: str, target: str, loss: float) -> None:
        """Packet loss from ``source`` to ``target`` only (one-way loss), overriding the default."""
        self._link_loss[(source, target)] = loss

    # ------------------------------------------------------------------ observations

    def running(self) -> list[SimNode]:
        """Nodes still running."""
        return [node for node in self.nodes.values() if node.running]

    def converged(self) -> bool:
        """Every running node sees exactly the set of running nodes as members."""
        expected = {node.name for node in self.running()}
        return all(node.alive_view() == expected for node in self.running())

    def events_about(self, subject: str, kind: str, since: float = 0.0) -> list[SimEvent]:
        """Events of ``kind`` about ``subject`` from ``since`` on."""
        return [e for e in self.events if e.subject == subject and e.kind == kind and e.time >= since]

    def first_event(self, kind: str, subject: str, since: float = 0.0) -> SimEvent | None:
        """The first event of ``kind`` about ``subject``, by any observer."""
        found = self.events_about(subject, kind, since)
        return found[0] if found else None

    # ------------------------------------------------------------------ the fake network

    def _reachable(self, source: SimNode, target: SimNode) -> bool:
        if self._groups is None:
            return True
        group = self._groups.get(source.name, -1)
        return group >= 0 and group == self._groups.get(target.name, -2)

    def _lost(self, source: SimNode, target: SimNode) -> bool:
        loss = self._link_loss.get((source.name, target.name), self.loss)
        return loss > 0 and self.rng.random() < loss

    def _latency(self) -> float:
        return self.delay + (self.rng.random() * self.jitter if self.jitter else 0.0)

    def _service(self, node: SimNode) -> None:
        """Route what a node produced, and schedule its next wake-up."""
        for output in node.machine.take_outputs():
            if isinstance(output, SendPacket):
                self._send_packet(node, output)
            elif isinstance(output, OpenStream):
                self._open_stream(node, output)
            elif isinstance(output, MemberEvent):
                member = output.member
                self.events.append(SimEvent(self.now, node.name, output.kind.value, member.name, member.incarnation))
            elif isinstance(output, UserMessage):
                node.messages.append((self.now, output.payload, output.reliable))
            elif isinstance(output, RemoteState):
                node.remote_states.append(output.payload)
            elif isinstance(output, StreamResult):
                node.stream_results.append(output)
            elif isinstance(output, LeaveDone):
                node.left_at = self.now
                node.running = False
            elif isinstance(output, Notice) and self.keep_notices:
                node.notices.append((self.now, output))
        deadline = node.machine.next_deadline()
        if deadline is not None and node.running and (node.wake_at is None or deadline < node.wake_at):
            node.wake_at = deadline
            self.at(deadline, lambda: self._wake(node, deadline))

    def _wake(self, node: SimNode, when: float) -> None:
        if node.wake_at != when or not node.running:
            return
        node.wake_at = None
        node.machine.handle_timers(self.now)
        self._service(node)

    def _send_packet(self, source: SimNode, packet: SendPacket) -> None:
        self.packets_sent += 1
        for tap in self.taps:
            tap(source, packet)
        target = self._by_address.get(packet.to)
        if target is None or not self._reachable(source, target) or self._lost(source, target):
            self.packets_dropped += 1
            return

        def deliver() -> None:
            if target.running:
                target.machine.receive_packet(packet.data, source.address, self.now)
                self._service(target)

        self.at(self.now + self._latency(), deliver)

    def _stream_delay(self, source: SimNode, target: SimNode) -> float:
        """One direction of a TCP exchange: each lost segment costs a doubling retransmission timeout."""
        delay = self._latency()
        backoff = TCP_RETRANSMIT
        for _ in range(TCP_RETRIES):
            if not self._lost(source, target):
                return delay
            delay += backoff
            backoff *= 2
        return float("inf")

    def _open_stream(self, source: SimNode, stream: OpenStream) -> None:
        self.streams_opened += 1
        for tap in self.taps:
            tap(source, stream)
        target = self._by_address.get(stream.to)
        if target is None or not target.running:
            self.at(self.now + self._latency(), lambda: self._stream_failed(source, stream, "connection refused"))
            return
        if not self._reachable(source, target):
            self.at(stream.deadline, lambda: self._stream_failed(source, stream, "i/o timeout"))
            return
        arrive = self.now + self._stream_delay(source, target)
        if arrive > stream.deadline:
            self.at(stream.deadline, lambda: self._stream_failed(source, stream, "i/o timeout"))
            return
        self.at(arrive, lambda: self._stream_arrives(source, target, stream))

    def _stream_arrives(self, source: SimNode, target: SimNode, stream: OpenStream) -> None:
        if not target.running:
            self._stream_failed(source, stream, "connection reset")
            return
        try:
            message = StreamDecoder(target.codec, labelled=True).feed(stream.data)
        except WireError as error:
            self._stream_failed(source, stream, f"peer refused the stream: {error}")
            return
        reply = target.machine.handle_stream(message, source.address, self.now) if message is not None else None
        self._service(target)
        if not stream.expect_reply:
            self._stream_answered(source, stream, None, "")
            return
        if reply is None:
            self.at(self.now + self._latency(), lambda: self._stream_failed(source, stream, "EOF"))
            return
        back = self.now + self._stream_delay(target, source)
        if back > stream.deadline:
            self.at(stream.deadline, lambda: self._stream_failed(source, stream, "i/o timeout"))
            return
        self.at(back, lambda: self._stream_reply(source, stream, reply))

    def _stream_reply(self, source: SimNode, stream: OpenStream, reply: bytes) -> None:
        try:
            message = StreamDecoder(source.codec, labelled=False).feed(reply)
        except WireError as error:
            self._stream_answered(source, stream, None, str(error))
            return
        self._stream_answered(source, stream, message, "" if message is not None else "truncated answer")

    def _stream_failed(self, source: SimNode, stream: OpenStream, error: str) -> None:
        self._stream_answered(source, stream, None, error)

    def _stream_answered(self, source: SimNode, stream: OpenStream, message: object, error: str) -> None:
        if source.running:
            source.machine.stream_done(stream.token, message, error, self.now)  # type: ignore[arg-type]
            self._service(source)
