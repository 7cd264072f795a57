"""The surface a cluster plugin stands on, proven by a toy two-broker bridge built only from it.

`Bridge` below is a plugin that imports nothing of the engine: only public ``hookmq`` names
(``hookimpl``, ``Message``, ``RetainedVersion``) and the packets of ``hookmq.mqtt``. Two
brokers in one process, each with its half of the bridge, behave towards their clients like one
broker: a publish on A reaches a subscriber on B once, No Local and message expiry hold across,
a QoS 1/2 publisher on A is acknowledged only once B has the message, and a client id
connecting on B ends its session on A with 0x8E and takes the session along.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from engine_helpers import StartBroker, bounded, disconnect_reason, eventually, messages, no_message, port_of

from hookmq import Message, RetainedVersion, hookimpl
from hookmq.buildinfo import compiled_modules
from hookmq.engine import Broker
from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.packets import (
    Connect,
    Properties,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    SubscriptionOptions,
    Will,
)
from hookmq.testing.raw import RawClient

# ---------------------------------------------------------------------------------------------
# The toy bridge: a plugin built only from the public hooks and Broker API
# ---------------------------------------------------------------------------------------------


class Bridge:
    """One broker's half of a two-broker bridge (the other half is ``peer``).

    It keeps a route table of its own broker's interest and mirrors it as routes on the peer;
    it forwards over one "link" (a queue with one sender task, as a real plugin's connection
    would be) and resolves each forward's future once the peer has injected the message; it
    claims client ids on the peer before CONNACK and moves sessions across; it mirrors
    retained changes with their versions.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.peer: Bridge | None = None
        self.broker: Any = None
        self.claims = True
        #: Closed to hold the link (messages wait, unacknowledged).
        self.gate = asyncio.Event()
        self.gate.set()
        self.interest: Counter[str] = Counter()
        self.forwarded: list[tuple[str, dict[str, tuple[tuple[str, str], ...]]]] = []
        self.injected: list[str] = []
        self._link: asyncio.Queue[tuple[Message, tuple[tuple[str, str], ...], asyncio.Future[None]]] | None = None
        self._sender: asyncio.Task[None] | None = None

    @property
    def other(self) -> Any:
        assert self.peer is not None and self.peer.broker is not None
        return self.peer.broker

    @hookimpl
    def plugin_start(self, broker: Any) -> None:
        self.broker = broker
        self._link = asyncio.Queue()
        self._sender = asyncio.get_running_loop().create_task(self._send_loop())

    @hookimpl
    async def plugin_stop(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender

    # ---- interest: a route table of this broker, mirrored as routes on the peer

    @hookimpl
    def on_subscription_added(self, entry: Any, replaced: Any) -> None:
        if replaced is not None:
            return
        self.interest[entry.topic_filter] += 1
        if self.interest[entry.topic_filter] == 1 and self.peer is not None and self.peer.broker is not None:
            self.other.add_route(self.name, entry.topic_filter)

    @hookimpl
    def on_subscription_removed(self, entry: Any) -> None:
        self.interest[entry.topic_filter] -= 1
        if self.interest[entry.topic_filter] == 0:
            del self.interest[entry.topic_filter]
            if self.peer is not None and self.peer.broker is not None:
                self.other.remove_route(self.name, entry.topic_filter)

    # ---- routing: forward over the link, acknowledged once the peer has the message

    @hookimpl
    def on_forward(self, message: Message, destinations: dict[str, tuple[tuple[str, str], ...]]) -> Any:
        assert self.peer is not None and self._link is not None
        self.forwarded.append((message.topic, dict(destinations)))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._link.put_nowait((message, destinations[self.peer.name], done))
        return done

    async def _send_loop(self) -> None:
        assert self._link is not None
        while True:
            message, shares, done = await self._link.get()
            await self.gate.wait()
            now = time.time()
            if message.expired(now):
                done.set_result(None)  # nothing left to deliver anywhere
                continue
            # The publish as published, its expiry interval now the time that remains.
            packet = message.to_publish(message.qos, message.retain, 0, now)
            try:
                await self.other.inject(packet, origin=message.origin, shares=shares)
            except Exception as exc:
                done.set_exception(exc)
                continue
            assert self.peer is not None
            self.peer.injected.append(message.topic)
            done.set_result(None)

    # ---- sessions: one owner, takeover across brokers

    @hookimpl
    async def on_session_claim(self, client: Any, connect: Connect) -> int | None:
        if not self.claims or self.peer is None:
            return None
        state = await self.other.session_moved(client.client_id, connect.clean_start)
        if state is not None:
            await self.broker.import_session(state)
        return None

    # ---- retained messages as a versioned set

    @hookimpl
    def on_retain_message(self, packet: Publish, stored: bool, version: int) -> None:
        if self.peer is None or self.peer.broker is None:
            return
        message = Message(packet.topic, packet.payload, packet.qos, True, packet.properties) if stored else None
        self.other.replace_retained([RetainedVersion(packet.topic, message, version)])


# ---------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture
async def bridged(start_broker: StartBroker) -> AsyncIterator[tuple[Broker, Broker, Bridge, Bridge]]:
    """Brokers A and B joined by a bridge."""
    half_a, half_b = Bridge("A"), Bridge("B")
    half_a.peer, half_b.peer = half_b, half_a
    broker_a = await start_broker(extra_plugins={"bridge": half_a})
    broker_b = await start_broker(extra_plugins={"bridge": half_b})
    yield broker_a, broker_b, half_a, half_b
    half_a.gate.set()
    half_b.gate.set()


async def client_of(broker: Broker, client_id: str, level: int = 5, **kwargs: Any) -> RawClient:
    client, connack = await bounded(RawClient.connect("127.0.0.1", port_of(broker), client_id, level, **kwargs))
    assert connack.reason_code == 0, connack
    return client


PERSISTENT = Properties(session_expiry_interval=300)


# ---------------------------------------------------------------------------------------------
# The acceptance scenarios
# ---------------------------------------------------------------------------------------------


async def test_publish_on_a_reaches_a_subscriber_on_b_exactly_once(
        bridged: tuple[Broker, Broker, Bridge, Bridge]) -> None:
    broker_a, broker_b, half_a, _ = bridged
    sub = await client_of(broker_b, "sub")
    await sub.subscribe("t/#", 1)
    await sub.subscribe("t/+", 1)  # overlapping: B has two routes on A, still one copy
    assert {r.topic_filter for r in broker_a.routes("B")} == {"t/#", "t/+"}
    pub = await client_of(broker_a, "pub")
    ack = await pub.publish("t/x", b"hello", qos=1)
    assert isinstance(ack, Puback) and ack.reason_code == 0
    [received] = await messages(sub, 1)
    assert (received.topic, received.payload, received.qos) == ("t/x", b"hello", 1)
    assert await no_message(sub)
    assert half_a.forwarded == [("t/x", {"B": ()})]  # one forward, to B once


async def test_no_local_holds_across_brokers(bridged: tuple[Broker, Broker, Bridge, Bridge]) -> None:
    broker_a, broker_b, half_a, half_b = bridged
    half_a.claims = half_b.claims = False  # a plain bridge: the same client id may be on both sides
    same = await client_of(broker_b, "x")
    await same.subscribe("nl/t", 1, no_local=True)
    other = await client_of(broker_b, "y")
    await other.subscribe("nl/t", 1)
    publisher = await client_of(broker_a, "x")
    await publisher.publish("nl/t", b"from x", qos=1)
    [got] = await messages(other, 1)
    assert got.payload == b"from x"
    assert await no_message(same)  # the origin travelled: x does not get its own message


async def test_message_expiry_keeps_counting_across_brokers(bridged: tuple[Broker, Broker, Bridge, Bridge]) -> None:
    broker_a, broker_b, half_a, _ = bridged
    sub = await client_of(broker_b, "sub")
    await sub.subscribe("exp/#", 1)
    pub = await client_of(broker_a, "pub")
    half_a.gate.clear()
    await pub.send(Publish("exp/short", b"gone", 1, packet_id=1, properties=Properties(message_expiry_interval=1)))
    await pub.send(Publish("exp/long", b"kept", 1, packet_id=2, properties=Properties(message_expiry_interval=30)))
    await asyncio.sleep(1.3)  # both wait on the link; the first one's second runs out meanwhile
    half_a.gate.set()
    [got] = await messages(sub, 1)
    assert got.topic == "exp/long"
    assert got.properties.message_expiry_interval is not None
    assert got.properties.message_expiry_interval <= 29  # the remaining interval travelled, not the original
    assert await no_message(sub)


@pytest.mark.parametrize("qos", [1, 2])
async def test_publisher_on_a_is_acknowledged_only_once_b_has_the_message(
        bridged: tuple[Broker, Broker, Bridge, Bridge], qos: int) -> None:
    broker_a, broker_b, half_a, half_b = bridged
    sub = await client_of(broker_b, "sub")
    await sub.subscribe("ack/t", qos)
    pub = await client_of(broker_a, "pub")
    half_a.gate.clear()
    await pub.send(Publish("ack/t", b"m", qos, packet_id=7))
    assert await no_message(pub, 0.5)  # neither PUBACK nor PUBREC while B does not have it
    assert half_b.injected == []
    half_a.gate.set()
    ack = await pub.recv()
    assert isinstance(ack, Puback if qos == 1 else Pubrec) and ack.packet_id == 7 and ack.reason_code == 0
    assert half_b.injected == ["ack/t"]  # B had it before A acknowledged
    [got] = await messages(sub, 1)
    assert got.payload == b"m"


async def test_client_id_connecting_on_b_ends_its_session_on_a_with_0x8e(
        bridged: tuple[Broker, Broker, Bridge, Bridge]) -> None:
    broker_a, broker_b, _, _ = bridged
    watcher = await client_of(broker_a, "watcher")
    await watcher.subscribe("wills/c", 0)
    will = Will("wills/c", b"c went", 0, False)
    old = await client_of(broker_a, "c", clean_start=False, properties=PERSISTENT, will=will)
    await old.subscribe("move/t", 1)
    new, connack = await bounded(RawClient.connect("127.0.0.1", port_of(broker_b), "c", 5, clean_start=False,
                                                   properties=PERSISTENT))
    assert connack.reason_code == 0 and connack.session_present  # the session came along
    assert await disconnect_reason(old) == 0x8E
    [will_message] = await messages(watcher, 1)  # a will without delay goes out at a takeover, as on one broker
    assert will_message.payload == b"c went"
    assert "c" not in broker_a.sessions and "c" in broker_b.connected
    assert [r.topic_filter for r in broker_a.routes("B")] == ["move/t"]  # the interest moved too
    pub = await client_of(broker_a, "pub")
    await pub.publish("move/t", b"after the move", qos=1)
    [got] = await messages(new, 1)
    assert got.payload == b"after the move"
    assert await no_message(new)


async def test_clean_start_on_b_ends_the_session_on_a(bridged: tuple[Broker, Broker, Bridge, Bridge]) -> None:
    broker_a, broker_b, _, _ = bridged
    old = await client_of(broker_a, "c", clean_start=False, properties=PERSISTENT)
    await old.subscribe("gone/t", 1)
    new, connack = await bounded(RawClient.connect("127.0.0.1", port_of(broker_b), "c", 5, clean_start=True))
    assert connack.reason_code == 0 and not connack.session_present
    assert await disconnect_reason(old) == 0x8E
    assert "c" not in broker_a.sessions
    assert broker_a.routes("B") == [] and broker_b.routes("A") == []
    await new.disconnect()


async def test_session_moves_with_inflight_both_ways_queue_will_and_expiry(
        bridged: tuple[Broker, Broker, Bridge, Bridge]) -> None:
    broker_a, broker_b, _, _ = bridged
    will = Will("wills/d", b"d", 1, False, properties=Properties(will_delay_interval=60))
    old = await client_of(broker_a, "d", clean_start=False, will=will,
                          properties=Properties(session_expiry_interval=300, receive_maximum=1))
    await old.subscribe("q/t", 1)
    await old.send(Publish("up/t", b"half", 2, packet_id=9))  # QoS 2 in: PUBREC, never released
    assert isinstance(await old.recv(), Pubrec)
    pub = await client_of(broker_a, "pub")
    for n in range(3):
        await pub.publish("q/t", bytes([n]), qos=1)
    [first] = await messages(old, 1, ack=False)  # inflight, unacknowledged; two more wait in the queue
    state = broker_a.export_session("d")
    assert state is not None
    assert (state.session.expiry_interval, state.session.will, state.session.will_delay) == (300, will, 60)
    assert [o.packet_id for o in state.outgoing] == [first.packet_id]
    assert state.incoming == (9,)
    assert [q.publish.payload for q in state.queue] == [b"\x01", b"\x02"]
    assert [s.topic_filter for s in state.subscriptions] == ["q/t"]

    new, connack = await bounded(RawClient.connect("127.0.0.1", port_of(broker_b), "d", 5, clean_start=False,
                                                   properties=PERSISTENT))
    assert connack.session_present
    assert await disconnect_reason(old) == 0x8E
    resent = await new.receive_message()
    assert (resent.payload, resent.packet_id, resent.dup) == (b"\x00", first.packet_id, True)
    assert [m.payload for m in await messages(new, 2)] == [b"\x01", b"\x02"]
    await new.send(Pubrel(9))  # the QoS 2 packet id it published on A is still known on B
    pubcomp = await new.expect(Pubcomp)
    assert pubcomp.reason_code == 0


async def test_retained_messages_follow_across_with_versions(bridged: tuple[Broker, Broker, Bridge, Bridge]) -> None:
    broker_a, broker_b, _, _ = bridged
    pub = await client_of(broker_a, "pub")
    await pub.publish("state/x", b"on", qos=1, retain=True)
    assert await eventually(lambda: [m.payload for m in broker_b.retained_messages()] == [b"on"])
    late = await client_of(broker_b, "late")
    await late.subscribe("state/#", 1)
    [got] = await messages(late, 1)
    assert (got.payload, got.retain) == (b"on", True)
    [entry] = [e for e in broker_a.retained_versions() if e.topic == "state/x"]
    await pub.publish("state/x", b"", qos=1, retain=True)  # cleared on A: gone on B too
    assert await eventually(lambda: broker_b.retained_messages() == [])
    # The old state arriving late loses against the clear's newer version: no resurrection.
    assert broker_b.replace_retained([entry]) == []
    assert broker_b.retained_messages() == []


# ---------------------------------------------------------------------------------------------
# One hook test per new hook
# ---------------------------------------------------------------------------------------------


class InterestRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, bool]] = []

    @hookimpl
    def on_subscription_added(self, entry: Any, replaced: Any, restored: bool) -> None:
        self.events.append(("added", entry.client_id, entry.topic_filter, restored))
        assert replaced is None or replaced.topic_filter == entry.topic_filter

    @hookimpl
    def on_subscription_removed(self, entry: Any) -> None:
        self.events.append(("removed", entry.client_id, entry.topic_filter, False))


