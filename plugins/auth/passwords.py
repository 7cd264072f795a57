"""Password hashes: produce and verify self-describing KDF strings.

The default (and the only scheme that needs nothing beyond the standard library) is scrypt::

    $scrypt$n=16384,r=8,p=1$<salt, base64>$<derived key, base64>

Base64 is the standard alphabet without ``=`` padding, as in the PHC string format. The cost
parameters travel with the hash, so raising them later only affects new hashes. Argon2 hashes
(``$argon2id$…``, from ``argon2-cffi``) and bcrypt hashes (``$2b$…``, from ``bcrypt``) are
verified too when those packages are installed.

Verification is CPU- and memory-bound by design: callers on an event loop must run
:func:`verify_password` in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import importlib.util
import os
import re
from dataclasses import dataclass
from typing import Any

SCRYPT_PREFIX = "$scrypt$"
ARGON2_PREFIX = "$argon2"
BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")

#: The scrypt paper's interactive-login cost: about 16 MiB and tens of milliseconds per check.
DEFAULT_SCRYPT_N = 2**14
DEFAULT_SCRYPT_R = 8
DEFAULT_SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32

# Hashes may come from Redis, i.e. from outside the config file: refuse parameters that would
# let whoever writes there make one login cost gigabytes or minutes.
_MAX_N = 2**20
_MAX_R = 32
_MAX_P = 16
_MAX_MEMORY = 128 * _MAX_R * _MAX_N

_SCRYPT_RE = re.compile(
    r"^\$scrypt\$n=(?P<n>\d+),r=(?P<r>\d+),p=(?P<p>\d+)\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<key>[A-Za-z0-9+/]+)$"
)


class InvalidHashError(ValueError):
    """A string that should be a password hash is not one this module can verify."""


@dataclass(frozen=True, slots=True)
class ScryptHash:
    """The parsed parts of a ``$scrypt$`` string."""

    n: int
    r: int
    p: int
    salt: bytes
    key: bytes

    def encode(self) -> str:
        """The self-describing string form."""
        return f"{SCRYPT_PREFIX}n={self.n},r={self.r},p={self.p}${_b64(self.salt)}${_b64(self.key)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _as_bytes(password: str | bytes) -> bytes:
    return password.encode("utf-8") if isinstance(password, str) else password


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # hashlib refuses to use more than `maxmem` bytes; allow what the parameters need, plus slack.
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=length, maxmem=130 * r * n * p + 2**20)


def parse_scrypt(encoded: str) -> ScryptHash:
    """Parse and bound-check a ``$scrypt$`` string; raise :class:`InvalidHashError` if it is bad."""
    match = _SCRYPT_RE.match(encoded)
    if match is None:
        raise InvalidHashError("not a $scrypt$n=..,r=..,p=..$salt$hash string")
    n, r, p = int(match["n"]), int(match["r"]), int(match["p"])
    if n < 2 or n & (n - 1) or n > _MAX_N:
        raise InvalidHashError(f"scrypt n={n} must be a power of two between 2 and {_MAX_N}")
    if not 1 <= r <= _MAX_R or not 1 <= p <= _MAX_P or 128 * r * n * p > _MAX_MEMORY:
        raise InvalidHashError(f"scrypt r={r}, p={p} are outside the accepted bounds")
    try:
        salt, key = _unb64(match["salt"]), _unb64(match["key"])
    except ValueError as exc:
        raise InvalidHashError(f"bad base64 in scrypt hash: {exc}") from None
    if len(key) < 16:
        raise InvalidHashError("scrypt derived key is shorter than 16 bytes")
    return ScryptHash(n=n, r=r, p=p, salt=salt, key=key)


def available_schemes() -> list[str]:
    """The schemes :func:`hash_password` can produce here (``scrypt`` always first)."""
    schemes = ["scrypt"]
    if importlib.util.find_spec("argon2") is not None:
        schemes.append("argon2")
    if importlib.util.find_spec("bcrypt") is not None:
        schemes.append("bcrypt")
    return schemes


def hash_password(
    password: str | bytes,
    *,
    scheme: str = "scrypt",
    n: int = DEFAULT_SCRYPT_N,
    r: int = DEFAULT_SCRYPT_R,
    p: int = DEFAULT_SCRYPT_P,
) -> str:
    """Hash a password with a fresh random salt and return the self-describing string.

    ``n``, ``r`` and ``p`` only apply to scrypt. Raise ValueError for an unknown scheme or one
    whose package is not installed.
    """
    secret = _as_bytes(password)
    if scheme == "scrypt":
        salt = os.urandom(SALT_BYTES)
        encoded = ScryptHash(n=n, r=r, p=p, salt=salt, key=_scrypt(secret, salt, n, r, p, KEY_BYTES)).encode()
        parse_scrypt(encoded)  # refuse to emit a hash that verification would reject
        return encoded
    if scheme == "argon2" and "argon2" in available_schemes():
        return str(_optional("argon2").PasswordHasher().hash(secret))
    if scheme == "bcrypt" and "bcrypt" in available_schemes():
        bcrypt = _optional("bcrypt")
        return bytes(bcrypt.hashpw(secret, bcrypt.gensalt())).decode("ascii")
    raise ValueError(f"password scheme {scheme!r} is not available here; choose from {available_schemes()}")


def hash_scheme(encoded: str) -> str | None:
    """Name the scheme of a hash string (``scrypt``, ``argon2``, ``bcrypt``) or None if it is none."""
    if encoded.startswith(SCRYPT_PREFIX):
        return "scrypt"
    if encoded.startswith(ARGON2_PREFIX):
        return "argon2"
    if encoded.startswith(BCRYPT_PREFIXES):
        return "bcrypt"
    return None


def check_hash(encoded: str) -> None:
    """Raise :class:`InvalidHashError` unless ``encoded`` is a hash that can be verified here."""
    scheme = hash_scheme(encoded)
    if scheme is None:
        raise InvalidHashError("not a password hash (expected $scrypt$…, $argon2…$ or $2b$…)")
    if scheme == "scrypt":
        parse_scrypt(encoded)
    elif scheme not in available_schemes():
        raise InvalidHashError(f"{scheme} hashes need the {scheme!r} package, which is not installed")


def verify_password(password: str | bytes, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; False for a mismatch or an unusable hash.

    The final comparison is constant-time. This call is deliberately slow: run it in a thread.
    """
    secret = _as_bytes(password)
    scheme = hash_scheme(encoded)
    try:
        if scheme == "scrypt":
            parsed = parse_scrypt(encoded)
            derived = _scrypt(secret, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.key))
            return hmac.compare_digest(derived, parsed.key)
        if scheme == "argon2" and "argon2" in available_schemes():
            return _verify_argon2(secret, encoded)
        if scheme == "bcrypt" and "bcrypt" in available_schemes():
            return bool(_optional("bcrypt").checkpw(secret, encoded.encode("ascii")))
    except (InvalidHashError, ValueError):
        return False
    return False


def _optional(name: str) -> Any:
    """Import an optional hashing package (only called once it is known to be installed)."""
    return importlib.import_module(name)


def _verify_argon2(secret: bytes, encoded: str) -> bool:
    argon2 = _optional("argon2")
    try:
        return bool(argon2.PasswordHasher().verify(encoded, secret))
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


_DUMMY_HASH: str | None = None


def dummy_hash() -> str:
    """A hash of a random secret with the default cost, made once.

    Verifying against it when a user name is unknown makes that answer take as long as a wrong
    password, so response times do not reveal which user names exist.
    """
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(os.urandom(16))
    return _DUMMY_HASH


def verify_decoy(password: str | bytes) -> bool:
    """Spend the work of one default-cost check and return False (for unknown users)."""
    verify_password(password, dummy_hash())
    return False
