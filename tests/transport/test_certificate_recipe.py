"""The openssl commands of docs/listeners.md, run as written, give certificates real clients accept."""

from __future__ import annotations

import asyncio
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from hookmq.config import Config
from hookmq.engine import Broker

DOC = Path(__file__).parents[2] / "docs" / "listeners.md"

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed"),
    pytest.mark.timeout(60),
]


def recipe() -> str:
    text = DOC.read_text()
    section = text[text.index("<!-- certificate recipe: begin"):text.index("<!-- certificate recipe: end -->")]
    (block,) = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    return block


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("recipe")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", recipe()], cwd=directory,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "server.pem: OK" in result.stdout and "sensor-1.pem: OK" in result.stdout
    return directory


def mutual_tls_config(directory: Path) -> Path:
    path = directory / "hookmq.toml"
    path.write_text(
        '[[listeners]]\nname = "devices"\ntype = "tls"\naddress = "127.0.0.1:0"\n'
        f'certfile = "{directory / "server.pem"}"\nkeyfile = "{directory / "server.key"}"\n'
        f'cafile = "{directory / "ca.pem"}"\nrequire_client_cert = true\n'
    )
    return path


def test_config_check_accepts_the_recipe(made: Path) -> None:
    path = mutual_tls_config(made)
    result = subprocess.run([sys.executable, "-m", "hookmq", "config", "check", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


async def test_clients_connect_with_the_recipe_certificates(made: Path) -> None:
    config = Config.from_mapping({
        "listeners": [{
            "name": "devices", "type": "tls", "address": "127.0.0.1:0",
            "certfile": str(made / "server.pem"), "keyfile": str(made / "server.key"),
            "cafile": str(made / "ca.pem"), "require_client_cert": True,
        }],
        "disabled_plugins": ["dashboard"],
        "mqtt": {"sys_interval": 0},
    })
    broker = Broker(config)
    await broker.start()
    try:
        port = broker.listeners[0].address[1]
        # The server certificate names 127.0.0.1 (IP SAN) and localhost (DNS SAN).
        trusting = ssl.create_default_context(cafile=made / "ca.pem")
        trusting.load_cert_chain(made / "sensor-1.pem", made / "sensor-1.key")
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=trusting, server_hostname="127.0.0.1")
        assert writer.get_extra_info("peercert")["subjectAltName"] == (
            ("DNS", "mqtt.example.com"), ("DNS", "localhost"), ("IP Address", "127.0.0.1"))
        writer.close()
        if shutil.which("mosquitto_pub") is not None:
            published = await asyncio.create_subprocess_exec(
                "mosquitto_pub", "-h", "localhost", "-p", str(port), "--cafile", str(made / "ca.pem"),
                "--cert", str(made / "sensor-1.pem"), "--key", str(made / "sensor-1.key"),
                "-i", "sensor-1", "-t", "sensors/1", "-m", "21.5", "-V", "mqttv5",
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await asyncio.wait_for(published.communicate(), 30)
            assert published.returncode == 0, err
        # Without a client certificate the broker refuses the handshake.
        anonymous = ssl.create_default_context(cafile=made / "ca.pem")
        with pytest.raises((ssl.SSLError, ConnectionError)):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=anonymous, server_hostname="localhost")
            writer.write(b"\x10\x00")
            if not await reader.read(1):
                raise ConnectionResetError("closed")
    finally:
        await broker.stop()
