"""The membership state machine: SWIM with Lifeguard, as memberlist runs it, sans-I/O.

:class:`Membership` never touches a socket or a clock. Its driver feeds it datagrams
(:meth:`receive_packet`), accepted streams (:meth:`handle_stream`), the outcome of streams it
asked for (:meth:`stream_done`) and the time (:meth:`handle_timers` whenever
:meth:`next_deadline` has passed); after each call, :meth:`take_outputs` says what to send, which
streams to open, and what happened (member events, user messages, log notices).

The rules are memberlist's (state.go, net.go): round-robin probes (:mod:`.probing`),
incarnation numbers and refutation, suspicion with Lifeguard confirmations, piggy-backed
broadcasts in a transmit-limited queue, push/pull anti-entropy scaled by cluster size,
graceful leave as a dead message from the node itself, and dead nodes reaped after the
gossip-to-the-dead time (push/pull and joins in :mod:`.exchange`). hookmq adds re-joining
after partitions (:mod:`.rejoin`).
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ..wire import (
    Ack,
    Alive,
    Dead,
    IndirectPing,
    Nack,
    Ping,
    PushPull,
    StreamMessage,
    Suspect,
    UserData,
    UserStream,
    WireCodec,
    WireError,
    encode_message,
    encode_user_stream,
    make_compounds,
    seal_stream,
    vsn_bytes,
)
from ..wire.packet import COMPOUND_HEADER_OVERHEAD, COMPOUND_PART_OVERHEAD
from .broadcasts import BroadcastQueue
from .config import MembershipConfig
from .exchange import StateExchange
from .formulas import retransmit_limit
from .health import Awareness
from .nodes import Member, NodeRecord, NodeState, format_ip
from .outputs import (
    Address,
    EventKind,
    LeaveDone,
    MemberEvent,
    Notice,
    OpenStream,
    Output,
    SendPacket,
    StreamPurpose,
    StreamResult,
    UserMessage,
)
from .probing import Prober
from .rejoin import RejoinMemory
from .suspicions import Suspicions
from .timers import Timer, TimerQueue

__all__ = ["META_MAX_SIZE", "Membership"]

META_MAX_SIZE = 512
"""memberlist's ``MetaMaxSize``."""
MAX_UDP_PAYLOAD = 65_000
USER_BROADCAST_QUEUE = 4096

StreamCallback = Callable[[StreamMessage | None, str], None]


@dataclass(slots=True)
class _AckHandler:
    on_ack: Callable[[float], None]
    on_nack: Callable[[], None] | None
    timer: Timer


@dataclass(slots=True)
class _PendingStream:
    purpose: StreamPurpose
    to: Address
    callback: StreamCallback | None


