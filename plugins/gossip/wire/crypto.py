"""AES-GCM encryption of packets and streams with a keyring, as memberlist's security.go.

An encrypted payload is ``[version][12-byte nonce][ciphertext][16-byte tag]``. Version 1 (what
protocol 2 and up speak) encrypts the message as is; version 0 pads it with PKCS7 to the AES
block size first. The primary key encrypts; every key is tried on decrypt, which is how a
cluster rotates keys without downtime: install the new key everywhere, make it primary
everywhere, then remove the old one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import WireError

__all__ = [
    "KEY_SIZES",
    "Keyring",
    "decrypt_payload",
    "encrypt_payload",
    "encrypted_length",
    "encryption_overhead",
]

KEY_SIZES = (16, 24, 32)
"""AES-128, AES-192 and AES-256 keys."""

_NONCE = 12
_TAG = 16
_BLOCK = 16


def encryption_overhead(version: int) -> int:
    """The most bytes encryption adds (memberlist's ``encryptOverhead``): 45 for v0, 29 for v1."""
    return 1 + _NONCE + _TAG + (_BLOCK if version == 0 else 0)


def encrypted_length(version: int, plain: int) -> int:
    """The exact encrypted size of ``plain`` bytes (the stream header carries it)."""
    padding = 0 if version >= 1 else _BLOCK - plain % _BLOCK
    return 1 + _NONCE + plain + padding + _TAG


class Keyring:
    """Gossip keys: ``keys[0]`` is the primary (encrypts); all of them decrypt."""

    __slots__ = ("_ciphers", "_keys")

    def __init__(self, keys: Iterable[bytes]) -> None:
        self._keys: list[bytes] = []
        self._ciphers: list[AESGCM] = []
        for key in keys:
            self.add(key)
        if not self._keys:
            raise ValueError("a keyring needs at least one key")

    @staticmethod
    def validate(key: bytes) -> None:
        """Raise ValueError unless ``key`` is 16, 24 or 32 bytes long."""
        if len(key) not in KEY_SIZES:
            raise ValueError(f"a gossip key is 16, 24 or 32 bytes, not {len(key)}")

    def add(self, key: bytes) -> None:
        """Install a key for decryption (it does not become primary)."""
        self.validate(key)
        if key not in self._keys:
            self._keys.append(bytes(key))
            self._ciphers.append(AESGCM(key))

    def use(self, key: bytes) -> None:
        """Make an installed key the primary."""
        index = self._keys.index(key)
        self._keys.insert(0, self._keys.pop(index))
        self._ciphers.insert(0, self._ciphers.pop(index))

    def remove(self, key: bytes) -> None:
        """Uninstall a key; the primary cannot be removed."""
        index = self._keys.index(key)
        if index == 0:
            raise ValueError("the primary key cannot be removed; make another key primary first")
        del self._keys[index], self._ciphers[index]

    @property
    def keys(self) -> Sequence[bytes]:
        """Every installed key, primary first."""
        return tuple(self._keys)

    @property
    def primary(self) -> AESGCM:
        """The cipher of the primary key."""
        return self._ciphers[0]

    @property
    def ciphers(self) -> Sequence[AESGCM]:
        """The ciphers of every key, primary first."""
        return tuple(self._ciphers)


def encrypt_payload(version: int, cipher: AESGCM, message: bytes, aad: bytes) -> bytes:
    """Encrypt ``message`` with a fresh random nonce; ``aad`` is authenticated, not sent."""
    if version == 0:
        pad = _BLOCK - len(message) % _BLOCK
        message = message + bytes([pad]) * pad
    nonce = os.urandom(_NONCE)
    return bytes([version]) + nonce + cipher.encrypt(nonce, message, aad or None)


def decrypt_payload(ciphers: Sequence[AESGCM], payload: bytes, aad: bytes) -> bytes:
    """Decrypt with the first key that authenticates ``payload``; WireError when none does."""
    if not payload:
        raise WireError("decrypt", "empty encrypted payload")
    version = payload[0]
    if version > 1:
        raise WireError("decrypt", f"unsupported encryption version {version}")
    if len(payload) < encrypted_length(version, 0):
        raise WireError("truncated", f"encrypted payload of {len(payload)} bytes is too short")
    nonce, sealed = payload[1 : 1 + _NONCE], payload[1 + _NONCE :]
    for cipher in ciphers:
        try:
            plain = cipher.decrypt(nonce, sealed, aad or None)
        except InvalidTag:
            continue
        return _unpad(plain) if version == 0 else plain
    raise WireError("decrypt", "no installed key decrypts the payload")


def _unpad(plain: bytes) -> bytes:
    pad = plain[-1] if plain else 0
    if not 1 <= pad <= _BLOCK or pad > len(plain):
        raise WireError("decrypt", "bad PKCS7 padding")
    return plain[:-pad]
