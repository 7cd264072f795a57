"""Links over Unix sockets (the workers of one host): siblings in one directory dial it, others keep TCP."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from link_helpers import KEY, Recorder, eventually, gossip_port, links, node_config

from hookmq.engine import Broker
from hookmq.plugins.gossip.link import unix_endpoint


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private directory with a short path (AF_UNIX paths are at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="hq-l-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _pair(started: list[Broker], a_socket: Path, b_socket: Path) -> tuple[Broker, Broker]:
    a = Broker(node_config("node-a", key=KEY, link_unix_path=str(a_socket)))
    await a.start()
    started.append(a)
    b = Broker(node_config("node-b", [f"127.0.0.1:{gossip_port(a)}"], key=KEY, link_unix_path=str(b_socket)))
    await b.start()
    started.append(b)
    await eventually(lambda: links(a).is_up("node-b") and links(b).is_up("node-a"), 20)
    return a, b


def test_a_peer_is_dialled_over_unix_only_when_its_socket_shares_our_directory() -> None:
    assert unix_endpoint("/run/h/w0.sock", {"unix": "/run/h/w1.sock"}) == "/run/h/w1.sock"
    assert unix_endpoint("/run/h/w0.sock", {"unix": "/run/other/w1.sock"}) is None
    assert unix_endpoint(None, {"unix": "/run/h/w1.sock"}) is None
    assert unix_endpoint("/run/h/w0.sock", {"unix": 7}) is None
    assert unix_endpoint("/run/h/w0.sock", {}) is None


async def test_siblings_link_over_their_unix_sockets_without_encryption(
        started: list[Broker], short_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="hookmq.plugins.gossip.link")
    a, b = await _pair(started, short_dir / "a.sock", short_dir / "b.sock")
    assert links(a).stats("node-b")["endpoint"] == f"unix:{short_dir / 'b.sock'}"
    assert stat.S_IMODE(os.stat(short_dir / "b.sock").st_mode) == 0o600
    assert "Link up: node-b (not encrypted)" in caplog.text  # the private directory is the protection
    at_a, at_b = Recorder(), Recorder()
    links(a).on_receive(at_a)
    links(b).on_receive(at_b)
    for n in range(500):
        links(a).send("node-b", 1, f"a{n}".encode(), reliable=True)
    await asyncio.wait_for(links(b).send("node-a", 2, b"b to a", reliable=True), 5)  # type: ignore[arg-type]
    await eventually(lambda: len(at_b.frames) == 500 and len(at_a.frames) == 1)
    assert [body for _, _, body in at_b.frames] == [f"a{n}".encode() for n in range(500)]
    await b.stop()
    started.remove(b)
    assert not (short_dir / "b.sock").exists()  # removed at stop


async def test_nodes_in_other_directories_keep_their_encrypted_tcp_link(
        started: list[Broker], short_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="hookmq.plugins.gossip.link")
    (short_dir / "x").mkdir()
    (short_dir / "y").mkdir()
    a, b = await _pair(started, short_dir / "x" / "a.sock", short_dir / "y" / "b.sock")
    assert links(a).stats("node-b")["endpoint"] == f"127.0.0.1:{gossip_port(b)}"
    assert "Link up: node-b (encrypted)" in caplog.text


async def test_a_dropped_unix_connection_is_redialled_and_loses_nothing(started: list[Broker], short_dir: Path) -> None:
    a, b = await _pair(started, short_dir / "a.sock", short_dir / "b.sock")
    at_b = Recorder()
    links(b).on_receive(at_b)
    futures = [links(a).send("node-b", 1, f"f{n}".encode(), reliable=True) for n in range(200)]
    protocol = links(a)._peers["node-b"].protocol
    assert protocol is not None
    protocol.abort()
    await asyncio.wait_for(asyncio.gather(*futures), 20)  # type: ignore[arg-type]
    await eventually(lambda: links(a).is_up("node-b"))
    bodies = [body for _, _, body in at_b.frames]
    assert bodies == [f"f{n}".encode() for n in range(200)]  # resent after the redial, duplicates dropped