def sqlite_config(path: Any) -> dict[str, Any]:
    return {"storage": {"backend": "sqlite"}, "plugins": {"sqlite_store": {"path": str(path)}}}


async def test_hook_on_subscription_added(start_broker: StartBroker, tmp_path: Any) -> None:
    """Fired for SUBSCRIBE (not again for a repeated one), with the share group, and for subscriptions restored at start."""
    recorder = InterestRecorder()
    broker = await start_broker(extra_plugins={"interest": recorder}, **sqlite_config(tmp_path / "s.db"))
    client = await client_of(broker, "keeper", clean_start=False, properties=PERSISTENT)
    await client.subscribe("a/b", 1)
    await client.subscribe("$share/g/c/#", 1)
    added = [e for e in recorder.events if e[0] == "added"]
    assert added == [("added", "keeper", "a/b", False), ("added", "keeper", "$share/g/c/#", False)]
    await client.subscribe("a/b", 0)  # a replacement: fires, with the replaced entry
    assert len(recorder.events) == 3
    await client.disconnect()  # an offline persistent session keeps its interest: nothing fires
    await asyncio.sleep(0.1)
    assert len(recorder.events) == 3
    await broker.stop()

    restarted = InterestRecorder()
    await start_broker(extra_plugins={"interest": restarted}, **sqlite_config(tmp_path / "s.db"))
    assert sorted(restarted.events) == [("added", "keeper", "$share/g/c/#", True), ("added", "keeper", "a/b", True)]


