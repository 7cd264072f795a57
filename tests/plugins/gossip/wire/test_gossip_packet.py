"""Packets: compound, compression, CRC, encryption with a keyring, labels."""

from __future__ import annotations

import os
import struct

import pytest

from hookmq.plugins.gossip.wire import (
    Keyring,
    Ping,
    Suspect,
    UserData,
    WireCodec,
    WireError,
    encode_message,
    make_compound,
    make_compounds,
)
from hookmq.plugins.gossip.wire.crypto import decrypt_payload, encrypt_payload, encryption_overhead
from hookmq.plugins.gossip.wire.packet import decode_compound

PING = encode_message(Ping(1, "node-b", bytes([10, 0, 0, 1]), 7946, "node-a"))
SUSPECT = encode_message(Suspect(3, "node-c", "node-a"))
KEY_A, KEY_B = os.urandom(16), os.urandom(32)


def test_compound_layout() -> None:
    compound = make_compound([b"\x01ab", b"\x02c"])
    assert compound == bytes([7, 2, 0, 3, 0, 2]) + b"\x01ab\x02c"
    assert decode_compound(compound[1:]) == ([b"\x01ab", b"\x02c"], 0)


def test_compound_reports_truncated_parts_and_keeps_the_whole_ones() -> None:
    compound = make_compound([PING, SUSPECT])[:-3]
    packet = WireCodec().open(compound)
    assert packet.messages == [Ping(1, "node-b", bytes([10, 0, 0, 1]), 7946, "node-a")]
    assert [error.reason for error in packet.errors] == ["truncated"]


def test_compound_is_split_at_255_parts() -> None:
    compounds = make_compounds([b"\x08x"] * 600)
    assert [c[1] for c in compounds] == [255, 255, 90]
    with pytest.raises(ValueError):
        make_compound([b"\x08"] * 256)


def test_compression_only_when_smaller() -> None:
    codec = WireCodec(compression=True)
    assert codec.seal(PING, crc=False) == PING  # a ping does not shrink
    big = make_compound([SUSPECT] * 20)
    sealed = codec.seal(big, crc=False)
    assert sealed[0] == 9 and len(sealed) < len(big)
    assert len(codec.open(sealed).messages) == 20


def test_crc_is_checked() -> None:
    codec = WireCodec()
    sealed = codec.seal(PING, crc=True)
    assert sealed[0] == 12 and struct.unpack(">I", sealed[1:5])[0] != 0
    assert len(codec.open(sealed).messages) == 1
    corrupt = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(WireError) as caught:
        codec.open(corrupt)
    assert caught.value.reason == "crc"


def test_user_messages_are_opaque() -> None:
    assert WireCodec().open(b"\x08hello").messages == [UserData(b"hello")]


def test_label_header_and_mismatch() -> None:
    labelled = WireCodec(label="prod")
    sealed = labelled.seal(PING, crc=False)
    assert sealed[:6] == b"\xf4\x04prod"
    assert len(labelled.open(sealed).messages) == 1
    for other in (WireCodec(), WireCodec(label="test")):
        with pytest.raises(WireError) as caught:
            other.open(sealed)
        assert caught.value.reason == "label"
    with pytest.raises(WireError):  # an unlabelled packet at a labelled node
        labelled.open(PING)


def test_label_longer_than_255_bytes_is_refused() -> None:
    with pytest.raises(ValueError):
        WireCodec(label="x" * 256)


@pytest.mark.parametrize("version", [0, 1])
def test_encryption_round_trip_and_overhead(version: int) -> None:
    ring = Keyring([KEY_A])
    sealed = encrypt_payload(version, ring.primary, PING, b"")
    assert len(sealed) <= len(PING) + encryption_overhead(version)
    assert decrypt_payload(ring.ciphers, sealed, b"") == PING


def test_encrypted_packet_with_label_as_additional_data() -> None:
    codec = WireCodec(keyring=Keyring([KEY_A]), label="dc1")
    sealed = codec.seal(PING, crc=True)
    assert sealed.startswith(b"\xf4\x03dc1\x01")  # label, then encryption version 1
    assert len(codec.open(sealed).messages) == 1
    # Same key but the label swapped on the wire: authentication fails.
    swapped = b"\xf4\x03dc2" + sealed[5:]
    with pytest.raises(WireError):
        WireCodec(keyring=Keyring([KEY_A]), label="dc2").open(swapped)


def test_wrong_key_and_plaintext_are_rejected() -> None:
    sealed = WireCodec(keyring=Keyring([KEY_A])).seal(PING, crc=False)
    with pytest.raises(WireError) as caught:
        WireCodec(keyring=Keyring([KEY_B])).open(sealed)
    assert caught.value.reason == "decrypt"
    with pytest.raises(WireError):
        WireCodec(keyring=Keyring([KEY_A])).open(PING)  # plaintext at an encrypted node
    with pytest.raises(WireError):
        WireCodec().open(sealed)  # ciphertext at a plaintext node


def test_key_rotation_without_downtime() -> None:
    old = WireCodec(keyring=Keyring([KEY_A]))
    both = Keyring([KEY_A, KEY_B])
    rotating = WireCodec(keyring=both)
    assert len(rotating.open(old.seal(PING, crc=False)).messages) == 1  # step 1: install the new key
    both.use(KEY_B)
    new_sealed = rotating.seal(PING, crc=False)  # step 2: the new key is primary
    assert len(WireCodec(keyring=Keyring([KEY_B, KEY_A])).open(new_sealed).messages) == 1
    with pytest.raises(WireError):
        old.open(new_sealed)
    both.remove(KEY_A)  # step 3: the old key goes
    with pytest.raises(WireError):
        rotating.open(old.seal(PING, crc=False))
    with pytest.raises(ValueError):
        both.remove(KEY_B)


@pytest.mark.parametrize("size", [0, 8, 15, 33, 64])
def test_keys_must_be_16_24_or_32_bytes(size: int) -> None:
    with pytest.raises(ValueError):
        Keyring([bytes(size)])
