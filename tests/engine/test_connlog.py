"""Every connect and every end of a connection is logged at INFO with its cause, rate-limited."""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest
from engine_helpers import Connect, StartBroker, bounded, disconnect_reason, eventually, port_of

from hookmq.mqtt.packets import Properties
from hookmq.mqtt.reason_codes import ReasonCode
from hookmq.plugins.auth.passwords import hash_password
from hookmq.testing.raw import RawClient

LOGGER = "hookmq.connection"

pytestmark = pytest.mark.usefixtures("connection_log")


@pytest.fixture
def connection_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return caplog


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.getMessage().startswith(f"{event}:")]


async def line(caplog: pytest.LogCaptureFixture, event: str, needle: str) -> str:
    """The first `event` line containing `needle`, waiting briefly for it to be written."""
    assert await eventually(lambda: any(needle in text for text in lines(caplog, event))), (
        f"no {event!r} line with {needle!r} in {[r.getMessage() for r in caplog.records]}"
    )
    return next(text for text in lines(caplog, event) if needle in text)


async def test_connect_line_says_who_from_where_and_how(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    client, _ = await connect(broker, "sensor-1", level=5, keep_alive=30, username="alice")
    local_port = client.writer.get_extra_info("sockname")[1]
    text = await line(caplog, "connected", "sensor-1")
    assert text == (f"connected: client_id=sensor-1 username=alice remote=127.0.0.1:{local_port} listener=tcp "
                    "protocol=5.0 session=clean-start keep_alive=30")
    record = next(r for r in caplog.records if r.getMessage() == text)
    assert record.levelno == logging.INFO
    assert record.fields["protocol"] == "5.0"  # type: ignore[attr-defined]


async def test_connect_line_tells_new_from_resumed_sessions(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    first, _ = await connect(broker, "keeper", level=4, clean_start=False)
    assert "protocol=3.1.1 session=new" in await line(caplog, "connected", "keeper")
    await first.disconnect()
    await line(caplog, "disconnected", "keeper")
    await connect(broker, "keeper", level=4, clean_start=False)
    assert await eventually(lambda: any("session=resumed" in text for text in lines(caplog, "connected")))


async def test_client_disconnect_is_logged_with_its_reason_code(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    client, _ = await connect(broker, "leaver", level=5)
    await client.disconnect(ReasonCode.DISCONNECT_WITH_WILL_MESSAGE)
    text = await line(caplog, "disconnected", "leaver")
    assert 'cause=client-disconnect reason="0x04 disconnect with will message"' in text
    assert re.search(r" duration=\d+\.\d$", text)


async def test_closing_without_disconnect_is_logged(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    client, _ = await connect(broker, "vanisher", level=4)
    await client.close()
    assert "cause=connection-closed" in await line(caplog, "disconnected", "vanisher")


async def test_keep_alive_timeout_is_logged(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    client, _ = await connect(broker, "sleepy", level=5, keep_alive=5)
    await broker.housekeeping_pass(time.time(), time.monotonic() + 60)
    assert await disconnect_reason(client) in (ReasonCode.KEEP_ALIVE_TIMEOUT, None)
    text = await line(caplog, "disconnected", "sleepy")
    assert 'cause=keep-alive-timeout reason="0x8D keep alive timeout"' in text


async def test_protocol_error_is_logged_with_reason_and_what_was_wrong(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    client, _ = await connect(broker, "broken", level=5)
    await client.send_bytes(b"\x36\x00")  # PUBLISH with QoS 3
    assert await disconnect_reason(client) == ReasonCode.MALFORMED_PACKET
    text = await line(caplog, "disconnected", "broken")
    assert 'cause=protocol-error reason="0x81 malformed packet" detail="PUBLISH with QoS 3"' in text


async def test_garbage_before_connect_is_logged_as_closed(
        start_broker: StartBroker, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    client = await RawClient.open("127.0.0.1", port_of(broker))
    await client.send_bytes(b"\x30\x00")  # a PUBLISH before any CONNECT
    await client.closed_within(5)
    text = await line(caplog, "closed", "cause=protocol-error")
    assert "listener=tcp" in text and "remote=127.0.0.1:" in text
    assert 'detail="the first packet must be CONNECT, not PUBLISH"' in text


async def test_a_bare_tcp_probe_is_not_an_info_line(start_broker: StartBroker, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    client = await RawClient.open("127.0.0.1", port_of(broker))
    await client.close()
    await client.open("127.0.0.1", port_of(broker))  # a second connection proves the first was handled
    await asyncio.sleep(0.2)
    assert not lines(caplog, "closed")


async def test_no_connect_within_the_timeout_is_logged(
        start_broker: StartBroker, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker({"connect_timeout": 0.2})
    client = await RawClient.open("127.0.0.1", port_of(broker))
    await client.closed_within(5)
    assert "cause=connect-timeout" in await line(caplog, "closed", "connect-timeout")


async def test_takeover_is_logged_for_the_old_connection(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    old, _ = await connect(broker, "twin", level=5)
    await connect(broker, "twin", level=5)
    assert await disconnect_reason(old) == ReasonCode.SESSION_TAKEN_OVER
    text = await line(caplog, "disconnected", "twin")
    assert 'cause=taken-over reason="0x8E session taken over"' in text


async def test_refused_authentication_is_logged(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    users = {"alice": hash_password("wonderland", n=2**10, r=8, p=1)}
    broker = await start_broker(plugins={"auth": {"users": users}})
    _, connack = await connect(broker, "intruder", level=5, username="alice", password=b"guess")
    assert connack.reason_code == ReasonCode.BAD_USER_NAME_OR_PASSWORD
    text = await line(caplog, "refused", "intruder")
    assert text.startswith("refused: client_id=intruder username=alice remote=127.0.0.1:")
    assert 'protocol=5.0 cause=refused reason="0x86 bad user name or password"' in text
    assert "guess" not in text


async def test_server_shutdown_is_logged(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    await connect(broker, "stayer", level=5)
    await bounded(broker.stop(), 10)
    assert 'cause=server-shutdown reason="0x8B server shutting down"' in await line(caplog, "disconnected", "stayer")


async def test_a_flood_of_bad_connections_is_rate_limited_and_counted(
        start_broker: StartBroker, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker(log={"connection_lines_burst": 3, "connection_lines_per_second": 0.01})
    for _ in range(12):
        client = await RawClient.open("127.0.0.1", port_of(broker))
        await client.send_bytes(b"\x36\x00")
        await client.closed_within(5)
    assert await eventually(lambda: broker.info()["log_lines_suppressed"] == 9)
    assert len(lines(caplog, "closed")) == 3
    # Another kind of line has its own budget: a flood of garbage does not hide real clients.
    client, _ = await RawClient.connect("127.0.0.1", port_of(broker), "legit", 5)
    await line(caplog, "connected", "legit")
    await client.disconnect()


async def test_sys_topic_and_info_expose_the_suppressed_count(start_broker: StartBroker) -> None:
    broker = await start_broker({"sys_interval": 60})
    sub, _ = await RawClient.connect("127.0.0.1", port_of(broker), "sys-reader", 5)
    await sub.subscribe("$SYS/broker/log/lines suppressed")
    message = await sub.receive_message()
    assert message.payload == b"0"
    assert broker.info()["log_lines_suppressed"] == 0
    await sub.disconnect()


async def test_v3_disconnect_has_no_reason_code(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    client, _ = await connect(broker, "old-timer", level=4)
    await client.disconnect()
    text = await line(caplog, "disconnected", "old-timer")
    assert "cause=client-disconnect" in text and "reason=" not in text


async def test_assigned_client_ids_are_logged(
        start_broker: StartBroker, connect: Connect, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker()
    await connect(broker, "", level=5, properties=Properties(session_expiry_interval=0))
    assert re.search(r"client_id=auto-[0-9a-f-]+ ", await line(caplog, "connected", "client_id=auto-"))
