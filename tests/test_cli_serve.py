"""`hookmq` as an operator meets it: real broker processes, their exit status and what they log.

Setup errors end in one line and a documented exit status, never a traceback; the banner
says what is running; every connection leaves a line; `[log] format = "json"` writes one JSON
object per line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from hookmq.plugins.auth.passwords import hash_password
from hookmq.testing.ports import free_port

# The documented statuses (docs/operations.md, hookmq.exits), written out: they are a contract.
EXIT_USAGE, EXIT_LISTENER, EXIT_STORE = 2, 3, 4

HOOKMQ = [sys.executable, "-m", "hookmq"]
LOOPBACK = ["--tcp=127.0.0.1:0", "--ws=127.0.0.1:0"]

needs_mosquitto = pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="mosquitto-clients not installed")


def clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("HOOKMQ_")}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HOOKMQ, *args], capture_output=True, text=True, timeout=60, env=clean_env(), cwd=cwd)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed start printed (the test fails on anything more, e.g. a traceback)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


class BrokerProcess:
    """A `hookmq` process whose standard error is collected line by line."""

    def __init__(self, *args: str, cwd: Path | None = None, command: Sequence[str] = HOOKMQ) -> None:
        self.process = subprocess.Popen([*command, *args], stderr=subprocess.PIPE, text=True, env=clean_env(), cwd=cwd)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """The first line matching ``pattern`` (a regex), waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = re.search(pattern, line)
                if found:
                    return found
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line matches {pattern!r}:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        finally:
            self._reader.join(timeout=5)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def broker_process() -> Iterator[type[BrokerProcess]]:
    started: list[BrokerProcess] = []

    class Tracked(BrokerProcess):
        def __init__(self, *args: str, cwd: Path | None = None, command: Sequence[str] = HOOKMQ) -> None:
            super().__init__(*args, cwd=cwd, command=command)
            started.append(self)

    yield Tracked
    for process in started:
        process.kill()


# -------------------------------------------------------------------------
# Setup errors: one line, a documented status
# -------------------------------------------------------------------------


def test_mqtt_port_in_use() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run(f"--tcp=127.0.0.1:{port}", "--ws=127.0.0.1:0", "--disable-plugin", "dashboard")
    assert result.returncode == EXIT_LISTENER
    assert one_line(result) == f"hookmq: listener 'tcp' (tcp) cannot listen on '127.0.0.1:{port}': Address already in use"


def test_unresolvable_listener_host() -> None:
    result = run("--tcp=1.2.3.4.5:1883", "--ws=127.0.0.1:0", "--disable-plugin", "dashboard")
    assert result.returncode == EXIT_LISTENER
    line = one_line(result)
    assert line.startswith("hookmq: listener 'tcp' (tcp) cannot listen on '1.2.3.4.5:1883': cannot resolve host '1.2.3.4.5' (")


def test_redis_unreachable_at_start() -> None:
    port = free_port()
    result = run(*LOOPBACK, f"--redis=127.0.0.1:{port}", "--disable-plugin", "dashboard")
    assert result.returncode == EXIT_STORE
    assert one_line(result).startswith(f"hookmq: cannot open the redis store: cannot reach redis://127.0.0.1:{port}: ")


def test_missing_tls_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "hookmq.toml"
    config.write_text(
        '[[listeners]]\nname = "mqtts"\ntype = "tls"\naddress = "127.0.0.1:0"\n'
        f'certfile = "{tmp_path / "server.pem"}"\nkeyfile = "{tmp_path / "server.key"}"\n'
    )
    result = run("--config", str(config), "--disable-plugin", "dashboard")
    assert result.returncode == EXIT_USAGE
    assert one_line(result) == f"hookmq: listener 'mqtts' (tls): certfile {tmp_path / 'server.pem'}: file not found"


@pytest.mark.parametrize(("flag", "key"), [
    ("--members=:7946", "cluster.members"),
    ("--port=99999", "cluster.port"),
    ("--info=nowhere", "plugins.dashboard.address"),
    ("--log-level=chatty", "log.level"),
    ("--tcp=nowhere", "address"),
])
def test_bad_flag_values_name_the_flag(flag: str, key: str) -> None:
    result = run(flag)
    assert result.returncode == EXIT_USAGE
    name = flag.split("=")[0]
    assert one_line(result).startswith(f"hookmq: configuration error: {name}: {key}: ")
    assert "<defaults>" not in result.stderr


