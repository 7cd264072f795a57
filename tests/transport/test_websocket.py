"""WebSocket and WSS listeners: handshake rules, byte-stream framing, batching, backpressure."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from transport_helpers import (
    Captured,
    MiniBroker,
    Start,
    echo,
    mqtt_packet_lengths,
    publish_packet,
    tls_options,
    wait_until,
)
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from hookmq.testing.certs import TestCertificates
from hookmq.transport import Connection
from hookmq.transport.base import OPEN_TIMEOUT

pytestmark = pytest.mark.timeout(30)


async def test_echo_over_websocket_with_mqtt_subprotocol(start: Start) -> None:
    listener = await start(echo, "ws")
    assert listener.url == f"ws://127.0.0.1:{listener.address[1]}/mqtt"
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        assert websocket.subprotocol == "mqtt"
        await websocket.send(b"\xc0\x00")
        assert await websocket.recv() == b"\xc0\x00"


async def test_websocket_connection_describes_its_peer(start: Start, captured: Captured) -> None:
    listener = await start(captured, "ws")
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        connection = await captured.next()
        host, port = websocket.local_address[:2]
        assert connection.remote_address == f"{host}:{port}"
        assert connection.listener == listener.name
        assert connection.tls_peer_certificate is None
        assert isinstance(connection, Connection)


async def test_mqtt31_subprotocol_is_accepted(start: Start) -> None:
    listener = await start(echo, "ws")
    async with connect(listener.url, subprotocols=["mqttv3.1"]) as websocket:
        assert websocket.subprotocol == "mqttv3.1"


async def test_client_offering_no_subprotocol_is_accepted(start: Start) -> None:
    listener = await start(echo, "ws")
    async with connect(listener.url) as websocket:
        assert websocket.subprotocol is None
        await websocket.send(b"\xc0\x00")
        assert await websocket.recv() == b"\xc0\x00"


async def test_client_offering_another_subprotocol_is_refused(start: Start) -> None:
    listener = await start(echo, "ws")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(listener.url, subprotocols=["chat"]):
            pass
    assert refused.value.response.status_code == 400


async def test_other_paths_get_404(start: Start) -> None:
    listener = await start(echo, "ws")
    base = listener.url.removesuffix("/mqtt")
    with pytest.raises(InvalidStatus) as refused:
        async with connect(base + "/other", subprotocols=["mqtt"]):
            pass
    assert refused.value.response.status_code == 404
    async with connect(base + "/mqtt?client=1", subprotocols=["mqtt"]) as websocket:
        assert websocket.subprotocol == "mqtt"  # a query string does not change the path


async def test_root_path_accepts_any_path(start: Start) -> None:
    listener = await start(echo, "ws", path="/")
    base = listener.url.rstrip("/")
    for path in ("/", "/mqtt", "/anything/else"):
        async with connect(base + path, subprotocols=["mqtt"]) as websocket:
            await websocket.send(b"x")
            assert await websocket.recv() == b"x"


async def test_packets_span_frames_and_frames_hold_several_packets(start: Start) -> None:
    broker = MiniBroker()
    listener = await start(broker, "ws")
    connect_packet = b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c"
    first, second, third = (publish_packet(f"t/{n}", f"payload {n}".encode()) for n in range(3))
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        await websocket.send(connect_packet[:3])  # a CONNECT cut across two messages
        await websocket.send(connect_packet[3:])
        assert await websocket.recv() == b"\x20\x02\x00\x00"
        await websocket.send(first + second[:4])  # one message ends inside a packet
        await websocket.send([second[4:6], second[6:], third])  # one message in three frames
        await websocket.send(b"\xe0\x00")
        await asyncio.wait_for(broker.disconnected.wait(), 10)
    assert broker.published == [("t/0", b"payload 0"), ("t/1", b"payload 1"), ("t/2", b"payload 2")]


async def test_writes_are_batched_into_few_messages(start: Start, captured: Captured) -> None:
    listener = await start(captured, "ws")
    packets = [publish_packet("fan/out", bytes([n]) * 10) for n in range(100)]
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        connection = await captured.next()
        for packet in packets:
            connection.write(packet)
        assert connection.buffered_size() >= sum(map(len, packets))
        received, messages = b"", 0
        while len(received) < sum(map(len, packets)):
            message = await websocket.recv()
            assert isinstance(message, bytes)
            received += message
            messages += 1
    assert received == b"".join(packets)
    assert len(mqtt_packet_lengths(received)) == 100
    assert messages < len(packets)


async def test_slow_websocket_reader_builds_a_buffer_that_drains(start: Start, captured: Captured) -> None:
    listener = await start(captured, "ws")
    async with connect(listener.url, subprotocols=["mqtt"], max_size=None, max_queue=1) as websocket:
        connection = await captured.next()
        chunk = b"b" * (256 * 1024)
        written = 0
        while connection.buffered_size() < 8 * 1024 * 1024 and written < 1024 * 1024 * 1024:
            connection.write(chunk)
            written += len(chunk)
            await asyncio.sleep(0)
        assert connection.buffered_size() >= 8 * 1024 * 1024
        drained = asyncio.ensure_future(connection.drain())
        await asyncio.sleep(0.05)
        assert not drained.done()
        received = 0
        while received < written:
            received += len(await websocket.recv())
        await asyncio.wait_for(drained, 10)
        await wait_until(lambda: connection.buffered_size() == 0)
        assert received == written


async def test_text_frames_end_the_connection(start: Start, captured: Captured) -> None:
    listener = await start(captured, "ws")
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        connection = await captured.next()
        await websocket.send("not binary")
        assert await connection.read() == b""
        with pytest.raises(ConnectionClosed):
            await websocket.recv()
        assert websocket.close_code == 1003


async def test_oversized_message_closes_with_1009(start: Start, captured: Captured) -> None:
    listener = await start(captured, "ws", ws_max_message_size=4096)
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        connection = await captured.next()
        await websocket.send(b"\x30" + b"\xff" * 5000)
        assert await connection.read() == b""
        with pytest.raises(ConnectionClosed):
            await websocket.recv()
        assert websocket.close_code == 1009


async def test_close_flushes_and_sends_a_normal_close(start: Start, captured: Captured) -> None:
    listener = await start(captured, "ws")
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        connection = await captured.next()
        connection.write(b"\xe0\x00")
        connection.close()
        connection.write(b"ignored")
        assert await websocket.recv() == b"\xe0\x00"
        with pytest.raises(ConnectionClosed):
            await websocket.recv()
        assert websocket.close_code == 1000


async def test_abort_drops_the_connection(start: Start, captured: Captured) -> None:
    listener = await start(captured, "ws")
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        connection = await captured.next()
        connection.write(b"dropped")
        connection.abort()
        with pytest.raises(ConnectionClosed):
            while True:
                await websocket.recv()
        assert websocket.close_code is None or websocket.close_code == 1006  # no closing handshake


async def test_failing_handler_closes_only_its_connection(start: Start) -> None:
    async def fails(connection: Connection) -> None:
        if await connection.read() == b"boom":
            raise RuntimeError("engine bug")
        await echo(connection)

    listener = await start(fails, "ws")
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        await websocket.send(b"boom")
        with pytest.raises(ConnectionClosed):
            await websocket.recv()
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        await websocket.send(b"fine")
        await websocket.send(b"again")
        assert await websocket.recv() == b"again"


async def test_many_websocket_connections(start: Start) -> None:
    listener = await start(echo, "ws")

    async def one(index: int) -> bytes:
        async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
            await websocket.send(f"client {index}".encode())
            answer = await websocket.recv()
            assert isinstance(answer, bytes)
            return answer

    answers = await asyncio.gather(*(one(index) for index in range(100)))
    assert answers == [f"client {index}".encode() for index in range(100)]


async def test_listener_close_ends_websocket_connections(start: Start, captured: Captured) -> None:
    listener = await start(captured, "ws")
    websocket: ClientConnection = await connect(listener.url, subprotocols=["mqtt"])
    connection = await captured.next()
    await listener.close()
    connection.write(b"\xe0\x00")  # accepted clients are still served after close()
    assert await websocket.recv() == b"\xe0\x00"
    await listener.close_connections()
    with pytest.raises(ConnectionClosed):
        await websocket.recv()
    assert websocket.close_code == 1001  # going away


async def test_wss_with_client_certificate(start: Start, captured: Captured, certs: TestCertificates) -> None:
    listener = await start(captured, "wss", **tls_options(certs, cafile=certs.cafile, require_client_cert=True))
    assert listener.url.startswith("wss://127.0.0.1:")
    carol = certs.client("carol")
    context = ssl.create_default_context(cafile=certs.cafile)
    context.load_cert_chain(carol.certfile, carol.keyfile)
    async with connect(listener.url, subprotocols=["mqtt"], ssl=context) as websocket:
        connection = await captured.next()
        assert connection.tls_peer_certificate is not None
        assert (("commonName", "carol"),) in connection.tls_peer_certificate["subject"]
        connection.write(b"\xd0\x00")
        assert await websocket.recv() == b"\xd0\x00"


async def test_wss_refuses_a_client_without_certificate(
    start: Start, captured: Captured, certs: TestCertificates
) -> None:
    listener = await start(captured, "wss", **tls_options(certs, cafile=certs.cafile, require_client_cert=True))
    context = ssl.create_default_context(cafile=certs.cafile)
    with pytest.raises((ssl.SSLError, ConnectionError, ConnectionClosed, InvalidHandshake, OSError)):
        async with connect(listener.url, subprotocols=["mqtt"], ssl=context, open_timeout=10) as websocket:
            await websocket.recv()
    assert captured.connections.empty()


def paho_publish(port: int, topic: str, payload: bytes, *, tls: TestCertificates | None = None) -> None:
    """Connect a real paho client over WebSocket, publish once at QoS 0, disconnect cleanly."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="paho-ws", transport="websockets")
    client.ws_set_options(path="/mqtt")
    if tls is not None:
        own = tls.client("paho")
        client.tls_set(ca_certs=str(tls.cafile), certfile=str(own.certfile), keyfile=str(own.keyfile))
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=0).wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
async def test_paho_client_over_websocket(start: Start, certs: TestCertificates, secure: bool) -> None:
    broker = MiniBroker()
    if secure:
        listener = await start(broker, "wss", **tls_options(certs, cafile=certs.cafile, require_client_cert=True))
    else:
        listener = await start(broker, "ws")
    await asyncio.to_thread(paho_publish, listener.address[1], "home/temp", b"19.0", tls=certs if secure else None)
    await asyncio.wait_for(broker.disconnected.wait(), 10)
    assert broker.published == [("home/temp", b"19.0")]
    assert (broker.peer_certificates[0] is not None) == secure


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "hookmq.connection" and r.getMessage().startswith("websocket refused")]


