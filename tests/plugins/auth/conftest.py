"""Fixtures of the auth plugin tests."""

from __future__ import annotations

import pytest
from auth_helpers import cheap_hash


@pytest.fixture(scope="session")
def alice_hash() -> str:
    """Alice's password hash (password: wonderland)."""
    return cheap_hash("wonderland")
