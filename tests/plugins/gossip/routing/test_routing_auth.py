"""Auth across nodes: every decision is made where the client is connected, with the same rules on every node."""

from __future__ import annotations

from routing_nodes import StartNodes, eventually, messages, no_message

from hookmq.mqtt.packets import Puback
from hookmq.plugins.auth.passwords import hash_password

PASSWORD = "wonderland"


def auth_table() -> dict[str, object]:
    """One `[plugins.auth]` table, deployed to every node (as docs/cluster.md says to)."""
    hashed = hash_password(PASSWORD, n=2**10, r=8, p=1)
    return {"users": {"alice": hashed, "bob": hashed}, "acl": [
        {"topic": "shared/#", "access": "readwrite"},
        {"topic": "alice/#", "access": "readwrite", "user": "alice"},
    ]}


async def test_publish_acl_at_the_publishers_node_and_subscribe_acl_at_the_subscribers(start_nodes: StartNodes) -> None:
    table = auth_table()
    a, b = await start_nodes(("A", "B"), links="real", plugins={"auth": table})
    alice_b = await b.client("alice-b", username="alice", password=PASSWORD.encode())
    bob_b = await b.client("bob-b", username="bob", password=PASSWORD.encode())
    assert (await alice_b.subscribe("alice/t", 1)).reason_codes == (1,)
    assert (await bob_b.subscribe("alice/t", 1)).reason_codes[0] >= 0x80  # refused at bob's node: no route made
    assert (await bob_b.subscribe("shared/t", 1)).reason_codes == (1,)
    assert await eventually(lambda: a.routing.remote.filters("B").keys() == {"alice/t", "shared/t"})

    bob_a = await a.client("bob-a", username="bob", password=PASSWORD.encode())
    refused = await bob_a.publish("alice/t", b"forged", qos=1)  # refused at bob's node: it never travels
    assert isinstance(refused, Puback) and refused.reason_code >= 0x80
    alice_a = await a.client("alice-a", username="alice", password=PASSWORD.encode())
    await alice_a.publish("alice/t", b"mine", qos=1)
    await bob_a.publish("shared/t", b"all", qos=1)
    [mine] = await messages(alice_b, 1)
    assert mine.payload == b"mine"
    [shared] = await messages(bob_b, 1)
    assert shared.payload == b"all"
    assert await no_message(alice_b) and await no_message(bob_b)
    assert a.routing.forwarder.forwarded["B"] == 2  # the refused publish was not forwarded
