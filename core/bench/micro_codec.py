"""Micro-benchmark: microseconds to decode and to encode one 64-byte-payload QoS 1 PUBLISH.

Run ``python -m hookmq.bench.micro_codec``. Each figure is the best of several ``timeit``
repeats of many iterations, for MQTT 3.1.1 and 5.0. "decode" is a whole ``Decoder.feed`` of
one packet (fixed header, validation, the ``Publish`` object); "encode" is
``encode_publish``, the engine's fan-out path. The v5 rows with properties show what a
typical message expiry and user property add, with the property-block caches warm (a
publisher repeating its properties) and cold (every block new). Targets: decode <= 3 us, encode <= 2 us.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from dataclasses import dataclass

from ..mqtt.codec import Decoder, encode_publish
from ..mqtt.packets import Properties, Publish
from ..mqtt.properties import clear_property_cache

TOPIC = "sensors/building-7/floor-3/temperature"
PAYLOAD = bytes(range(64))
_WITH_PROPERTIES = Properties(message_expiry_interval=3600, user_properties=(("unit", "celsius"),))


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmarked wire form."""

    label: str
    level: int
    packet: Publish
    #: Forget cached property blocks before every call: the cost of a never-seen block.
    cold: bool = False


CASES = (
    Case("MQTT 3.1.1", 4, Publish(TOPIC, PAYLOAD, qos=1, packet_id=4242)),
    Case("MQTT 5.0", 5, Publish(TOPIC, PAYLOAD, qos=1, packet_id=4242)),
    Case("MQTT 5.0 + properties", 5, Publish(TOPIC, PAYLOAD, qos=1, packet_id=4242, properties=_WITH_PROPERTIES)),
    Case("  same, cold caches", 5, Publish(TOPIC, PAYLOAD, qos=1, packet_id=4242, properties=_WITH_PROPERTIES),
         cold=True),
)


def best_microseconds(action: Callable[[], object], number: int, repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``number`` calls, per call, in microseconds."""
    return min(timeit.repeat(action, number=number, repeat=repeat)) / number * 1e6


def measure(case: Case, number: int, repeat: int) -> tuple[float, float, int]:
    """Return (decode us, encode us, wire size) for one case."""
    data, _ = encode_publish(case.packet, case.level)
    decoder = Decoder(protocol_level=case.level)
    assert decoder.feed(data) == [case.packet]  # the benchmark measures a correct round trip
    if case.cold:
        def decode() -> object:
            clear_property_cache()
            return decoder.feed(data)

        def encode() -> object:
            clear_property_cache()
            return encode_publish(case.packet, case.level)
    else:
        def decode() -> object:
            return decoder.feed(data)

        def encode() -> object:
            return encode_publish(case.packet, case.level)
    return best_microseconds(decode, number, repeat), best_microseconds(encode, number, repeat), len(data)


def main(argv: list[str] | None = None) -> None:
    """Print one row per case."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--number", type=int, default=200_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs; the best is kept")
    args = parser.parse_args(argv)
    print(f"{'wire form':<24}{'bytes':>6}{'decode us':>11}{'encode us':>11}")
    for case in CASES:
        decode_us, encode_us, size = measure(case, args.number, args.repeat)
        print(f"{case.label:<24}{size:>6}{decode_us:>11.2f}{encode_us:>11.2f}")


if __name__ == "__main__":
    main()
