"""The hookmq command line, in-process and as the installed console script."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hookmq.cli import build_parser, effective_config, main

SEED = ["--mode=true", "--port=7947", "--members=127.0.0.1:7946", "--tcp=:1885", "--ws=:1886", "--info=:1887"]
HOOKMQ = [sys.executable, "-m", "hookmq"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKMQ_")}
    return subprocess.run([*HOOKMQ, *args], capture_output=True, text=True, timeout=timeout, env=env)


def parse(argv: list[str]) -> object:
    return build_parser(argv).parse_args(argv)


def test_seed_command_line_parses_into_config() -> None:
    config = effective_config(parse(SEED))  # type: ignore[arg-type]
    assert config.cluster.mode is True
    assert config.cluster.port == 7947
    assert config.cluster.members == ["127.0.0.1:7946"]
    assert {lst.type: lst.address for lst in config.listeners} == {"tcp": ":1885", "ws": ":1886"}
    assert config.plugins["dashboard"] == {"address": ":1887"}


def test_seed_flags_also_work_after_serve() -> None:
    args = parse(["serve", *SEED])
    config = effective_config(args)  # type: ignore[arg-type]
    assert config.cluster.port == 7947
    assert {lst.type: lst.address for lst in config.listeners} == {"tcp": ":1885", "ws": ":1886"}


def test_no_subcommand_means_serve() -> None:
    from hookmq.cli import serve_command

    assert getattr(parse(SEED), "func", serve_command) is serve_command
    assert parse(["serve"]).func is serve_command  # type: ignore[attr-defined]


def test_redis_flag_selects_the_redis_store() -> None:
    config = effective_config(parse(["--redis=127.0.0.1:6379"]))  # type: ignore[arg-type]
    assert config.storage.backend == "redis"
    assert config.plugins["redis_store"] == {"url": "redis://127.0.0.1:6379"}


def test_mode_accepts_booleans_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert effective_config(parse(["--mode=false"])).cluster.mode is False  # type: ignore[arg-type]
    with pytest.raises(SystemExit) as raised:
        parse(["--mode=maybe"])
    assert raised.value.code == 2
    assert "expected true or false" in capsys.readouterr().err


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "b.toml"
    path.write_text('[cluster]\nport = 1\nmode = false\n[[listeners]]\nname = "x"\ntype = "tcp"\naddress = ":1"\n')
    config = effective_config(parse(["--config", str(path), "--port", "2", "--tcp=:3", "--disable-plugin", "auth"]))  # type: ignore[arg-type]
    assert config.cluster.port == 2
    assert [(lst.name, lst.address) for lst in config.listeners] == [("x", ":3")]
    assert config.disabled_plugins == ["auth"]


def test_help_documents_every_flag() -> None:
    result = run("--help")
    assert result.returncode == 0
    for flag in ("--config", "--tcp", "--ws", "--info", "--mode", "--members", "--port", "--redis",
                 "--disable-plugin", "--log-level", "serve", "plugins", "config", "bench", "store"):
        assert flag in result.stdout, flag


def test_plugins_lists_builtins() -> None:
    result = run("plugins", "--disable-plugin", "sqlite_store")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:7]}
    assert set(rows) == {"auth", "dashboard", "gossip", "memory_store", "redis_store", "sqlite_store"}
    assert rows["memory_store"][1:3] == ["0.1.0", "yes"]
    assert rows["auth"][2] == "no"
    assert "sqlite_store: disabled by disabled_plugins / --disable-plugin" in result.stdout


def test_plugins_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["plugins", "--json"]) == 0
    listed = {item["name"]: item for item in json.loads(capsys.readouterr().out)}
    assert listed["memory_store"]["enabled"] is True
    assert "register_stores" in listed["memory_store"]["hooks"]


def test_config_show_prints_effective_config_as_toml() -> None:
    result = run(*SEED, "config", "show")
    assert result.returncode == 0, result.stderr
    shown = tomllib.loads(result.stdout)
    flags = {key: shown["cluster"][key] for key in ("mode", "port", "members")}
    assert flags == {"mode": True, "port": 7947, "members": ["127.0.0.1:7946"]}
    assert shown["plugins"]["dashboard"]["address"] == ":1887"
    assert [listener["address"] for listener in shown["listeners"]] == [":1885", ":1886"]


def test_config_show_output_passes_config_check(tmp_path: Path) -> None:
    shown = run("--port=7000", "config", "show").stdout
    path = tmp_path / "shown.toml"
    path.write_text(shown)
    result = run("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: OK"


def test_config_check_unknown_key_exits_2_naming_key_and_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[storage]\nbackend = 'memory'\nbakend = 'redis'\n")
    result = run("config", "check", str(path))
    assert result.returncode == 2
    assert f"{path}: storage.bakend: unknown key" in result.stderr


def test_config_check_validates_plugin_tables(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[plugins.memory_store]\nsize = 1\n")
    result = run("config", "check", str(path))
    assert result.returncode == 2
    assert f"{path}: plugins.memory_store.size: unknown key" in result.stderr


def test_serve_with_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[mqtt]\nnope = 1\n")
    result = run("--config", str(path))
    assert result.returncode == 2
    assert f"{path}: mqtt.nope: unknown key" in result.stderr


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(tmp_path / "nope.toml"), "config", "show"]) == 2
    assert "nope.toml: configuration file not found" in capsys.readouterr().err


def test_config_without_action_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config"]) == 2
    assert "show" in capsys.readouterr().err


def test_lazy_commands_are_not_imported_by_other_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("hookmq.bench.cli", "hookmq.store.cli"):
        sys.modules.pop(name, None)
    assert main(["config", "show"]) == 0
    assert "hookmq.bench.cli" not in sys.modules
    assert "hookmq.store.cli" not in sys.modules


def test_lazy_command_dispatches_to_its_module() -> None:
    result = run("store", "--help")
    try:
        import hookmq.store.cli  # noqa: F401
    except ImportError:
        assert result.returncode == 1
        assert "hookmq store is not available" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert "usage: hookmq store" in result.stdout


def test_plugin_commands_appear(tmp_path: Path) -> None:
    result = run("--help")
    try:
        import hookmq.plugins.auth  # noqa: F401
    except ImportError:
        pytest.skip("the auth plugin does not import yet")
    assert "passwd" in result.stdout


def test_hook_register_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """register_commands: an installed plugin adds `hookmq hello`, which runs and sets the exit status."""
    info = tmp_path / "hookmq_hello-2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hookmq-hello\nVersion: 2.0\n")
    (info / "entry_points.txt").write_text("[hookmq]\nhello = hookmq_hello_plugin\n")
    (tmp_path / "hookmq_hello_plugin.py").write_text(
        "from hookmq import hookimpl\n"
        "def run(args):\n"
        "    print('hello', args.name)\n"
        "    return 7\n"
        "@hookimpl\n"
        "def register_commands(subparsers):\n"
        "    parser = subparsers.add_parser('hello', help='say hello')\n"
        "    parser.add_argument('--name', default='world')\n"
        "    parser.set_defaults(func=run)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["hello", "--name", "mqtt"]) == 7
    assert capsys.readouterr().out == "hello mqtt\n"


def test_serve_runs_a_broker_until_sigint() -> None:
    pytest.importorskip("hookmq.engine.broker")
    process = subprocess.Popen(
        [*HOOKMQ, "serve", "--tcp=127.0.0.1:0", "--ws=127.0.0.1:0", "--disable-plugin", "dashboard"],
        stderr=subprocess.PIPE, text=True,
    )
    try:
        port = _wait_for_port(process)
        published = subprocess.run(
            ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "cli/test", "-m", "hi", "-q", "1"],
            capture_output=True, text=True, timeout=20,
        )
        assert published.returncode == 0, published.stderr
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _wait_for_port(process: subprocess.Popen[str]) -> int:
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"mqtt://127\.0\.0\.1:(\d+)", line)
        if found:
            return int(found.group(1))
    raise AssertionError(f"the broker exited ({process.wait(timeout=10)}) without announcing its TCP listener")


# -------------------------------------------------------------------------
# config check: the TLS files of every listener
# -------------------------------------------------------------------------


def tls_config(tmp_path: Path, certfile: Path, keyfile: Path, cafile: Path | None = None) -> Path:
    path = tmp_path / "tls.toml"
    text = (f'[[listeners]]\nname = "mqtts"\ntype = "tls"\naddress = ":8883"\n'
            f'certfile = "{certfile}"\nkeyfile = "{keyfile}"\n')
    if cafile is not None:
        text += f'cafile = "{cafile}"\n'
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from cryptography.hazmat.primitives import serialization

    from hookmq.testing.certs import generate_certificates

    directory = tmp_path_factory.mktemp("check-certs")
    certs = generate_certificates(directory)
    other = certs.client("other")
    junk = directory / "junk.pem"
    junk.write_text("not PEM at all\n")
    key = serialization.load_pem_private_key(certs.server.keyfile.read_bytes(), password=None)
    encrypted = directory / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ))
    return {"cert": certs.server.certfile, "key": certs.server.keyfile, "ca": certs.cafile,
            "other_key": other.keyfile, "junk": junk, "encrypted": encrypted, "directory": directory}


@pytest.mark.parametrize(("cert", "key", "ca", "problem"), [
    ("missing", "key", None, "listeners[0].certfile: {cert}: file not found"),
    ("cert", "missing", None, "listeners[0].keyfile: {key}: file not found"),
    ("directory", "key", None, "listeners[0].certfile: {cert}: is a directory, not a file"),
    ("junk", "key", None, "listeners[0].certfile: {cert}: no PEM certificate in it"),
    ("cert", "junk", None, "listeners[0].keyfile: {key}: no usable PEM private key in it"),
    ("cert", "cert", None, "listeners[0].keyfile: {key}: no usable PEM private key in it"),
    ("cert", "other_key", None, "listeners[0].keyfile: {key}: this private key does not belong to the certificate in {cert}"),
    ("cert", "encrypted", None, "listeners[0].keyfile: {key}: the private key is encrypted; hookmq needs it unencrypted"),
    ("cert", "key", "junk", "listeners[0].cafile: {ca}: no PEM certificate in it"),
])
def test_config_check_catches_unusable_tls_files(
    tmp_path: Path, tls_files: dict[str, Path], cert: str, key: str, ca: str | None, problem: str
) -> None:
    files = {**tls_files, "missing": tmp_path / "missing.pem"}
    certfile, keyfile = files[cert], files[key]
    cafile = files[ca] if ca is not None else None
    path = tls_config(tmp_path, certfile, keyfile, cafile)
    result = run("config", "check", str(path))
    assert result.returncode == 2
    expected = f"hookmq: configuration error: {path}: " + problem.format(cert=certfile, key=keyfile, ca=cafile)
    assert result.stderr.splitlines()[0].startswith(expected), result.stderr
    assert "OK" not in result.stdout


def test_config_check_accepts_usable_tls_files(tmp_path: Path, tls_files: dict[str, Path]) -> None:
    path = tls_config(tmp_path, tls_files["cert"], tls_files["key"], tls_files["ca"])
    result = run("config", "check", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: OK"


def test_a_reader_that_goes_away_ends_the_command_without_a_traceback() -> None:
    # `hookmq cluster members | head -3` once the reader has enough; here a reader gone before the first write.
    pipeline = subprocess.run(f"{sys.executable} -m hookmq config reference | true", shell=True,
                              capture_output=True, text=True, timeout=60)
    assert "Traceback" not in pipeline.stderr and "BrokenPipeError" not in pipeline.stderr, pipeline.stderr
