"""Helpers of the auth plugin tests: cheap password hashes and a client record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hookmq.plugins.auth.passwords import hash_password

# Cheap scrypt cost so the suite stays fast; verification reads the cost from the hash.
CHEAP_COST = {"n": 2**10, "r": 8, "p": 1}


def cheap_hash(password: str) -> str:
    """A valid scrypt hash made with a low cost, for tests only."""
    return hash_password(password, **CHEAP_COST)


@dataclass
class ClientRecord:
    """The attributes of an engine client that the auth plugin reads."""

    client_id: str = "c1"
    username: str | None = None
    remote_address: str = "127.0.0.1:40000"
    listener: str = "tcp"
    protocol_level: int = 5
    tls_peer_certificate: dict[str, Any] | None = None
    connect: Any = None
    extra: dict[str, Any] = field(default_factory=dict)