def test_bad_environment_values_name_the_variable() -> None:
    env = {**clean_env(), "HOOKMQ_MQTT__MAX_INFLIGHT": "lots"}
    result = subprocess.run([*HOOKMQ, "config", "show"], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == EXIT_USAGE
    assert one_line(result).startswith("hookmq: configuration error: HOOKMQ_MQTT__MAX_INFLIGHT: mqtt.max_inflight: ")


def test_help_says_what_mode_does() -> None:
    result = run("--help")
    text = " ".join(result.stdout.split())
    assert "run as a cluster node" not in text
    assert "--mode BOOL enable clustering: true or false ([cluster] mode); needs the gossip plugin" in text
    assert "3 a listener cannot start, 4 the store cannot be opened" in text


# -------------------------------------------------------------------------
# The banner and the connection lines of a real broker
# -------------------------------------------------------------------------


@needs_mosquitto
def test_banner_says_what_is_running(tmp_path: Path, broker_process: type[BrokerProcess]) -> None:
    cheap = {"n": 2**10, "r": 8, "p": 1}
    config = tmp_path / "hookmq.toml"
    config.write_text(
        '[storage]\nbackend = "sqlite"\n'
        '[plugins.sqlite_store]\npath = "data/broker.sqlite3"\n'
        '[plugins.dashboard]\naddress = "127.0.0.1:0"\n'
        '[plugins.auth]\n'
        f'users = {{ alice = "{hash_password("a-password", **cheap)}", bob = "{hash_password("b-password", **cheap)}" }}\n'
        '[[plugins.auth.acl]]\ntopic = "sensors/#"\n'
    )
    broker = broker_process("--config", str(config), *LOOPBACK, cwd=tmp_path)
    broker.wait_for(r"INFO hookmq\.broker: plugins: auth, dashboard, gossip, memory_store, redis_store, sqlite_store$")
    text = "\n".join(broker.lines)
    assert f"INFO hookmq.broker: store: sqlite: {tmp_path / 'data' / 'broker.sqlite3'} (synchronous full), " \
           "durability ack_after_write" in text
    assert "INFO hookmq.broker: auth: on (auth: 2 users, 1 ACL rule ([plugins.auth]); anonymous clients refused)" in text
    assert "INFO hookmq.broker: cluster: off (single node)" in text
    url = broker.wait_for(r"INFO hookmq\.broker: dashboard: (http://127\.0\.0\.1:(\d+)/) \(bound to 127\.0\.0\.1\)$")
    assert url.group(2) != "0"
    with urllib.request.urlopen(url.group(1) + "healthz", timeout=10) as answer:  # the port it really bound
        assert json.load(answer) == {"status": "ok"}
    assert "anonymous clients allowed" not in text
    assert broker.stop() == 0


def test_banner_warns_when_anyone_may_connect(broker_process: type[BrokerProcess]) -> None:
    broker = broker_process(*LOOPBACK, "--disable-plugin", "dashboard", "--disable-plugin", "gossip",
                            "--mode=true", "--members=127.0.0.1:7946")
    broker.wait_for(r"hookmq\.broker: plugins: ")
    text = "\n".join(broker.lines)
    assert "WARNING hookmq.broker: auth: anonymous clients allowed (no authentication plugin is enabled)" in text
    assert "INFO hookmq.broker: store: memory (in this process only" in text
    assert "INFO hookmq.broker: cluster: mode on, but the gossip plugin is not enabled: running as a single node " \
           "(members: 127.0.0.1:7946)" in text
    assert broker.stop() == 0


@needs_mosquitto
def test_a_real_broker_logs_each_connection_and_not_the_websocket_library(broker_process: type[BrokerProcess]) -> None:
    from websockets.sync.client import connect

    broker = broker_process(*LOOPBACK, "--disable-plugin", "dashboard")
    tcp = int(broker.wait_for(r"tcp +tcp +mqtt://127\.0\.0\.1:(\d+)").group(1))
    ws = broker.wait_for(r"ws +ws +(ws://127\.0\.0\.1:\d+/mqtt)").group(1)
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(tcp), "-V", "mqttv5", "-i", "operator-test",
                    "-u", "alice", "-t", "t", "-m", "m"], check=True, timeout=20)
    with connect(ws, subprotocols=["mqtt"]) as websocket:  # type: ignore[list-item]
        websocket.send(b"\xc0\x00")  # a PINGREQ before CONNECT: the broker closes
        with pytest.raises(Exception):  # noqa: B017 - whichever way the library reports the close
            websocket.recv(timeout=10)
    with pytest.raises(Exception):  # noqa: B017
        connect(ws.replace("/mqtt", "/nothing-here"), subprotocols=["mqtt"])  # type: ignore[list-item]
    broker.wait_for(r"INFO hookmq\.connection: connected: client_id=operator-test username=alice "
                    r"remote=127\.0\.0\.1:\d+ listener=tcp protocol=5\.0 session=clean-start keep_alive=60$")
    broker.wait_for(r"INFO hookmq\.connection: disconnected: client_id=operator-test .* cause=client-disconnect "
                    r'reason="0x00 normal disconnection"')
    broker.wait_for(r"INFO hookmq\.connection: closed: remote=127\.0\.0\.1:\d+ listener=ws cause=protocol-error")
    broker.wait_for(r"INFO hookmq\.connection: websocket refused: .* path=/nothing-here status=404")
    assert broker.stop() == 0
    library = [line for line in broker.lines if "hookmq.transport.websocket" in line]
    assert library == []
    assert not any("404 Not Found" in line for line in broker.lines)


