"""TLS for the tls and wss listeners: the server context, checks of its files, and the handshake.

The handshake is run by `accept_tls` (``loop.start_tls`` on an accepted TCP connection)
rather than by ``create_server(ssl=...)``: asyncio and uvloop drop a connection whose
handshake fails without telling anyone, while here the failure reaches us with the peer's
address, so it can be logged (`describe_handshake_failure`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

from ..eventlog import log_event
from ..exits import EXIT_USAGE, SetupError
from ..ratelimit import LogLimiter
from .config import ListenerConfig

_MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TlsMaterialError(SetupError):
    """A listener's certificate, key or CA file is missing, unreadable or unusable."""

    exit_status = EXIT_USAGE


class _EncryptedKey(Exception):
    """Raised by the password callback: hookmq never prompts for a passphrase."""


def _refuse_passphrase() -> str:
    raise _EncryptedKey


def server_ssl_context(config: ListenerConfig) -> ssl.SSLContext:
    """Return a server context: the listener's certificate and key, TLS >= the configured minimum,
    and client certificates verified against `cafile` (optional unless `require_client_cert`).

    :raises TlsMaterialError: a file is missing, unreadable or unusable (the message names
        the listener, the key and the file).
    """
    problems = tls_material_problems(config)
    if problems:
        key, message = problems[0]
        raise TlsMaterialError(f"listener {config.name!r} ({config.type}): {key} {message}")
    assert config.certfile is not None and config.keyfile is not None  # checked above
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _MIN_VERSIONS[config.tls_min_version]
    context.load_cert_chain(certfile=config.certfile, keyfile=config.keyfile, password=_refuse_passphrase)
    if config.ciphers:
        context.set_ciphers(config.ciphers)
    if config.cafile is not None:
        context.load_verify_locations(cafile=config.cafile)
        # With a CA but no requirement, a client may still authenticate by certificate.
        context.verify_mode = ssl.CERT_REQUIRED if config.require_client_cert else ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


# -------------------------------------------------------------------------
# Checking the files before serving (also `hookmq config check`)
# -------------------------------------------------------------------------


def tls_material_problems(config: ListenerConfig) -> list[tuple[str, str]]:
    """What is wrong with a TLS listener's files, as (key, "<file>: <what>") pairs; [] when usable.

    Checks that each file exists and is readable, that `certfile` and `cafile` hold PEM
    certificates, that `keyfile` holds an unencrypted PEM private key, and that the key
    belongs to the certificate. Relative paths are relative to the working directory, as
    when the broker opens them.
    """
    if not config.is_tls:
        return []
    problems: list[tuple[str, str]] = []
    for key in ("certfile", "keyfile", "cafile"):
        path: Path | None = getattr(config, key)
        if path is not None:
            unreadable = _unreadable(path)
            if unreadable:
                problems.append((key, f"{path}: {unreadable}"))
    if problems:
        return problems
    certfile, keyfile = config.certfile, config.keyfile
    assert certfile is not None and keyfile is not None  # the listener model requires them
    if not _holds_certificate(certfile):
        problems.append(("certfile", f"{certfile}: no PEM certificate in it"))
    if config.cafile is not None and not _holds_certificate(config.cafile):
        problems.append(("cafile", f"{config.cafile}: no PEM certificate in it"))
    if not problems:
        key_problem = _key_problem(certfile, keyfile)
        if key_problem:
            problems.append(("keyfile", f"{keyfile}: {key_problem}"))
    return problems


def _unreadable(path: Path) -> str | None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except FileNotFoundError:
        return "file not found"
    except IsADirectoryError:
        return "is a directory, not a file"
    except OSError as error:
        return f"cannot read it: {error.strerror or error}"
    return None


def _holds_certificate(path: Path) -> bool:
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cafile=path)
    except (ssl.SSLError, ValueError):
        return False
    return True


def _key_problem(certfile: Path, keyfile: Path) -> str | None:
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_cert_chain(certfile=certfile, keyfile=keyfile, password=_refuse_passphrase)
    except _EncryptedKey:
        return "the private key is encrypted; hookmq needs it unencrypted (openssl pkey -in KEY -out KEY.plain)"
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            return f"this private key does not belong to the certificate in {certfile}"
        return "no usable PEM private key in it"
    return None


# -------------------------------------------------------------------------
# The handshake, done by us so that its failures are seen
# -------------------------------------------------------------------------


