"""The asyncio driver: one port for UDP and TCP, timers, and the membership state machine.

:class:`GossipNode` owns the sockets and the one timer handle; every datagram, accepted
stream, finished stream and timer firing goes into :class:`~.membership.Membership`, and what
comes out is sent, opened, logged or handed to the listener. Bad input of any kind is dropped
and counted (``stats``) and logged at debug level through a :class:`hookmq.ratelimit.LogLimiter`;
it never raises out of a callback and never adds a member.

A node lives in one event loop, the one :meth:`GossipNode.start` runs in; :mod:`.runner` decides
which loop that is (the broker's, or a dedicated thread's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from hookmq.ratelimit import LogLimiter

from .addresses import resolve_members
from .membership import (
    LeaveDone,
    Member,
    MemberEvent,
    Membership,
    MembershipConfig,
    Notice,
    OpenStream,
    RemoteState,
    SendPacket,
    StreamResult,
    UserMessage,
)
from .wire import ErrorResponse, StreamDecoder, WireCodec, WireError, encode_message, seal_stream

__all__ = ["GossipNode", "NodeEvent", "StreamTap"]

log = logging.getLogger("hookmq.plugins.gossip")

MAX_INBOUND_STREAMS = 128
"""memberlist's ``maxPushPullRequests``: more concurrent inbound streams are refused."""
READ_SIZE = 65_536
UDP_RECEIVE_BUFFER = 2 * 1024 * 1024

NodeEvent = MemberEvent | UserMessage | RemoteState
"""What a node hands its listener."""

StreamTap = Callable[[socket.socket, bytes], None]
"""Takes over a TCP connection on the gossip port: the socket and the bytes already read."""


@dataclass(frozen=True, slots=True)
class _Bound:
    udp: socket.socket
    tcp: socket.socket
    port: int


