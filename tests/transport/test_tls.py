"""TLS listeners: server certificates, optional and required client certificates, real clients."""

from __future__ import annotations

import asyncio
import logging
import shutil
import ssl

import pytest
from transport_helpers import Captured, MiniBroker, Start, echo, tls_options, wait_until

from hookmq.testing.certs import CertificateFiles, TestCertificates
from hookmq.transport import Connection, ListenerConfig, start_listeners

pytestmark = pytest.mark.timeout(30)


def client_context(certs: TestCertificates, client: CertificateFiles | None = None) -> ssl.SSLContext:
    """A client context trusting the test CA, presenting `client` when given."""
    context = ssl.create_default_context(cafile=certs.cafile)
    if client is not None:
        context.load_cert_chain(client.certfile, client.keyfile)
    return context


async def refused(address: tuple[str, int], context: ssl.SSLContext) -> bool:
    """True when a TLS client is turned away, during the handshake or at its first read."""
    try:
        reader, writer = await asyncio.open_connection(*address, ssl=context, server_hostname="localhost")
    except (ssl.SSLError, ConnectionError):
        return True
    try:
        writer.write(b"hello")
        data = await reader.read(5)
    except (ssl.SSLError, ConnectionError):
        return True
    finally:
        writer.close()
    return data == b""


async def test_tls_echo_without_client_certificate(start: Start, certs: TestCertificates) -> None:
    listener = await start(echo, "tls", **tls_options(certs))
    assert listener.url.startswith("mqtts://127.0.0.1:")
    reader, writer = await asyncio.open_connection(
        *listener.address, ssl=client_context(certs), server_hostname="localhost"
    )
    writer.write(b"\xc0\x00")
    assert await reader.readexactly(2) == b"\xc0\x00"
    assert writer.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
    writer.close()


async def test_optional_client_certificate_is_exposed(
    start: Start, captured: Captured, certs: TestCertificates
) -> None:
    listener = await start(captured, "tls", **tls_options(certs, cafile=certs.cafile))
    alice = certs.client("alice", ["alice@example.com", "device-7.example.com"])
    _reader, writer = await asyncio.open_connection(
        *listener.address, ssl=client_context(certs, alice), server_hostname="localhost"
    )
    connection = await captured.next()
    certificate = connection.tls_peer_certificate
    assert certificate is not None
    assert (("commonName", "alice"),) in certificate["subject"]
    assert ("email", "alice@example.com") in certificate["subjectAltName"]
    assert ("DNS", "device-7.example.com") in certificate["subjectAltName"]
    writer.close()


async def test_optional_client_certificate_may_be_absent(
    start: Start, captured: Captured, certs: TestCertificates
) -> None:
    listener = await start(captured, "tls", **tls_options(certs, cafile=certs.cafile))
    _reader, writer = await asyncio.open_connection(
        *listener.address, ssl=client_context(certs), server_hostname="localhost"
    )
    connection = await captured.next()
    assert connection.tls_peer_certificate is None
    writer.close()


async def test_required_client_certificate_refuses_a_client_without_one(
    start: Start, captured: Captured, certs: TestCertificates
) -> None:
    listener = await start(captured, "tls", **tls_options(certs, cafile=certs.cafile, require_client_cert=True))
    assert await refused(listener.address, client_context(certs))
    assert captured.connections.empty()  # the engine never saw it
    bob = certs.client("bob")
    _reader, writer = await asyncio.open_connection(
        *listener.address, ssl=client_context(certs, bob), server_hostname="localhost"
    )
    connection = await captured.next()
    assert connection.tls_peer_certificate is not None
    assert (("commonName", "bob"),) in connection.tls_peer_certificate["subject"]
    writer.close()


async def test_certificate_from_another_ca_is_refused(
    start: Start, captured: Captured, certs: TestCertificates
) -> None:
    listener = await start(captured, "tls", **tls_options(certs, cafile=certs.cafile, require_client_cert=True))
    assert await refused(listener.address, client_context(certs, certs.stranger("mallory")))
    assert captured.connections.empty()


async def test_optional_client_certificate_is_still_verified(
    start: Start, captured: Captured, certs: TestCertificates
) -> None:
    listener = await start(captured, "tls", **tls_options(certs, cafile=certs.cafile))
    assert await refused(listener.address, client_context(certs, certs.stranger("eve")))
    assert captured.connections.empty()


async def test_minimum_version_is_enforced(start: Start, captured: Captured, certs: TestCertificates) -> None:
    listener = await start(captured, "tls", **tls_options(certs, tls_min_version="1.3"))
    old_client = client_context(certs)
    old_client.maximum_version = ssl.TLSVersion.TLSv1_2
    assert await refused(listener.address, old_client)
    assert captured.connections.empty()