async def test_hook_on_subscription_removed(start_broker: StartBroker) -> None:
    """Fired for an UNSUBSCRIBE that removed a filter, and for every subscription of a session that ends."""
    recorder = InterestRecorder()
    broker = await start_broker(extra_plugins={"interest": recorder})
    client = await client_of(broker, "brief")
    await client.subscribe("x/1", 0)
    await client.subscribe("x/2", 0)
    await client.unsubscribe("x/1")
    await client.unsubscribe("x/never")  # nothing existed: nothing fires
    assert recorder.events[-1] == ("removed", "brief", "x/1", False)
    await client.disconnect()  # a clean session ends
    assert await eventually(lambda: recorder.events[-1] == ("removed", "brief", "x/2", False))
    assert len([e for e in recorder.events if e[0] == "removed"]) == 2


class ForwardRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Message, dict[str, tuple[tuple[str, str], ...]]]] = []

    @hookimpl
    def on_forward(self, message: Message, destinations: dict[str, tuple[tuple[str, str], ...]]) -> None:
        self.calls.append((message, dict(destinations)))


async def test_hook_on_forward(start_broker: StartBroker) -> None:
    """Called once per message with each matched destination once, and the share groups it serves."""
    recorder = ForwardRecorder()
    broker = await start_broker(extra_plugins={"fwd": recorder})
    assert broker.add_route("n1", "f/#") and broker.add_route("n1", "f/+") and broker.add_route("n2", "f/x")
    assert not broker.add_route("n1", "f/#")  # already there
    broker.add_route("n3", "$share/g/f/#")
    local = await client_of(broker, "local")
    await local.subscribe("f/#", 0)
    await broker.publish("f/x", b"1", qos=0, properties=Properties(user_properties=(("k", "v"),)))
    [(message, destinations)] = recorder.calls
    assert destinations == {"n1": (), "n2": (), "n3": (("g", "f/#"),)}
    assert (message.topic, message.payload, message.origin) == ("f/x", b"1", None)
    assert message.properties.user_properties == (("k", "v"),)
    [got] = await messages(local, 1)  # local subscribers served in the same pass
    assert got.payload == b"1"
    await broker.publish("other", b"2")  # matches no destination: not called
    assert len(recorder.calls) == 1
    assert broker.remove_destination("n1") == 2 and broker.remove_route("n2", "f/x")
    assert not broker.remove_route("n2", "f/x")
    assert [r.destination for r in broker.routes()] == ["n3"]
    assert [e.topic_filter for e in broker.subscriptions()] == ["f/#"]  # routes are not subscriptions
    assert broker.info()["subscriptions"] == 1


