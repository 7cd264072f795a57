"""`$` topics belong to the broker: every way a message can enter refuses them (issue 19 §2).

Entry paths: a client's PUBLISH, a will (refused at CONNECT, with and without an auth plugin),
a will that a hook rewrites, the Broker API (`broker.publish`, which plugins use) and the
inter-node entry point (`broker.publish_from_node`). The dashboard's form and HTTP API are
covered in tests/plugins/dashboard/test_dashboard_hostile.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import Connect, StartBroker, no_message

from hookmq import hookimpl
from hookmq.engine import Broker
from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.packets import Publish, Will
from hookmq.mqtt.reason_codes import ConnackV3, ReasonCode


class AllowEverything:
    """An auth plugin that lets every client in and allows every topic."""

    @hookimpl
    def on_connect_authenticate(self, client: Any, connect: Any) -> bool:
        return True

    @hookimpl
    def on_acl_check(self, client: Any, topic: str, write: bool) -> bool:
        return True


class WillToSys:
    """A (careless) plugin whose on_will rewrites every will to a `$SYS` topic."""

    @hookimpl
    def on_will(self, client: Any, will: Will) -> Will:
        return Will("$SYS/broker/version", b"forged", 0, True)


@pytest.mark.parametrize("with_auth", [False, True], ids=["no-auth", "allow-all-auth"])
async def test_v5_will_on_dollar_topic_refused_at_connect(start_broker: StartBroker, connect: Connect,
                                                          with_auth: bool) -> None:
    broker = await start_broker({"sys_interval": 1}, extra_plugins={"allow": AllowEverything()} if with_auth else None)
    _, connack = await connect(broker, "forger5", will=Will("$SYS/broker/version", b"forged", 0, True))
    assert connack.reason_code == ReasonCode.TOPIC_NAME_INVALID
    assert "forger5" not in broker.connected
    assert broker.retained.get("$SYS/broker/version").payload != b"forged"  # type: ignore[union-attr]


@pytest.mark.parametrize("with_auth", [False, True], ids=["no-auth", "allow-all-auth"])
async def test_v311_will_on_dollar_topic_refused_at_connect(start_broker: StartBroker, connect: Connect,
                                                            with_auth: bool) -> None:
    broker = await start_broker(extra_plugins={"allow": AllowEverything()} if with_auth else None)
    _, connack = await connect(broker, "forger4", level=4,
                               will=Will("$SYS/broker/alerts/maintenance", b"down", 0, True))
    assert connack.reason_code == ConnackV3.NOT_AUTHORIZED
    assert broker.retained.get("$SYS/broker/alerts/maintenance") is None


async def test_will_rewritten_to_dollar_topic_by_a_hook_is_dropped(start_broker: StartBroker,
                                                                   connect: Connect) -> None:
    broker = await start_broker(extra_plugins={"rewrite": WillToSys()})
    watcher, _ = await connect(broker, "sys-watch")
    await watcher.subscribe("$SYS/#", 0)
    doomed, connack = await connect(broker, "doomed", will=Will("plain/will", b"bye", 0, True))
    assert connack.reason_code == 0
    await doomed.close()
    assert await no_message(watcher, 0.5)
    assert broker.retained.get("$SYS/broker/version") is None


async def test_client_publish_to_dollar_topic_refused_and_not_retained(broker: Broker, connect: Connect) -> None:
    client, _ = await connect(broker, "sys-pub")
    ack = await client.publish("$SYS/broker/version", b"forged", 1, retain=True)
    assert ack is not None and ack.reason_code == ReasonCode.NOT_AUTHORIZED
    assert broker.retained.get("$SYS/broker/version") is None


async def test_broker_api_publish_refuses_dollar_topic(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "api-watch")
    await watcher.subscribe("$SYS/#", 0)
    with pytest.raises(ProtocolError) as refused:
        await broker.publish("$SYS/broker/version", b"forged", retain=True)
    assert refused.value.reason_code == ReasonCode.TOPIC_NAME_INVALID
    assert broker.retained.get("$SYS/broker/version") is None
    assert await no_message(watcher, 0.3)
    assert await broker.publish("ordinary/topic", b"fine") == 0  # ordinary topics still work


async def test_message_from_another_node_refused_on_dollar_topic(broker: Broker, connect: Connect) -> None:
    watcher, _ = await connect(broker, "node-watch")
    await watcher.subscribe("$SYS/#", 0)
    await watcher.subscribe("cluster/#", 0)
    with pytest.raises(ProtocolError) as refused:
        await broker.publish_from_node(Publish("$SYS/broker/version", b"forged", 0, True), "remote-client")
    assert refused.value.reason_code == ReasonCode.TOPIC_NAME_INVALID
    assert broker.retained.get("$SYS/broker/version") is None
    # The same entry point routes an ordinary message from a peer node.
    assert await broker.publish_from_node(Publish("cluster/x", b"hello", 0), "remote-client") == 1
    assert (await watcher.receive_message()).payload == b"hello"


async def test_sys_topics_still_published_by_the_broker(start_broker: StartBroker, connect: Connect) -> None:
    broker = await start_broker({"sys_interval": 1})
    watcher, _ = await connect(broker, "sys-reader")
    await watcher.subscribe("$SYS/broker/version", 0)
    message = await watcher.receive_message()
    assert message.topic == "$SYS/broker/version" and message.payload != b"forged"
