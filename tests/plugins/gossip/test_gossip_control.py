"""Cluster control requests against a real broker, over a recording stand-in for the links (the
real links carry them in tests/plugins/dashboard/test_dashboard_cluster.py): answers, refusals,
timeouts, and any bytes of kinds 49/50 read or counted, never raised (hypothesis)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookmq.plugins.gossip.control import REPLY, REQUEST, ClusterControl, ControlError, ControlTimeout


class RecordingLinks:
    """Takes frames instead of sending them; ``peer`` answers (or not) like another node would."""

    name = "self"

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes]] = []
        self.receivers: list[Callable[[str, int, bytes], Any]] = []
        self.up = {"peer"}

    def on_receive(self, callback: Callable[[str, int, bytes], Any]) -> Callable[[], None]:
        self.receivers.append(callback)
        return lambda: self.receivers.remove(callback)

    def is_up(self, node: str) -> bool:
        return node in self.up

    def send(self, node: str, kind: int, body: bytes, *, reliable: bool) -> None:
        self.sent.append((node, kind, body))

    def deliver(self, node: str, kind: int, body: bytes) -> None:
        for receiver in list(self.receivers):
            receiver(node, kind, body)


async def test_a_clients_request_is_answered_from_the_broker(broker: Any, mqtt_client: Any) -> None:
    await mqtt_client(client_id="alpha-1")
    await mqtt_client(client_id="beta-1")
    links = RecordingLinks()
    control = ClusterControl(broker, links)
    links.deliver("peer", REQUEST, msgpack.packb({"id": 7, "op": "clients", "q": "ALPHA", "limit": 10}))
    for _ in range(100):
        if links.sent:
            break
        await asyncio.sleep(0.01)
    [(node, kind, body)] = links.sent
    answer = msgpack.unpackb(body)
    assert (node, kind, answer["id"], answer["total"]) == ("peer", REPLY, 7, 1)
    assert answer["clients"][0]["client_id"] == "alpha-1" and answer["clients"][0]["connected"] is True
    await control.close()


async def test_asking_a_peer_resolves_with_its_answer_and_times_out_without_one(broker: Any) -> None:
    links = RecordingLinks()
    control = ClusterControl(broker, links)
    asking = asyncio.ensure_future(control.disconnect("peer", "somebody", timeout=5))
    await asyncio.sleep(0.01)
    request = msgpack.unpackb(links.sent[-1][2])
    assert request["op"] == "disconnect" and request["client_id"] == "somebody"
    links.deliver("peer", REPLY, msgpack.packb({"id": request["id"], "disconnected": True}))
    assert await asking is True
    with pytest.raises(ControlTimeout, match=r"did not answer within 0\.05 s"):
        await control.clients("peer", timeout=0.05)
    with pytest.raises(ControlError, match="no link to node elsewhere"):
        await control.clients("elsewhere")
    asking = asyncio.ensure_future(control.clients("peer", timeout=5))
    await asyncio.sleep(0.01)
    request = msgpack.unpackb(links.sent[-1][2])
    links.deliver("peer", REPLY, msgpack.packb({"id": request["id"], "error": "ValueError: no"}))
    with pytest.raises(ControlError, match="node peer: ValueError: no"):
        await asking
    await control.close()


async def test_unknown_operations_and_bad_arguments_are_answered_as_errors(broker: Any) -> None:
    links = RecordingLinks()
    control = ClusterControl(broker, links)
    links.deliver("peer", REQUEST, msgpack.packb({"id": 1, "op": "reboot"}))
    links.deliver("peer", REQUEST, msgpack.packb({"id": 2, "op": "disconnect", "client_id": 5}))
    for _ in range(100):
        if len(links.sent) == 2:
            break
        await asyncio.sleep(0.01)
    errors = sorted((msgpack.unpackb(body)["id"], msgpack.unpackb(body)["error"]) for _, _, body in links.sent)
    assert errors == [(1, "unknown operation 'reboot'"), (2, "disconnect needs a client_id")]
    await control.close()


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from([REQUEST, REPLY]), body=st.binary(max_size=64))
async def test_any_bytes_are_read_or_counted(broker: Any, kind: int, body: bytes) -> None:
    links = RecordingLinks()
    control = ClusterControl(broker, links)
    links.deliver("peer", kind, body)
    for _ in range(50):
        if control.counts["bad_frames"] or control.counts["late_replies"] or links.sent:
            break
        await asyncio.sleep(0)
    if control.counts["bad_frames"]:
        assert control.counts["bad_frames"] == 1 and not links.sent
    elif kind == REPLY:
        assert control.counts["late_replies"] == 1 and not links.sent  # nobody asked
    else:
        [(_, reply_kind, reply)] = links.sent  # a readable request is always answered
        assert reply_kind == REPLY and "id" in msgpack.unpackb(reply)
    await control.close()