async def test_a_plain_mqtt_client_on_the_websocket_port_is_closed_at_once(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookmq.connection")
    listener = await start(echo, "ws")
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")  # CONNECT, as mosquitto_pub -p <ws port> sends
    # Closed well before the WebSocket handshake timeout would have ended it.
    assert await asyncio.wait_for(reader.read(), OPEN_TIMEOUT / 2) == b""
    writer.close()
    (text,) = refusals(caplog)
    assert text.startswith(f"websocket refused: remote=127.0.0.1:{writer.get_extra_info('sockname')[1]} "
                           f"listener={listener.name} ")
    assert "sent an MQTT CONNECT: this is a WebSocket listener" in text


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients not installed")
async def test_mosquitto_pub_on_the_websocket_port_fails_fast(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hookmq.connection")
    listener = await start(echo, "ws")
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub", "-h", "127.0.0.1", "-p", str(listener.address[1]), "-t", "t", "-m", "m",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), OPEN_TIMEOUT / 2)
    assert process.returncode != 0
    assert b"connection was lost" in err.lower() or b"error" in err.lower()
    assert any("sent an MQTT CONNECT" in text for text in refusals(caplog))


async def test_a_tls_client_on_the_plain_websocket_port_is_told_why(
    start: Start, caplog: pytest.LogCaptureFixture, certs: TestCertificates
) -> None:
    caplog.set_level(logging.INFO, logger="hookmq.connection")
    listener = await start(echo, "ws")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await asyncio.wait_for(asyncio.open_connection(
            *listener.address, ssl=ssl.create_default_context(cafile=certs.cafile), server_hostname="localhost",
        ), OPEN_TIMEOUT / 2)
    await wait_until(lambda: bool(refusals(caplog)))
    assert "sent a TLS handshake: this listener speaks WebSocket without TLS" in refusals(caplog)[0]


async def test_library_info_lines_are_gone_and_refusals_are_ours(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    listener = await start(echo, "ws")
    async with connect(listener.url, subprotocols=["mqtt"]) as websocket:
        await websocket.send(b"\xc0\x00")
        assert await websocket.recv() == b"\xc0\x00"
    with pytest.raises(InvalidStatus):
        await connect(listener.url.replace("/mqtt", "/wrong"), subprotocols=["mqtt"])
    with pytest.raises(InvalidHandshake):
        await connect(listener.url, subprotocols=["amqp"])
    await listener.close_connections(grace=0)
    library = [r for r in caplog.records if r.name.startswith("hookmq.transport.websocket") and r.levelno >= logging.INFO]
    assert library == [], [r.getMessage() for r in library]
    wrong_path, wrong_protocol = refusals(caplog)
    assert "path=/wrong status=404" in wrong_path
    assert 'reason="no MQTT endpoint at /wrong; it is at /mqtt"' in wrong_path
    assert "status=400" in wrong_protocol and "unsupported subprotocol amqp" in wrong_protocol


async def test_library_lines_remain_at_debug(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="hookmq.transport.websocket")
    listener = await start(echo, "ws")
    async with connect(listener.url, subprotocols=["mqtt"]):
        pass
    await listener.close_connections(grace=0)
    assert any(r.levelno == logging.DEBUG and r.name == "hookmq.transport.websocket" for r in caplog.records)
