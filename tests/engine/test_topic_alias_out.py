"""Topic aliases towards MQTT 5 clients that accept them (Topic Alias Maximum in CONNECT)."""

from __future__ import annotations

from engine_helpers import Connect

from hookmq.engine import Broker
from hookmq.mqtt.packets import Properties


async def test_aliases_assigned_per_topic_up_to_the_client_maximum(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "aliased", properties=Properties(topic_alias_maximum=2))
    await sub.subscribe("t/#", 1)
    pub, _ = await connect(broker, "alias-pub")
    for topic in ("t/a", "t/a", "t/b", "t/c", "t/a"):
        await pub.publish(topic, topic.encode(), 1)
    received = [await sub.receive_message() for _ in range(5)]
    wire = [(m.topic, m.properties.topic_alias, m.payload) for m in received]
    assert wire == [
        ("t/a", 1, b"t/a"),   # first use: topic and alias
        ("", 1, b"t/a"),      # then the alias alone
        ("t/b", 2, b"t/b"),
        ("t/c", None, b"t/c"),  # the client's maximum (2) is used up: plain topic
        ("", 1, b"t/a"),
    ]


async def test_no_aliases_for_clients_that_did_not_ask(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "plain-v5")
    await sub.subscribe("p/#", 0)
    pub, _ = await connect(broker, "plain-pub")
    for _ in range(2):
        await pub.publish("p/x", b"1")
    for _ in range(2):
        message = await sub.receive_message()
        assert message.topic == "p/x" and message.properties.topic_alias is None


async def test_aliases_restart_on_a_new_connection(broker: Broker, connect: Connect) -> None:
    """Alias mappings live as long as the network connection: a resumed session starts afresh."""
    persist = Properties(topic_alias_maximum=5, session_expiry_interval=60)
    sub, _ = await connect(broker, "again", properties=persist)
    await sub.subscribe("r/#", 1)
    pub, _ = await connect(broker, "again-pub")
    await pub.publish("r/x", b"1", 1)
    assert (await sub.receive_message()).topic == "r/x"
    await sub.disconnect()
    again, _ = await connect(broker, "again", clean_start=False, properties=persist)
    await pub.publish("r/x", b"2", 1)
    message = await again.receive_message()
    assert (message.topic, message.properties.topic_alias) == ("r/x", 1)
