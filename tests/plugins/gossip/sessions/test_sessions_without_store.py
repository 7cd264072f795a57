"""Cluster sessions without a shared store (memory store): a takeover moves the session over the links."""

from __future__ import annotations

import logging

import pytest
from session_nodes import StartNodes, bounded, disconnect_reason, messages

from hookmq.mqtt.packets import Properties, Pubcomp, Publish, Pubrec, Pubrel
from hookmq.plugins.gossip.sessions.frames import TAKEOVER, encode_takeover
from hookmq.testing.raw import RawClient

PERSISTENT = Properties(session_expiry_interval=300)


async def test_takeover_moves_the_session_over_the_links(start_nodes: StartNodes) -> None:
    a, b = await start_nodes(["A", "B"])
    old = await a.client("m", clean_start=False, properties=PERSISTENT)
    await old.subscribe("m/t", 1)
    await old.send(Publish("up/t", b"x", 2, packet_id=5))
    assert isinstance(await old.recv(), Pubrec)
    new, connack = await bounded(RawClient.connect("127.0.0.1", b.port, "m", 5, clean_start=False,
                                                   properties=PERSISTENT))
    assert connack.reason_code == 0 and connack.session_present  # the state came in a HANDOVER frame
    assert await disconnect_reason(old) == 0x8E
    assert "m" not in a.broker.sessions and b.sessions.counts["sessions_moved_in"] == 1
    assert [e.topic_filter for e in b.broker.subscriptions() if e.client_id == "m"] == ["m/t"]
    pub = await a.client("pub")
    await pub.publish("m/t", b"moved", qos=1)
    [got] = await messages(new, 1)
    assert got.payload == b"moved"
    await new.send(Pubrel(5))  # the QoS 2 packet id received on A travelled too
    assert (await new.expect(Pubcomp)).reason_code == 0


async def test_clean_start_ends_the_session_on_the_other_node(start_nodes: StartNodes) -> None:
    a, b = await start_nodes(["A", "B"])
    old = await a.client("m", clean_start=False, properties=PERSISTENT)
    await old.subscribe("m/t", 1)
    new, connack = await bounded(RawClient.connect("127.0.0.1", b.port, "m", 5, clean_start=True))
    assert not connack.session_present
    assert await disconnect_reason(old) == 0x8E
    assert "m" not in a.broker.sessions
    await new.disconnect()


async def test_the_log_says_sessions_die_with_their_node(start_nodes: StartNodes,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hookmq.plugins.gossip.sessions"):
        await start_nodes(["A"])
    assert "persistent sessions live on one node and die with it" in caplog.text


async def test_a_takeover_of_a_client_id_the_node_never_saw_is_acknowledged_at_once(start_nodes: StartNodes) -> None:
    a, _b = await start_nodes(["A", "B"])
    held = await a.client("held")
    stranger = encode_takeover(900, "stranger", True, False, 0)
    assert a.sessions._receive("B", TAKEOVER, stranger) is None  # no task, no lock: nothing of it here
    assert a.sessions.counts["takeovers_handled"] == 1 and "stranger" not in a.broker.sessions
    # A client id held here still goes the whole way: its connection is ended as a takeover ends it.
    ending = a.sessions._receive("B", TAKEOVER, encode_takeover(901, "held", True, False, 0))
    assert ending is not None
    await bounded(ending)
    assert await disconnect_reason(held) == 0x8E and "held" not in a.broker.sessions
    # A CONNECT of the client id attaching right now is not a stranger either.
    assert a.broker.holds_client_id("held") is False
    async with a.broker.lifecycle._locked("later"):
        assert a.broker.holds_client_id("later")
        waiting = a.sessions._receive("B", TAKEOVER, encode_takeover(902, "later", True, False, 0))
        assert waiting is not None
        waiting.close()  # not run: it would wait for this lock