async def test_tls_handler_return_flushes_everything(start: Start, certs: TestCertificates) -> None:
    payload = bytes(range(256)) * 8192

    async def send_and_leave(connection: Connection) -> None:
        for offset in range(0, len(payload), 1000):
            connection.write(payload[offset:offset + 1000])

    listener = await start(send_and_leave, "tls", **tls_options(certs))
    reader, writer = await asyncio.open_connection(
        *listener.address, ssl=client_context(certs), server_hostname="localhost"
    )
    assert await reader.readexactly(len(payload)) == payload
    assert await reader.read() == b""
    writer.close()


async def test_handshake_failure_does_not_stop_the_listener(start: Start, certs: TestCertificates) -> None:
    listener = await start(echo, "tls", **tls_options(certs))
    _reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"this is not a TLS ClientHello\r\n\r\n")
    writer.close()
    reader, writer = await asyncio.open_connection(
        *listener.address, ssl=client_context(certs), server_hostname="localhost"
    )
    writer.write(b"ok")
    assert await reader.readexactly(2) == b"ok"
    writer.close()


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients not installed")
@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
async def test_mosquitto_pub_with_client_certificate(start: Start, certs: TestCertificates, version: str) -> None:
    broker = MiniBroker()
    listener = await start(broker, "tls", **tls_options(certs, cafile=certs.cafile, require_client_cert=True))
    client = certs.client("sensor-1")
    process = await asyncio.create_subprocess_exec(
        "mosquitto_pub", "-h", "localhost", "-p", str(listener.address[1]), "-V", version,
        "--cafile", str(certs.cafile), "--cert", str(client.certfile), "--key", str(client.keyfile),
        "-t", "sensors/1", "-m", "21.5",
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, err.decode()
    assert broker.published == [("sensors/1", b"21.5")]
    (certificate,) = broker.peer_certificates
    assert certificate is not None
    assert (("commonName", "sensor-1"),) in certificate["subject"]


def handshake_failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "hookmq.connection" and r.getMessage().startswith("tls handshake failed")]


async def test_handshake_failures_are_logged_with_the_peer_and_the_reason(
    start: Start, certs: TestCertificates, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookmq.connection")
    listener = await start(echo, "tls", **tls_options(certs, cafile=certs.cafile, require_client_cert=True))
    # A plain client on the TLS port, then a TLS client without the required certificate.
    reader, writer = await asyncio.open_connection(*listener.address)
    plain_port = writer.get_extra_info("sockname")[1]
    writer.write(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
    assert await reader.read() == b""
    writer.close()
    assert await refused(listener.address, client_context(certs))
    await wait_until(lambda: len(handshake_failures(caplog)) == 2)
    plain, no_certificate = handshake_failures(caplog)
    assert plain.levelno == logging.WARNING
    assert plain.getMessage().startswith(f"tls handshake failed: remote=127.0.0.1:{plain_port} listener={listener.name} ")
    assert "WRONG_VERSION_NUMBER" in plain.getMessage()
    assert no_certificate.levelno == logging.WARNING
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in no_certificate.getMessage()


async def test_a_bare_close_during_the_handshake_is_info(
    start: Start, certs: TestCertificates, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookmq.connection")
    listener = await start(echo, "tls", **tls_options(certs))
    _reader, writer = await asyncio.open_connection(*listener.address)
    writer.close()
    await wait_until(lambda: len(handshake_failures(caplog)) == 1)
    (record,) = handshake_failures(caplog)
    assert record.levelno == logging.INFO
    assert "closed the connection during the TLS handshake" in record.getMessage()


def test_handshake_failures_are_logged_on_uvloop(certs: TestCertificates, caplog: pytest.LogCaptureFixture) -> None:
    uvloop = pytest.importorskip("uvloop")
    caplog.set_level(logging.INFO, logger="hookmq.connection")

    async def scenario() -> bytes:
        config = ListenerConfig(name="secure", type="tls", address="127.0.0.1:0", **tls_options(certs))  # type: ignore[arg-type]
        (listener,) = await start_listeners([config], echo)
        try:
            _reader, writer = await asyncio.open_connection(*listener.address)
            writer.close()  # a bare close, before any byte
            await wait_until(lambda: len(handshake_failures(caplog)) == 1)
            reader, writer = await asyncio.open_connection(*listener.address)
            writer.write(b"GET / HTTP/1.1\r\n\r\n")
            await reader.read()
            writer.close()
            reader, writer = await asyncio.open_connection(
                *listener.address, ssl=client_context(certs), server_hostname="localhost"
            )
            writer.write(b"ok")
            answer = await reader.readexactly(2)
            writer.close()
            return answer
        finally:
            await listener.aclose()

    assert uvloop.run(scenario()) == b"ok"
    bare, http = handshake_failures(caplog)
    assert bare.levelno == logging.INFO and "closed the connection during the TLS handshake" in bare.getMessage()
    assert http.levelno == logging.WARNING
    assert "listener=secure" in http.getMessage() and "timeout" not in http.getMessage()