#: `python -m hookmq` on a Python where uvloop cannot be imported (it is optional off Linux).
HOOKMQ_WITHOUT_UVLOOP = [sys.executable, "-c",
                         "import sys; sys.modules['uvloop'] = None; from hookmq.cli import main; sys.exit(main())"]


@needs_mosquitto
def test_without_uvloop_the_broker_runs_on_asyncios_loop(broker_process: type[BrokerProcess]) -> None:
    broker = broker_process(*LOOPBACK, "--disable-plugin", "dashboard", command=HOOKMQ_WITHOUT_UVLOOP)
    broker.wait_for(r"build: hookmq .*, asyncio's own loop$")
    tcp = int(broker.wait_for(r"tcp +tcp +mqtt://127\.0\.0\.1:(\d+)").group(1))
    subscriber = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(tcp), "-t", "t", "-C", "1",
                                   "-q", "1", "-W", "20"], stdout=subprocess.PIPE, text=True)
    try:
        broker.wait_for(r"connected: client_id=\S+ .*listener=tcp")
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(tcp), "-q", "1", "-t", "t", "-m", "on asyncio"],
                       check=True, timeout=20)
        out, _ = subscriber.communicate(timeout=30)
    finally:
        subscriber.kill()
    assert out.strip() == "on asyncio"
    assert broker.stop() == 0
    assert not any("Traceback" in line or "ERROR" in line for line in broker.lines), "\n".join(broker.lines)


@needs_mosquitto
def test_json_log_format(tmp_path: Path, broker_process: type[BrokerProcess]) -> None:
    config = tmp_path / "hookmq.toml"
    config.write_text('[log]\nformat = "json"\n')
    broker = broker_process("--config", str(config), *LOOPBACK, "--disable-plugin", "dashboard")
    broker.wait_for(r'"message": "plugins: ')
    tcp = int(broker.wait_for(r"mqtt://127\.0\.0\.1:(\d+)").group(1))
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(tcp), "-i", "json-client", "-t", "t", "-m", "m"],
                   check=True, timeout=20)
    broker.wait_for(r'"event": "disconnected"')
    assert broker.stop() == 0
    documents = [json.loads(line) for line in broker.lines]  # every line is one JSON object
    connected = next(doc for doc in documents if doc.get("event") == "connected")
    assert connected["logger"] == "hookmq.connection"
    assert connected["level"] == "INFO"
    assert connected["client_id"] == "json-client"
    assert connected["protocol"] == "3.1.1"
    assert connected["message"].startswith("connected: client_id=json-client ")
    assert {"time", "level", "logger", "message"} <= set(documents[0])


def test_the_statuses_are_those_of_hookmq_exits() -> None:
    from hookmq import exits

    assert (exits.EXIT_USAGE, exits.EXIT_LISTENER, exits.EXIT_STORE) == (EXIT_USAGE, EXIT_LISTENER, EXIT_STORE)