async def test_hook_on_select_share_member(start_broker: StartBroker) -> None:
    """The plugin may hand a share group's message to a remote member instead of a local one."""
    forwarded = ForwardRecorder()
    choices: list[list[str]] = []

    class PreferRemote:
        @hookimpl
        def on_select_share_member(self, message: Message, share_group: str, topic_filter: str,
                                   members: list[Any]) -> Any:
            choices.append(sorted(getattr(m, "destination", "") or m.client_id for m in members))
            assert (share_group, topic_filter, message.topic) == ("g", "s/#", "s/1")
            return next((m for m in members if getattr(m, "destination", None) == "far"), None)

    broker = await start_broker(extra_plugins={"fwd": forwarded, "choose": PreferRemote()})
    member = await client_of(broker, "member")
    await member.subscribe("$share/g/s/#", 1)
    broker.add_route("far", "$share/g/s/#")
    await broker.publish("s/1", b"x", qos=1)
    assert choices == [["far", "member"]]
    assert [d for _, d in forwarded.calls] == [{"far": (("g", "s/#"),)}]
    assert await no_message(member)  # the remote member took it, not the local one


async def test_hook_on_session_claim(start_broker: StartBroker) -> None:
    """Holds CONNECT before CONNACK; a reason code refuses it (v5 as is, v3 as its return code)."""
    held = asyncio.Event()
    seen: list[tuple[str, bool]] = []

    class Claim:
        @hookimpl
        async def on_session_claim(self, client: Any, connect: Connect) -> int | None:
            seen.append((client.client_id, connect.clean_start))
            if client.client_id.startswith("refused"):
                return 0x88
            await held.wait()
            return None

    broker = await start_broker(extra_plugins={"claim": Claim()})
    pending = asyncio.ensure_future(RawClient.connect("127.0.0.1", port_of(broker), "held", 5))
    await asyncio.sleep(0.3)
    assert not pending.done() and "held" not in broker.sessions  # no CONNACK, no session yet
    held.set()
    client, connack = await bounded(pending)
    assert connack.reason_code == 0
    _, refused = await bounded(RawClient.connect("127.0.0.1", port_of(broker), "refused-5", 5))
    assert refused.reason_code == 0x88
    _, refused_v3 = await bounded(RawClient.connect("127.0.0.1", port_of(broker), "refused-4", 4))
    assert refused_v3.reason_code == 3  # Server unavailable
    assert "refused-5" not in broker.sessions and seen[0] == ("held", True)
    await client.disconnect()


