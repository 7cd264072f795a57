"""Choosing the address a node advertises, and resolving member addresses, as memberlist does.

With a specific bind address, that address is advertised. With the wildcard, memberlist
(go-sockaddr's ``GetPrivateIP``) takes the private IPv4 address of the interface that holds
the default route; hookmq does the same (the kernel's choice of source address for an
unconnected UDP socket, which sends nothing), then any interface's private IPv4 address, and
finally loopback, where a network namespace with only ``lo`` leaves nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import socket
import struct

__all__ = ["choose_advertise", "is_private", "resolve_members", "split_member"]

_PROBE_TARGET = ("192.0.2.1", 9)  # TEST-NET-1: only used to ask the routing table, never sent to
_SIOCGIFADDR = 0x8915
_WILDCARDS = {"", "0.0.0.0", "::"}


def is_private(address: str) -> bool:
    """RFC 6890 private-use IPv4 space (10/8, 172.16/12, 192.168/16, 100.64/10), as go-sockaddr."""
    ip = ipaddress.ip_address(address)
    return ip.version == 4 and any(
        ip in ipaddress.ip_network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
    )


def _default_route_source() -> str | None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(_PROBE_TARGET)
        address: str = probe.getsockname()[0]
        return address
    return None


def _interface_addresses() -> list[str]:
    """The IPv4 address of each interface (Linux ioctl; empty elsewhere)."""
    found: list[str] = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            with contextlib.suppress(OSError):
                packed = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
                found.append(socket.inet_ntoa(packed[20:24]))
    return found


def choose_advertise(bind: str, advertise: str | None) -> str:
    """The address to advertise: the configured one, a specific bind address, a private IPv4, or loopback."""
    if advertise:
        return advertise
    if bind not in _WILDCARDS:
        return bind
    source = _default_route_source()
    if source is not None and is_private(source):
        return source
    for address in _interface_addresses():
        if is_private(address):
            return address
    return "127.0.0.1"


def split_member(member: str, default_port: int) -> tuple[str, int]:
    """``host:port``, ``host``, ``[v6]:port`` → ``(host, port)`` (memberlist's ``ensurePort``)."""
    text = member.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, int(port)
    return text, default_port


async def resolve_members(members: list[str], default_port: int, family: int) -> list[tuple[str, int]]:
    """Every address each member's host name resolves to (all of them, as memberlist joins each)."""
    loop = asyncio.get_running_loop()
    resolved: list[tuple[str, int]] = []
    for member in members:
        host, port = split_member(member, default_port)
        try:
            infos = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        except OSError:
            continue
        for info in infos:
            address = (str(info[4][0]), int(info[4][1]))
            if address not in resolved:
                resolved.append(address)
    return resolved
