"""Password hashing: the scrypt string format, verification and refusal of unusable hashes."""

from __future__ import annotations

import pytest

from hookmq.plugins.auth.passwords import (
    InvalidHashError,
    check_hash,
    hash_password,
    hash_scheme,
    parse_scrypt,
    verify_decoy,
    verify_password,
)

CHEAP = {"n": 2**10, "r": 8, "p": 1}


def test_hash_is_self_describing_scrypt() -> None:
    encoded = hash_password("s3cret", **CHEAP)
    assert encoded.startswith("$scrypt$n=1024,r=8,p=1$")
    parsed = parse_scrypt(encoded)
    assert (parsed.n, parsed.r, parsed.p) == (1024, 8, 1)
    assert len(parsed.salt) == 16 and len(parsed.key) == 32


def test_default_cost_is_the_interactive_one() -> None:
    assert parse_scrypt(hash_password("x")).n == 2**14


def test_verify_accepts_the_password_and_refuses_others() -> None:
    encoded = hash_password("s3cret", **CHEAP)
    assert verify_password("s3cret", encoded)
    assert verify_password(b"s3cret", encoded)
    assert not verify_password("s3cret ", encoded)
    assert not verify_password(b"", encoded)


def test_two_hashes_of_one_password_differ_by_salt() -> None:
    assert hash_password("same", **CHEAP) != hash_password("same", **CHEAP)


def test_non_utf8_binary_password_round_trips() -> None:
    secret = bytes(range(256))
    assert verify_password(secret, hash_password(secret, **CHEAP))


@pytest.mark.parametrize(
    "bad",
    [
        "plaintext",
        "$scrypt$n=1000,r=8,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5aw",  # n not a power of two
        "$scrypt$n=2147483648,r=8,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5aw",  # n beyond the cap
        "$scrypt$n=1024,r=8,p=1$c2FsdA$a2V5",  # derived key too short
        "$scrypt$n=1024,r=999,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5aw",  # r beyond the cap
    ],
)
def test_unusable_hashes_are_rejected_and_never_verify(bad: str) -> None:
    with pytest.raises(InvalidHashError):
        check_hash(bad)
    assert not verify_password("anything", bad)


def test_scheme_detection() -> None:
    assert hash_scheme("$scrypt$n=2,r=1,p=1$a$b") == "scrypt"
    assert hash_scheme("$argon2id$v=19$m=65536,t=3,p=4$x$y") == "argon2"
    assert hash_scheme("$2b$12$abcdefghijklmnopqrstuv") == "bcrypt"
    assert hash_scheme("hunter2") is None


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="not available"):
        hash_password("x", scheme="md5")


def test_decoy_check_always_fails() -> None:
    assert verify_decoy("whatever") is False
