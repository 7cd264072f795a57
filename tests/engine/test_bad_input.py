"""Bad input over real sockets: the offending client is closed, everyone else carries on."""

from __future__ import annotations

import asyncio
import socket

import pytest
from engine_helpers import Connect, StartBroker, disconnect_reason, eventually, port_of, still_serves

from hookmq.engine import Broker
from hookmq.mqtt.packets import Connect as ConnectPacket
from hookmq.mqtt.packets import Pingreq, Pingresp, Properties, Publish
from hookmq.mqtt.reason_codes import ReasonCode
from hookmq.testing.raw import RawClient


@pytest.mark.parametrize("level", [4, 5])
async def test_second_connect_closes_client(broker: Broker, connect: Connect, level: int) -> None:
    bystander, _ = await connect(broker, "bystander", level=level)
    client, _ = await connect(broker, "twice", level=level)
    await client.send(ConnectPacket("twice", level))
    expected = ReasonCode.PROTOCOL_ERROR if level == 5 else None
    assert await disconnect_reason(client, 3) == expected
    await bystander.send(Pingreq())
    assert isinstance(await bystander.recv(), Pingresp)
    assert await still_serves(broker)


@pytest.mark.parametrize("level", [4, 5])
async def test_publish_qos3_closes_client(broker: Broker, connect: Connect, level: int) -> None:
    client, _ = await connect(broker, "qos3", level=level)
    # PUBLISH with both QoS bits set, topic "a", packet id 1.
    await client.send_bytes(bytes([0x36, 5 if level == 4 else 6, 0, 1]) + b"a" + b"\x00\x01"
                            + (b"\x00" if level == 5 else b""))
    reason = await disconnect_reason(client, 3)
    assert reason == (ReasonCode.MALFORMED_PACKET if level == 5 else None)
    assert broker.client("qos3") is None
    assert await still_serves(broker)


async def test_reserved_flag_bits_close_client(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "reserved")
    # SUBSCRIBE must have flags 0b0010; 0b0000 is malformed.
    await client.send_bytes(bytes([0x80, 7, 0, 1, 0, 0, 1]) + b"a" + b"\x00")
    assert await disconnect_reason(client, 3) == ReasonCode.MALFORMED_PACKET
    assert await still_serves(broker)


@pytest.mark.parametrize("topic", ["wild/+", "wild/#"])
async def test_publish_to_wildcard_topic_closes_client(broker: Broker, connect: Connect, topic: str) -> None:
    client, _ = await connect(broker, "wild")
    await client.send(Publish(topic, b"x", 0))
    assert await disconnect_reason(client, 3) in (ReasonCode.TOPIC_NAME_INVALID, ReasonCode.MALFORMED_PACKET)
    assert await still_serves(broker)


async def test_publish_to_wildcard_topic_closes_v311_client(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "wild4", level=4)
    await client.send(Publish("wild/+", b"x", 0))
    assert await client.closed_within(3) == []
    assert await still_serves(broker)


async def test_publish_to_sys_topic_refused_but_client_keeps_working(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "sys-writer")
    ack = await client.publish("$SYS/x", b"fake", 1)
    assert ack is not None and ack.reason_code == ReasonCode.NOT_AUTHORIZED
    suback = await client.subscribe("after/sys", 0)
    assert suback.reason_codes == (0,)
    await client.send(Pingreq())
    assert isinstance(await client.recv(), Pingresp)


async def test_garbage_bytes_before_connect(broker: Broker) -> None:
    client = await RawClient.open("127.0.0.1", port_of(broker))
    await client.send_bytes(b"\xff\xff\xff\xff\xff\xff")  # a remaining length longer than four bytes
    assert await client.closed_within(3) == []
    assert await still_serves(broker)


async def test_http_request_on_mqtt_port_closed(start_broker: StartBroker) -> None:
    broker = await start_broker({"connect_timeout": 1.0})
    client = await RawClient.open("127.0.0.1", port_of(broker))
    await client.send_bytes(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await client.closed_within(3) == []
    assert await still_serves(broker)


async def test_garbage_bytes_after_connect(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "noisy")
    await client.send_bytes(b"\x00\xff\xff\xff\xff\xff")
    assert await disconnect_reason(client, 3) in (ReasonCode.MALFORMED_PACKET, ReasonCode.PROTOCOL_ERROR)
    assert await still_serves(broker)


async def test_first_packet_not_connect(broker: Broker) -> None:
    client = await RawClient.open("127.0.0.1", port_of(broker))
    await client.send(Pingreq())
    assert await client.closed_within(3) == []
    assert broker.info()["clients_connected"] == 0


async def test_silent_connection_closed_after_connect_timeout(start_broker: StartBroker) -> None:
    broker = await start_broker({"connect_timeout": 0.5})
    client = await RawClient.open("127.0.0.1", port_of(broker))
    assert await client.closed_within(3) == []


async def test_slow_subscriber_does_not_grow_memory(start_broker: StartBroker, connect: Connect) -> None:
    limit = 8192
    broker = await start_broker({"max_write_buffer": limit})
    # A subscriber with a tiny receive buffer that never reads.
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port_of(broker)))
    reader, writer = await asyncio.open_connection(sock=sock)
    slow = RawClient(reader, writer, 5)
    await slow.send(ConnectPacket("slowpoke", 5))
    await slow.recv()
    await slow.subscribe("flood", 0)
    pub, _ = await connect(broker, "flooder")
    payload = b"z" * 1024
    for _ in range(3000):
        await pub.send(Publish("flood", payload, 0))
    ack = await pub.publish("flood", b"still fine", 1)  # the publisher is unaffected
    assert ack is not None and ack.reason_code < 0x80
    assert broker.info()["messages_dropped"] > 0
    slow_client = broker.connected["slowpoke"]
    assert slow_client.conn.buffered_size() <= limit + 2 * (len(payload) + 16)
    await slow.close()
    assert await eventually(lambda: "slowpoke" not in broker.connected, 3)


async def test_client_publish_with_subscription_identifier_is_a_protocol_error(broker: Broker,
                                                                              connect: Connect) -> None:
    """MQTT-3.3.4-6: only the server sends Subscription Identifiers in PUBLISH (issue 19 §5)."""
    watcher, _ = await connect(broker, "subid-watch")
    await watcher.subscribe("subid/#", 0)
    client, _ = await connect(broker, "subid-sender")
    await client.send(Publish("subid/x", b"x", 0, properties=Properties(subscription_identifiers=(7,))))
    assert await disconnect_reason(client, 3) == ReasonCode.PROTOCOL_ERROR
    assert await watcher.nothing_within(0.3)
    assert await still_serves(broker)
