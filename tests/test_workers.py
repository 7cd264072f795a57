"""``hookmq --workers N`` over real processes: the plan, the supervisor, and one broker to the outside.

The hosts run two workers; a client is put on a chosen worker through that worker's private
listener (``[server] worker_listeners``), and the shared listener is the one SO_REUSEPORT
spreads. Hosts are shared by the tests of this module where a test leaves them as it found them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from workers_host import WorkerHost, bounded, disconnect_reason, messages, until

from hookmq.config import Config
from hookmq.mqtt.packets import Properties, Publish, Will
from hookmq.testing.ports import free_port
from hookmq.testing.raw import RawClient
from hookmq.testing.redis import RedisServer
from hookmq.workers import PRIVATE_LISTENER, plan_workers, worker_environment, workers_unavailable

PERSISTENT = Properties(session_expiry_interval=300)
TOKEN = "workers-test-token"
KEY = "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="


# ---------------------------------------------------------------------- the plan (no processes)


def test_each_worker_is_a_node_seeded_with_its_siblings_and_reuses_the_ports(tmp_path: Path) -> None:
    config = Config.from_mapping({"listeners": [{"name": "tcp", "type": "tcp", "address": ":0"},
                                                {"name": "ws", "type": "ws", "address": "127.0.0.1:0"}],
                                  "plugins": {"dashboard": {"address": "127.0.0.1:0"}}})
    plans = plan_workers(config, 3, tmp_path, [1883, 1882], [7001, 7002, 7003], [9001, 9002, 9003],
                         key=KEY, host_name="h")
    assert [plan.name for plan in plans] == ["h-w0", "h-w1", "h-w2"]
    second = plans[1].document
    assert [(item["name"], item["address"], item.get("reuse_port")) for item in second["listeners"]] == [
        ("tcp", ":1883", True), ("ws", "127.0.0.1:1882", True), (PRIVATE_LISTENER, "127.0.0.1:9002", None)]
    assert second["cluster"]["mode"] is True and second["cluster"]["bind"] == "127.0.0.1"
    assert second["cluster"]["sibling_members"] == ["127.0.0.1:7001", "127.0.0.1:7003"]
    assert "members" not in second["cluster"]  # siblings are no configured members: one not up yet is no warning
    assert second["cluster"]["port"] == 7002 and second["cluster"]["key"] == KEY
    assert second["cluster"]["link_unix_path"] == str(tmp_path / "w1.sock")
    assert second["server"] == {"workers": 1}
    assert "dashboard" not in plans[0].document.get("disabled_plugins", [])  # one dashboard: worker 0's
    assert all("dashboard" in plan.document["disabled_plugins"] for plan in plans[1:])
    for plan in plans:  # every document is a valid configuration
        Config.from_mapping(plan.document)


def test_in_cluster_mode_each_worker_is_one_member_of_the_cluster(tmp_path: Path) -> None:
    config = Config.from_mapping({"cluster": {"mode": True, "port": 7946, "members": ["10.0.0.2:7946"],
                                              "node_name": "mqtt-a"},
                                  "storage": {"backend": "sqlite"}})
    plans = plan_workers(config, 2, tmp_path, [1883, 1882], [7946, 7947], None, key="unused", host_name="mqtt-a")
    cluster = plans[1].document["cluster"]
    assert cluster["node_name"] == "mqtt-a-w1" and cluster["port"] == 7947
    assert cluster["members"] == ["10.0.0.2:7946"] and cluster["sibling_members"] == ["127.0.0.1:7946"]
    assert "key" not in cluster and cluster["bind"] == "0.0.0.0"  # the cluster's own settings stay
    assert plans[1].document["plugins"]["sqlite_store"]["path"] == "hookmq.sqlite3.w1"  # SQLite is not shared


def test_a_worker_gets_no_configuration_variables_of_the_parent() -> None:
    env = worker_environment({"HOOKMQ_CLUSTER__PORT": "1", "HOOKMQ_CONFIG": "x", "PATH": "/bin"}, 3)
    assert env == {"PATH": "/bin", "HOOKMQ_WORKER_INDEX": "3", "PYTHONUNBUFFERED": "1"}


def test_workers_need_the_gossip_plugin() -> None:
    assert workers_unavailable(Config.from_mapping({})) is None
    problem = workers_unavailable(Config.from_mapping({"disabled_plugins": ["gossip"]}))
    assert problem is not None and "gossip plugin" in problem


def test_workers_is_a_number_or_auto() -> None:
    assert Config.from_mapping({"server": {"workers": "auto"}}).server.worker_count() >= 1
    assert Config.from_mapping({"server": {"workers": 4}}).server.worker_count() == 4
    with pytest.raises(Exception, match=r"server\.workers"):
        Config.from_mapping({"server": {"workers": 0}})


# ---------------------------------------------------------------------- hosts


def _start_in_thread(host: WorkerHost) -> None:
    """Start a host from a synchronous (module-scoped) fixture: its own event loop, in a thread of its own."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: asyncio.run(host.start())).result()


