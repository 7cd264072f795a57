"""Interop with the mosquitto command-line clients: refusal codes as they report them."""

from __future__ import annotations

import asyncio
import shutil
from typing import Any

import pytest
from auth_helpers import cheap_hash
from broker_helpers import port_of, running_broker

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients not installed"),
]

TABLE: dict[str, Any] = {
    "users": {"alice": cheap_hash("wonderland")},
    "acl": [{"topic": "#"}, {"topic": "test/nosubscribe", "effect": "deny"}],
}


async def run(*args: str) -> tuple[int, str]:
    """Run a mosquitto client; return its exit status and stderr."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, err.decode()


@pytest.fixture
async def port() -> Any:
    async with running_broker(TABLE) as broker:
        yield str(port_of(broker))


@pytest.mark.parametrize(("version", "status"), [("5", 0x86), ("311", 4)])
async def test_bad_password(port: str, version: str, status: int) -> None:
    code, err = await run("mosquitto_pub", "-p", port, "-V", version, "-u", "alice", "-P", "bad", "-t", "a", "-m", "x")
    assert code == status
    assert "bad user name or password" in err.lower()


@pytest.mark.parametrize(("version", "status"), [("5", 0x87), ("311", 5)])
async def test_anonymous_refused(port: str, version: str, status: int) -> None:
    code, err = await run("mosquitto_pub", "-p", port, "-V", version, "-t", "a", "-m", "x")
    assert code == status
    assert "not authori" in err.lower()


@pytest.mark.parametrize("version", ["5", "311"])
async def test_subscription_to_test_nosubscribe_is_denied(port: str, version: str) -> None:
    _, err = await run(
        "mosquitto_sub", "-p", port, "-V", version, "-u", "alice", "-P", "wonderland", "-t", "test/nosubscribe", "-W", "10"
    )
    assert "All subscription requests were denied" in err


async def test_v5_qos1_publish_to_test_nosubscribe_is_refused(port: str) -> None:
    _, err = await run(
        "mosquitto_pub", "-p", port, "-V", "5", "-u", "alice", "-P", "wonderland", "-q", "1",
        "-t", "test/nosubscribe", "-m", "x",
    )
    assert "Not authorized" in err


async def test_good_password_publishes(port: str) -> None:
    code, err = await run(
        "mosquitto_pub", "-p", port, "-V", "5", "-u", "alice", "-P", "wonderland", "-q", "1", "-t", "a/b", "-m", "x"
    )
    assert code == 0, err
    assert "failed" not in err.lower()
