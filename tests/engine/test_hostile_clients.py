"""Many hostile clients at once: mutated and random packets never crash the broker or hurt others.

The codec's own property tests show that bad bytes raise only `ProtocolError`; these tests show
the engine behind it holds too: a mutated but decodable packet reaches the handlers, and
whatever they do with it, the broker keeps serving and logs no internal error.
"""

from __future__ import annotations

import asyncio
import logging
import random

import pytest
from engine_helpers import StartBroker, port_of, still_serves

from hookmq.mqtt.codec import encode
from hookmq.mqtt.packets import (
    Connect,
    Disconnect,
    Properties,
    Puback,
    Publish,
    Pubrel,
    Subscribe,
    Subscription,
    SubscriptionOptions,
    Unsubscribe,
    Will,
)

SEED = 20261126


def valid_traffic(level: int) -> list[bytes]:
    """A session's worth of well-formed packets, the raw material for mutations."""
    props = Properties(message_expiry_interval=30, user_properties=(("k", "v"),)) if level == 5 else Properties()
    packets = [
        Subscribe(1, (Subscription("fuzz/+/x", SubscriptionOptions(1)), Subscription("$share/g/fuzz/#"))),
        Publish("fuzz/a/x", b"payload", 1, False, False, 2, props),
        Publish("fuzz/b/x", b"retained", 2, True, False, 3),
        Pubrel(3),
        Puback(1),
        Unsubscribe(4, ("fuzz/+/x",)),
        Disconnect(0x04 if level == 5 else 0),
    ]
    return [encode(packet, level) for packet in packets]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Flip, drop, duplicate or insert a few bytes."""
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        position = rng.randrange(len(buffer)) if buffer else 0
        if choice < 0.4 and buffer:
            buffer[position] = rng.randrange(256)
        elif choice < 0.6 and buffer:
            del buffer[position]
        elif choice < 0.8:
            buffer.insert(position, rng.randrange(256))
        else:
            buffer[position:position] = buffer[position:position + rng.randint(1, 8)]
    return bytes(buffer)


async def hostile_session(port: int, rng: random.Random, number: int) -> None:
    """Connect properly, then send a mix of valid, mutated and random bytes; never wait long."""
    level = rng.choice((3, 4, 5))
    will = Will("fuzz/will", b"w", rng.randint(0, 2), rng.random() < 0.5) if rng.random() < 0.5 else None
    connect = encode(Connect(f"hostile-{number}", level, "MQIsdp" if level == 3 else "MQTT",
                             rng.random() < 0.5, 5, will=will), level)
    stream: list[bytes] = []
    for packet in valid_traffic(level):
        roll = rng.random()
        if roll < 0.5:
            stream.append(packet)
        elif roll < 0.9:
            stream.append(mutate(packet, rng))
        else:
            stream.append(rng.randbytes(rng.randint(1, 40)))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    try:
        writer.write(connect)
        await asyncio.wait_for(reader.read(65536), 1.0)  # CONNACK: the session is established
        for chunk in stream:
            writer.write(chunk)
            await writer.drain()
            if rng.random() < 0.3:
                await asyncio.sleep(0)
        await asyncio.wait_for(reader.read(65536), 0.2)
    except (OSError, TimeoutError):
        pass
    finally:
        writer.close()


@pytest.mark.timeout(90)
async def test_hostile_clients_neither_crash_the_broker_nor_disturb_others(
        start_broker: StartBroker, caplog: pytest.LogCaptureFixture) -> None:
    broker = await start_broker({"connect_timeout": 1.0, "max_keepalive": 5})
    port = port_of(broker)
    rng = random.Random(SEED)
    caplog.set_level(logging.ERROR, logger="hookmq")
    for wave in range(6):
        await asyncio.gather(*(hostile_session(port, random.Random(rng.random()), wave * 50 + n)
                               for n in range(50)))
        assert await still_serves(broker, f"health/{wave}")
    internal = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert not internal, internal[0].getMessage()
    info = broker.info()
    assert info["clients_total"] > 250 and info["packets_received"] > 400


async def test_random_bytes_instead_of_connect_are_refused_quietly(start_broker: StartBroker) -> None:
    """Random first packets: every connection is closed, none of them is ever established."""
    broker = await start_broker({"connect_timeout": 0.5})
    port = port_of(broker)
    rng = random.Random(SEED + 1)

    async def garbage(data: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(data)
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(65536), 3.0)
        finally:
            writer.close()

    answers = await asyncio.gather(*(garbage(rng.randbytes(rng.randint(1, 64))) for _ in range(100)))
    # The connection ends (b"" after at most a refusing CONNACK); nothing else comes back.
    assert all(len(answer) <= 5 for answer in answers)  # a v5 refusing CONNACK is 5 bytes
    assert broker.info()["clients_total"] == 0
    assert await still_serves(broker)