@pytest.fixture(scope="module")
def memory_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerHost]:
    """Two workers, memory store (sessions move over the links while their worker lives)."""
    host = WorkerHost(tmp_path_factory.mktemp("memory-host"), 2, dashboard_token=TOKEN)
    try:
        _start_in_thread(host)
        yield host
    finally:
        pids = [worker["pid"] for worker in (host.state() or {}).get("workers", [])]
        assert host.stop() == 0, host.log()[-3000:]  # SIGTERM: every worker stopped, status 0
        assert not [pid for pid in pids if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


@pytest.fixture(scope="module")
def redis_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerHost]:
    """Two workers sharing a real redis-server (ack_after_write)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server binary not installed")
    with RedisServer() as redis:
        host = WorkerHost(tmp_path_factory.mktemp("redis-host"), 2, redis_url=redis.url)
        try:
            _start_in_thread(host)
            yield host
        finally:
            assert host.stop() == 0, host.log()[-3000:]


def _persistent(level: int) -> dict[str, object]:
    return {"clean_start": False, "properties": PERSISTENT} if level == 5 else {"clean_start": False}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("store", ["memory", "redis"])
@pytest.mark.parametrize("level", [4, 5])
async def test_a_session_moves_between_workers_with_its_inflight_messages(
        request: pytest.FixtureRequest, store: str, level: int) -> None:
    host: WorkerHost = request.getfixturevalue(f"{store}_host")
    client_id = f"mover-{store}-{level}"
    old, connack = await host.connect(0, client_id, level, **_persistent(level))
    await old.subscribe(f"move/{client_id}/#", 1)
    publisher, _ = await host.connect(1, f"pub-{client_id}")
    for n in range(3):  # SUBACK waited for worker 1 to hold the route
        await publisher.publish(f"move/{client_id}/{n}", str(n).encode(), qos=1)
    inflight = await messages(old, 3, ack=False)  # delivered on worker 0, not acknowledged
    new, connack = await host.connect(1, client_id, level, **_persistent(level))
    assert connack.session_present
    assert await disconnect_reason(old) == (0x8E if level == 5 else None)
    resent = await messages(new, 3, ack=True)  # the same messages, same packet ids, DUP, on worker 1
    assert [(m.packet_id, m.payload, m.dup) for m in resent] == [(m.packet_id, m.payload, True) for m in inflight]
    back_on_0, _ = await host.connect(0, f"pub0-{client_id}")
    await back_on_0.publish(f"move/{client_id}/after", b"after", qos=1)  # the subscription moved too
    [after] = await messages(new, 1)
    assert after.payload == b"after" and await new.nothing_within(0.5)
    for client in (new, publisher, back_on_0):
        await client.disconnect()


@pytest.mark.timeout(60)
async def test_retained_wills_and_shared_subscriptions_across_workers(memory_host: WorkerHost) -> None:
    host = memory_host
    setter, _ = await host.connect(0, "retainer")
    await setter.publish("state/lamp", b"on", qos=1, retain=True)
    reader, _ = await host.connect(1, "reader")
    await reader.subscribe("state/#", 1)
    [retained] = await messages(reader, 1)
    assert (retained.topic, retained.payload, retained.retain) == ("state/lamp", b"on", True)

    watcher, _ = await host.connect(1, "watcher")
    await watcher.subscribe("wills/#", 1)
    dying, _ = await host.connect(0, "dying", will=Will("wills/dying", b"gone", 1, False))
    await dying.close()  # no DISCONNECT: the will goes out, on worker 0, to worker 1's subscriber
    [will] = await messages(watcher, 1)
    assert will.payload == b"gone" and await watcher.nothing_within(0.5)

    members = [(await host.connect(index, f"member-{index}"))[0] for index in (0, 1)]
    for member in members:
        await member.subscribe("$share/g/jobs/#", 1)
    publisher, _ = await host.connect(0, "jobs-publisher")
    for n in range(20):
        await publisher.publish(f"jobs/{n}", str(n).encode(), qos=1)
    got: list[list[Publish]] = [[], []]

    async def drain(index: int) -> None:
        while sum(map(len, got)) < 20:
            try:
                got[index] += await messages(members[index], 1, timeout=0.5)
            except TimeoutError:
                continue

    await bounded(asyncio.gather(drain(0), drain(1)), 20)
    payloads = sorted(int(m.payload) for batch in got for m in batch)
    assert payloads == list(range(20))  # each message to exactly one member of the group, over both workers
    assert got[0] and got[1]
    for client in (setter, reader, watcher, publisher, *members):
        await client.disconnect()


@pytest.mark.timeout(60)
async def test_sys_shows_the_host_totals_and_each_worker(memory_host: WorkerHost) -> None:
    host = memory_host
    clients = [(await host.connect(index, f"counted-{index}-{n}"))[0] for index, n in ((0, 0), (1, 0), (1, 1))]
    watcher, _ = await host.connect(0, "sys-watcher")
    await watcher.subscribe("$SYS/host/#", 0)
    seen: dict[str, bytes] = {}
    expected = {"$SYS/host/workers": b"2", "$SYS/host/clients/connected": b"4",
                f"$SYS/host/workers/{host.name(0)}/clients/connected": b"2",
                f"$SYS/host/workers/{host.name(1)}/clients/connected": b"2"}

    async def watch() -> None:
        while any(seen.get(topic) != value for topic, value in expected.items()):
            packet = await watcher.recv(10)
            if isinstance(packet, Publish):
                seen[packet.topic] = packet.payload

    await bounded(watch(), 20)  # figures travel once a second; stale ones are not summed
    assert "$SYS/host/subscriptions/count" in seen and "$SYS/host/messages/received/per_second" in seen
    for client in (*clients, watcher):
        await client.disconnect()


def _get(url: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        text: str = answer.read().decode()
        return text


@pytest.mark.timeout(60)
async def test_one_dashboard_shows_every_worker_and_the_host_totals(memory_host: WorkerHost) -> None:
    host = memory_host
    [url] = host.dashboard_urls()  # worker 0's only
    clients = [(await host.connect(index, f"shown-{index}"))[0] for index in (0, 1)]
    view: dict[str, object] = {}

    async def both_reported() -> bool:
        view.update(json.loads(await asyncio.to_thread(_get, url + "/api/cluster")))
        fresh = [m for m in view["members"] if (m.get("figures") or {}).get("fresh")]  # type: ignore[attr-defined]
        return len(fresh) == 2 and all(m["figures"]["clients"] >= 1 for m in fresh)

    deadline = asyncio.get_running_loop().time() + 20
    while not await both_reported():
        assert asyncio.get_running_loop().time() < deadline, view
        await asyncio.sleep(0.3)
    assert sorted(view["nodes"]) == [host.name(0), host.name(1)]  # type: ignore[call-overload]
    metrics = await asyncio.to_thread(_get, url + "/metrics")
    for index in (0, 1):
        assert f'hookmq_cluster_node_clients{{node="{host.name(index)}"}}' in metrics
    assert "hookmq_cluster_total_clients" in metrics
    for client in clients:
        await client.disconnect()


@pytest.mark.timeout(60)
async def test_the_shared_listener_spreads_clients_over_the_workers(memory_host: WorkerHost) -> None:
    host = memory_host
    subscriber, _ = await host.connect(0, "spread-sub")
    await subscriber.subscribe("spread/#", 0)
    clients = []
    for n in range(16):  # the kernel hashes each connection to one worker's listener
        client, connack = await bounded(RawClient.connect("127.0.0.1", host.shared_port, f"spread-{n}", 5))
        assert connack.reason_code == 0
        await client.publish(f"spread/{n}", b"x", qos=1)
        clients.append(client)
    got = await messages(subscriber, 16)
    assert sorted(m.topic for m in got) == sorted(f"spread/{n}" for n in range(16))
    lines = host.log().splitlines()
    for index in (0, 1):  # 16 connections all hashed to one worker: 1 in 32 768
        assert any(f" w{index} " in line and "spread-" in line for line in lines), index
    for client in (*clients, subscriber):
        await client.disconnect()


# ---------------------------------------------------------------------- supervision


@pytest.mark.timeout(120)
async def test_a_killed_worker_is_restarted_and_its_clients_sessions_survive(tmp_path: Path,
                                                                             redis_server: RedisServer) -> None:
    host = await WorkerHost(tmp_path, 2, redis_url=redis_server.url).start()
    try:
        client, _ = await host.connect(0, "survivor", 5, **_persistent(5))
        await client.subscribe("for/survivor", 1)
        await client.disconnect()  # offline, owned by worker 0, its subscription routed from worker 1
        publisher, _ = await host.connect(1, "feeder")
        for n in range(5):
            await publisher.publish("for/survivor", str(n).encode(), qos=1)  # queued by worker 0, in Redis
        pid = host.kill_worker(0)
        back, connack = await host.connect(1, "survivor", 5, **_persistent(5))
        assert connack.session_present
        got = await messages(back, 5, timeout=20)
        assert sorted(m.payload for m in got) == [str(n).encode() for n in range(5)]
        restarted = lambda: host.worker(0)["restarts"] == 1 and host.worker(0)["pid"] != pid  # noqa: E731
        assert await until(restarted, 30), host.log()[-3000:]
        await host.serving(0)
        relinked = lambda: host.log().count(f"w0 INFO hookmq.plugins.gossip.link: Link up: {host.name(1)}") >= 2  # noqa: E731
        assert await until(relinked, 30), host.log()[-3000:]  # the new worker 0 and worker 1 linked again
        assert "Worker 0 (pid" in host.log() and "signal SIGKILL" in host.log()
        await back.disconnect()
        again, connack = await host.connect(0, "survivor", 5, **_persistent(5))  # the restarted worker
        assert connack.session_present
        await publisher.publish("for/survivor", b"after", qos=1)
        [after] = await messages(again, 1, timeout=20)
        assert after.payload == b"after"
        await again.disconnect()
        await publisher.disconnect()
    finally:
        assert host.stop() == 0, host.log()[-3000:]


def test_a_port_in_use_stops_the_host_with_one_line_and_status_3(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "host.toml"
        config.write_text(f'[server]\nworkers = 2\n[[listeners]]\nname = "tcp"\ntype = "tcp"\naddress = "127.0.0.1:{port}"\n')
        done = subprocess.run([sys.executable, "-m", "hookmq", "-c", str(config)], capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 3
    assert done.stderr.strip().splitlines()[-1].startswith("hookmq: listener 'tcp' (tcp) cannot listen on")
    assert "Traceback" not in done.stderr


@pytest.mark.timeout(90)
async def test_a_host_starts_and_stops_without_join_or_leave_warnings(tmp_path: Path) -> None:
    # The workers start together, so the first one up finds no sibling to join, and they stop
    # together, so no sibling hears a leave: neither is a warning an operator has to read.
    host = await WorkerHost(tmp_path, 2).start()
    assert host.stop() == 0
    log = host.log()
    assert log.count("Cluster Node Created!") == 2 and log.count("A node has joined:") >= 2
    warnings = [line for line in log.splitlines() if " WARNING " in line]
    assert not [line for line in warnings if "join" in line or "leave" in line], warnings


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_ctrl_c_stops_every_worker(tmp_path: Path) -> None:
    host = await WorkerHost(tmp_path, 2).start()
    pids = [host.worker(index)["pid"] for index in (0, 1)]
    assert host.process is not None
    host.process.send_signal(2)  # SIGINT
    status = await asyncio.to_thread(host.process.wait, 30)
    assert status == 0
    assert not [pid for pid in pids if _alive(pid)]
    assert host.log().count("A node has left:") >= 1
    host.stop()



def _free_port_pair() -> int:
    """A port P on 127.0.0.1 with P and P + 1 free for TCP and UDP now (the workers gossip on port + index)."""
    return free_port(udp=True, count=2)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_in_a_cluster_each_worker_is_a_member_and_messages_cross_hosts(tmp_path: Path) -> None:
    b_gossip, b_mqtt = _free_port_pair(), _free_port_pair()
    b_config = tmp_path / "b.toml"
    b_config.write_text("\n".join([
        'disabled_plugins = ["dashboard"]', "[cluster]", "mode = true", f"port = {b_gossip}", 'bind = "127.0.0.1"',
        'advertise = "127.0.0.1"', 'node_name = "host-b"', 'profile = "local"', f'key = "{KEY}"',
        "[[listeners]]", 'name = "tcp"', 'type = "tcp"', f'address = "127.0.0.1:{b_mqtt}"']) + "\n")
    b_log = (tmp_path / "b.log").open("wb")
    node_b = subprocess.Popen([sys.executable, "-m", "hookmq", "-c", str(b_config)], stdout=b_log, stderr=subprocess.STDOUT)
    a_gossip = _free_port_pair()
    host = WorkerHost(tmp_path, 2, extra="\n".join([
        "[cluster]", "mode = true", f"port = {a_gossip}", 'bind = "127.0.0.1"', 'advertise = "127.0.0.1"',
        'node_name = "host-a"', 'profile = "local"', f'key = "{KEY}"', f'members = ["127.0.0.1:{b_gossip}"]']) + "\n")
    try:
        await host.start()
        b_text = lambda: (tmp_path / "b.log").read_text(errors="replace")  # noqa: E731
        linked = lambda: all(f"Link up: host-a-w{i} (encrypted)" in b_text() for i in (0, 1))  # noqa: E731
        assert await until(linked, 30), b_text()[-3000:]
        assert [host.name(0), host.name(1)] == ["host-a-w0", "host-a-w1"]
        assert "Link up: host-a-w1 (not encrypted)" in host.log()  # siblings over their Unix sockets
        assert f"gossip port {a_gossip + 1}" in host.log()  # worker 1 gossips on port + 1
        subscriber, _ = await host.connect(1, "far-sub")
        await subscriber.subscribe("far/#", 1)
        publisher, _ = await bounded(RawClient.connect("127.0.0.1", b_mqtt, "far-pub", 5))
        await publisher.publish("far/x", b"from host b", qos=1)
        [got] = await messages(subscriber, 1)
        assert got.payload == b"from host b"
        await subscriber.disconnect()
        await publisher.disconnect()
    finally:
        assert host.stop() == 0, host.log()[-3000:]
        node_b.terminate()
        node_b.wait(30)
        b_log.close()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_two_workers_killed_at_once_are_both_restarted(tmp_path: Path) -> None:
    host = await WorkerHost(tmp_path, 3).start()
    try:
        survivor, _ = await host.connect(0, "still-here")  # worker 0 serves throughout
        pids = [host.kill_worker(index) for index in (1, 2)]
        restarted = lambda: all(host.worker(i)["restarts"] == 1 and host.worker(i)["pid"] != pid  # noqa: E731
                                for i, pid in zip((1, 2), pids, strict=True))
        assert await until(restarted, 30), host.log()[-3000:]
        for index in (1, 2):
            await host.serving(index)
        # every pair's link up again (a subscription made before its worker's link to worker 0 is up is not
        # routed from worker 0 yet: cluster routing's rule for a node whose link is down)
        relinked = lambda: all(host.log().count(f"w{a} INFO hookmq.plugins.gossip.link: Link up: {host.name(b)}") >= 2  # noqa: E731
                               for a, b in ((0, 1), (0, 2), (1, 2)))
        assert await until(relinked, 30), host.log()[-3000:]
        subscriber, _ = await host.connect(2, "after-restart")
        await subscriber.subscribe("back/#", 1)
        await survivor.publish("back/x", b"both back", qos=1)  # routed from worker 0 to the new worker 2
        [got] = await messages(subscriber, 1)
        assert got.payload == b"both back"
        for client in (survivor, subscriber):
            await client.disconnect()
    finally:
        assert host.stop() == 0, host.log()[-3000:]
