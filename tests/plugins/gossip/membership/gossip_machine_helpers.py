"""Driving one Membership by hand: fake peers' packets in, decoded packets out."""

from __future__ import annotations

from dataclasses import dataclass, field

from hookmq.plugins.gossip.membership import (
    Membership,
    MembershipConfig,
    OpenStream,
    Output,
    SendPacket,
    profile,
)
from hookmq.plugins.gossip.wire import Ack, Alive, Ping, WireCodec, encode_message, vsn_bytes

CODEC = WireCodec(compression=False)
ME = ("10.0.0.1", 7946)


def peer_alive(name: str, last_octet: int, incarnation: int = 1, meta: bytes = b"", pmax: int = 5) -> Alive:
    """An alive message for a fake peer at 10.0.0.<last_octet>:7946."""
    return Alive(incarnation, name, bytes([10, 0, 0, last_octet]), 7946, meta, vsn_bytes(pmax=pmax))


@dataclass
class Harness:
    """One machine named "me" at 10.0.0.1:7946; time moves only when the test says."""

    config: MembershipConfig = field(default_factory=lambda: profile("lan"))
    now: float = 0.0
    outputs: list[Output] = field(default_factory=list)
    #: Fake peers that do not answer pings (the others ack every direct ping at once).
    silent: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        import random

        self.machine = Membership(self.config, name="me", address=ME[0], port=ME[1], codec=CODEC, rng=random.Random(4))
        self.machine.start(self.now)
        self.collect()

    def collect(self) -> list[Output]:
        new = self.machine.take_outputs()
        self.outputs.extend(new)
        answers = [
            (to, m) for to, m in messages_of(new, Ping)
            if m.node != "me" and m.node not in self.silent and to[0].startswith("10.0.0.")  # type: ignore[attr-defined]
        ]
        for to, ping in answers:
            self.machine.receive_packet(encode_message(Ack(ping.seq_no)), to, self.now)  # type: ignore[attr-defined]
            new += self.collect()
        return new

    def receive(self, *messages: object, source: tuple[str, int] = ("10.0.0.9", 7946)) -> list[Output]:
        from hookmq.plugins.gossip.wire import make_compound

        parts = [encode_message(m) for m in messages]  # type: ignore[arg-type]
        data = parts[0] if len(parts) == 1 else make_compound(parts)
        self.machine.receive_packet(data, source, self.now)
        return self.collect()

    def advance(self, seconds: float) -> list[Output]:
        """Move the clock, running timers on the way."""
        end = self.now + seconds
        produced: list[Output] = []
        while True:
            deadline = self.machine.next_deadline()
            if deadline is None or deadline > end:
                break
            self.now = max(self.now, deadline)
            self.machine.handle_timers(self.now)
            produced += self.collect()
        self.now = end
        return produced

    def add_peers(self, count: int, pmax: int = 5) -> list[str]:
        names = [f"p{i}" for i in range(count)]
        self.receive(*(peer_alive(name, 10 + i, pmax=pmax) for i, name in enumerate(names)))
        return names


def packets(outputs: list[Output]) -> list[tuple[tuple[str, int], list[object]]]:
    """Every SendPacket decoded: (destination, messages)."""
    return [(o.to, CODEC.open(o.data).messages) for o in outputs if isinstance(o, SendPacket)]


def messages_of(outputs: list[Output], kind: type) -> list[tuple[tuple[str, int], object]]:
    """Messages of one type in the packets sent, with their destination."""
    return [(to, m) for to, found in packets(outputs) for m in found if isinstance(m, kind)]


def streams(outputs: list[Output]) -> list[OpenStream]:
    return [o for o in outputs if isinstance(o, OpenStream)]
