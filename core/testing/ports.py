"""Free 127.0.0.1 ports for tests that hand a port number to a process they start.

A port found by binding port 0 and letting it go comes from the kernel's ephemeral range, the
same range every other bind to port 0 and every outgoing connection draw from: between the
test picking it and the process binding it, a node's gossip socket, an in-process broker's
listener or a client's local port can take it, and the process then fails with "Address already
in use" (seen in CI). The kernel never hands out a port below that range unless it is asked
for by number, so :func:`free_port` picks one there, checked free when it returns.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

#: The lowest port :func:`free_port` picks (below it: well-known and registered services).
LOWEST = 10_000
#: Random picks below the ephemeral range before falling back to the kernel's choice.
ATTEMPTS = 200


def ephemeral_low(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    """The lowest port the kernel hands out for a bind to port 0 (Linux's ``ip_local_port_range``; else 32768)."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def _free(port: int, count: int, udp: bool) -> bool:
    """Whether ``port`` … ``port + count - 1`` can each be bound on 127.0.0.1 now (TCP, and UDP when ``udp``)."""
    kinds = (socket.SOCK_STREAM, socket.SOCK_DGRAM) if udp else (socket.SOCK_STREAM,)
    for candidate in range(port, port + count):
        for kind in kinds:
            with socket.socket(socket.AF_INET, kind) as probe:
                try:
                    probe.bind(("127.0.0.1", candidate))
                except OSError:
                    return False
    return True


def free_port(*, udp: bool = False, count: int = 1, rng: random.Random | None = None) -> int:
    """A port P with P … P + count - 1 free on 127.0.0.1 now: TCP, and UDP too when ``udp`` (gossip needs both).

    Picked below the ephemeral range when there is room (see the module's docstring); else,
    or after :data:`ATTEMPTS` taken picks, one the kernel chooses, checked the same way.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    pick = rng or random.Random()
    high = ephemeral_low() - count
    for _ in range(ATTEMPTS if high > LOWEST else 0):
        port = pick.randrange(LOWEST, high)
        if _free(port, count, udp):
            return port
    for _ in range(ATTEMPTS):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + count <= 65_536 and _free(port, count, udp):
            return port
    raise RuntimeError(f"no {count} free port(s) in a row on 127.0.0.1")


__all__ = ["ATTEMPTS", "LOWEST", "ephemeral_low", "free_port"]
