"""Subscriptions over real sockets: retained messages, options, identifiers, shared groups, `$SYS`."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from engine_helpers import Connect, StartBroker, messages

from hookmq.engine import Broker
from hookmq.mqtt.packets import Properties, Publish
from hookmq.mqtt.reason_codes import ReasonCode


async def test_retained_stored_and_sent_on_subscribe(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "ret-pub")
    await pub.publish("ret/a", b"last value", 1, retain=True)
    sub, _ = await connect(broker, "ret-sub")
    await sub.subscribe("ret/#", 1)
    message = await sub.receive_message()
    assert (message.topic, message.payload, message.retain) == ("ret/a", b"last value", True)
    assert len(broker.retained_messages()) == 1


async def test_retained_cleared_by_empty_payload(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "clr-pub")
    await pub.publish("clr/a", b"value", 1, retain=True)
    await pub.publish("clr/a", b"", 1, retain=True)
    sub, _ = await connect(broker, "clr-sub")
    await sub.subscribe("clr/#", 1)
    assert await sub.nothing_within(0.3)
    assert broker.retained_messages() == []


async def test_retained_qos_downgraded_to_subscription(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "rq-pub")
    await pub.publish("rq/a", b"v", 2, retain=True)
    sub, _ = await connect(broker, "rq-sub")
    await sub.subscribe("rq/a", 1)
    assert (await sub.receive_message()).qos == 1


@pytest.mark.parametrize(("handling", "first", "again"), [(0, True, True), (1, True, False), (2, False, False)])
async def test_retain_handling(broker: Broker, connect: Connect, handling: int, first: bool, again: bool) -> None:
    pub, _ = await connect(broker, "rh-pub")
    await pub.publish("rh/a", b"retained", 0, retain=True)
    sub, _ = await connect(broker, "rh-sub")
    await sub.subscribe("rh/#", 0, retain_handling=handling)
    if first:
        assert (await sub.receive_message()).payload == b"retained"
    else:
        assert await sub.nothing_within(0.3)
    await sub.subscribe("rh/#", 0, retain_handling=handling)  # the subscription exists now
    if again:
        assert (await sub.receive_message()).payload == b"retained"
    else:
        assert await sub.nothing_within(0.3)


@pytest.mark.parametrize("as_published", [False, True])
async def test_retain_as_published(broker: Broker, connect: Connect, as_published: bool) -> None:
    sub, _ = await connect(broker, "rap-sub")
    await sub.subscribe("rap/#", 0, retain_as_published=as_published)
    pub, _ = await connect(broker, "rap-pub")
    await pub.publish("rap/x", b"live", 0, retain=True)
    message = await sub.receive_message()
    assert message.retain is as_published


async def test_retain_flag_cleared_on_live_delivery_v311(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "r4-sub", level=4)
    await sub.subscribe("r4/#", 0)
    pub, _ = await connect(broker, "r4-pub", level=4)
    await pub.publish("r4/x", b"live", 0, retain=True)
    assert (await sub.receive_message()).retain is False


async def test_no_local(broker: Broker, connect: Connect) -> None:
    me, _ = await connect(broker, "narcissus")
    await me.subscribe("nl/#", 0, no_local=True)
    await me.publish("nl/x", b"mine", 0)
    assert await me.nothing_within(0.3)
    other, _ = await connect(broker, "echo")
    await other.publish("nl/x", b"theirs", 0)
    assert (await me.receive_message()).payload == b"theirs"


async def test_without_no_local_own_messages_return(broker: Broker, connect: Connect) -> None:
    me, _ = await connect(broker, "mirror")
    await me.subscribe("mirror/#", 0)
    await me.publish("mirror/x", b"mine", 0)
    assert (await me.receive_message()).payload == b"mine"


async def test_subscription_identifier(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "sid")
    await sub.subscribe("sid/a", 1, properties=Properties(subscription_identifiers=(42,)))
    pub, _ = await connect(broker, "sid-pub")
    await pub.publish("sid/a", b"x", 1, properties=Properties(subscription_identifiers=()))
    assert (await sub.receive_message()).properties.subscription_identifiers == (42,)


async def test_overlapping_subscriptions_one_copy_with_every_identifier(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "overlap")
    await sub.subscribe("ov/+", 0, properties=Properties(subscription_identifiers=(5,)))
    await sub.subscribe("ov/#", 1, properties=Properties(subscription_identifiers=(7,)))
    pub, _ = await connect(broker, "ov-pub")
    await pub.publish("ov/x", b"once", 1)
    message = await sub.receive_message()
    assert message.qos == 1  # the highest granted QoS of the overlapping subscriptions
    assert sorted(message.properties.subscription_identifiers) == [5, 7]
    assert await sub.nothing_within(0.3)


async def test_subscription_identifier_refused_when_unavailable(start_broker: StartBroker,
                                                                connect: Connect) -> None:
    from engine_helpers import disconnect_reason

    broker = await start_broker({"subscription_identifier_available": False})
    sub, _ = await connect(broker, "sid-off")
    from hookmq.mqtt.packets import Subscribe, Subscription, SubscriptionOptions

    await sub.send(Subscribe(1, (Subscription("a", SubscriptionOptions(0)),),
                             Properties(subscription_identifiers=(3,))))
    assert await disconnect_reason(sub, 3) == ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED


async def test_unsubscribe_stops_delivery(broker: Broker, connect: Connect) -> None:
    sub, _ = await connect(broker, "unsub")
    await sub.subscribe("un/#", 0)
    unsuback = await sub.unsubscribe("un/#", "never/subscribed")
    assert unsuback.reason_codes == (0, ReasonCode.NO_SUBSCRIPTION_EXISTED)
    pub, _ = await connect(broker, "un-pub")
    await pub.publish("un/x", b"x", 0)
    assert await sub.nothing_within(0.3)


async def test_shared_subscription_one_member_per_message(broker: Broker, connect: Connect) -> None:
    members = [(await connect(broker, f"member-{n}"))[0] for n in range(2)]
    for member in members:
        await member.subscribe("$share/g/work/#", 1)
    plain, _ = await connect(broker, "plain")
    await plain.subscribe("work/#", 1)
    pub, _ = await connect(broker, "boss")
    for n in range(10):
        await pub.publish("work/job", str(n).encode(), 1)
    everyone = await messages(plain, 10)
    assert len(everyone) == 10
    got: list[Publish] = []
    counts = Counter()
    for index, member in enumerate(members):
        while not await member.nothing_within(0.3):
            got.append(await member.receive_message())
            counts[index] += 1
    assert sorted(int(m.payload) for m in got) == list(range(10))
    assert counts[0] > 0 and counts[1] > 0


async def test_shared_member_leaving_hands_over_unacked_messages(broker: Broker, connect: Connect) -> None:
    quitter, _ = await connect(broker, "quitter", properties=Properties(receive_maximum=10))
    stayer, _ = await connect(broker, "stayer")
    await quitter.subscribe("$share/grp/tasks", 1)
    await stayer.subscribe("$share/grp/tasks", 1)
    pub, _ = await connect(broker, "tasker")
    for n in range(4):
        await pub.publish("tasks", str(n).encode(), 1)
    held = []
    while not await quitter.nothing_within(0.3):
        held.append(await quitter.receive_message(ack=False))
    done = []
    while not await stayer.nothing_within(0.3):
        done.append(await stayer.receive_message())
    assert held, "round robin gave the quitter nothing to hold"
    await quitter.close()  # unacknowledged, clean session: the messages go to the other member
    redelivered = await messages(stayer, len(held))
    assert sorted(m.payload for m in redelivered) == sorted(m.payload for m in held)
    assert sorted(int(m.payload) for m in done + redelivered) == [0, 1, 2, 3]


async def test_shared_subscription_does_not_get_retained(broker: Broker, connect: Connect) -> None:
    pub, _ = await connect(broker, "sr-pub")
    await pub.publish("sr/a", b"r", 0, retain=True)
    member, _ = await connect(broker, "sr-member")
    await member.subscribe("$share/g/sr/#", 0)
    assert await member.nothing_within(0.3)


async def test_sys_topics_published(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"sys_interval": 0.2})
    sub, _ = await connect(broker, "sys-watcher")
    await sub.subscribe("$SYS/#", 0)
    seen: dict[str, bytes] = {}
    wanted = {"$SYS/broker/version", "$SYS/broker/uptime", "$SYS/broker/clients/connected",
              "$SYS/broker/clients/total", "$SYS/broker/messages/received", "$SYS/broker/subscriptions/count"}
    counters = ("$SYS/broker/clients/connected", "$SYS/broker/clients/total", "$SYS/broker/subscriptions/count")
    # The first values may be retained from before this client connected; later ticks update them.
    async with asyncio.timeout(5):
        while not (wanted <= seen.keys() and all(int(seen[topic]) >= 1 for topic in counters)):
            message = await sub.receive_message()
            seen[message.topic] = message.payload
    from hookmq import __version__

    assert seen["$SYS/broker/version"] == __version__.encode()
    assert int(seen["$SYS/broker/uptime"]) >= 0
    assert int(seen["$SYS/broker/subscriptions/count"]) >= 1


async def test_sys_counters_follow_activity(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"sys_interval": 0.2})
    others = [await connect(broker, f"extra-{n}") for n in range(3)]
    assert len(others) == 3
    sub, _ = await connect(broker, "sys-count")
    await sub.subscribe("$SYS/broker/clients/connected", 0)
    async with asyncio.timeout(5):
        while True:
            message = await sub.receive_message()
            if message.payload == b"4":
                break


async def test_hash_does_not_match_sys(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"sys_interval": 0.2})
    sub, _ = await connect(broker, "everything")
    await sub.subscribe("#", 0)
    await sub.subscribe("+/broker/#", 0)
    assert await sub.nothing_within(0.7)  # several $SYS ticks, live and retained, none delivered
    pub, _ = await connect(broker, "plain-pub")
    await pub.publish("normal/topic", b"x", 0)
    assert (await sub.receive_message()).topic == "normal/topic"


@pytest.mark.parametrize(("level", "refused"), [(5, 0x97), (4, 0x80)])
async def test_subscriptions_per_client_bounded(start_broker: StartBroker, connect: Connect, level: int,
                                                refused: int) -> None:
    """One client cannot fill the trie: beyond the limit each new filter is refused, replacing is fine."""
    broker = await start_broker({"max_subscriptions_per_client": 2})
    client, _ = await connect(broker, "greedy", level=level)
    assert (await client.subscribe("a", 1)).reason_codes == (1,)
    assert (await client.subscribe("b", 1)).reason_codes == (1,)
    assert (await client.subscribe("c", 1)).reason_codes == (refused,)
    assert (await client.subscribe("a", 0)).reason_codes == (0,)  # a replacement is not a new one
    assert sorted(e.topic_filter for e in broker.subscriptions()) == ["a", "b"]
