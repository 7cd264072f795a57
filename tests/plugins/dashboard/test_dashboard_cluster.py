"""The operator view of a cluster over two real hookmq processes on 127.0.0.1: `/api/cluster`,
the `hookmq_cluster_…` metrics, `/readyz`, and `hookmq cluster members|status`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import pytest
from dashboard_nodes import TOKEN, ClusterNode, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClusterNode, ClusterNode]]:
    """Node ``alpha`` (no members to join) and ``beta`` joining it; both dashboards on."""
    tmp = tmp_path_factory.mktemp("cluster")
    alpha = ClusterNode(tmp, "alpha")
    beta: ClusterNode | None = None
    try:
        beta = ClusterNode(tmp, "beta", members=[alpha.gossip])
        for node in (alpha, beta):
            for name in ("alpha", "beta"):
                assert wait_for(lambda n=node, m=name: f"A node has joined: {m}" in n.text(), 30), node.text()[-3000:]
        yield alpha, beta
    finally:
        for node in (beta, alpha):
            if node is not None:
                node.stop()


def _link_up_with_figures(node: ClusterNode, peer: str) -> dict[str, Any] | None:
    member = node.member(peer)
    if member and member["state"] == "alive" and (member["link"] or {}).get("up") and (member["figures"] or {}).get("fresh"):
        return member
    return None


async def test_a_single_node_says_clustering_is_not_enabled(http: aiohttp.ClientSession) -> None:
    async with http.get("/api/cluster") as response:
        assert response.status == 200
        body = await response.json()
    assert body == {"enabled": False, "nodes": [], "members": [], "detail": "clustering not enabled"}
    async with http.get("/metrics") as response:
        assert "hookmq_cluster_" not in await response.text()


def test_api_cluster_shows_every_member_with_its_link_and_figures(pair: tuple[ClusterNode, ClusterNode]) -> None:
    alpha, beta = pair
    for node, peer in ((alpha, "beta"), (beta, "alpha")):
        member = wait_for(lambda n=node, p=peer: _link_up_with_figures(n, p), 20)
        assert member, node.cluster()
        view = node.cluster()
        assert view["enabled"] is True and view["node"] == node.name and view["joined"] is True
        assert view["nodes"] == ["alpha", "beta"]
        assert view["members_by_state"] == {"alive": 2, "suspect": 0, "failed": 0, "left": 0}
        local = next(m for m in view["members"] if m["local"])
        assert local["name"] == node.name and local["link"] is None and local["routes"] is None
        for entry in view["members"]:
            assert entry["state"] == "alive" and entry["hookmq"] is True and entry["incarnation"] >= 0
            assert re.fullmatch(r"127\.0\.0\.1:\d+", entry["address"])
        assert member["address"] == (beta.gossip if peer == "beta" else alpha.gossip)
        assert isinstance(member["joined_at"], float)
        link = member["link"]
        assert link["frames_sent"] > 0 and link["frames_received"] > 0  # figures frames at least, both ways
        assert link["bytes_sent"] > 0 and link["bytes_received"] > 0 and link["queue_frames"] >= 0
        assert link["rtt_seconds"] is None or link["rtt_seconds"] >= 0
        totals = view["totals"]
        assert totals["nodes_reporting"] == 2
        assert totals["clients"] == sum(m["figures"]["clients"] for m in view["members"])


def test_api_cluster_is_behind_the_dashboard_authentication(pair: tuple[ClusterNode, ClusterNode]) -> None:
    alpha, _ = pair
    status, _body = alpha.get("/api/cluster", token=False)
    assert status == 401  # open_on_loopback is off by default: no token, no cluster
    _, document = alpha.get("/api/openapi.json")
    assert "Cluster" in document["components"]["schemas"]
    operation = document["paths"]["/api/cluster"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Cluster"}
    assert "401" in operation["responses"] and "security" not in operation  # the document's global bearer/cookie


def _subscribe(port: int, topic: str, got: list[bytes], ready: threading.Event) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sub-on-beta", protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = lambda _c, _u, message: got.append(message.payload)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_a_cross_node_publish_shows_as_routes_and_forwarded_messages(pair: tuple[ClusterNode, ClusterNode]) -> None:
    alpha, beta = pair
    got: list[bytes] = []
    ready = threading.Event()
    client = _subscribe(beta.mqtt_port(), "ops/view/#", got, ready)
    try:
        assert ready.wait(10)
        assert wait_for(lambda: (alpha.member("beta") or {}).get("routes", 0) >= 1, 10), alpha.cluster()
        request = json.dumps({"topic": "ops/view/1", "payload": "hello", "qos": 1}).encode()
        for _ in range(3):
            post = urllib.request.Request(alpha.url + "api/publish", data=request, method="POST", headers={
                "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
            with urllib.request.urlopen(post, timeout=5) as response:
                assert json.loads(response.read())["delivered"] >= 0
        assert wait_for(lambda: len(got) == 3, 10), got
        assert wait_for(lambda: (alpha.member("beta") or {}).get("messages_forwarded", 0) >= 3, 10)
        assert wait_for(lambda: (beta.member("alpha") or {}).get("messages_received", 0) >= 3, 10)
        assert alpha.cluster()["routes"]["count"] >= 1
        assert beta.cluster()["routes"]["local_filters"] >= 1
        assert wait_for(lambda: (alpha.member("beta") or {}).get("figures", {}).get("clients") == 1, 10)
        assert wait_for(lambda: alpha.cluster()["totals"]["subscriptions"] >= 1, 10)
    finally:
        client.loop_stop()
        client.disconnect()


def _metric(text: str, name: str, labels: str = "") -> float | None:
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_prometheus_cluster_metrics(pair: tuple[ClusterNode, ClusterNode]) -> None:
    alpha, _ = pair
    assert wait_for(lambda: _link_up_with_figures(alpha, "beta"), 20)
    status, text = alpha.get("/metrics")
    assert status == 200
    assert _metric(text, "hookmq_cluster_members", '{state="alive"}') == 2.0
    assert _metric(text, "hookmq_cluster_members", '{state="failed"}') == 0.0
    assert _metric(text, "hookmq_cluster_link_up", '{peer="beta"}') == 1.0
    assert _metric(text, "hookmq_cluster_link_queue_frames", '{peer="beta"}') is not None
    assert (_metric(text, "hookmq_cluster_link_bytes_sent_total", '{peer="beta"}') or 0) > 0
    assert (_metric(text, "hookmq_cluster_link_frames_received_total", '{peer="beta"}') or 0) > 0
    assert _metric(text, "hookmq_cluster_routes", '{peer="beta"}') is not None
    assert _metric(text, "hookmq_cluster_messages_forwarded_total", '{peer="beta"}') is not None
    assert _metric(text, "hookmq_cluster_messages_received_total", '{peer="beta"}') is not None
    assert _metric(text, "hookmq_cluster_route_count") is not None
    assert (_metric(text, "hookmq_cluster_probes_total") or 0) > 0  # local profile probes every 200 ms
    assert _metric(text, "hookmq_cluster_suspicions_total") is not None
    assert _metric(text, "hookmq_cluster_total_nodes_reporting") == 2.0


def test_readyz_is_ready_once_joined(pair: tuple[ClusterNode, ClusterNode], tmp_path: Path) -> None:
    for node in pair:
        status, body = node.get("/readyz", token=False)
        assert status == 200 and body["status"] == "ready", body
    # A node whose only member answers nothing (port 9 on loopback: nobody listens) has not joined.
    lonely = ClusterNode(tmp_path, "lonely", members=["127.0.0.1:9"])
    try:
        lonely.gossip  # started  # noqa: B018
        status, body = wait_for(lambda: lonely.get("/readyz", token=False), 10)
        assert status == 503 and body["status"] == "not ready", body
        assert body["reason"].startswith("not joined: no member of [cluster] members (127.0.0.1:9)"), body
    finally:
        lonely.stop()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hookmq", "cluster", *args], capture_output=True, text=True, timeout=30)


def test_cli_cluster_members_and_status(pair: tuple[ClusterNode, ClusterNode]) -> None:
    alpha, beta = pair
    assert wait_for(lambda: _link_up_with_figures(alpha, "beta"), 20)
    done = _cli("members", "--url", alpha.url, "--token", TOKEN)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ADDRESS", "STATE", "INCARNATION", "LINK", "ROUTES", "CLIENTS", "JOINED"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"alpha", "beta"}
    assert f"{alpha.gossip}" in rows["alpha"] and "(this node)" in rows["alpha"] and " alive " in rows["alpha"]
    assert f"{beta.gossip}" in rows["beta"] and re.search(r" alive +\d+ +up ", rows["beta"]), rows["beta"]
    status = _cli("status", "--url", beta.url, "--token", TOKEN)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[:3] == ["node: beta (joined)", "members: 2 alive, 0 suspect, 0 failed, 0 left",
                                              "links: 1 of 1 up"]
    as_json = _cli("status", "--url", beta.url, "--token", TOKEN, "--json")
    assert json.loads(as_json.stdout)["node"] == "beta"


def test_cli_errors_are_one_line(pair: tuple[ClusterNode, ClusterNode]) -> None:
    alpha, _ = pair
    wrong = _cli("members", "--url", alpha.url, "--token", "wrong")
    assert wrong.returncode == 1 and wrong.stdout == ""
    assert wrong.stderr.count("\n") == 1 and "the token was refused (401)" in wrong.stderr, wrong.stderr
    down = _cli("status", "--url", "http://127.0.0.1:9/")
    assert down.returncode == 1
    assert down.stderr == "hookmq: http://127.0.0.1:9/api/cluster: cannot reach the node: [Errno 111] Connection refused\n"
    bad = _cli("members", "--url", "ftp://x")
    assert bad.returncode == 1 and "give an http:// or https:// URL" in bad.stderr
    usage = _cli()
    assert usage.returncode == 2


def _delete(node: ClusterNode, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(node.url.rstrip("/") + path, method="DELETE",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_clients_of_the_whole_cluster_and_a_disconnect_on_another_node(pair: tuple[ClusterNode, ClusterNode]) -> None:
    alpha, beta = pair
    gone = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="on-beta/../x", protocol=mqtt.MQTTv5)
    client.on_disconnect = lambda *_: gone.set()
    client.connect("127.0.0.1", beta.mqtt_port())
    client.loop_start()
    try:
        def listed() -> list[dict[str, Any]]:
            _, body = alpha.get("/api/cluster/clients?q=on-beta")
            return [item for item in body["items"] if item["client_id"] == "on-beta/../x"]

        found = wait_for(listed, 10)
        assert found and found[0]["node"] == "beta" and found[0]["protocol"] == "5.0", found
        _, body = alpha.get("/api/cluster/clients")
        assert set(body["nodes"]) == {"alpha", "beta"} and body["nodes"]["beta"]["total"] >= 1
        status, answer = _delete(alpha, "/api/cluster/client?node=beta&client_id=" + urllib.parse.quote("on-beta/../x", safe=""))
        assert status == 200 and answer == {"node": "beta", "client_id": "on-beta/../x", "disconnected": True}
        assert gone.wait(10)
        assert wait_for(lambda: not listed(), 10)
        status, answer = _delete(alpha, "/api/cluster/client?node=beta&client_id=nobody")
        assert status == 404 and answer["error"] == "not_found"
        status, answer = _delete(alpha, "/api/cluster/client?node=nowhere&client_id=x")
        assert status == 502 and "not a live member" in answer["detail"]
        status, answer = _delete(alpha, "/api/cluster/client?node=beta")
        assert status == 400
    finally:
        client.loop_stop()
        client.disconnect()


def test_a_killed_node_turns_failed(pair: tuple[ClusterNode, ClusterNode]) -> None:
    alpha, beta = pair
    assert wait_for(lambda: _link_up_with_figures(alpha, "beta"), 20)
    beta.kill()
    failed = wait_for(lambda: (alpha.member("beta") or {}).get("state") == "failed", 30)
    assert failed, alpha.cluster()
    view = alpha.cluster()
    assert view["members_by_state"]["failed"] == 1 and view["members_by_state"]["alive"] == 1
    assert view["totals"]["nodes_reporting"] == 1  # only the live node's figures count
    _, text = alpha.get("/metrics")
    assert _metric(text, "hookmq_cluster_members", '{state="failed"}') == 1.0
    listed = _cli("members", "--url", alpha.url, "--token", TOKEN)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("beta "))
    assert re.search(r" failed +\d+ +down ", row), row
    assert (_metric(text, "hookmq_cluster_suspicions_total") or 0) >= 1
