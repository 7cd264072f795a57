"""One broker's authentication and authorisation: the logic behind the plugin's hook implementations.

Authentication answers True (let in) or False (refuse). The engine turns a refusal into CONNACK
0x86 / v3 0x04 (bad user name or password) when the CONNECT carried a user name or password,
and 0x87 / v3 0x05 (not authorised) otherwise, e.g. an anonymous client when
``allow_anonymous`` is false. Authorisation answers True, False (an explicit deny rule or an
unreadable source) or None (no rule applies), which the hook facade turns into a deny.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from hookmq.mqtt.packets import Connect

from .identity import certificate_identity
from .passwords import dummy_hash, verify_decoy, verify_password
from .settings import AuthSettings
from .sources import Source, SourceUnavailableError, open_source
from .throttle import LoginThrottle, host_of

logger = logging.getLogger("hookmq.plugins.auth")


class ClientLike(Protocol):
    """The attributes of the engine's client object this plugin reads."""

    @property
    def client_id(self) -> str:
        """The client identifier (assigned by the broker when the client sent none)."""
        ...

    @property
    def username(self) -> str | None:
        """The user name from CONNECT."""
        ...

    @property
    def remote_address(self) -> str:
        """``"host:port"`` of the peer."""
        ...

    @property
    def tls_peer_certificate(self) -> dict[str, Any] | None:
        """The verified client certificate, as ``ssl.getpeercert()`` returns it."""
        ...


class AuthService:
    """Decides logins and ACL checks for one broker."""

    def __init__(
        self,
        settings: AuthSettings,
        source: Source | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Use ``source`` (default: the one ``settings.source`` names) and ``clock`` for lockouts."""
        self.settings = settings
        self.source: Source = source if source is not None else open_source(settings)
        self.throttle = LoginThrottle(
            max_failures=settings.max_failed_logins,
            window=settings.failed_login_window,
            lockout_base=settings.lockout_base,
            lockout_max=settings.lockout_max,
        )
        self._clock = clock
        self._hash_slots = asyncio.Semaphore(settings.max_concurrent_hashes)

    async def start(self) -> None:
        """Prepare the decoy hash (in a thread) so the first unknown-user login is not slower."""
        await asyncio.to_thread(dummy_hash)

    async def close(self) -> None:
        """Release the source's connections."""
        await self.source.close()

    def identity(self, client: ClientLike) -> str | None:
        """The user name ACL rules see: the certificate identity when configured and present."""
        from_certificate = certificate_identity(client.tls_peer_certificate, self.settings.tls_identity)
        return from_certificate if from_certificate is not None else client.username

    async def authenticate(self, client: ClientLike, connect: Connect) -> bool:
        """True to accept the CONNECT, False to refuse it (see the module docstring for the codes)."""
        certified = certificate_identity(client.tls_peer_certificate, self.settings.tls_identity)
        if certified is not None:
            return await self._authenticate_certificate(client, connect, certified)
        if connect.username is None and connect.password is None:
            if not self.settings.allow_anonymous:
                logger.info("auth: anonymous login refused from %s (client %r)", client.remote_address, client.client_id)
            return self.settings.allow_anonymous
        if connect.username is None:
            logger.info("auth: password without user name refused from %s", client.remote_address)
            return False
        return await self._authenticate_password(client, connect.username, connect.password)

    async def _authenticate_certificate(self, client: ClientLike, connect: Connect, certified: str) -> bool:
        if connect.username is not None and connect.username != certified:
            logger.warning(
                "auth: user name %r does not match certificate identity %r from %s; refused",
                connect.username, certified, client.remote_address,
            )
            return False
        if not self.settings.tls_identity_requires_password:
            return True
        return await self._authenticate_password(client, certified, connect.password)

    async def _authenticate_password(self, client: ClientLike, username: str, password: bytes | None) -> bool:
        host = host_of(client.remote_address)
        locked_for = self.throttle.locked_for(host, self._clock())
        if locked_for > 0:
            logger.warning(
                "auth: login for %r from %s refused unchecked: host locked out for %.1f s more",
                username, host, locked_for,
            )
            return False
        verdict = await self._password_matches(username, password)
        if verdict is None:
            return False
        if verdict:
            self.throttle.success(host)
            return True
        lockout = self.throttle.failure(host, self._clock())
        logger.warning(
            "auth: bad user name or password for %r from %s%s",
            username, client.remote_address, f"; host locked out for {lockout:.1f} s" if lockout else "",
        )
        return False

    async def _password_matches(self, username: str, password: bytes | None) -> bool | None:
        """True/False for a (mis)match, None when the user source could not be read."""
        try:
            entry = await self.source.user(username)
        except SourceUnavailableError as exc:
            logger.error("auth: login for %r refused, user source unavailable: %s", username, exc)
            return None
        known_hash = entry.password if entry is not None else None
        async with self._hash_slots:
            if known_hash is None or password is None:
                # Spend the same work as a real check so timing does not reveal unknown users.
                return await asyncio.to_thread(verify_decoy, password or b"")
            return await asyncio.to_thread(verify_password, password, known_hash)

    async def authorise(self, client: ClientLike, topic: str, write: bool) -> bool | None:
        """The ACL decision for a publish (``write``, topic name) or a subscription (topic filter)."""
        try:
            index = await self.source.acl()
        except SourceUnavailableError:
            return False  # fail closed; the source already logged why
        return index.decide(user=self.identity(client), client_id=client.client_id, topic=topic, write=write)
