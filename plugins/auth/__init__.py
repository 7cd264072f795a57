"""hookmq plugin ``auth``: users with hashed passwords, ACL rules, TLS client-certificate identity.

Enabled by a ``[plugins.auth]`` table; once enabled the broker is deny-by-default. Users and
rules come from that table or from Redis. See docs/auth.md for the settings, the rule
precedence, the reason codes and the Redis key layout.

The module is the plugin object, and one module may serve several brokers in one process (as
tests do), so each broker's :class:`AuthService` is kept in a registry keyed by the broker and
found again through ``client.broker``.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from pydantic import BaseModel

from hookmq import hookimpl
from hookmq.mqtt.packets import Connect

from .cli import add_passwd_command
from .passwords import hash_password, verify_password
from .service import AuthService
from .settings import AclRule, AuthSettings, UserEntry

__all__ = ["AclRule", "AuthService", "AuthSettings", "UserEntry", "hash_password", "verify_password"]

logger = logging.getLogger("hookmq.plugins.auth")

_services: dict[int, AuthService] = {}


def service_for(broker: object) -> AuthService | None:
    """The auth service started for ``broker``, if any."""
    return _services.get(id(broker))


def _service_of_client(client: Any) -> AuthService | None:
    broker = getattr(client, "broker", None)
    if broker is not None:
        return _services.get(id(broker))
    # A client object without a broker reference: only unambiguous with a single broker.
    if len(_services) == 1:
        return next(iter(_services.values()))
    return None


@hookimpl
def plugin_settings_model() -> type[BaseModel]:
    """The `[plugins.auth]` table is validated by :class:`AuthSettings`."""
    return AuthSettings


@hookimpl
async def plugin_start(broker: Any, settings: AuthSettings | None) -> None:
    """Open the user source (file or Redis) for this broker."""
    service = AuthService(settings if settings is not None else AuthSettings())
    await service.start()
    _services[id(broker)] = service


@hookimpl
def plugin_status(broker: Any, settings: AuthSettings | None) -> str:
    """The banner's line: where users and rules come from, and how many (file source)."""
    return describe_settings(settings if settings is not None else AuthSettings())


def describe_settings(settings: AuthSettings) -> str:
    """``3 users, 5 ACL rules (file); anonymous clients refused``, or the Redis source."""
    if settings.source == "redis":
        from hookmq.configshow import redact_url

        where = f"users and ACL rules in Redis at {redact_url(settings.redis_url)} (prefix {settings.redis_prefix!r})"
    else:
        users, rules = len(settings.users), len(settings.acl)
        where = f"{users} user{'s' if users != 1 else ''}, {rules} ACL rule{'s' if rules != 1 else ''} ([plugins.auth])"
    anonymous = "anonymous clients allowed" if settings.allow_anonymous else "anonymous clients refused"
    identity = f"; user name from the client certificate ({settings.tls_identity})" if settings.tls_identity != "none" else ""
    return f"{where}; {anonymous}{identity}"


@hookimpl
async def plugin_stop(broker: Any) -> None:
    """Close this broker's user source."""
    service = _services.pop(id(broker), None)
    if service is not None:
        await service.close()


@hookimpl
async def on_connect_authenticate(client: Any, connect: Connect) -> bool:
    """Accept or refuse a CONNECT; a refusal is 0x86 with credentials, 0x87 without (see docs/auth.md)."""
    service = _service_of_client(client)
    if service is None:
        logger.error("auth: no auth service for client %r (plugin not started?); refusing", client.client_id)
        return False
    return await service.authenticate(client, connect)


@hookimpl
async def on_acl_check(client: Any, topic: str, write: bool) -> bool | None:
    """Allow, deny or abstain on a publish (``write``) or a subscription by the ACL rules."""
    service = _service_of_client(client)
    if service is None:
        return False
    return await service.authorise(client, topic, write)


@hookimpl
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookmq passwd``."""
    add_passwd_command(subparsers)