class Membership:
    """One node's view of the cluster and the protocol that keeps it current.

    :param name: this node's unique name.
    :param address: the IP address other nodes reach us at (advertised), and ``port``.
    :param codec: keyring, label and compression for every packet and stream.
    :param seeds: resolved ``(ip, port)`` of configured members, for re-joining.
    :param local_state: returns the user state sent in push/pull (``join`` flag given).
    :param rng: the source of randomness (seeded in simulations).
    """

    def __init__(
        self,
        config: MembershipConfig,
        *,
        name: str,
        address: str,
        port: int,
        codec: WireCodec,
        meta: bytes = b"",
        seeds: Iterable[Address] = (),
        local_state: Callable[[bool], bytes] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if len(meta) > META_MAX_SIZE:
            raise ValueError(f"node metadata is {len(meta)} bytes; at most {META_MAX_SIZE}")
        self.config = config
        self.name = name
        self.codec = codec
        self.rng = rng or random.Random()
        self.advertise_raw = (ipaddress.ip_address(address).packed, port)
        self.meta = meta
        self.local_state = local_state
        self.vsn = vsn_bytes()
        self.now = 0.0
        self.nodes: list[NodeRecord] = []
        self.node_map: dict[str, NodeRecord] = {}
        self.awareness = Awareness(config.awareness_max_multiplier)
        self.timers = TimerQueue()
        self.broadcasts = BroadcastQueue()
        self.user_broadcasts = BroadcastQueue(max_items=USER_BROADCAST_QUEUE)
        self.rejoin = RejoinMemory(seeds)
        self.stats: Counter[str] = Counter()
        self._outputs: list[Output] = []
        self.suspicions = Suspicions(self)
        self._acks: dict[int, _AckHandler] = {}
        self._streams: dict[int, _PendingStream] = {}
        self._prober = Prober(self)
        self._exchange = StateExchange(self)
        self._seq_no = 0
        self._incarnation = 0
        self._token = 0
        self._left = False
        self._started = False

    # ------------------------------------------------------------------ driver API

    def start(self, now: float) -> None:
        """Mark ourselves alive and start the probe, gossip, push/pull and re-join timers."""
        if self._started:
            return
        self._started = True
        self.now = now
        address, port = self.advertise_raw
        alive = Alive(self._next_incarnation(), self.name, address, port, self.meta, self.vsn)
        self.alive_node(alive, now, bootstrap=True)
        config = self.config
        if config.probe_interval > 0:
            self._ticker(now + self.rng.random() * config.probe_interval, config.probe_interval, self._prober.tick)
        if config.gossip_interval > 0 and config.gossip_nodes > 0:
            self._ticker(now + self.rng.random() * config.gossip_interval, config.gossip_interval, self._gossip)
        if config.push_pull_interval > 0:
            self.timers.schedule(now + self.rng.random() * config.push_pull_interval, self._exchange.periodic)
        if config.rejoin_interval > 0:
            self.timers.schedule(now + config.rejoin_interval, self._exchange.rejoin_tick)

    def join(self, addresses: Sequence[Address], now: float) -> list[int]:
        """Push/pull (join) with each address; each ends in a :class:`StreamResult` with its token."""
        self.now = now
        return [self._exchange.with_peer(address, join=True, purpose=StreamPurpose.JOIN) for address in addresses]

    def leave(self, now: float) -> None:
        """Broadcast our own death (a graceful leave); :class:`LeaveDone` follows when it has spread."""
        self.now = now
        if self._left:
            return
        self._left = True
        me = self.node_map[self.name]
        self.dead_node(Dead(me.incarnation, self.name, self.name), now)
        if not self._anyone_alive():
            self._outputs.append(LeaveDone())

    def update_meta(self, meta: bytes, now: float) -> None:
        """Change our metadata and gossip it (peers see an update event)."""
        if len(meta) > META_MAX_SIZE:
            raise ValueError(f"node metadata is {len(meta)} bytes; at most {META_MAX_SIZE}")
        self.now = now
        self.meta = meta
        address, port = self.advertise_raw
        self.alive_node(Alive(self._next_incarnation(), self.name, address, port, meta, self.vsn), now, bootstrap=True)

    def send_user(self, name: str, payload: bytes, reliable: bool, now: float) -> int | None:
        """Send a user message to a member: one UDP packet, or a TCP stream (its token returned)."""
        self.now = now
        node = self.node_map.get(name)
        if node is None or node.dead_or_left():
            raise KeyError(f"no live member named {name!r}")
        if reliable:
            return self.open_stream(node.endpoint, encode_user_stream(payload), now + self.config.tcp_timeout,
                                    StreamPurpose.USER, None)
        if len(payload) + 1 > MAX_UDP_PAYLOAD:
            raise ValueError("a best-effort user message must fit one UDP packet; send it reliably")
        self._raw_send(node.endpoint, node, b"\x08" + payload)
        return None

    def broadcast_user(self, payload: bytes, name: str | None = None) -> None:
        """Queue a user message to be gossiped to everyone (best effort; a named one replaces its predecessor)."""
        self.user_broadcasts.queue(payload, name)

    def receive_packet(self, data: bytes, source: Address, now: float) -> None:
        """A datagram arrived from ``source``."""
        self.now = now
        self.stats["packets_received"] += 1
        try:
            packet = self.codec.open(data)
        except WireError as error:
            self._bad_input("packet", error, source)
            return
        self.stats["packets_compressed"] += packet.compressed > 0
        for part_error in packet.errors:
            self._bad_input("packet part", part_error, source)
        for message in packet.messages:
            self._dispatch(message, source, now)

    def handle_stream(self, message: StreamMessage, source: Address, now: float) -> bytes | None:
        """A stream we accepted carried ``message``; returns the sealed answer to write, if any."""
        self.now = now
        self.stats["streams_received"] += 1
        if isinstance(message, PushPull):
            reply = seal_stream(self.codec, self._exchange.local_message(message.join), labelled=False)
            self._exchange.merge(message)
            return reply
        if isinstance(message, Ping):
            if message.node and message.node != self.name:
                self.notice(Notice.debug("ping-name", f"Got ping for unexpected node {message.node!r} from {source}"))
                return None
            return seal_stream(self.codec, encode_message(Ack(message.seq_no)), labelled=False)
        if isinstance(message, UserStream):
            self._outputs.append(UserMessage(message.payload, reliable=True))
            return None
        self.stats["streams_bad"] += 1
        self.notice(Notice.debug("stream-type", f"unexpected {type(message).__name__} on a stream from {source}"))
        return None

    def stream_done(self, token: int, reply: StreamMessage | None, error: str, now: float) -> None:
        """A stream from :class:`OpenStream` ended: its answer, or an error (empty when it worked)."""
        self.now = now
        pending = self._streams.pop(token, None)
        if pending is None:
            return
        if pending.callback is not None:
            pending.callback(reply, error)
        elif pending.purpose == StreamPurpose.USER:
            self._outputs.append(StreamResult(token, pending.purpose, pending.to, error))

    def handle_timers(self, now: float) -> None:
        """Run every timer due at ``now``."""
        self.now = now
        while (timer := self.timers.pop_due(now)) is not None:
            timer.callback(now)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timers` must be called next."""
        return self.timers.next_deadline()

    def take_outputs(self) -> list[Output]:
        """Everything produced since the last call, in order."""
        outputs, self._outputs = self._outputs, []
        return outputs

    # ------------------------------------------------------------------ views

    def members(self) -> list[Member]:
        """Alive and suspect members, ourselves included (memberlist's ``Members``)."""
        return [node.snapshot() for node in self.nodes if not node.dead_or_left()]

    def all_nodes(self) -> list[Member]:
        """Every known node, dead and left ones not yet reaped included."""
        return [node.snapshot() for node in self.nodes]

    def member(self, name: str) -> Member | None:
        """One node by name (any state), or None."""
        node = self.node_map.get(name)
        return node.snapshot() if node is not None else None

    @property
    def local_member(self) -> Member:
        """Ourselves."""
        return self.node_map[self.name].snapshot()

    @property
    def health_score(self) -> int:
        """Lifeguard's local health score (0 is healthy)."""
        return self.awareness.score

    @property
    def has_left(self) -> bool:
        """True once :meth:`leave` was called."""
        return self._left

    # ------------------------------------------------------------------ helpers for the prober and the exchange

    def notice(self, notice: Notice) -> None:
        """Report something worth logging."""
        self._outputs.append(notice)

    def emit(self, output: Output) -> None:
        """Add an output for the driver."""
        self._outputs.append(output)

    def next_seq_no(self) -> int:
        """A fresh probe sequence number (uint32, wrapping)."""
        self._seq_no = (self._seq_no + 1) & 0xFFFF_FFFF
        return self._seq_no

    def ping_for(self, target: str, seq_no: int) -> Ping:
        """A ping to ``target`` that says where to answer."""
        address, port = self.advertise_raw
        return Ping(seq_no, target, address, port, self.name)

    def expect_ack(
        self, seq_no: int, timeout: float, now: float, on_ack: Callable[[float], None], on_nack: Callable[[], None] | None = None
    ) -> None:
        """Call ``on_ack`` when an ack for ``seq_no`` arrives within ``timeout`` (``on_nack`` per nack)."""
        self.forget_ack(seq_no)
        timer = self.timers.schedule(now + timeout, lambda _now: self.forget_ack(seq_no))
        self._acks[seq_no] = _AckHandler(on_ack, on_nack, timer)

    def forget_ack(self, seq_no: int) -> None:
        """Stop waiting for ``seq_no``."""
        handler = self._acks.pop(seq_no, None)
        if handler is not None:
            handler.timer.cancel()

    def random_nodes(self, k: int, exclude: Callable[[NodeRecord], bool]) -> list[NodeRecord]:
        """Up to ``k`` distinct random nodes for which ``exclude`` is false."""
        candidates = [node for node in self.nodes if not exclude(node)]
        return self.rng.sample(candidates, min(k, len(candidates)))

    def send_msg(self, to: Address, message: bytes) -> None:
        """Send one message with as many pending broadcasts piggy-backed as fit (net.go ``sendMsg``)."""
        available = self.config.udp_buffer_size - len(message) - COMPOUND_HEADER_OVERHEAD - self.codec.overhead()
        extra = self._get_broadcasts(COMPOUND_PART_OVERHEAD, available)
        # As memberlist: the recipient is looked up by address only when nodes are named by IP.
        node = self.node_map.get(to[0])
        if not extra:
            self._raw_send(to, node, message)
        else:
            for compound in make_compounds([message, *extra]):
                self._raw_send(to, node, compound)

    def send_compound(self, node: NodeRecord, messages: list[bytes]) -> None:
        """Send several messages to a known node in one compound packet."""
        for compound in make_compounds(messages):
            self._raw_send(node.endpoint, node, compound)

    def open_stream(
        self, to: Address, plain: bytes, deadline: float, purpose: StreamPurpose, callback: StreamCallback | None
    ) -> int:
        """Ask the driver for a TCP exchange; ``callback(reply, error)`` gets its outcome."""
        self._token += 1
        token = self._token
        self._streams[token] = _PendingStream(purpose, to, callback)
        data = seal_stream(self.codec, plain, labelled=True)
        expect_reply = purpose != StreamPurpose.USER
        self._outputs.append(OpenStream(token, to, data, expect_reply, deadline, purpose))
        return token

    def reap_and_shuffle(self, now: float) -> None:
        """Forget nodes dead or left for longer than the gossip-to-the-dead time; reshuffle (``resetNodes``)."""
        limit = self.config.gossip_to_the_dead_time
        keep = []
        for node in self.nodes:
            if node.dead_or_left() and now - node.state_change > limit:
                del self.node_map[node.name]
                self.suspicions.clear(node.name)
                self.stats["nodes_reaped"] += 1
                self.notice(Notice.debug("reap", f"Forgetting {node.name}: {node.state.name.lower()} for longer than the gossip-to-the-dead time"))
            else:
                keep.append(node)
        self.rng.shuffle(keep)
        self.nodes[:] = keep

    # ------------------------------------------------------------------ inbound messages

    def _dispatch(self, message: object, source: Address, now: float) -> None:
        if isinstance(message, Ping):
            self._handle_ping(message, source)
        elif isinstance(message, IndirectPing):
            self._handle_indirect_ping(message, source, now)
        elif isinstance(message, Ack):
            handler = self._acks.pop(message.seq_no, None)
            if handler is not None:
                handler.timer.cancel()
                handler.on_ack(now)
        elif isinstance(message, Nack):
            handler = self._acks.get(message.seq_no)
            if handler is not None and handler.on_nack is not None:
                handler.on_nack()
        elif isinstance(message, Alive):
            if message.port == 0:  # protocol 1 peers send no port
                message = Alive(message.incarnation, message.node, message.addr, self.advertise_raw[1], message.meta, message.vsn)
            self.alive_node(message, now)
        elif isinstance(message, Suspect):
            self.suspect_node(message, now, source=source)
        elif isinstance(message, Dead):
            if not self.suspicions.verdict(message, now):
                self.dead_node(message, now)
        elif isinstance(message, UserData):
            self._outputs.append(UserMessage(message.payload, reliable=False))

    def _reply_address(self, source_addr: bytes, source_port: int, source: Address) -> Address:
        if source_addr and source_port:
            return (format_ip(source_addr), source_port)
        return source

    def _handle_ping(self, ping: Ping, source: Address) -> None:
        if ping.node and ping.node != self.name:
            self.notice(Notice.debug("ping-name", f"Got ping for unexpected node {ping.node!r} from {source}"))
            return
        self.send_msg(self._reply_address(ping.source_addr, ping.source_port, source), encode_message(Ack(ping.seq_no)))

    def _handle_indirect_ping(self, request: IndirectPing, source: Address, now: float) -> None:
        """Ping the target for a peer; relay the ack, or send a nack if none comes in time."""
        requester = self._reply_address(request.source_addr, request.source_port, source)
        port = request.port or self.advertise_raw[1]
        local_seq = self.next_seq_no()
        nack_timer: list[Timer] = []

        def relay(_now: float) -> None:
            for timer in nack_timer:
                timer.cancel()
            self.send_msg(requester, encode_message(Ack(request.seq_no)))

        self.expect_ack(local_seq, self.config.probe_timeout, now, relay)
        self.send_msg((format_ip(request.target), port), encode_message(self.ping_for(request.node, local_seq)))
        if request.nack:
            send_nack = lambda _now: self.send_msg(requester, encode_message(Nack(request.seq_no)))  # noqa: E731
            nack_timer.append(self.timers.schedule(now + self.config.probe_timeout, send_nack))

    # ------------------------------------------------------------------ state changes

    def alive_node(self, alive: Alive, now: float, bootstrap: bool = False, on_sent: Callable[[], None] | None = None) -> None:
        """An alive message (memberlist's ``aliveNode``): joins, updates, refutations."""
        if self._left and alive.node == self.name:
            return
        if len(alive.vsn) < 6 or alive.vsn[0] == 0 or alive.vsn[1] == 0 or alive.vsn[0] > alive.vsn[1]:
            self.notice(Notice.debug("alive-vsn", f"Ignoring an alive message for {alive.node!r}: bad protocol versions"))
            return
        node = self.node_map.get(alive.node)
        replaces_address = False
        if node is None:
            node = NodeRecord(alive.node, alive.addr, alive.port, alive.meta, 0, NodeState.DEAD, now, alive.vsn)
            self._insert(node)
        elif node.addr != alive.addr or node.port != alive.port:
            reclaim = self.config.dead_node_reclaim_time
            can_reclaim = reclaim > 0 and now - node.state_change > reclaim
            if node.state == NodeState.LEFT or (node.state == NodeState.DEAD and can_reclaim):
                replaces_address = True
            else:
                self.notice(Notice(logging.ERROR, "conflict", (
                    f"Conflicting address for {node.name}. Mine: {format_ip(node.addr)}:{node.port} "
                    f"Theirs: {format_ip(alive.addr)}:{alive.port} Old state: {node.state.name.lower()}"
                )))
                return
        is_local = node.name == self.name
        if not is_local and not replaces_address and alive.incarnation <= node.incarnation:
            return
        if is_local and alive.incarnation < node.incarnation:
            return
        self.suspicions.clear(alive.node)
        old_state, old_meta = node.state, node.meta
        if not bootstrap and is_local:
            if alive.incarnation == node.incarnation and alive.meta == node.meta and alive.vsn == node.vsn:
                return
            self.refute(node, alive.incarnation)
            self.notice(Notice(logging.WARNING, "refute", f"Refuting an alive message for {alive.node!r}"))
            return
        self.broadcast(alive.node, encode_message(alive), on_sent)
        node.vsn, node.incarnation, node.meta, node.addr, node.port = alive.vsn, alive.incarnation, alive.meta, alive.addr, alive.port
        if node.state != NodeState.ALIVE:
            node.state = NodeState.ALIVE
            node.state_change = now
        if not is_local:
            self.rejoin.back(node.name, node.endpoint)
        if old_state in (NodeState.DEAD, NodeState.LEFT):
            self.report(EventKind.JOIN, node)
        elif old_meta != node.meta:
            self.report(EventKind.UPDATE, node)

    def suspect_node(
        self, suspect: Suspect, now: float, *, source: Address | None = None, learnt_from_peer: bool = False,
        verdict: bool = False,
    ) -> None:
        """A suspect message (``suspectNode``): confirm a running suspicion, or start one (:mod:`.suspicions`)."""
        self.suspicions.handle(suspect, now, source=source, learnt_from_peer=learnt_from_peer, verdict=verdict)

    def dead_node(self, dead: Dead, now: float) -> None:
        """A dead message (``deadNode``): a failure, or a leave when it comes from the node itself."""
        node = self.node_map.get(dead.node)
        if node is None or dead.incarnation < node.incarnation:
            return
        self.suspicions.clear(dead.node)
        if node.dead_or_left():
            return
        if node.name == self.name:
            if not self._left:
                self.refute(node, dead.incarnation)
                self.notice(Notice(logging.WARNING, "refute", f"Refuting a dead message (from: {dead.from_node})"))
                return
            self.broadcast(dead.node, encode_message(dead), lambda: self._outputs.append(LeaveDone()))
        else:
            self.broadcast(dead.node, encode_message(dead))
        node.incarnation = dead.incarnation
        left = dead.node == dead.from_node
        node.state = NodeState.LEFT if left else NodeState.DEAD
        node.state_change = now
        if node.name != self.name:
            if left:
                self.rejoin.back(node.name, node.endpoint)
            else:
                self.rejoin.failed(node.name, node.endpoint, now)
        self.report(EventKind.LEFT if left else EventKind.DEAD, node)

    def refute(self, me: NodeRecord, accused: int) -> None:
        """Beat an accusation about ourselves with a higher incarnation, and say so."""
        incarnation = self._next_incarnation()
        if accused >= incarnation:
            self._incarnation = incarnation = (accused + 1) & 0xFFFF_FFFF
        me.incarnation = incarnation
        self.awareness.apply(1)
        self.stats["refutations"] += 1
        address, port = self.advertise_raw
        self.broadcast(self.name, encode_message(Alive(incarnation, self.name, address, port, me.meta, self.vsn)))

    # ------------------------------------------------------------------ gossip

    def _ticker(self, first: float, interval: float, action: Callable[[float], None]) -> None:
        """Call ``action`` every ``interval`` from ``first``, dropping ticks that fell behind (Go's Ticker)."""

        def fire(now: float, due: float = first) -> None:
            following = due + interval
            if following <= now:
                following = now + interval
            self.timers.schedule(following, lambda t: fire(t, following))
            action(now)

        self.timers.schedule(first, fire)

    def _gossip(self, now: float) -> None:
        """Send pending broadcasts to a few random nodes (alive, suspect, or recently dead)."""
        if not self.broadcasts and not self.user_broadcasts:
            return
        dead_time = self.config.gossip_to_the_dead_time

        def exclude(node: NodeRecord) -> bool:
            if node.name == self.name or node.state == NodeState.LEFT:
                return True
            return node.state == NodeState.DEAD and now - node.state_change > dead_time

        available = self.config.udp_buffer_size - COMPOUND_HEADER_OVERHEAD - self.codec.overhead()
        for node in self.random_nodes(self.config.gossip_nodes, exclude):
            messages = self._get_broadcasts(COMPOUND_PART_OVERHEAD, available)
            if not messages:
                return
            if len(messages) == 1:
                self._raw_send(node.endpoint, node, messages[0])
            else:
                self.send_compound(node, messages)

    # ------------------------------------------------------------------ internals

    def _next_incarnation(self) -> int:
        self._incarnation = (self._incarnation + 1) & 0xFFFF_FFFF
        return self._incarnation

    def _insert(self, node: NodeRecord) -> None:
        """Add a node at a random place in the probe order (so detection time stays low on average)."""
        self.node_map[node.name] = node
        offset = self.rng.randrange(len(self.nodes)) if self.nodes else 0
        self.nodes.append(node)
        self.nodes[offset], self.nodes[-1] = self.nodes[-1], self.nodes[offset]

    def _anyone_alive(self) -> bool:
        return any(not node.dead_or_left() and node.name != self.name for node in self.nodes)

    def broadcast(self, about: str, message: bytes, on_sent: Callable[[], None] | None = None) -> None:
        """Queue a membership broadcast about node ``about`` (it replaces one queued about the same node)."""
        self.broadcasts.queue(message, about, on_sent)

    def _get_broadcasts(self, overhead: int, limit: int) -> list[bytes]:
        """memberlist's broadcasts first, then user broadcasts (each prefixed with the user type)."""
        transmit_limit = retransmit_limit(self.config.retransmit_mult, len(self.nodes))
        messages = self.broadcasts.get(overhead, limit, transmit_limit)
        used = sum(len(message) + overhead for message in messages)
        available = limit - used
        if available > overhead + 1 and self.user_broadcasts:
            messages += [b"\x08" + m for m in self.user_broadcasts.get(overhead + 1, available, transmit_limit)]
        return messages

    def _raw_send(self, to: Address, node: NodeRecord | None, message: bytes) -> None:
        """Seal and send; a CRC goes to nodes that understand protocol 5."""
        data = self.codec.seal(message, crc=node is not None and node.pmax >= 5)
        self.stats["packets_sent"] += 1
        self._outputs.append(SendPacket(to, data))

    def report(self, kind: EventKind, node: NodeRecord) -> None:
        """A member event for the driver."""
        self._outputs.append(MemberEvent(kind, node.snapshot()))

    def _bad_input(self, what: str, error: WireError, source: Address) -> None:
        self.stats["bad_" + error.reason] += 1
        self.stats["packets_dropped" if what == "packet" else "parts_dropped"] += 1
        self.notice(Notice.debug(f"bad {what} {error.reason}", f"dropped {what} from {source[0]}:{source[1]}: {error}"))

