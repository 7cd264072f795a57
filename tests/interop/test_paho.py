"""paho-mqtt 2.x against hookmq: MQTT 3.1.1 and 5, TCP, WebSocket, TLS and WSS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from interop_helpers import BrokerThread, Paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hookmq.testing.certs import TestCertificates

MakePaho = Callable[..., Paho]
TRANSPORTS = [("tcp", "tcp"), ("websockets", "ws")]


@pytest.mark.parametrize("protocol", [4, 5])
@pytest.mark.parametrize(("transport", "listener"), TRANSPORTS)
def test_paho_round_trip(hookmq_broker: BrokerThread, paho: MakePaho, protocol: int, transport: str,
                         listener: str) -> None:
    port = hookmq_broker.port(listener)
    sub = paho(f"sub-{protocol}-{transport}", protocol, transport).connect(port)
    assert sub.connack_code == 0
    assert sub.subscribe("interop/#", 2)[0].value == 2
    pub = paho(f"pub-{protocol}-{transport}", protocol, transport).connect(port)
    for qos in (0, 1, 2):
        pub.publish(f"interop/q{qos}", f"qos {qos}".encode(), qos)
        message = sub.message()
        assert (message.topic, message.payload, message.qos) == (f"interop/q{qos}", f"qos {qos}".encode(), qos)


@pytest.mark.parametrize(("transport", "listener"), TRANSPORTS)
def test_paho_v5_properties(hookmq_broker: BrokerThread, paho: MakePaho, transport: str, listener: str) -> None:
    port = hookmq_broker.port(listener)
    sub = paho("props-sub", 5, transport).connect(port)
    sub.subscribe("req/#", 1)
    pub = paho("props-pub", 5, transport).connect(port)
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "resp/x"
    props.CorrelationData = b"42"
    props.ContentType = "text/plain"
    props.UserProperty = ("k", "v")
    props.MessageExpiryInterval = 60
    pub.publish("req/x", b"hello", 1, properties=props)
    got = sub.message().properties
    assert got.ResponseTopic == "resp/x"
    assert got.CorrelationData == b"42"
    assert got.ContentType == "text/plain"
    assert got.UserProperty == [("k", "v")]
    assert 0 < got.MessageExpiryInterval <= 60


def test_paho_v5_connack_properties(hookmq_broker: BrokerThread, paho: MakePaho) -> None:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 30
    client = paho("", 5).connect(hookmq_broker.port(), properties=props)
    assert client.connack_code == 0
    connack: Any = client.connack_properties
    assert connack.AssignedClientIdentifier
    assert connack.ReceiveMaximum >= 1


def test_paho_v311_persistent_session(hookmq_broker: BrokerThread, paho: MakePaho) -> None:
    port = hookmq_broker.port()
    first = paho("paho-keeper", 4, clean=False).connect(port)
    assert first.session_present is False
    first.subscribe("keep/#", 1)
    first.stop()
    pub = paho("paho-keep-pub", 4).connect(port)
    pub.publish("keep/x", b"queued", 1)
    again = paho("paho-keeper", 4, clean=False).connect(port)
    assert again.session_present is True
    assert again.message().payload == b"queued"


def test_paho_v5_session_takeover(hookmq_broker: BrokerThread, paho: MakePaho) -> None:
    port = hookmq_broker.port()
    old = paho("paho-twin", 5).connect(port)
    paho("paho-twin", 5).connect(port)
    assert old.disconnected.wait(5)
    assert old.disconnect_from_server
    assert old.disconnect_code is not None and old.disconnect_code.value == 0x8E


@pytest.mark.parametrize("protocol", [4, 5])
def test_paho_will_on_abnormal_close(hookmq_broker: BrokerThread, paho: MakePaho, protocol: int) -> None:
    port = hookmq_broker.port()
    watcher = paho(f"will-watch-{protocol}", protocol).connect(port)
    watcher.subscribe("paho/will", 1)
    doomed = paho(f"will-doomed-{protocol}", protocol).connect(port, will=("paho/will", b"gone", 1, False))
    doomed.drop()
    message = watcher.message()
    assert (message.payload, message.qos) == (b"gone", 1)


def test_paho_retained(hookmq_broker: BrokerThread, paho: MakePaho) -> None:
    port = hookmq_broker.port()
    paho("ret-pub", 4).connect(port).publish("paho/ret", b"kept", 1, retain=True)
    sub = paho("ret-sub", 5).connect(port)
    sub.subscribe("paho/#", 1)
    message = sub.message()
    assert (message.payload, message.retain) == (b"kept", True)


def tls_listeners(certs: TestCertificates, require_client_cert: bool) -> list[dict[str, Any]]:
    """TLS and WSS listeners on free loopback ports."""
    tls: dict[str, Any] = {"certfile": str(certs.server.certfile), "keyfile": str(certs.server.keyfile),
                           "cafile": str(certs.cafile), "require_client_cert": require_client_cert}
    return [{"name": "tls", "type": "tls", "address": "127.0.0.1:0", **tls},
            {"name": "wss", "type": "wss", "address": "127.0.0.1:0", **tls}]


@pytest.mark.parametrize("with_cert", [False, True])
@pytest.mark.parametrize(("transport", "listener"), [("tcp", "tls"), ("websockets", "wss")])
def test_paho_tls_and_wss(start_broker_thread: Callable[..., BrokerThread], paho: MakePaho,
                          interop_certs: TestCertificates, with_cert: bool, transport: str, listener: str) -> None:
    broker = start_broker_thread(listeners=tls_listeners(interop_certs, require_client_cert=with_cert))
    port = broker.port(listener)
    files = interop_certs.client("paho-device") if with_cert else None
    client = paho(f"tls-{listener}-{with_cert}", 5, transport).tls(
        str(interop_certs.cafile), str(files.certfile) if files else None, str(files.keyfile) if files else None)
    client.connect(port)
    assert client.connack_code == 0
    client.subscribe("secure/#", 1)
    client.publish("secure/x", b"encrypted", 1)
    assert client.message().payload == b"encrypted"
