"""TCP listeners over real sockets: reading, writing, flow control, close and abort."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

import pytest
from transport_helpers import Captured, Start, count_lines, echo

from hookmq.transport import Connection
from hookmq.transport.base import DEFAULT_HIGH_WATER

pytestmark = pytest.mark.timeout(30)


async def test_echo_round_trip(start: Start) -> None:
    listener = await start(echo)
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"\x10\x00hello")
    assert await reader.readexactly(7) == b"\x10\x00hello"
    writer.close()
    await writer.wait_closed()


async def test_connection_describes_its_peer(start: Start, captured: Captured) -> None:
    listener = await start(captured)
    _reader, writer = await asyncio.open_connection(*listener.address)
    connection = await captured.next()
    host, port = writer.get_extra_info("sockname")
    assert connection.remote_address == f"{host}:{port}"
    assert connection.listener == listener.name
    assert connection.tls_peer_certificate is None
    assert isinstance(connection, Connection)
    writer.close()


async def test_chunks_add_up_and_read_returns_empty_at_eof(start: Start) -> None:
    listener = await start(count_lines)
    reader, writer = await asyncio.open_connection(*listener.address)
    for index in range(1000):
        writer.write(f"line {index}\n".encode())
    writer.write(b"unterminated")
    await writer.drain()
    writer.write_eof()
    # count_lines only answers once read() returned b"", and close() after the handler flushes it.
    assert await reader.read() == b"1000\n"
    writer.close()


async def test_handler_return_flushes_then_closes(start: Start) -> None:
    payload = b"x" * (4 * 1024 * 1024)

    async def write_and_leave(connection: Connection) -> None:
        connection.write(payload)

    listener = await start(write_and_leave)
    reader, writer = await asyncio.open_connection(*listener.address)
    assert await reader.read() == payload
    writer.close()


async def test_abort_drops_what_is_buffered(start: Start, captured: Captured) -> None:
    listener = await start(captured)
    reader, writer = await asyncio.open_connection(*listener.address)
    connection = await captured.next()
    written = 32 * 1024 * 1024
    connection.write(b"y" * written)
    assert connection.buffered_size() > 0  # far more than the kernel takes in one go
    connection.abort()
    received = 0
    try:
        while chunk := await reader.read(1 << 20):
            received += len(chunk)
    except ConnectionResetError:
        pass  # an abort is a reset: the peer may see it instead of an orderly end
    assert received < written
    writer.close()


async def test_writes_of_one_loop_step_are_gathered(start: Start, captured: Captured) -> None:
    listener = await start(captured)
    reader, writer = await asyncio.open_connection(*listener.address)
    connection = await captured.next()
    packets = [bytes([0x30, 3, 0, 1, 97 + n % 26]) for n in range(100)]
    for packet in packets:
        connection.write(packet)
    # Nothing has reached the socket yet: the writes wait for the end of this loop step.
    assert connection.buffered_size() == 500
    assert await reader.readexactly(500) == b"".join(packets)
    assert connection.buffered_size() == 0
    writer.close()


async def test_answers_written_in_read_events_leave_after_the_loop_step(start: Start, captured: Captured) -> None:
    listener = await start(captured)
    clients = [await asyncio.open_connection(*listener.address) for _ in range(3)]
    connections = [await captured.next() for _ in clients]
    gathered: list[int] = []

    def answer(connection: Connection) -> Callable[[bytes], None]:
        def receiver(data: bytes) -> None:
            if data:
                connection.write(data.upper())
                gathered.append(connection.buffered_size())  # not sent during the read event

        return receiver

    for connection in connections:
        assert connection.set_receiver(answer(connection))
    for index, (_reader, writer) in enumerate(clients):
        writer.write(b"ping%d" % index)
    for index, (reader, _writer) in enumerate(clients):
        assert await reader.readexactly(5) == b"PING%d" % index
    assert gathered == [5, 5, 5]
    assert all(connection.buffered_size() == 0 for connection in connections)
    for _reader, writer in clients:
        writer.close()


async def test_a_read_event_that_answers_nothing_is_acknowledged_at_once(start: Start, captured: Captured) -> None:
    # Nagle clients (paho-mqtt's default) wait for the ACK of their last packet before sending the
    # next: a read event with no answer to carry the ACK sets TCP_QUICKACK; one with an answer does not.
    listener = await start(captured)
    reader, writer = await asyncio.open_connection(*listener.address)
    connection = await captured.next()
    assert connection._quick_ack is not None  # type: ignore[attr-defined]
    calls: list[tuple[int, int, int]] = []

    class Recorder:
        def setsockopt(self, level: int, option: int, value: int) -> None:
            calls.append((level, option, value))

    connection._quick_ack = Recorder()  # type: ignore[attr-defined]
    received: asyncio.Queue[bytes] = asyncio.Queue()

    def receiver(data: bytes) -> None:
        received.put_nowait(data)
        if data == b"answer":
            connection.write(b"ok")

    assert connection.set_receiver(receiver)
    writer.write(b"silent")
    assert await received.get() == b"silent"
    writer.write(b"answer")
    assert await received.get() == b"answer"
    assert await reader.readexactly(2) == b"ok"
    assert calls == [(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)]
    writer.close()


async def test_write_after_close_is_ignored(start: Start, captured: Captured) -> None:
    listener = await start(captured)
    reader, writer = await asyncio.open_connection(*listener.address)
    connection = await captured.next()
    connection.write(b"before")
    connection.close()
    connection.write(b"after")
    assert await reader.read() == b"before"
    assert await connection.read() == b""
    await connection.drain()  # returns at once on a closed connection
    writer.close()


async def test_slow_reader_builds_a_buffer_that_drains(start: Start, captured: Captured) -> None:
    listener = await start(captured)
    client = socket.create_connection(listener.address)
    client.setblocking(False)
    connection = await captured.next()
    chunk = b"z" * 65536
    written = 0
    while connection.buffered_size() <= DEFAULT_HIGH_WATER:
        connection.write(chunk)
        written += len(chunk)
        await asyncio.sleep(0)  # let the transport push what the kernel accepts
    drained = asyncio.ensure_future(connection.drain())
    await asyncio.sleep(0.05)
    assert not drained.done()  # the client has not read anything yet
    loop = asyncio.get_running_loop()
    received = 0
    while received < written:
        received += len(await loop.sock_recv(client, 1 << 20))
    await asyncio.wait_for(drained, 10)
    assert received == written
    assert connection.buffered_size() == 0
    client.close()


async def test_reading_pauses_when_the_engine_does_not_consume(start: Start, captured: Captured) -> None:
    listener = await start(captured)
    _reader, writer = await asyncio.open_connection(*listener.address)
    connection = await captured.next()
    sent = 64 * 1024 * 1024
    block = b"p" * (1024 * 1024)
    for _ in range(sent // len(block)):
        writer.write(block)
    # The server stops reading, so the kernel buffers fill and the client's own buffer stays full.
    await asyncio.sleep(0.2)
    assert writer.transport.get_write_buffer_size() > 0
    received = 0
    while received < sent:
        received += len(await connection.read())
    assert received == sent
    await writer.drain()
    writer.close()


async def test_many_connections(start: Start) -> None:
    listener = await start(echo)

    async def one(index: int) -> bytes:
        reader, writer = await asyncio.open_connection(*listener.address)
        message = f"client {index}\n".encode()
        writer.write(message)
        answer = await reader.readexactly(len(message))
        writer.close()
        await writer.wait_closed()
        return answer

    answers = await asyncio.gather(*(one(index) for index in range(300)))
    assert answers == [f"client {index}\n".encode() for index in range(300)]


async def test_failing_handler_is_logged_and_listener_survives(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def sometimes_fails(connection: Connection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("engine bug")
        await echo(connection)

    listener = await start(sometimes_fails)
    with caplog.at_level(logging.ERROR, logger="hookmq.transport"):
        reader, writer = await asyncio.open_connection(*listener.address)
        assert await reader.read() == b""  # the failed connection was closed
        writer.close()
    assert "engine bug" in caplog.text
    assert listener.name in caplog.text
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"still here")
    assert await reader.readexactly(10) == b"still here"
    writer.close()


async def test_listener_close_stops_accepting_but_keeps_connections(start: Start) -> None:
    listener = await start(echo)
    reader, writer = await asyncio.open_connection(*listener.address)
    await listener.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(*listener.address)
    writer.write(b"still served")  # the engine says goodbye to accepted clients itself
    assert await reader.readexactly(12) == b"still served"
    await listener.close_connections(grace=0)
    assert await reader.read() == b""
    writer.close()


async def test_close_connections_waits_for_handlers_within_grace(start: Start) -> None:
    finished = asyncio.Event()

    async def says_goodbye(connection: Connection) -> None:
        await connection.read()
        connection.write(b"bye")
        finished.set()

    listener = await start(says_goodbye)
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"hi")
    await listener.close()
    await listener.close_connections(grace=10)
    assert finished.is_set()
    assert await reader.read() == b"bye"
    writer.close()


async def test_nodelay_is_set(start: Start, captured: Captured) -> None:
    listener = await start(captured)
    _reader, writer = await asyncio.open_connection(*listener.address)
    connection = await captured.next()
    server_socket = connection._transport.get_extra_info("socket")  # type: ignore[attr-defined]
    assert server_socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    writer.close()


def _ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback here")
async def test_ipv6_loopback(start: Start, captured: Captured) -> None:
    listener = await start(captured, address="[::1]:0")
    assert listener.address[0] == "::1"
    assert listener.url == f"mqtt://[::1]:{listener.address[1]}"
    reader, writer = await asyncio.open_connection("::1", listener.address[1])
    connection = await captured.next()
    assert connection.remote_address.startswith("[::1]:")
    connection.write(b"v6")
    assert await reader.readexactly(2) == b"v6"
    writer.close()


@pytest.mark.skipif(not _ipv6_loopback_available(), reason="no IPv6 loopback here")
async def test_all_interfaces_serves_ipv4_and_ipv6_on_one_port(start: Start, captured: Captured) -> None:
    listener = await start(captured, address=":0")
    port = listener.address[1]
    for host, shown in (("127.0.0.1", "127.0.0.1:"), ("::1", "[::1]:")):
        reader, writer = await asyncio.open_connection(host, port)
        connection = await captured.next()
        assert connection.remote_address.startswith(shown)  # no "::ffff:" IPv4-mapped form
        connection.write(host.encode())
        assert await reader.readexactly(len(host)) == host.encode()
        writer.close()


async def test_accepted_sockets_probe_idle_peers_with_tcp_keepalive() -> None:
    """A half-open peer (gone without a FIN) is found by the kernel even with MQTT Keep Alive 0."""
    from hookmq.transport.config import ListenerConfig
    from hookmq.transport.listeners import start_listeners

    seen: list[tuple[int, int]] = []

    async def handler(conn: object) -> None:
        sock = conn._transport.get_extra_info("socket")  # type: ignore[attr-defined]
        seen.append((sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                     sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)))

    listeners = await start_listeners([ListenerConfig(name="t", type="tcp", address="127.0.0.1:0")], handler)
    try:
        _, writer = await asyncio.open_connection(*listeners[0].address)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)
        writer.close()
    finally:
        for listener in listeners:
            await listener.aclose()
    assert seen and seen[0][0] == 1 and seen[0][1] == 60
