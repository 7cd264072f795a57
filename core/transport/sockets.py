"""Listening sockets bound the way a Go-style address means."""

from __future__ import annotations

import contextlib
import socket
import sys

LISTEN_BACKLOG = 1024
"""Pending connections the kernel queues per listener; asyncio's default of 100 is low for bursts."""

ACCEPT_BATCH = 100
"""The `backlog` handed to asyncio, which uses it as the number of accepts per readiness event.

It stays at asyncio's default because CPython's accept loop does not stop after EMFILE: each
remaining iteration logs the error and schedules a retry. The kernel queue is widened to
`LISTEN_BACKLOG` afterwards with `widen_backlog`.
"""


def widen_backlog(sock: socket.socket) -> None:
    """Raise the kernel's pending-connection queue after asyncio listen()ed with `ACCEPT_BATCH`."""
    sock.listen(LISTEN_BACKLOG)


def bind_listening_socket(host: str | None, port: int, *, reuse_port: bool = False) -> socket.socket:
    """Return a non-blocking socket listening on host:port.

    A missing host means every interface: one dual-stack IPv6 socket when the system has IPv6
    (so IPv4 and IPv6 clients share one port, also when port 0 picks it), else IPv4 only. A
    name that resolves to several addresses binds the first one. ``reuse_port`` sets
    SO_REUSEPORT before binding: several processes of one user then listen on one port and the
    kernel spreads new connections over them (``hookmq --workers``).
    """
    return _bind_host(host, port, reuse_port=reuse_port, listen=True)


def reserve_port(host: str | None, port: int) -> socket.socket:
    """Bind host:port with SO_REUSEPORT without listening, as ``bind_listening_socket`` would bind it.

    The worker supervisor holds one per listener: it resolves port 0 to the port every worker
    then binds with ``reuse_port``, and keeps the port to this user while workers restart. A
    socket that does not listen takes no connections: the kernel spreads them only over the
    listening members of the group.
    """
    return _bind_host(host, port, reuse_port=True, listen=False)


def _bind_host(host: str | None, port: int, *, reuse_port: bool, listen: bool) -> socket.socket:
    if host is None:
        return _bind_any_interface(port, reuse_port=reuse_port, listen=listen)
    family, address = _resolve(host, port)
    return _bind(family, address, dual_stack=False, reuse_port=reuse_port, listen=listen)


def _bind_any_interface(port: int, *, reuse_port: bool, listen: bool) -> socket.socket:
    if socket.has_ipv6:
        try:
            return _bind(socket.AF_INET6, ("::", port), dual_stack=True, reuse_port=reuse_port, listen=listen)
        except OSError:
            pass  # IPv6 disabled in this kernel or container: serve IPv4 alone
    return _bind(socket.AF_INET, ("0.0.0.0", port), dual_stack=False, reuse_port=reuse_port, listen=listen)


def _resolve(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    if not infos:
        raise OSError(f"cannot resolve listen host {host!r}")
    family, _type, _proto, _canon, sockaddr = infos[0]
    return family, (str(sockaddr[0]), int(sockaddr[1]))


def _bind(family: socket.AddressFamily, address: tuple[str, int], *, dual_stack: bool,
          reuse_port: bool = False, listen: bool = True) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if hasattr(socket, "SO_REUSEADDR") and not _is_windows():
            # Lets a restarted broker rebind while old connections sit in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            if not hasattr(socket, "SO_REUSEPORT"):
                raise OSError("this system has no SO_REUSEPORT: run one worker")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.bind(address)
        if listen:
            sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _is_windows() -> bool:
    # SO_REUSEADDR on Windows lets another process steal the port, unlike on Unix.
    return sys.platform == "win32"


def set_nodelay(sock: socket.socket | None) -> None:
    """Disable Nagle's algorithm: MQTT packets are small and latency matters more than batching."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    # The peer may already be gone; the read path will notice, so a failure here is harmless.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def quick_ack_socket(sock: socket.socket | None) -> socket.socket | None:
    """``sock`` when the kernel can be asked to acknowledge at once (Linux ``TCP_QUICKACK``), else None."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6) or not hasattr(socket, "TCP_QUICKACK"):
        return None
    return sock


def quick_ack(sock: socket.socket) -> None:
    """Have the kernel acknowledge what was received now rather than after its delayed-ACK timer.

    The flag is not sticky (the kernel leaves quick-ack mode by itself), so it is set again
    for each read event that needs it.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


#: TCP keep-alive probing of idle connections: first probe after this many idle seconds,
#: then every KEEPALIVE_INTERVAL seconds, the peer declared dead after KEEPALIVE_PROBES misses.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 10
KEEPALIVE_PROBES = 3


def set_keepalive(sock: socket.socket | None) -> None:
    """Let the kernel find half-open connections, also for clients whose MQTT Keep Alive is 0.

    A peer that vanished without a FIN (power loss, a dropped NAT entry) is then closed after
    about two minutes of silence instead of holding its session for ever.
    """
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        if hasattr(socket, "TCP_KEEPIDLE"):  # Linux; other systems keep their defaults
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_PROBES)


def tune_listening_socket(sock: socket.socket) -> None:
    """Set `set_nodelay` and `set_keepalive` on a listening socket, so its accepted sockets start with them.

    Linux (and the BSDs) copy these options from the listening socket to every socket it
    accepts; `AcceptedSocketTuning` checks that on the first one and sets them itself where not.
    """
    set_nodelay(sock)
    set_keepalive(sock)


def is_tuned(sock: socket.socket) -> bool:
    """Whether ``sock`` has what `set_nodelay` and `set_keepalive` set."""
    try:
        if not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
            return False
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE):
            return False
        if hasattr(socket, "TCP_KEEPIDLE"):
            return (sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE
                    and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == KEEPALIVE_INTERVAL
                    and sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_PROBES)
    except OSError:
        return False
    return True


class AcceptedSocketTuning:
    """The socket options of one listener's accepted sockets, set per socket only where not inherited.

    Five `setsockopt` calls per accepted connection (each one, under uvloop, also wraps the
    descriptor in a new Python socket object) were a measurable part of accepting a
    connection; on systems that copy the listening socket's options (`tune_listening_socket`)
    the first accepted socket shows it, and the rest need no call at all.
    """

    __slots__ = ("inherited",)

    def __init__(self) -> None:
        #: None until the first TCP socket was accepted, then whether it came with the options.
        self.inherited: bool | None = None

    def apply(self, sock: socket.socket | None) -> None:
        """Give an accepted socket `set_nodelay` and `set_keepalive` (nothing once they are known to be inherited)."""
        if self.inherited or sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        if self.inherited is None:
            self.inherited = is_tuned(sock)
            if self.inherited:
                return
        set_nodelay(sock)
        set_keepalive(sock)
