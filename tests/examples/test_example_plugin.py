"""The third-party example plugin, installed for real into a virtual environment.

Proves the whole path a plugin author takes: ``pip install`` -> entry point in group
``hookmq`` -> listed by ``hookmq plugins`` -> ``[plugins.example]`` validated by its model ->
hooks called, by the facade and by a real broker serving a real client.
"""

from __future__ import annotations

import re
import shutil
import signal
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "hookmq-example-plugin"


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a venv layered over the test environment, with the example installed."""
    home = tmp_path_factory.mktemp("venv")
    # Build from a copy: setuptools leaves build/ and *.egg-info next to the sources.
    source = shutil.copytree(EXAMPLE, tmp_path_factory.mktemp("src") / EXAMPLE.name)
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(home)
    interpreter = home / "bin" / "python"
    # Layer the new venv over the environment running the tests, not over the base interpreter
    # (a venv made from a venv sees the base's site-packages): hookmq, setuptools and wheel are
    # then the versions .ci/run installed, the same on every machine. addsitedir also runs the
    # .pth files there, which the editable install of hookmq needs.
    site_packages = run_python(interpreter, "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(site_packages) / "_hookmq_test_env.pth").write_text(
        "import site; " + "; ".join(f"site.addsitedir({path!r})" for path in site.getsitepackages()) + "\n"
    )
    # pip of the running interpreter installs into the venv through --python (pip >= 22.3).
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(interpreter), "install", "--no-deps",
         "--no-build-isolation", "--no-input", "--quiet", str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    return interpreter


def run_python(interpreter: Path, code: str) -> str:
    return subprocess.run([str(interpreter), "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def hookmq(python: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-m", "hookmq", *args], capture_output=True, text=True, timeout=timeout)


def test_installed_plugin_is_listed(python: Path) -> None:
    result = hookmq(python, "plugins")
    assert result.returncode == 0, result.stderr
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith("example "))
    assert row[1:3] == ["0.1.0", "no"]
    assert "on_connect" in row[3:] or "on_connect," in row[3:]
    assert "example: not enabled (add a [plugins.example] table)" in result.stdout


def test_example_is_not_visible_outside_the_venv() -> None:
    result = subprocess.run([sys.executable, "-m", "hookmq", "plugins"], capture_output=True, text=True, timeout=60)
    assert not any(line.startswith("example ") for line in result.stdout.splitlines())


def test_table_enables_and_is_validated(python: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[plugins.example]\ngreeting = "hi"\n')
    assert hookmq(python, "config", "check", str(good)).returncode == 0
    listed = hookmq(python, "--config", str(good), "plugins").stdout
    assert "example: enabled by [plugins.example]" in listed
    bad = tmp_path / "bad.toml"
    bad.write_text('[plugins.example]\ngretting = "hi"\n')
    result = hookmq(python, "config", "check", str(bad))
    assert result.returncode == 2
    assert f"{bad}: plugins.example.gretting: unknown key" in result.stderr


def test_facade_calls_the_installed_plugin(python: Path, tmp_path: Path) -> None:
    record = tmp_path / "events"
    script = f"""
import asyncio
from hookmq.config import Config
from hookmq.hooks import HookFacade
from hookmq.mqtt.packets import Connect
from hookmq.pluginmanager import build_plugin_manager

config = Config.from_mapping({{"plugins": {{"example": {{"greeting": "hey", "record_file": {str(record)!r}}}}},
                               "disabled_plugins": ["dashboard"]}})
facade = HookFacade(build_plugin_manager(config))
async def main():
    await facade.per_plugin("plugin_start", broker=object())
    await facade.notify("on_connect", client=None, connect=Connect(client_id="bob"))
asyncio.run(main())
"""
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert record.read_text().splitlines() == ["start", "hey bob"]


def test_real_broker_calls_the_plugin(python: Path, tmp_path: Path) -> None:
    try:
        from hookmq.engine.broker import Broker  # noqa: F401
    except ImportError as error:
        pytest.skip(f"hookmq.engine.Broker is not importable yet: {error}")
    record = tmp_path / "events"
    config = tmp_path / "hookmq.toml"
    config.write_text(f'[plugins.example]\nrecord_file = "{record}"\nrefuse_prefix = "forbidden/"\n')
    broker = subprocess.Popen(
        [str(python), "-m", "hookmq", "--config", str(config), "--tcp=127.0.0.1:0", "--ws=127.0.0.1:0",
         "--disable-plugin", "dashboard"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        port = _tcp_port(broker)
        for topic in ("sensors/1", "forbidden/2"):
            published = subprocess.run(
                ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-i", "carol",
                 "-t", topic, "-m", "x", "-q", "1"],
                capture_output=True, text=True, timeout=20,
            )
            assert published.returncode == 0, published.stderr
        broker.send_signal(signal.SIGINT)
        assert broker.wait(timeout=20) == 0
    finally:
        if broker.poll() is None:
            broker.kill()
            broker.wait(timeout=10)
    events = record.read_text().splitlines()
    assert events[0] == "start"
    assert events.count("hello carol") == 2
    assert "published sensors/1" in events
    assert "published forbidden/2" not in events
    assert events[-1] == "stop published=1"


def _tcp_port(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"mqtt://127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"the broker exited ({process.wait(timeout=10)}) without announcing its TCP listener")