# ---------------------------------------------------------------------------------------------
# Inject, one match per message, encode once, versions
# ---------------------------------------------------------------------------------------------


async def test_inject_delivers_locally_only_and_reports_unplaced_groups(start_broker: StartBroker) -> None:
    recorder = ForwardRecorder()
    broker = await start_broker(extra_plugins={"fwd": recorder})
    broker.add_route("elsewhere", "in/#")  # a destination matching too: an injected message never goes there
    sub = await client_of(broker, "sub")
    await sub.subscribe("in/t", 1, retain_as_published=True)
    member = await client_of(broker, "member")
    await member.subscribe("$share/g/in/#", 1)
    packet = Publish("in/t", b"from afar", 1, True, properties=Properties(message_expiry_interval=20,
                                                                            content_type="text/plain"))
    result = await broker.inject(packet, origin="someone", shares=[("g", "in/#"), ("h", "in/#")])
    assert result.delivered == 2 and result.unplaced == (("h", "in/#"),)
    [got] = await messages(sub, 1)
    assert got.retain and got.properties.content_type == "text/plain"  # as published
    assert got.properties.message_expiry_interval is not None and got.properties.message_expiry_interval <= 20
    [share] = await messages(member, 1)
    assert share.payload == b"from afar"
    assert recorder.calls == []
    assert broker.retained_messages() == []  # delivery only: the retained set is not changed
    expired = Publish("in/t", b"late", 1, properties=Properties(message_expiry_interval=0))
    assert (await broker.inject(expired)).delivered == 0
    with pytest.raises(ProtocolError) as refused:  # a peer cannot forge this broker's $SYS
        await broker.inject(Publish("$SYS/broker/version", b"forged", 0, True))
    assert refused.value.reason_code == 0x90


