"""Table-driven codec tests: every vector in ``vectors/codec_vectors.py``, decoded and re-encoded."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from hookmq.mqtt.codec import Decoder, encode
from hookmq.mqtt.errors import ProtocolError
from hookmq.mqtt.packets import PACKET_TYPES, Auth


def _load_vectors() -> list[Any]:
    # The tests tree has no packages, so the data module is loaded by its path.
    path = Path(__file__).parent / "vectors" / "codec_vectors.py"
    spec = importlib.util.spec_from_file_location("hookmq_codec_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return list(module.VECTORS)


VECTORS = _load_vectors()


def _decoder_for(vector: Any) -> Decoder:
    connect = vector.raw[0] >> 4 == 1
    level = None if connect or vector.fresh else vector.level
    return Decoder(max_packet_size=vector.max_packet_size, protocol_level=level)


@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_vector(vector: Any) -> None:
    decoder = _decoder_for(vector)
    if isinstance(vector.expected, int):
        with pytest.raises(ProtocolError) as caught:
            decoder.feed(vector.raw)
        assert caught.value.reason_code == vector.expected, caught.value.message
        assert caught.value.message
        return
    assert decoder.feed(vector.raw) == [vector.expected]
    assert decoder.buffered == 0
    if vector.canonical:
        assert encode(vector.expected, vector.level) == vector.raw


def test_the_table_is_large_and_covers_every_packet_type() -> None:
    valid = [v for v in VECTORS if not isinstance(v.expected, int)]
    assert len(VECTORS) >= 150
    assert len({v.name for v in VECTORS}) == len(VECTORS), "vector names must be unique"
    for level in (4, 5):
        covered = {type(v.expected) for v in valid if v.level == level}
        missing = set(PACKET_TYPES) - covered - ({Auth} if level == 4 else set())
        assert not missing, f"level {level} lacks valid vectors for {sorted(t.__name__ for t in missing)}"


def test_a_failed_decoder_refuses_more_input() -> None:
    decoder = Decoder(protocol_level=4)
    with pytest.raises(ProtocolError):
        decoder.feed(b"\x00\x00")
    with pytest.raises(ProtocolError) as caught:
        decoder.feed(b"\xc0\x00")
    assert caught.value.reason_code == 0x81
    assert "already failed" in caught.value.message


def test_connect_sets_the_level_for_the_rest_of_the_stream() -> None:
    decoder = Decoder()
    connect = b"\x10\x0d\x00\x04MQTT\x05\x02\x00\x00\x00\x00\x00"
    publish_v5 = b"\x30\x05\x00\x01a\x00z"
    packets = decoder.feed(connect + publish_v5)
    assert decoder.protocol_level == 5
    assert packets[1].payload == b"z"


def test_a_second_connect_is_a_protocol_error() -> None:
    decoder = Decoder()
    connect = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x00\x00\x00"
    decoder.feed(connect)
    with pytest.raises(ProtocolError) as caught:
        decoder.feed(connect)
    assert caught.value.reason_code == 0x82


def test_oversized_packet_is_refused_before_its_body_arrives() -> None:
    decoder = Decoder(max_packet_size=1000, protocol_level=4)
    with pytest.raises(ProtocolError) as caught:
        decoder.feed(b"\x30\xe8\x07")  # announces 1000 bytes of body: 1003 in all
    assert caught.value.reason_code == 0x95