class EarlyEvents(asyncio.Protocol):
    """Holds what the TLS layer delivers before the real protocol is attached, to replay it.

    The handshake completes inside the TLS layer, which may deliver data (a client's first
    bytes often travel with its last handshake message) or even the end of the connection
    before the task that awaited the handshake runs again.
    """

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.eof = False
        self.lost = False
        self.lost_error: Exception | None = None

    def data_received(self, data: bytes) -> None:
        """Hold a chunk."""
        self.data.append(data)

    def eof_received(self) -> bool:
        """Hold the end of stream; the real protocol decides what follows."""
        self.eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Hold the loss of the connection."""
        self.lost = True
        self.lost_error = exc

    def replay(self, protocol: asyncio.Protocol) -> None:
        """Hand the held events to ``protocol``, in the order they came."""
        for chunk in self.data:
            protocol.data_received(chunk)
        self.data.clear()
        if self.eof:
            protocol.eof_received()
        if self.lost:
            protocol.connection_lost(self.lost_error)


async def accept_tls(
    raw: asyncio.BaseTransport, context: ssl.SSLContext, timeout: float, raw_bytes: list[bytes]
) -> tuple[asyncio.Transport, EarlyEvents]:
    """Run the server side of the TLS handshake on an accepted connection.

    ``raw_bytes`` holds what the TCP protocol received before the handshake could start:
    uvloop delivers the ClientHello to the accepting protocol before any task runs (even a
    ``pause_reading`` in ``connection_made`` does not stop it), so those bytes are handed to
    the TLS layer as soon as it replaces that protocol.

    Returns the TLS transport and what it already received (attach the real protocol with
    ``transport.set_protocol`` and replay the events into it). Raises whatever the handshake
    raised (`ssl.SSLError`, `ConnectionError`, a timeout as `ConnectionAbortedError`); the
    connection is closed by then.
    """
    loop = asyncio.get_running_loop()
    early = EarlyEvents()
    handshake = loop.create_task(
        loop.start_tls(raw, early, context, server_side=True, ssl_handshake_timeout=timeout)  # type: ignore[arg-type]
    )
    # Runs right after the handshake task's first step, which swapped the transport's protocol
    # for the TLS one and scheduled its connection_made (later): the bytes go in first.
    loop.call_soon(_hand_over, raw, raw_bytes)
    transport = await handshake
    if transport is None:  # only for a transport that is already closing
        raise ConnectionResetError("the connection closed before the TLS handshake")
    return transport, early


def _hand_over(raw: asyncio.BaseTransport, raw_bytes: list[bytes]) -> None:
    """Feed bytes received before the handshake into the TLS protocol that now owns ``raw``."""
    chunks = list(raw_bytes)
    raw_bytes.clear()
    protocol: Any = raw.get_protocol()
    for data in chunks:
        if hasattr(protocol, "buffer_updated"):  # asyncio's and uvloop's TLS protocols are buffered
            view = memoryview(data)
            while view:
                buffer = protocol.get_buffer(len(view))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                protocol.buffer_updated(size)
                view = view[size:]
        else:
            protocol.data_received(data)


def describe_handshake_failure(error: BaseException) -> tuple[int, str]:
    """(log level, reason) for a failed handshake; a bare close is INFO, anything else WARNING.

    A peer that closes without a word may be a TCP health check, or a client that did not
    trust the server certificate and hung up: the line says both.
    """
    if isinstance(error, ssl.SSLError):
        reason = error.reason or type(error).__name__
        text = str(error)
        # "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)" -> the words alone
        words = text.split("] ", 1)[-1].rsplit(" (_ssl.c", 1)[0] if "] " in text else text
        return logging.WARNING, f"{words} ({reason})"
    if isinstance(error, ConnectionAbortedError | TimeoutError):
        return logging.WARNING, f"no TLS handshake within the timeout ({error or 'timed out'})"
    if isinstance(error, ConnectionError | EOFError) and not str(error):
        return logging.INFO, ("the peer closed the connection during the TLS handshake "
                              "(a TCP health check, or a client that does not trust the server certificate)")
    return logging.WARNING, f"{type(error).__name__}: {error}"


class TlsAcceptance:
    """Runs the handshakes of one TLS listener's connections, and logs those that fail."""

    def __init__(self, context: ssl.SSLContext, listener: str, log: LogLimiter, timeout: float) -> None:
        self.context = context
        self.listener = listener
        self.log = log
        self.timeout = timeout
        #: Handshakes in progress, cancelled when the listener shuts down.
        self.handshakes: set[asyncio.Task[None]] = set()

    def start(self, protocol: asyncio.Protocol, raw: asyncio.BaseTransport, peer: str) -> list[bytes]:
        """Handshake on ``raw`` in a task; then ``protocol.connection_made(tls_transport)`` and its early events.

        Returns the list in which ``protocol`` must put whatever ``raw`` hands it meanwhile.
        """
        raw_bytes: list[bytes] = []
        task = asyncio.get_running_loop().create_task(self._handshake(protocol, raw, peer, raw_bytes))
        self.handshakes.add(task)
        task.add_done_callback(self.handshakes.discard)
        return raw_bytes

    async def _handshake(
        self, protocol: asyncio.Protocol, raw: asyncio.BaseTransport, peer: str, raw_bytes: list[bytes]
    ) -> None:
        if raw.is_closing():  # the peer closed before the handshake could start
            self.failed(peer, ConnectionResetError())
            protocol.connection_lost(None)
            return
        try:
            transport, early = await accept_tls(raw, self.context, self.timeout, raw_bytes)
        except Exception as error:
            self.failed(peer, error)
            # The TLS layer took the connection's end; the protocol still has to hear of it.
            protocol.connection_lost(error)
            return
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        early.replay(protocol)

    def failed(self, peer: str, error: BaseException) -> None:
        """Log a failed handshake: WARNING with the reason (a bare close is INFO)."""
        level, reason = describe_handshake_failure(error)
        log_event(self.log, level, "tls_handshake_failed", {"remote": peer, "listener": self.listener, "reason": reason})

    def cancel(self) -> list[asyncio.Task[None]]:
        """Cancel the handshakes in progress; returns their tasks, to be awaited."""
        tasks = list(self.handshakes)
        for task in tasks:
            task.cancel()
        return tasks


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, object] | None:
    """The verified client certificate as `getpeercert()` gives it, or None when there is none."""
    if ssl_object is None:
        return None
    certificate = ssl_object.getpeercert()
    # getpeercert() returns {} when a certificate was received but not verified (CERT_NONE).
    return dict(certificate) if certificate else None
