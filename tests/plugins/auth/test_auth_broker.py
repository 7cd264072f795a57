"""The auth plugin in a running broker, over real sockets, with exact reason codes (v3.1.1 and v5)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import pytest
from auth_helpers import cheap_hash
from broker_helpers import paho, port_of, raw, running_broker

from hookmq.engine import Broker
from hookmq.mqtt.packets import Puback, Publish, Pubrec
from hookmq.testing.certs import generate_certificates

pytestmark = pytest.mark.timeout(60)

ALICE, BOB = b"wonderland", b"builder"

# v5 answers 0x10 (no matching subscribers) for an accepted message nobody subscribed to.
ACCEPTED = (0x00, 0x10)

ACL: list[dict[str, Any]] = [
    {"topic": "#", "access": "read"},
    {"topic": "users/%u/#"},
    {"topic": "devices/%c/#", "access": "write"},
    {"topic": "test/nosubscribe", "effect": "deny"},
    {"topic": "ops/#", "user": "bob"},
    {"topic": "$SYS/#", "access": "read", "user": "bob"},
    {"topic": "console/#", "client_id": "console-1", "access": "write"},
]


def auth_table(**overrides: Any) -> dict[str, Any]:
    return {
        "users": {"alice": cheap_hash(ALICE.decode()), "bob": cheap_hash(BOB.decode())},
        "acl": ACL,
        **overrides,
    }


@pytest.fixture
async def broker() -> Any:
    async with running_broker(auth_table()) as running:
        yield running


@pytest.mark.parametrize(("level", "good", "bad_password", "anonymous"), [(3, 0x00, 0x04, 0x05), (4, 0x00, 0x04, 0x05), (5, 0x00, 0x86, 0x87)])
async def test_connack_codes(broker: Broker, level: int, good: int, bad_password: int, anonymous: int) -> None:
    client, code = await raw(broker, level, "alice", ALICE, client_id="ok")
    assert code == good
    await client.disconnect()
    client, code = await raw(broker, level, "alice", b"nope", client_id="bad")
    assert code == bad_password
    await client.close()
    client, code = await raw(broker, level, "mallory", ALICE, client_id="unknown")
    assert code == bad_password
    await client.close()
    client, code = await raw(broker, level, client_id="anon")
    assert code == anonymous
    await client.close()


@pytest.mark.parametrize("protocol", [4, 5])
async def test_paho_clients_see_the_codes(broker: Broker, protocol: int) -> None:
    async with paho(protocol, "p-good") as good:
        assert await asyncio.to_thread(good.connect, port_of(broker), "alice", "wonderland") == 0
    async with paho(protocol, "p-bad") as bad:
        assert await asyncio.to_thread(bad.connect, port_of(broker), "alice", "wrong") == 0x86
    async with paho(protocol, "p-anon") as anonymous:
        assert await asyncio.to_thread(anonymous.connect, port_of(broker)) == 0x87


async def test_anonymous_allowed_when_configured() -> None:
    async with running_broker(auth_table(allow_anonymous=True)) as broker:
        client, code = await raw(broker, 5)
        assert code == 0
        assert (await client.subscribe("news/#")).reason_codes == (0,)
        # No %u for an anonymous client: its own tree does not exist.
        puback = await client.publish("users/None/x", qos=1)
        assert isinstance(puback, Puback) and puback.reason_code == 0x87
        await client.disconnect()


async def test_v5_publish_denials_per_rule_form(broker: Broker) -> None:
    async with paho(5, "dev-1") as alice:
        assert await asyncio.to_thread(alice.connect, port_of(broker), "alice", "wonderland") == 0
        assert await asyncio.to_thread(alice.publish, "users/alice/t") in ACCEPTED
        assert await asyncio.to_thread(alice.publish, "users/bob/t") == 0x87
        assert await asyncio.to_thread(alice.publish, "devices/dev-1/state") in ACCEPTED
        assert await asyncio.to_thread(alice.publish, "devices/dev-2/state") == 0x87
        assert await asyncio.to_thread(alice.publish, "ops/restart") == 0x87
        assert await asyncio.to_thread(alice.publish, "console/cmd") == 0x87
        assert await asyncio.to_thread(alice.publish, "test/nosubscribe") == 0x87
    async with paho(5, "console-1") as bob:
        assert await asyncio.to_thread(bob.connect, port_of(broker), "bob", "builder") == 0
        assert await asyncio.to_thread(bob.publish, "ops/restart") in ACCEPTED
        assert await asyncio.to_thread(bob.publish, "console/cmd") in ACCEPTED


async def test_v5_denied_qos2_publish_gets_pubrec_0x87(broker: Broker) -> None:
    client, code = await raw(broker, 5, "alice", ALICE, client_id="qos2")
    assert code == 0
    pubrec = await client.publish("test/nosubscribe", b"x", qos=2)
    assert isinstance(pubrec, Pubrec) and pubrec.reason_code == 0x87
    await client.disconnect()


@pytest.mark.parametrize(("protocol", "refused"), [(4, 0x80), (5, 0x87)])
async def test_subscribe_denials(broker: Broker, protocol: int, refused: int) -> None:
    async with paho(protocol, f"sub-{protocol}") as alice:
        assert await asyncio.to_thread(alice.connect, port_of(broker), "alice", "wonderland") == 0
        codes = await asyncio.to_thread(alice.subscribe, "test/nosubscribe", "$SYS/#", "users/alice/#", "#")
        assert codes == [refused, refused, 1, 1]
    async with paho(protocol, f"ops-{protocol}") as bob:
        assert await asyncio.to_thread(bob.connect, port_of(broker), "bob", "builder") == 0
        assert await asyncio.to_thread(bob.subscribe, "$SYS/broker/#") == [1]


async def test_v3_denied_qos1_publish_is_acked_and_dropped(broker: Broker) -> None:
    watcher, code = await raw(broker, 5, "bob", BOB, client_id="watcher")
    assert code == 0
    assert (await watcher.subscribe("#", qos=1)).reason_codes == (1,)
    alice, code = await raw(broker, 4, "alice", ALICE, client_id="v3-alice")
    assert code == 0
    denied = await alice.publish("ops/restart", b"denied", qos=1)
    assert isinstance(denied, Puback) and denied.reason_code == 0
    await alice.publish("users/alice/after", b"allowed", qos=1)
    # Messages from one publisher arrive in order: had the denied one been routed, it would be first.
    message = await watcher.receive_message()
    assert isinstance(message, Publish) and message.topic == "users/alice/after"
    await alice.disconnect()
    await watcher.disconnect()


async def test_shared_subscription_needs_read_on_its_filter(broker: Broker) -> None:
    client, code = await raw(broker, 5, "alice", ALICE, client_id="shared")
    assert code == 0
    assert (await client.subscribe("$share/g/users/alice/#", qos=1)).reason_codes == (1,)
    assert (await client.subscribe("$share/g/$SYS/#", qos=1)).reason_codes == (0x87,)
    await client.disconnect()


async def test_throttled_host_is_refused_even_with_the_right_password() -> None:
    async with running_broker(auth_table(max_failed_logins=2, lockout_base=300.0)) as broker:
        for attempt in range(3):
            client, code = await raw(broker, 5, "alice", b"guess", client_id=f"guess-{attempt}")
            assert code == 0x86
            await client.close()
        client, code = await raw(broker, 5, "alice", ALICE, client_id="late")
        assert code == 0x86
        await client.close()


def _client_context(cafile: Path, certfile: Path, keyfile: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cafile))
    context.load_cert_chain(str(certfile), str(keyfile))
    return context


@pytest.fixture
def certificates(tmp_path: Path) -> Any:
    return generate_certificates(tmp_path)


def _tls_listener(certificates: Any) -> list[dict[str, Any]]:
    return [{
        "name": "mtls", "type": "tls", "address": "127.0.0.1:0",
        "certfile": str(certificates.server.certfile), "keyfile": str(certificates.server.keyfile),
        "cafile": str(certificates.cafile), "require_client_cert": True,
    }]


@pytest.mark.parametrize("protocol", [4, 5])
async def test_certificate_common_name_is_the_user(certificates: Any, protocol: int) -> None:
    cert = certificates.client("alice")
    tls = _client_context(certificates.cafile, cert.certfile, cert.keyfile)
    async with running_broker(auth_table(tls_identity="cn"), _tls_listener(certificates)) as broker:
        async with paho(protocol, f"cert-{protocol}", tls) as alice:
            assert await asyncio.to_thread(alice.connect, port_of(broker, "tls")) == 0
            # The ACL sees the certificate's name: alice's own tree is writable, bob's is not.
            assert await asyncio.to_thread(alice.publish, "users/alice/t") in ACCEPTED
            if protocol == 5:
                assert await asyncio.to_thread(alice.publish, "users/bob/t") == 0x87
        async with paho(protocol, f"cert-mismatch-{protocol}", tls) as mismatch:
            assert await asyncio.to_thread(mismatch.connect, port_of(broker, "tls"), "bob", "builder") == 0x86


async def test_certificate_san_with_required_password(certificates: Any) -> None:
    cert = certificates.client("device", sans=["alice@example.org"])
    tls = _client_context(certificates.cafile, cert.certfile, cert.keyfile)
    table = auth_table(
        tls_identity="san_email", tls_identity_requires_password=True,
        users={"alice@example.org": cheap_hash("wonderland")},
    )
    async with running_broker(table, _tls_listener(certificates)) as broker:
        async with paho(5, "san-ok", tls) as good:
            assert await asyncio.to_thread(good.connect, port_of(broker, "tls"), "alice@example.org", "wonderland") == 0
        async with paho(5, "san-bad", tls) as bad:
            assert await asyncio.to_thread(bad.connect, port_of(broker, "tls"), "alice@example.org", "wrong") == 0x86
