"""start_listeners: several listeners at once, URLs, the banner, start-up failures, resilience."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from pathlib import Path

import pytest
from transport_helpers import echo, tls_options

from hookmq.testing.certs import TestCertificates
from hookmq.transport import ListenerConfig, RunningListener, banner_lines, start_listeners
from hookmq.transport.tls import TlsMaterialError

pytestmark = pytest.mark.timeout(60)


def configs(certs: TestCertificates) -> list[ListenerConfig]:
    """One listener of each type on 127.0.0.1 with free ports."""
    tls = tls_options(certs, cafile=certs.cafile)
    return [
        ListenerConfig(name="plain", type="tcp", address="127.0.0.1:0"),
        ListenerConfig(name="secure", type="tls", address="127.0.0.1:0", **tls),
        ListenerConfig(name="browser", type="ws", address="127.0.0.1:0", path="/ws"),
        ListenerConfig(
            name="browser-tls", type="wss", address="127.0.0.1:0", require_client_cert=True, **tls
        ),
    ]


async def close_all(listeners: list[RunningListener]) -> None:
    for listener in listeners:
        await listener.aclose()


async def test_every_type_starts_on_its_own_free_port(certs: TestCertificates) -> None:
    listeners = await start_listeners(configs(certs), echo)
    try:
        assert [(item.name, item.kind) for item in listeners] == [
            ("plain", "tcp"), ("secure", "tls"), ("browser", "ws"), ("browser-tls", "wss"),
        ]
        ports = [item.address[1] for item in listeners]
        assert all(port > 0 for port in ports) and len(set(ports)) == 4
        assert [item.url for item in listeners] == [
            f"mqtt://127.0.0.1:{ports[0]}",
            f"mqtts://127.0.0.1:{ports[1]}",
            f"ws://127.0.0.1:{ports[2]}/ws",
            f"wss://127.0.0.1:{ports[3]}/mqtt",
        ]
    finally:
        await close_all(listeners)


async def test_banner_has_one_aligned_line_per_listener(certs: TestCertificates) -> None:
    listeners = await start_listeners(configs(certs), echo)
    try:
        lines = banner_lines(listeners)
    finally:
        await close_all(listeners)
    assert len(lines) == 4
    for line, listener in zip(lines, listeners, strict=True):
        assert line.startswith(listener.name)
        assert listener.url in line
        assert "bound to 127.0.0.1" in line
    assert "client certificate optional" in lines[1]
    assert "client certificate required" in lines[3]
    assert "TLS" not in lines[0] and "TLS" not in lines[2]
    assert len({line.index(" (") for line in lines}) == 1  # columns padded to one width


async def test_wildcard_listener_url_points_at_loopback() -> None:
    (listener,) = await start_listeners([ListenerConfig(name="any", type="ws", address=":0")], echo)
    try:
        assert listener.all_interfaces
        assert listener.url == f"ws://127.0.0.1:{listener.address[1]}/mqtt"
        assert "all interfaces" in banner_lines([listener])[0]
    finally:
        await listener.aclose()


async def test_duplicate_names_are_refused() -> None:
    twice = [ListenerConfig(name="same", type="tcp", address="127.0.0.1:0")] * 2
    with pytest.raises(ValueError, match="same"):
        await start_listeners(twice, echo)


async def test_a_busy_port_names_the_listener_and_closes_the_others() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        busy = squatter.getsockname()[1]
        first = ListenerConfig(name="first", type="tcp", address="127.0.0.1:0")
        clash = ListenerConfig(name="clash", type="ws", address=f"127.0.0.1:{busy}")
        started: list[RunningListener] = []

        async def remember(connection: object) -> None:
            raise AssertionError("no client should get this far")

        with pytest.raises(OSError, match=f"listener 'clash' \\(ws\\) cannot listen on '127.0.0.1:{busy}'"):
            started = await start_listeners([first, clash], remember)
        assert started == []


async def test_missing_certificate_file_fails_at_start(tmp_path: Path) -> None:
    config = ListenerConfig(
        name="tls", type="tls", address="127.0.0.1:0", certfile=tmp_path / "nope.pem", keyfile=tmp_path / "nope.key"
    )
    with pytest.raises(TlsMaterialError, match=r"listener 'tls' \(tls\): certfile .*nope\.pem: file not found"):
        await start_listeners([config], echo)


async def test_running_out_of_file_descriptors_does_not_stop_accepting(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with log.open("wb") as log_file:  # a file, not a pipe: a full pipe would block the server's logging
        server = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).with_name("emfile_server.py")), "40",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log_file,
            cwd=Path(__file__).parent,
        )
    assert server.stdout is not None and server.stdin is not None
    try:
        port = int(await asyncio.wait_for(server.stdout.readline(), 20))
        # More clients than the server has descriptors: some accepts fail with EMFILE.
        crowd = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]
        await asyncio.sleep(0.3)
        for _reader, writer in crowd:
            writer.close()
        # asyncio retries accept one second after EMFILE; the listener must then serve again.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"alive")
        assert await asyncio.wait_for(reader.readexactly(5), 20) == b"alive"
        writer.close()
    finally:
        server.stdin.close()
        try:
            await asyncio.wait_for(server.wait(), 10)
        except TimeoutError:
            server.kill()
            await server.wait()
    # The failed accepts really happened (asyncio logs them), and the listener outlived them.
    assert b"Too many open files" in log.read_bytes()


def test_listeners_run_on_uvloop(certs: TestCertificates) -> None:
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> list[bytes]:
        from websockets.asyncio.client import connect

        listeners = await start_listeners(configs(certs)[:3], echo)
        try:
            answers = []
            reader, writer = await asyncio.open_connection(*listeners[0].address)
            writer.write(b"tcp")
            answers.append(await reader.readexactly(3))
            writer.close()
            context = ssl.create_default_context(cafile=certs.cafile)
            reader, writer = await asyncio.open_connection(*listeners[1].address, ssl=context)
            writer.write(b"tls")
            answers.append(await reader.readexactly(3))
            writer.close()
            async with connect(listeners[2].url, subprotocols=["mqtt"]) as websocket:
                await websocket.send(b"ws")
                answers.append(await websocket.recv())
            return answers
        finally:
            await close_all(listeners)

    assert uvloop.run(scenario()) == [b"tcp", b"tls", b"ws"]
