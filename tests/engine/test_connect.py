"""CONNECT handling over real sockets: protocol levels, client ids, limits, capabilities, auth."""

from __future__ import annotations

import pytest
from engine_helpers import Connect, StartBroker, disconnect_reason, port_of

from hookmq import hookimpl
from hookmq.engine import Broker
from hookmq.mqtt.packets import Auth, Connack, Properties
from hookmq.mqtt.reason_codes import ReasonCode
from hookmq.testing.raw import RawClient


@pytest.mark.parametrize("level", [3, 4, 5])
async def test_protocol_levels_accepted(broker: Broker, connect: Connect, level: int) -> None:
    client, connack = await connect(broker, f"level-{level}", level=level)
    assert connack.reason_code == 0
    assert broker.client(f"level-{level}") is not None
    # A round trip proves the session works at this level, not just the handshake.
    await client.subscribe(f"lvl/{level}", 1)
    other, _ = await connect(broker, f"pub-{level}", level=4)
    await other.publish(f"lvl/{level}", b"hi", 1)
    message = await client.receive_message()
    assert (message.topic, message.payload, message.qos) == (f"lvl/{level}", b"hi", 1)


async def test_unknown_protocol_level_refused_with_v3_code(broker: Broker) -> None:
    client = await RawClient.open("127.0.0.1", port_of(broker))
    # CONNECT with protocol name "MQTT" and level 6.
    await client.send_bytes(bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([6, 2, 0, 60, 0, 0]))
    data = await client.reader.read(16)
    assert data == b"\x20\x02\x00\x01"
    await client.close()


async def test_empty_client_id_v5_gets_assigned_identifier(broker: Broker, connect: Connect) -> None:
    _client, connack = await connect(broker, "", level=5)
    assert connack.reason_code == 0
    assigned = connack.properties.assigned_client_identifier
    assert assigned
    assert broker.client(assigned) is not None


async def test_empty_client_id_v311_clean_session_accepted(broker: Broker, connect: Connect) -> None:
    _client, connack = await connect(broker, "", level=4, clean_start=True)
    assert connack.reason_code == 0
    assert broker.info()["clients_connected"] == 1


async def test_empty_client_id_v311_persistent_refused(broker: Broker, connect: Connect) -> None:
    client, connack = await connect(broker, "", level=4, clean_start=False)
    assert connack.reason_code == 0x02
    assert await client.closed_within(3) == []


async def test_empty_client_id_v31_refused(broker: Broker, connect: Connect) -> None:
    _client, connack = await connect(broker, "", level=3)
    assert connack.reason_code == 0x02


@pytest.mark.parametrize(("level", "code"), [(5, ReasonCode.CLIENT_IDENTIFIER_NOT_VALID), (4, 0x02)])
async def test_client_id_too_long_refused(start_broker: StartBroker, connect: Connect, level: int,
                                          code: int) -> None:
    broker = await start_broker({"client_id_max_length": 23})
    _ok, accepted = await connect(broker, "x" * 23, level=level)
    assert accepted.reason_code == 0
    _client, connack = await connect(broker, "y" * 24, level=level)
    assert connack.reason_code == code


@pytest.mark.parametrize(("level", "code"), [(5, ReasonCode.QUOTA_EXCEEDED), (4, 0x03)])
async def test_max_connections_answered(start_broker: StartBroker, connect: Connect, level: int, code: int) -> None:
    broker = await start_broker({"max_connections": 1})
    _first, ok = await connect(broker, "first", level=level)
    assert ok.reason_code == 0
    second, connack = await connect(broker, "second", level=level)
    assert connack.reason_code == code
    assert await second.closed_within(3) == []
    assert broker.client("second") is None


async def test_max_keepalive_answered_with_server_keep_alive(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"max_keepalive": 2})
    _client, connack = await connect(broker, "ka", keep_alive=60)
    assert connack.properties.server_keep_alive == 2
    _zero, connack0 = await connect(broker, "ka0", keep_alive=0)
    assert connack0.properties.server_keep_alive == 2
    _low, low = await connect(broker, "ka-low", keep_alive=1)
    assert low.properties.server_keep_alive is None


@pytest.mark.parametrize("level", [4, 5])
async def test_keepalive_zero_honoured_by_default(broker: Broker, connect: Connect, level: int) -> None:
    _client, connack = await connect(broker, f"no-ka-{level}", level=level, keep_alive=0)
    # Keep Alive 0 switches the mechanism off; the default configuration sets no maximum.
    assert connack.properties.server_keep_alive is None
    view = broker.client(f"no-ka-{level}")
    assert view is not None and view["keep_alive"] == 0


async def test_keepalive_enforced_at_one_and_a_half_times(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "sleepy", level=5, keep_alive=1)
    # 1.5 s grace plus the half-second housekeeping tick: gone well within 4 s.
    assert await disconnect_reason(client, 4.0) == ReasonCode.KEEP_ALIVE_TIMEOUT
    assert broker.client("sleepy") is None


