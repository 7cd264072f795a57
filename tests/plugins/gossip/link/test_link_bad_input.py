"""Bad link input over real sockets: each kind closes that one connection, is counted and logged
(rate-limited), and never harms the node or its real links. A raw socket plays the attacker."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable

import pytest
from link_helpers import (
    KEY,
    RawDialer,
    Recorder,
    eventually,
    gossip_port,
    links,
    node_config,
    pair,
    pause_dialing,
    resume_dialing,
)

from hookmq.engine import Broker
from hookmq.plugins.gossip import cluster_of
from hookmq.plugins.gossip.link.frames import ACK, PREAMBLE, Data, encode_control, encode_data

SECRET = base64.b64decode(KEY)


async def still_works(a: Broker, b: Broker, handler: Recorder, body: bytes) -> None:
    """The real link between a and b is (again) up and carries a reliable frame."""
    resume_dialing(a)
    await eventually(lambda: links(a).is_up("node-b") and links(b).is_up("node-a"), 20)
    await asyncio.wait_for(links(a).send("node-b", 1, body, reliable=True), 10)  # type: ignore[arg-type]
    assert handler.bodies()[-1] == body


def sealed(raw: RawDialer, content: bytes) -> bytes:
    raw.connection.write(content)
    return b"".join(raw.connection.take_output())


# Each case: what a dialer holding the key sends once its handshake is done, and the reason counted.
AFTER_HANDSHAKE: dict[str, tuple[Callable[[RawDialer], bytes], str]] = {
    "oversized": (lambda raw: b"\x7f\xff\xff\xff" + bytes(64), "closed_oversized"),
    "unknown kind": (lambda raw: sealed(raw, bytes([250]) + bytes(8)), "closed_malformed"),
    "bad flags": (lambda raw: sealed(raw, bytes([1, 0x80]) + b"x"), "closed_malformed"),
    "sequence gap": (lambda raw: sealed(raw, encode_data(1, 7, b"skipped six")), "closed_gap"),
    "ack never sent": (lambda raw: sealed(raw, encode_control(ACK, 99)), "closed_bad-ack"),
    "altered": (lambda raw: (lambda frame: frame[:-1] + bytes([frame[-1] ^ 1]))(sealed(raw, encode_data(1, None, b"x"))),
                "closed_auth"),
    "unsealed": (lambda raw: raw.connection.encoder.__class__().encode(encode_data(1, None, b"plain")), "closed_auth"),
}


@pytest.mark.parametrize("case", list(AFTER_HANDSHAKE))
async def test_a_bad_frame_on_an_established_link_closes_it_and_nothing_else(started: list[Broker], case: str) -> None:
    a, b = await pair(started, key=KEY)
    handler = Recorder()
    links(b).on_receive(handler)
    make, counter = AFTER_HANDSHAKE[case]
    pause_dialing(a, "node-b")  # the raw dialer takes node-a's place and keeps it until it misbehaves
    raw = await RawDialer.open(gossip_port(b), "node-a", "node-b", [SECRET])
    await raw.handshake()
    raw.writer.write(make(raw))
    assert await raw.closed_by_peer()
    raw.close()
    await eventually(lambda: links(b).totals[counter] == 1)  # the link may hear of the close an iteration later
    assert handler.frames == []  # nothing of it reached the layer above
    await still_works(a, b, handler, b"after " + case.encode())


async def test_without_the_key_a_raw_socket_injects_nothing(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY)
    handler = Recorder()
    links(b).on_receive(handler)
    # A data frame right after the preamble, as if no handshake were needed; then the same
    # after a keyless dialer's handshake attempt; then a frame sealed with a guessed key.
    attempts = [PREAMBLE + len(frame).to_bytes(4, "big") + frame for frame in
                (encode_data(1, None, b"inject"), encode_data(1, 1, b"inject reliably"))]
    for data in attempts:
        reader, writer = await asyncio.open_connection("127.0.0.1", gossip_port(b))
        writer.write(data)
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionError):
                while await reader.read(65_536):
                    pass
        writer.close()
    keyless = await RawDialer.open(gossip_port(b), "node-a", "node-b", None)
    with pytest.raises(Exception):  # noqa: B017 - LinkError (key-mismatch) or EOF: refused either way
        await keyless.handshake()
    keyless.close()
    assert handler.frames == []
    assert links(b).totals["closed_malformed"] == 2
    await still_works(a, b, handler, b"the real link")


async def test_a_node_without_the_key_can_neither_join_nor_open_a_link(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY)
    intruder = Broker(node_config("node-c", [f"127.0.0.1:{gossip_port(a)}"]))  # no key
    await intruder.start()
    started.append(intruder)
    await asyncio.sleep(3.0)  # several probe rounds and re-join attempts
    for node in (a, b):
        cluster = cluster_of(node)
        assert cluster is not None and cluster.member("node-c") is None
        assert "node-c" not in links(node).peers()
    assert links(intruder).peers() == []


async def test_a_node_that_left_cannot_open_a_link(started: list[Broker]) -> None:
    a, b = await pair(started, key=KEY)
    c = Broker(node_config("node-c", [f"127.0.0.1:{gossip_port(a)}"], key=KEY))
    await c.start()
    await eventually(lambda: links(b).is_up("node-c") and links(a).is_up("node-c"), 20)
    await c.stop()
    await eventually(lambda: "node-c" not in links(b).peers(), 10)
    # Someone with the key (the old process's name, a stale node) tries to come back unannounced.
    raw = await RawDialer.open(gossip_port(b), "node-c", "node-b", [SECRET])
    with pytest.raises(Exception) as refused:  # the acceptor refuses before any frame
        await raw.handshake()
    raw.close()
    assert "dead-node" in str(refused.value) or "unknown-node" in str(refused.value)
    assert links(b).totals["closed_dead-node"] + links(b).totals["closed_unknown-node"] >= 1
    assert links(b).is_up("node-a")


async def test_a_flood_of_bad_connections_is_counted_and_logged_rate_limited(started: list[Broker],
                                                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hookmq.plugins.gossip.link")
    a, b = await pair(started, key=KEY)
    handler = Recorder()
    links(b).on_receive(handler)
    for _ in range(40):
        reader, writer = await asyncio.open_connection("127.0.0.1", gossip_port(b))
        writer.write(PREAMBLE + b"\x00\x00\x00\x05garbage")
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionError):
                while await reader.read(65_536):
                    pass
        writer.close()
    lines = [r for r in caplog.records if "closed: malformed" in r.getMessage()]
    print(f"\n40 malformed connections: {links(b).totals['closed_malformed']} counted, {len(lines)} logged, "
          f"{links(b).limiter.suppressed_total} suppressed")
    assert links(b).totals["closed_malformed"] == 40
    assert len(lines) < 40 and links(b).limiter.suppressed_total > 0
    await still_works(a, b, handler, b"unharmed")


@pytest.mark.parametrize("keyed", [True, False])
async def test_frames_on_the_wire_are_encrypted_with_a_key_and_plain_without(started: list[Broker], keyed: bool) -> None:
    a, b = await pair(started, **({"key": KEY} if keyed else {}))
    # A dialer that holds the key (or, keyless, just the name) takes node-a's place and reads
    # the socket's raw bytes: what node-b sends its peer is readable only with the session key.
    # (node-a stops redialling, so that its real link does not take the place back.)
    pause_dialing(a, "node-b")
    raw = await RawDialer.open(gossip_port(b), "node-a", "node-b", [SECRET] if keyed else None)
    await raw.handshake()
    await eventually(lambda: links(b).is_up("node-a"))
    marker = b"secret-marker-" + bytes(range(32))
    links(b).send("node-a", 7, marker, reliable=False)
    wire, bodies = b"", []
    async with asyncio.timeout(5):
        while marker not in bodies:
            chunk = await raw.reader.read(65_536)
            assert chunk, "node-b closed the link"
            wire += chunk
            bodies += [event.body for event in raw.connection.receive(chunk) if isinstance(event, Data)]
    raw.close()
    assert (marker in wire) is (not keyed)  # the session key opens it; the bytes on the wire hide it