@pytest.mark.skipif(bool(compiled_modules()), reason="counts calls by subclassing the trie and patching a module "
                    "global: compiled classes take no Python subclasses, compiled calls skip module globals")
async def test_one_trie_match_and_one_encoding_per_message(start_broker: StartBroker,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from hookmq.engine import message as message_module
    from hookmq.mqtt.trie import SubscriptionTrie

    encodings: list[tuple[str, int]] = []
    real_encode = message_module.encode_publish_fields

    def counting_encode(topic: str, *fields_and_level: Any) -> Any:
        encodings.append((topic, fields_and_level[-1]))
        return real_encode(topic, *fields_and_level)

    class CountingTrie(SubscriptionTrie):
        __slots__ = ("matches",)

        def __init__(self) -> None:
            super().__init__()
            self.matches = 0

        def match(self, topic: str) -> Any:
            self.matches += 1
            return super().match(topic)

    class WireForwarder:
        @hookimpl
        def on_forward(self, message: Message) -> None:
            message.wire(5, message.qos, message.retain, (), time.time())  # the link's bytes, from the cache

    broker = await start_broker(extra_plugins={"fwd": WireForwarder()})
    trie = CountingTrie()
    broker.router.trie = trie
    broker.add_route("n1", "enc/#")
    sub_a = await client_of(broker, "a")
    sub_b = await client_of(broker, "b")
    for sub in (sub_a, sub_b):
        await sub.subscribe("enc/#", 1)
    monkeypatch.setattr(message_module, "encode_publish_fields", counting_encode)
    pub = await client_of(broker, "pub")
    await pub.publish("enc/t", b"x", qos=1)
    await messages(sub_a, 1)
    await messages(sub_b, 1)
    assert trie.matches == 1  # local sessions and the destination in one match
    assert encodings == [("enc/t", 5)]  # two subscribers and the link share one v5 encoding


async def test_broker_publish_waits_for_forwarding_acknowledgements(start_broker: StartBroker) -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    class Slow:
        @hookimpl
        def on_forward(self, message: Message) -> Any:
            return gate if message.qos else None

    broker = await start_broker(extra_plugins={"fwd": Slow()})
    broker.add_route("n", "w/#")
    publishing = asyncio.ensure_future(broker.publish("w/1", b"x", qos=1))
    await asyncio.sleep(0.2)
    assert not publishing.done()
    gate.set_result(None)
    assert await bounded(publishing) == 1


async def test_failed_forwarding_is_not_acknowledged(start_broker: StartBroker) -> None:
    class Failing:
        @hookimpl
        def on_forward(self) -> Any:
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(ConnectionError("link down"))
            return failed

    broker = await start_broker(extra_plugins={"fwd": Failing()})
    broker.add_route("n", "f/#")
    v5 = await client_of(broker, "v5")
    ack = await v5.publish("f/1", b"x", qos=1)
    assert isinstance(ack, Puback) and ack.reason_code == 0x80
    v3 = await client_of(broker, "v3", level=4)
    await v3.send(Publish("f/1", b"x", 1, packet_id=3))
    assert await no_message(v3)  # no v3 code says "not stored": unacknowledged, the client resends


async def test_retain_hook_carries_the_version(start_broker: StartBroker) -> None:
    versions: list[tuple[str, bool, int]] = []

    class Versions:
        @hookimpl
        def on_retain_message(self, packet: Publish, stored: bool, version: int) -> None:
            versions.append((packet.topic, stored, version))

    broker = await start_broker(extra_plugins={"v": Versions()})
    await broker.publish("r/1", b"a", retain=True)
    await broker.publish("r/1", b"b", retain=True)
    assert await broker.delete_retained("r/1")
    assert [(t, s) for t, s, _ in versions] == [("r/1", True), ("r/1", True), ("r/1", False)]
    assert versions[0][2] < versions[1][2] < versions[2][2]
    [tombstone] = broker.retained_versions()
    assert (tombstone.message, tombstone.version) == (None, versions[2][2])


async def test_session_moved_without_connection_hands_out_the_offline_session(start_broker: StartBroker) -> None:
    removed = InterestRecorder()
    broker = await start_broker(extra_plugins={"interest": removed})
    client = await client_of(broker, "off", clean_start=False, properties=PERSISTENT)
    await client.subscribe("o/t", 1, retain_handling=2)
    await client.disconnect()
    await eventually(lambda: broker.sessions["off"].client is None)
    state = await broker.session_moved("off")
    assert state is not None and state.session.disconnected_at is not None
    assert [s.topic_filter for s in state.subscriptions] == ["o/t"]
    assert state.subscriptions[0].options == SubscriptionOptions(1, retain_handling=2)
    assert "off" not in broker.sessions and removed.events[-1] == ("removed", "off", "o/t", False)
    assert await broker.session_moved("off") is None  # gone
    await broker.import_session(state)  # and back: routable again while offline
    assert "off" in broker.sessions and [e.topic_filter for e in broker.subscriptions()] == ["o/t"]
    pub = await client_of(broker, "pub")
    await pub.publish("o/t", b"queued", qos=1)
    back = await client_of(broker, "off", clean_start=False, properties=PERSISTENT)
    [got] = await messages(back, 1)
    assert got.payload == b"queued"


async def test_a_coroutine_from_on_forward_where_nobody_waits_is_closed_and_reported(
        start_broker: StartBroker, caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    class AsyncByMistake:
        @hookimpl
        async def on_forward(self, message: Message) -> None:
            ran.append(message.topic)

    broker = await start_broker(extra_plugins={"fwd": AsyncByMistake()})
    broker.add_route("n", "c/#")
    with caplog.at_level("ERROR", logger="hookmq.hooks"):
        await broker.publish("c/0", b"x", qos=0)
    assert ran == [] and "on_forward returned a coroutine" in caplog.text
    assert await broker.publish("c/1", b"x", qos=1) == 1  # where a publisher waits, it is awaited
    assert ran == ["c/1"]