async def test_keepalive_respected_when_client_pings(broker: Broker, connect: Connect) -> None:
    from hookmq.mqtt.packets import Pingreq, Pingresp

    client, _ = await connect(broker, "pinger", level=4, keep_alive=1)
    for _ in range(5):
        await client.send(Pingreq())
        assert isinstance(await client.recv(2), Pingresp)
        await client.nothing_within(0.5)
    assert broker.client("pinger") is not None


async def test_capabilities_advertised_in_connack(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({
        "maximum_qos": 1, "retain_available": False, "wildcard_subscription_available": False,
        "shared_subscription_available": False, "subscription_identifier_available": False,
        "max_packet_size": 4096, "receive_maximum": 7, "topic_alias_maximum": 3,
    })
    _client, connack = await connect(broker, "caps")
    props = connack.properties
    assert props.maximum_qos == 1
    assert props.retain_available == 0
    assert props.wildcard_subscription_available == 0
    assert props.shared_subscription_available == 0
    assert props.subscription_identifier_available == 0
    assert props.maximum_packet_size == 4096
    assert props.receive_maximum == 7
    assert props.topic_alias_maximum == 3


async def test_capabilities_enforced_on_subscribe(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"maximum_qos": 1, "wildcard_subscription_available": False,
                                 "shared_subscription_available": False})
    client, _ = await connect(broker, "caps-sub")
    assert (await client.subscribe("a/b", 2)).reason_codes == (1,)
    assert (await client.subscribe("a/+", 0)).reason_codes == (ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED,)
    assert (await client.subscribe("$share/g/a", 0)).reason_codes == (
        ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED,)


async def test_default_capabilities_not_restated(broker: Broker, connect: Connect) -> None:
    _client, connack = await connect(broker, "defaults")
    props = connack.properties
    # Absent means "available" / "2"; the server need not send defaults.
    assert props.maximum_qos is None
    assert props.retain_available is None
    # The default packet size is bounded (1 MiB), so v5 clients are told it.
    assert props.maximum_packet_size == 1_048_576


async def test_request_response_information(broker: Broker, connect: Connect) -> None:
    _client, connack = await connect(broker, "rr", properties=Properties(request_response_information=1))
    info = connack.properties.response_information
    assert info
    _plain, plain = await connect(broker, "no-rr")
    assert plain.properties.response_information is None


class ChallengeAuth:
    """Enhanced authentication: the server challenges, the client must answer "s3cret"."""

    def __init__(self) -> None:
        self.seen: list[bytes | None] = []

    @hookimpl
    def on_auth_packet(self, client: object, packet: Auth) -> Auth | None:
        if packet.properties.authentication_method != "challenge":
            return None
        self.seen.append(packet.properties.authentication_data)
        data = packet.properties.authentication_data
        if data == b"hello":
            return Auth(ReasonCode.CONTINUE_AUTHENTICATION,
                        Properties(authentication_method="challenge", authentication_data=b"prove it"))
        if data == b"s3cret":
            return Auth(ReasonCode.SUCCESS,
                        Properties(authentication_method="challenge", authentication_data=b"welcome"))
        return Auth(ReasonCode.NOT_AUTHORIZED, Properties(authentication_method="challenge"))


async def _begin_challenge(broker: Broker) -> RawClient:
    from hookmq.mqtt.packets import Connect as ConnectPacket

    client = await RawClient.open("127.0.0.1", port_of(broker), 5)
    props = Properties(authentication_method="challenge", authentication_data=b"hello")
    await client.send(ConnectPacket("enh", 5, "MQTT", True, 60, properties=props))
    challenge = await client.expect(Auth)
    assert challenge.reason_code == ReasonCode.CONTINUE_AUTHENTICATION
    assert challenge.properties.authentication_data == b"prove it"
    return client


async def test_enhanced_authentication_success(start_broker: StartBroker) -> None:
    plugin = ChallengeAuth()
    broker = await start_broker(extra_plugins={"challenge_auth": plugin})
    client = await _begin_challenge(broker)
    await client.send(Auth(ReasonCode.CONTINUE_AUTHENTICATION,
                           Properties(authentication_method="challenge", authentication_data=b"s3cret")))
    connack = await client.expect(Connack)
    assert connack.reason_code == 0
    assert connack.properties.authentication_method == "challenge"
    assert connack.properties.authentication_data == b"welcome"
    assert plugin.seen == [b"hello", b"s3cret"]
    await client.disconnect()


async def test_enhanced_authentication_failure(start_broker: StartBroker) -> None:
    broker = await start_broker(extra_plugins={"challenge_auth": ChallengeAuth()})
    client = await _begin_challenge(broker)
    await client.send(Auth(ReasonCode.CONTINUE_AUTHENTICATION,
                           Properties(authentication_method="challenge", authentication_data=b"guess")))
    connack = await client.expect(Connack)
    assert connack.reason_code == ReasonCode.NOT_AUTHORIZED
    assert await client.closed_within(3) == []
    assert broker.client("enh") is None


async def test_enhanced_authentication_unknown_method(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker(extra_plugins={"challenge_auth": ChallengeAuth()})
    _client, connack = await connect(broker, "m", properties=Properties(authentication_method="kerberos"))
    assert connack.reason_code == ReasonCode.BAD_AUTHENTICATION_METHOD
