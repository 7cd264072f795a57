"""The link handshake and connections without an event loop: keys, rotation, refusals, random bytes."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookmq.plugins.gossip.link.connection import LinkConnection
from hookmq.plugins.gossip.link.errors import LinkError
from hookmq.plugins.gossip.link.frames import PREAMBLE, Data, encode_data
from hookmq.plugins.gossip.link.handshake import Established, LocalIdentity
from hookmq.plugins.gossip.wire import Keyring

OLD, NEW = os.urandom(32), os.urandom(16)


def identity(name: str, keys: list[bytes] | None, label: str = "") -> LocalIdentity:
    return LocalIdentity(name, os.urandom(8), Keyring(keys) if keys else None, label, 1 << 20)


def connections(dialer_keys: list[bytes] | None, acceptor_keys: list[bytes] | None, *, admit: str | None = None,
                expected: str = "node-b", label_a: str = "", label_b: str = "") -> tuple[LinkConnection, LinkConnection]:
    dialer = LinkConnection("dialer", identity("node-a", dialer_keys, label_a), base=lambda _: 1, expected_peer=expected)
    acceptor = LinkConnection("acceptor", identity("node-b", acceptor_keys, label_b), base=lambda _: 7,
                              admit=lambda name: admit)
    return dialer, acceptor


def pump(dialer: LinkConnection, acceptor: LinkConnection) -> list[object]:
    """Carry bytes both ways until neither has anything to send; the events of both sides."""
    events: list[object] = []
    for _ in range(10):
        to_acceptor, to_dialer = b"".join(dialer.take_output()), b"".join(acceptor.take_output())
        if not to_acceptor and not to_dialer:
            break
        if to_acceptor:
            events += acceptor.receive(to_acceptor)
        if to_dialer:
            events += dialer.receive(to_dialer)
    return events


@pytest.mark.parametrize(("dialer_keys", "acceptor_keys"), [
    (None, None), ([OLD], [OLD]), ([NEW, OLD], [OLD, NEW]), ([OLD, NEW], [NEW, OLD]),
])
def test_both_sides_establish_and_exchange_frames(dialer_keys: list[bytes] | None, acceptor_keys: list[bytes] | None) -> None:
    dialer, acceptor = connections(dialer_keys, acceptor_keys)
    events = pump(dialer, acceptor)
    assert dialer.established is not None and acceptor.established is not None
    assert dialer.established.peer == "node-b" and acceptor.established.peer == "node-a"
    assert dialer.established.peer_base == 7 and acceptor.established.peer_base == 1
    assert len([e for e in events if isinstance(e, Established)]) == 2
    assert (dialer.established.send_key is None) == (dialer_keys is None)
    assert dialer.established.send_key == acceptor.established.receive_key
    assert dialer.established.receive_key == acceptor.established.send_key
    dialer.write(encode_data(5, 1, b"to b"))
    acceptor.write(encode_data(6, None, b"to a"))
    assert pump(dialer, acceptor) == [Data(5, 1, b"to b"), Data(6, None, b"to a")]


def test_session_keys_differ_on_every_connection() -> None:
    first = connections([OLD], [OLD])
    second = connections([OLD], [OLD])
    pump(*first)
    pump(*second)
    assert first[0].established is not None and second[0].established is not None
    assert first[0].established.send_key != second[0].established.send_key


def failure(dialer: LinkConnection, acceptor: LinkConnection) -> LinkError:
    try:
        pump(dialer, acceptor)
    except LinkError as error:
        return error
    raise AssertionError("the handshake succeeded")


@pytest.mark.parametrize(("dialer_keys", "acceptor_keys", "reason"), [
    ([os.urandom(32)], [OLD], "auth"),
    (None, [OLD], "key-mismatch"),
    ([OLD], None, "key-mismatch"),
])
def test_a_wrong_key_or_no_key_is_refused(dialer_keys: list[bytes] | None, acceptor_keys: list[bytes] | None, reason: str) -> None:
    dialer, acceptor = connections(dialer_keys, acceptor_keys)
    error = failure(dialer, acceptor)
    assert error.reason == reason
    assert acceptor.established is None


def test_a_dialer_reaching_another_node_gives_up() -> None:
    dialer, acceptor = connections(None, None, expected="node-c")
    assert failure(dialer, acceptor).reason == "wrong-node"


def test_another_cluster_label_is_refused() -> None:
    dialer, acceptor = connections([OLD], [OLD], label_a="one", label_b="two")
    assert failure(dialer, acceptor).reason == "label"


def test_an_unknown_node_is_refused_and_told_so() -> None:
    dialer, acceptor = connections([OLD], [OLD], admit="unknown-node")
    dialer_out = b"".join(dialer.take_output())
    acceptor_out = b"".join(acceptor.take_output())
    dialer.receive(acceptor_out)
    with pytest.raises(LinkError) as refused:
        acceptor.receive(dialer_out + b"".join(dialer.take_output()))
    assert refused.value.reason == "unknown-node" and refused.value.reply
    with pytest.raises(LinkError) as told:
        dialer.receive(refused.value.reply)
    assert told.value.reason == "refused" and "unknown-node" in str(told.value)


def test_a_recorded_claim_does_not_open_a_second_connection() -> None:
    """A replayed handshake meets a fresh nonce: the old proof no longer matches."""
    dialer, acceptor = connections([OLD], [OLD])
    hello = b"".join(acceptor.take_output())
    dialer.receive(hello)
    claim = b"".join(dialer.take_output())
    acceptor.receive(claim)
    assert acceptor.established is not None
    replay_target = LinkConnection("acceptor", acceptor.local, base=lambda _: 1, admit=lambda _: None)
    replay_target.take_output()
    with pytest.raises(LinkError) as error:
        replay_target.receive(claim)
    assert error.value.reason == "auth"


def test_an_acceptor_checks_the_preamble() -> None:
    acceptor = LinkConnection("acceptor", identity("node-b", None), base=lambda _: 1, admit=lambda _: None)
    acceptor.receive(PREAMBLE[:2])
    with pytest.raises(LinkError) as error:
        acceptor.receive(b"X")
    assert error.value.reason == "preamble"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600), st.booleans())
def test_random_bytes_into_a_handshake_raise_only_link_errors(data: bytes, keyed: bool) -> None:
    keys = [OLD] if keyed else None
    acceptor = LinkConnection("acceptor", identity("node-b", keys), base=lambda _: 1, admit=lambda _: None, preamble=False)
    dialer = LinkConnection("dialer", identity("node-a", keys), base=lambda _: 1, expected_peer="node-b")
    for side in (acceptor, dialer):
        with contextlib.suppress(LinkError):
            side.receive(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_handshakes_raise_only_link_errors(data: st.DataObject) -> None:
    dialer, acceptor = connections([OLD], [OLD])
    hello = bytearray(b"".join(acceptor.take_output()))
    position = data.draw(st.integers(0, len(hello) - 1))
    hello[position] ^= data.draw(st.integers(1, 255))
    try:
        dialer.receive(bytes(hello))
        claim = bytearray(b"".join(dialer.take_output()))
        position = data.draw(st.integers(0, len(claim) - 1))
        claim[position] ^= data.draw(st.integers(1, 255))
        acceptor.receive(bytes(claim))
    except LinkError:
        return
    assert acceptor.established is None  # an altered handshake never establishes (it may wait for bytes)
