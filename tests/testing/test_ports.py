"""hookmq.testing.ports: ports below the ephemeral range, free for what the caller asked."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from hookmq.testing.ports import LOWEST, ephemeral_low, free_port


def test_the_ephemeral_range_is_read_from_the_kernel_or_defaults(tmp_path: Path) -> None:
    table = tmp_path / "ip_local_port_range"
    table.write_text("40000\t60999\n")
    assert ephemeral_low(table) == 40_000
    assert ephemeral_low(tmp_path / "missing") == 32_768
    table.write_text("nonsense\n")
    assert ephemeral_low(table) == 32_768


def test_a_port_comes_from_below_the_ephemeral_range_and_can_be_bound() -> None:
    low = ephemeral_low()
    for _ in range(20):
        port = free_port()
        assert LOWEST <= port < low
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_run_of_ports_is_free_for_tcp_and_udp() -> None:
    port = free_port(udp=True, count=3)
    held = []
    try:
        for candidate in range(port, port + 3):
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                sock = socket.socket(socket.AF_INET, kind)
                held.append(sock)
                sock.bind(("127.0.0.1", candidate))
    finally:
        for sock in held:
            sock.close()


def test_a_taken_port_is_never_returned() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]

        class Scripted(random.Random):
            def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:  # type: ignore[override]
                return busy  # every pick is the taken port: after them, the kernel's choice, checked

        port = free_port(udp=True, rng=Scripted())
        assert port != busy
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_a_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        free_port(count=0)
