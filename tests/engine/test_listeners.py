"""The engine behind every listener kind: TCP, TLS, WebSocket and WSS, with and without client certificates."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import pytest
from engine_helpers import Connect, StartBroker, port_of
from websockets.asyncio.client import connect as ws_connect

from hookmq.engine import Broker
from hookmq.mqtt.codec import Decoder, encode
from hookmq.mqtt.packets import Connack, Publish, Suback, Subscribe, Subscription, SubscriptionOptions
from hookmq.mqtt.packets import Connect as ConnectPacket
from hookmq.testing.certs import TestCertificates
from hookmq.testing.raw import RawClient


def tls_listeners(certs: TestCertificates, require_client_cert: bool) -> list[dict[str, Any]]:
    """A TLS and a WSS listener with the test certificates, plus plain TCP for helpers."""
    tls: dict[str, Any] = {"certfile": str(certs.server.certfile), "keyfile": str(certs.server.keyfile),
                           "cafile": str(certs.cafile), "require_client_cert": require_client_cert}
    return [
        {"name": "tcp", "type": "tcp", "address": "127.0.0.1:0"},
        {"name": "tls", "type": "tls", "address": "127.0.0.1:0", **tls},
        {"name": "wss", "type": "wss", "address": "127.0.0.1:0", **tls},
    ]


def client_context(certs: TestCertificates, with_cert: bool) -> ssl.SSLContext:
    """A client TLS context trusting the test CA, optionally presenting a client certificate."""
    context = ssl.create_default_context(cafile=str(certs.cafile))
    if with_cert:
        files = certs.client("device-1")
        context.load_cert_chain(str(files.certfile), str(files.keyfile))
    return context


async def tls_client(broker: Broker, context: ssl.SSLContext, client_id: str) -> tuple[RawClient, Connack]:
    """A raw MQTT 5 client over the broker's TLS listener."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(broker, "tls"), ssl=context,
                                                   server_hostname="localhost")
    client = RawClient(reader, writer, 5)
    await client.send(ConnectPacket(client_id, 5, keep_alive=30))
    return client, await client.expect(Connack)


async def ws_round_trip(uri: str, client_id: str, context: ssl.SSLContext | None = None) -> bytes:
    """Connect over WebSocket, subscribe, publish to itself at QoS 0 and return the payload received."""
    decoder = Decoder(protocol_level=5)
    received: list[Any] = []
    async with ws_connect(uri, subprotocols=["mqtt"], ssl=context) as ws:  # type: ignore[list-item]
        async def next_packet() -> Any:
            while not received:
                received.extend(decoder.feed(await asyncio.wait_for(ws.recv(), 5)))
            return received.pop(0)

        await ws.send(encode(ConnectPacket(client_id, 5), 5))
        assert isinstance(await next_packet(), Connack)
        await ws.send(encode(Subscribe(1, (Subscription("ws/echo", SubscriptionOptions(0)),)), 5))
        assert isinstance(await next_packet(), Suback)
        await ws.send(encode(Publish("ws/echo", b"over websocket", 0), 5))
        message = await next_packet()
        assert isinstance(message, Publish)
        return message.payload


async def test_tcp_listener(broker: Broker, connect: Connect) -> None:
    client, connack = await connect(broker, "tcp-client")
    assert connack.reason_code == 0
    assert broker.client("tcp-client")["listener"] == "tcp"  # type: ignore[index]
    await client.subscribe("t", 0)


async def test_websocket_listener(broker: Broker) -> None:
    payload = await ws_round_trip(f"ws://127.0.0.1:{port_of(broker, 'ws')}/mqtt", "ws-client")
    assert payload == b"over websocket"


async def test_tls_listener_without_client_certificate(start_broker: StartBroker, certs: TestCertificates) -> None:
    broker = await start_broker(listeners=tls_listeners(certs, require_client_cert=False))
    client, connack = await tls_client(broker, client_context(certs, with_cert=False), "tls-anon")
    assert connack.reason_code == 0
    view = broker.connected["tls-anon"]
    assert view.listener == "tls"
    assert view.tls_peer_certificate is None
    await client.disconnect()


async def test_tls_listener_with_client_certificate(start_broker: StartBroker, certs: TestCertificates) -> None:
    broker = await start_broker(listeners=tls_listeners(certs, require_client_cert=True))
    client, connack = await tls_client(broker, client_context(certs, with_cert=True), "tls-cert")
    assert connack.reason_code == 0
    peer = broker.connected["tls-cert"].tls_peer_certificate
    assert peer is not None
    assert ("commonName", "device-1") in [rdn[0] for rdn in peer["subject"]]
    await client.disconnect()


async def test_tls_listener_requiring_certificate_refuses_without(start_broker: StartBroker,
                                                                   certs: TestCertificates) -> None:
    broker = await start_broker(listeners=tls_listeners(certs, require_client_cert=True))
    with pytest.raises((ssl.SSLError, ConnectionError, EOFError, asyncio.IncompleteReadError)):
        client, _ = await tls_client(broker, client_context(certs, with_cert=False), "tls-refused")
        await client.recv(3)
    assert "tls-refused" not in broker.connected


@pytest.mark.parametrize("with_cert", [False, True])
async def test_wss_listener(start_broker: StartBroker, certs: TestCertificates, with_cert: bool) -> None:
    broker = await start_broker(listeners=tls_listeners(certs, require_client_cert=with_cert))
    uri = f"wss://localhost:{port_of(broker, 'wss')}/mqtt"
    payload = await ws_round_trip(uri, f"wss-{with_cert}", client_context(certs, with_cert))
    assert payload == b"over websocket"
