"""The mosquitto command-line clients against hookmq, MQTT 3.1.1 and 5."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest
from interop_helpers import BrokerThread, Paho

VERSIONS = ["mqttv311", "mqttv5"]


def start_sub(sub: str, port: int, version: str, *args: str) -> subprocess.Popen[str]:
    """mosquitto_sub in the background; -W bounds its life, so it can never hang the test run."""
    return subprocess.Popen([sub, "-h", "127.0.0.1", "-p", str(port), "-V", version, "-W", "8", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_subscribed(broker: BrokerThread, client_id: str, timeout: float = 5.0) -> None:
    """Poll the broker until ``client_id`` holds a subscription (mosquitto_sub prints nothing until then)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = broker.broker.client(client_id)
        if view is not None and view["subscriptions"]:
            return
        time.sleep(0.02)
    raise AssertionError(f"{client_id} never subscribed")


def run_pub(pub: str, port: int, version: str, *args: str) -> subprocess.CompletedProcess[str]:
    """mosquitto_pub, bounded in time."""
    return subprocess.run([pub, "-h", "127.0.0.1", "-p", str(port), "-V", version, *args],
                          capture_output=True, text=True, timeout=10, check=False)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("qos", ["0", "1", "2"])
def test_mosquitto_pub_sub(hookmq_broker: BrokerThread, mosquitto_tools: tuple[str, str], version: str,
                           qos: str) -> None:
    pub, sub = mosquitto_tools
    port = hookmq_broker.port()
    client_id = f"msub-{version}-{qos}"
    receiver = start_sub(sub, port, version, "-i", client_id, "-t", "mosq/#", "-q", qos, "-C", "3", "-v")
    wait_subscribed(hookmq_broker, client_id)
    for n in range(3):
        result = run_pub(pub, port, version, "-t", f"mosq/{n}", "-m", f"hello {n}", "-q", qos)
        assert result.returncode == 0, result.stderr
    out, err = receiver.communicate(timeout=10)
    assert receiver.returncode == 0, err
    assert out.splitlines() == [f"mosq/{n} hello {n}" for n in range(3)]


@pytest.mark.parametrize("version", VERSIONS)
def test_mosquitto_retained(hookmq_broker: BrokerThread, mosquitto_tools: tuple[str, str], version: str) -> None:
    pub, sub = mosquitto_tools
    port = hookmq_broker.port()
    assert run_pub(pub, port, version, "-t", "mret/a", "-m", "retained!", "-r", "-q", "1").returncode == 0
    result = subprocess.run([sub, "-h", "127.0.0.1", "-p", str(port), "-V", version, "-t", "mret/#",
                             "--retained-only", "-C", "1", "-W", "5"], capture_output=True, text=True, timeout=10)
    assert result.stdout.strip() == "retained!"


def test_mosquitto_v5_user_property_to_paho(hookmq_broker: BrokerThread, mosquitto_tools: tuple[str, str],
                                            paho: Callable[..., Paho]) -> None:
    pub, _sub = mosquitto_tools
    port = hookmq_broker.port()
    receiver = paho("paho-listener", 5).connect(port)
    receiver.subscribe("mprop/#", 1)
    result = run_pub(pub, port, "mqttv5", "-t", "mprop/x", "-m", "with props", "-q", "1",
                     "-D", "publish", "user-property", "origin", "mosquitto",
                     "-D", "publish", "content-type", "text/plain")
    assert result.returncode == 0, result.stderr
    message = receiver.message()
    assert message.payload == b"with props"
    assert message.properties.UserProperty == [("origin", "mosquitto")]
    assert message.properties.ContentType == "text/plain"


def test_mosquitto_v311_persistent_session(hookmq_broker: BrokerThread, mosquitto_tools: tuple[str, str]) -> None:
    pub, sub = mosquitto_tools
    port = hookmq_broker.port()
    # Subscribe once with a persistent session and leave (-E: exit right after subscribing).
    first = subprocess.run([sub, "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv311", "-c", "-i", "mpersist",
                            "-q", "1", "-t", "mp/#", "-E"], capture_output=True, text=True, timeout=10)
    assert first.returncode == 0, first.stderr
    assert run_pub(pub, port, "mqttv311", "-t", "mp/x", "-m", "while away", "-q", "1").returncode == 0
    again = subprocess.run([sub, "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv311", "-c", "-i", "mpersist",
                            "-q", "1", "-t", "mp/#", "-C", "1", "-W", "5"], capture_output=True, text=True, timeout=10)
    assert again.stdout.strip() == "while away"
