"""``[plugins.redis_store]`` topologies: what each combination means and the one-line refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookmq.cli import main
from hookmq.plugins.redis_store.keys import KeyLayout
from hookmq.plugins.redis_store.settings import RedisStoreSettings


@pytest.mark.parametrize(
    ("table", "key", "words"),
    [
        ('sentinels = ["127.0.0.1:26379"]', "service_name", "required when sentinels is set"),
        ('service_name = "main"', "service_name", "only means something with sentinels"),
        ('cluster = true\ndb = 2', "cluster", "needs database 0"),
        ('cluster = true\nurl = "redis://127.0.0.1:7000/3"', "cluster", "needs database 0"),
        ('cluster = true\nsentinels = ["127.0.0.1:26379"]\nservice_name = "m"', "cluster", "cannot be combined"),
        ('cluster = true\nprefix = "{all}:"', "cluster", "prefix must not contain { or }"),
        ('nodes = ["127.0.0.1:7001"]', "nodes", "only mean something with cluster = true"),
        ('sentinels = ["127.0.0.1"]\nservice_name = "m"', "sentinels", "is not host:port"),
        ('cluster = true\nnodes = ["h:99999"]', "nodes", "is not host:port"),
        ("wait_replicas = -1", "wait_replicas", "greater than or equal to 0"),
    ],
)
def test_bad_combination_is_one_line_naming_key_and_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, key: str, words: str
) -> None:
    path = tmp_path / "broker.toml"
    path.write_text(f'[storage]\nbackend = "redis"\n[plugins.redis_store]\n{table}\n')
    assert main(["config", "check", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"hookmq: configuration error: {path}: plugins.redis_store.{key}: "), lines[0]
    assert words in lines[0]


def test_good_combinations_and_their_topology() -> None:
    assert RedisStoreSettings().topology() == "single"
    sentinel = RedisStoreSettings(sentinels=["127.0.0.1:26379", "[::1]:26380"], service_name="main")
    assert sentinel.topology() == "sentinel"
    cluster = RedisStoreSettings(cluster=True, url="redis://127.0.0.1:7000/0", nodes=["127.0.0.1:7001"])
    assert cluster.topology() == "cluster"
    assert {"sentinels", "service_name"} <= cluster.unused_keys() and "cluster" not in cluster.unused_keys()


def test_layouts_flat_outside_cluster_mode_and_tagged_in_it() -> None:
    flat, tagged = KeyLayout("p:"), KeyLayout("p:", tagged=True)
    assert flat.queue("c:1") == "p:queue:c:1" and flat.subs("c:1") == "p:subs:c:1"  # unchanged names
    assert tagged.queue("c:1") == "p:{c:c:1}:queue" and tagged.session("c:1") == "p:{c:c:1}:session"
    assert tagged.client_key("c:1", "owner") == "p:{c:c:1}:owner"
    assert tagged.shared_key("retained", "versions") == "p:{retained}:versions"
    assert flat.shared_key("cluster:retained", "versions") == "p:cluster:retained:versions"
    # The client id is recovered from any of its keys, whatever it contains.
    for client_id in ("plain", "a}:queue", "{x}", "", "}"):
        assert tagged.client_of(tagged.session(client_id), "session") == client_id
        assert tagged.client_of(tagged.queue(client_id), "session") is None
