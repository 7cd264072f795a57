"""Socket options of accepted connections: set once on the listening socket, per socket only where not inherited."""

from __future__ import annotations

import socket

import pytest

from hookmq.transport.sockets import (
    KEEPALIVE_IDLE,
    AcceptedSocketTuning,
    bind_listening_socket,
    is_tuned,
    tune_listening_socket,
)

pytestmark = pytest.mark.skipif(not hasattr(socket, "TCP_KEEPIDLE"), reason="Linux socket options")


def _accepted(tuned_listener: bool) -> tuple[socket.socket, socket.socket, socket.socket]:
    listener = bind_listening_socket("127.0.0.1", 0)
    listener.setblocking(True)
    if tuned_listener:
        tune_listening_socket(listener)
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    return listener, client, accepted


def test_accepted_sockets_inherit_the_listening_sockets_options() -> None:
    listener, client, accepted = _accepted(tuned_listener=True)
    with listener, client, accepted:
        assert is_tuned(accepted)
        tuning = AcceptedSocketTuning()
        tuning.apply(accepted)
        assert tuning.inherited is True


def test_options_are_set_per_socket_where_they_were_not_inherited() -> None:
    listener, client, accepted = _accepted(tuned_listener=False)
    with listener, client, accepted:
        assert not is_tuned(accepted)
        tuning = AcceptedSocketTuning()
        tuning.apply(accepted)
        assert tuning.inherited is False
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE
        assert is_tuned(accepted)
        # The next socket of the same listener is still tuned one by one.
        client2 = socket.create_connection(listener.getsockname())
        accepted2, _ = listener.accept()
        with client2, accepted2:
            tuning.apply(accepted2)
            assert is_tuned(accepted2)


def test_non_tcp_sockets_are_left_alone() -> None:
    left, right = socket.socketpair()
    with left, right:
        tuning = AcceptedSocketTuning()
        tuning.apply(left)
        assert tuning.inherited is None