def _bind(host: str, port: int) -> _Bound:
    """TCP then UDP on the same port; with port 0, retry until both get the same free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(10 if port == 0 else 1):
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, port))
            chosen = tcp.getsockname()[1]
            udp = socket.socket(family, socket.SOCK_DGRAM)
            try:
                udp.bind((host, chosen))
            except OSError:
                udp.close()
                raise
        except OSError:
            tcp.close()
            if port != 0:
                raise
            continue
        with contextlib.suppress(OSError):
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        udp.setblocking(False)
        tcp.setblocking(False)
        return _Bound(udp, tcp, chosen)
    raise OSError(f"could not bind UDP and TCP to one free port on {host}")


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, node: GossipNode) -> None:
        self.node = node

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.node._packet(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        # ICMP "port unreachable" from an earlier send to a dead peer: expected, just counted.
        self.node.stats["udp_errors"] += 1


class GossipNode:
    """One cluster node on real sockets: bind, advertise, join, leave, send; events to ``listener``.

    :param members: configured members (``host:port``, host names allowed), joined at start
        and re-joined after partitions.
    :param listener: called (in this node's loop) with every member event, user message and
        remote user state; it must not block.
    """

    def __init__(
        self,
        config: MembershipConfig,
        *,
        name: str,
        bind: str,
        port: int,
        advertise: str,
        codec: WireCodec,
        meta: bytes = b"",
        members: tuple[str, ...] = (),
        local_state: Callable[[bool], bytes] | None = None,
        listener: Callable[[NodeEvent], None] | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.bind = bind
        self.port = port
        self.advertise = advertise
        self.codec = codec
        self.members_config = members
        self.listener = listener
        self.stats: Counter[str] = Counter()
        #: TCP connections whose first byte is a key here are handed to its tap instead of
        #: being read as memberlist streams (memberlist's first bytes are 0-13 and 244).
        self.stream_taps: dict[int, StreamTap] = {}
        self.limiter = LogLimiter(log, burst=10, per_second=1.0)
        self.machine: Membership | None = None
        self._meta = meta
        #: Returns the user state sent in push/pull (``join`` flag given); read at each exchange.
        self.local_state = local_state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.Server | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: dict[int, asyncio.Future[str]] = {}
        self._left = asyncio.Event()
        self._inbound = 0
        self._snapshot: tuple[Member, ...] = ()
        self._closed = False

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        """Bind UDP and TCP on one port, then start the protocol (call in the node's loop)."""
        loop = self._loop = asyncio.get_running_loop()
        bound = _bind(self.bind, self.port)
        self.port = bound.port
        transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=bound.udp)
        self._udp = transport
        self._server = await asyncio.start_server(self._accept, sock=bound.tcp)
        self._left = asyncio.Event()
        seeds = await resolve_members(list(self.members_config), self.port, bound.udp.family)
        self.machine = Membership(
            self.config, name=self.name, address=self.advertise, port=self.port, codec=self.codec, meta=self._meta,
            seeds=seeds, local_state=self._state_for,
        )
        self.machine.start(loop.time())
        self._pump()
        if self.config.rejoin_interval > 0 and self.members_config:
            self._spawn(self._refresh_seeds())

    async def stop(self) -> None:
        """Close the sockets and stop every timer and stream (no leave: call :meth:`leave` first)."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_result("node stopped")

    async def join(self, members: list[str] | tuple[str, ...]) -> tuple[int, list[str]]:
        """Join through each member (every address its name resolves to); returns (successes, errors)."""
        machine = self._require()
        family = self._udp.get_extra_info("socket").family if self._udp is not None else socket.AF_INET
        addresses = await resolve_members(list(members), self.port, family)
        errors: list[str] = []
        if not addresses:
            return 0, [f"no address found for {', '.join(members)}"]
        tokens = machine.join(addresses, self._now())
        waiters = [self._waiter(token) for token in tokens]
        self._pump()
        results = await asyncio.gather(*waiters)
        for address, error in zip(addresses, results, strict=True):
            if error:
                errors.append(f"{address[0]}:{address[1]}: {error}")
        return sum(1 for error in results if not error), errors

    async def leave(self, timeout: float) -> bool:
        """Gossip our leave and wait (at most ``timeout`` s) until it has spread; True if it did."""
        machine = self._require()
        machine.leave(self._now())
        self._pump()
        try:
            await asyncio.wait_for(self._left.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def send(self, name: str, payload: bytes, reliable: bool) -> None:
        """Send a user message to a member (UDP best effort, or TCP); raises OSError if TCP fails."""
        machine = self._require()
        token = machine.send_user(name, payload, reliable, self._now())
        if token is None:
            self._pump()
            return
        waiter = self._waiter(token)
        self._pump()
        error = await waiter
        if error:
            raise OSError(f"reliable message to {name} failed: {error}")

    def broadcast(self, payload: bytes, name: str | None = None) -> None:
        """Gossip a user message to every member (best effort)."""
        self._require().broadcast_user(payload, name)

    def update_meta(self, meta: bytes) -> None:
        """Replace our metadata and gossip it."""
        self._meta = meta
        self._require().update_meta(meta, self._now())
        self._pump()

    def members(self) -> tuple[Member, ...]:
        """Alive and suspect members (a snapshot, safe to read from any thread)."""
        return self._snapshot

    @property
    def local_member(self) -> Member:
        """Ourselves."""
        return self._require().local_member

    @property
    def health_score(self) -> int:
        """Lifeguard's local health (0 is healthy)."""
        return self._require().health_score

    def _state_for(self, join: bool) -> bytes:
        provider = self.local_state
        return provider(join) if provider is not None else b""

    # ------------------------------------------------------------------ the pump

    def _require(self) -> Membership:
        if self.machine is None:
            raise RuntimeError("the gossip node is not started")
        return self.machine

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _pump(self) -> None:
        """Carry out everything the machine produced, then arm the timer for its next deadline."""
        machine = self.machine
        if machine is None or self._closed:
            return
        changed = False
        for output in machine.take_outputs():
            if isinstance(output, SendPacket):
                self._send(output)
            elif isinstance(output, OpenStream):
                self._spawn(self._stream(output))
            elif isinstance(output, MemberEvent | UserMessage | RemoteState):
                changed |= isinstance(output, MemberEvent)
                self._deliver(output)
            elif isinstance(output, StreamResult):
                waiter = self._waiters.pop(output.token, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(output.error)
            elif isinstance(output, LeaveDone):
                self._left.set()
            elif isinstance(output, Notice):
                self.limiter.log(output.key, output.level, "%s", output.message)
        if changed or not self._snapshot:
            self._snapshot = tuple(machine.members())
        self._arm()

    def _arm(self) -> None:
        deadline = self._require().next_deadline()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = self._loop.call_at(deadline, self._fire) if deadline is not None and self._loop else None

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = None
        machine = self._require()
        try:
            machine.handle_timers(self._now())
        except Exception:  # a bug must not stop the failure detector for good
            log.exception("gossip timer failed")
        self._snapshot = tuple(machine.members())
        self._pump()

    def _deliver(self, event: NodeEvent) -> None:
        if self.listener is None:
            return
        try:
            self.listener(event)
        except Exception:
            log.exception("gossip listener failed on %s", type(event).__name__)

    def _send(self, packet: SendPacket) -> None:
        if self._udp is None:
            return
        try:
            self._udp.sendto(packet.data, packet.to)
            self.stats["packets_sent"] += 1
        except OSError as error:
            self.stats["send_errors"] += 1
            self.limiter.log("udp send", logging.DEBUG, "gossip: cannot send to %s:%s: %s", *packet.to, error)

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _waiter(self, token: int) -> asyncio.Future[str]:
        future: asyncio.Future[str] = self._require_loop().create_future()
        self._waiters[token] = future
        return future

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    # ------------------------------------------------------------------ inbound

    def _packet(self, data: bytes, source: tuple[str, int]) -> None:
        machine = self.machine
        if machine is None or self._closed:
            return
        self.stats["packets_received"] += 1
        try:
            machine.receive_packet(data, source, self._now())
        except Exception:  # the machine rejects bad input itself; this guards against our own bugs
            self.stats["packet_errors"] += 1
            log.exception("gossip packet handling failed")
        self._pump()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One inbound stream: read one message (within the TCP timeout), answer, close."""
        peer = writer.get_extra_info("peername") or ("?", 0)
        source = (str(peer[0]), int(peer[1]))
        if self._inbound >= MAX_INBOUND_STREAMS or self.machine is None:
            self.stats["streams_refused"] += 1
            writer.close()
            return
        self._inbound += 1
        try:
            await self._serve_stream(reader, writer, source)
        except Exception:  # our own bug: log it, keep serving others
            self.stats["stream_errors"] += 1
            log.exception("gossip stream handling failed")
        finally:
            self._inbound -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: tuple[str, int]) -> None:
        decoder = StreamDecoder(self.codec, labelled=True)
        try:
            async with asyncio.timeout(self.config.tcp_timeout):
                message = None
                chunk = await reader.read(READ_SIZE)
                tap = self.stream_taps.get(chunk[0]) if chunk else None
                if tap is not None:
                    self._hand_over(writer, chunk, tap)
                    return
                while message is None:
                    if not chunk:
                        decoder.end()
                    message = decoder.feed(chunk)
                    if message is None:
                        chunk = await reader.read(READ_SIZE)
                self.stats["streams_compressed"] += decoder.compressed
                reply = self._require().handle_stream(message, source, self._now())
                self._pump()
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except WireError as error:
            self._bad_stream(source, error)
            if error.reason != "label":  # as memberlist: explain, except to a foreign cluster
                with contextlib.suppress(Exception):
                    writer.write(seal_stream(self.codec, encode_message(ErrorResponse(str(error))), labelled=False))
                    await writer.drain()
        except (TimeoutError, OSError) as error:
            self.stats["streams_failed"] += 1
            self.limiter.log("stream in", logging.DEBUG, "gossip: stream from %s:%s failed: %r", *source, error)

    def _hand_over(self, writer: asyncio.StreamWriter, first: bytes, tap: StreamTap) -> None:
        """Give a connection that is no memberlist stream to the plugin that claimed its first byte.

        The tap gets a duplicate of the socket (ours is closed when this stream ends, which
        leaves the duplicate open) and the bytes already read. A tapped protocol sends a short
        preamble and waits for the other side to speak, so nothing more is buffered here.
        """
        sock = writer.get_extra_info("socket")
        if sock is None:
            return
        try:
            handed = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            self.stats["streams_failed"] += 1
            return
        self.stats["streams_handed_over"] += 1
        try:
            tap(handed, first)
        except Exception:  # the tap's own bug: log it, the gossip goes on
            handed.close()
            log.exception("gossip stream tap failed")

    def _bad_stream(self, source: tuple[str, int], error: WireError) -> None:
        self.stats["streams_dropped"] += 1
        self.stats["bad_" + error.reason] += 1
        self.limiter.log(f"bad stream {error.reason}", logging.DEBUG, "gossip: dropped stream from %s:%s: %s", *source, error)

    # ------------------------------------------------------------------ outbound streams

    async def _stream(self, stream: OpenStream) -> None:
        """Dial, write, maybe read the answer, all before the stream's deadline; report the outcome."""
        reply = None
        error = ""
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout_at(stream.deadline):
                reader, writer = await asyncio.open_connection(*stream.to)
                writer.write(stream.data)
                await writer.drain()
                if stream.expect_reply:
                    decoder = StreamDecoder(self.codec, labelled=False)
                    while reply is None:
                        chunk = await reader.read(READ_SIZE)
                        if not chunk:
                            decoder.end()
                        reply = decoder.feed(chunk)
                    self.stats["streams_compressed"] += decoder.compressed
        except WireError as failure:
            self._bad_stream(stream.to, failure)
            error = str(failure)
        except TimeoutError:
            error = "i/o timeout"
        except OSError as failure:
            error = failure.strerror or repr(failure)
        finally:
            if writer is not None:
                writer.close()
        if self._closed or self.machine is None:
            return
        try:
            self.machine.stream_done(stream.token, reply, error, self._now())
        except Exception:  # our own bug: log it, the node goes on
            self.stats["stream_errors"] += 1
            log.exception("gossip stream result handling failed")
        self._pump()

    async def _refresh_seeds(self) -> None:
        """Re-resolve configured member names every re-join interval (DNS may change, or come up late)."""
        assert self._udp is not None
        family = self._udp.get_extra_info("socket").family
        while not self._closed:
            await asyncio.sleep(self.config.rejoin_interval)
            seeds = await resolve_members(list(self.members_config), self.port, family)
            if seeds and self.machine is not None:
                self.machine.rejoin.seeds = seeds
