"""Links and membership under full MQTT load on both nodes: no false link failure, nothing lost.

Two hookmq processes (``link_node.py``) on loopback send each other a stream of reliable link
frames while the bench's pairs workload (QoS 1) saturates the MQTT side of each, round after
round, until both streams are through. With the link's real keep-alive (a ping every 2 s, 15 s
of silence closes) and membership's ``local`` profile, neither link may go down, no node may
be declared failed, and every frame must arrive once and in order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent))
from gossip_oracle import Process, free_port

NODE = Path(__file__).parent / "link_node.py"
FRAMES = 6000
RATE = 100.0


def numbers(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def wait_until(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def bench_rounds(mqtt_port: int, stop: threading.Event, results: list[int], out: Path) -> None:
    """The pairs workload against one node, round after round, until told to stop."""
    while not stop.is_set():
        done = subprocess.run(
            [sys.executable, "-m", "hookmq", "bench", "run", "--url", f"mqtt://127.0.0.1:{mqtt_port}", "--workload", "pairs",
             "--clients", "50", "--messages", "1000", "--qos", "1", "--no-progress", "--timeout", "120"],
            capture_output=True, text=True, timeout=300)
        out.write_text(done.stdout + done.stderr)
        results.append(done.returncode)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_under_full_mqtt_load_links_stay_up_and_lose_nothing(tmp_path: Path) -> None:
    names = ("node-a", "node-b")
    gossip = {name: free_port() for name in names}
    mqtt = {name: free_port() for name in names}
    processes: dict[str, Process] = {}
    for name, peer in (names, names[::-1]):
        members = [] if name == "node-a" else [f"127.0.0.1:{gossip['node-a']}"]
        config = {"listeners": [{"name": "tcp", "type": "tcp", "address": f"127.0.0.1:{mqtt[name]}"}],
                  "disabled_plugins": ["dashboard"], "log": {"level": "INFO"},
                  "cluster": {"mode": True, "bind": "127.0.0.1", "advertise": "127.0.0.1", "port": gossip[name],
                              "node_name": name, "members": members, "profile": "local"}}
        traffic = {"peer": peer, "frames": FRAMES, "rate": RATE, "acked": str(tmp_path / f"{name}.acked"),
                   "handed": str(tmp_path / f"{name}.handed")}
        processes[name] = Process([sys.executable, str(NODE), json.dumps(config), str(tmp_path / f"{name}.received"),
                                   json.dumps(traffic)])
    a, b = processes["node-a"], processes["node-b"]
    stop = threading.Event()
    rounds: dict[str, list[int]] = {name: [] for name in names}
    loaders = [threading.Thread(target=bench_rounds, args=(mqtt[name], stop, rounds[name], tmp_path / f"{name}.bench"))
               for name in names]
    try:
        up = lambda: all(any("Link up:" in line for _, line in p.output()) for p in (a, b))  # noqa: E731
        assert wait_until(up, 60), a.text()[-3000:] + b.text()[-3000:]
        began = time.time()
        for loader in loaders:
            loader.start()
        done = lambda: all(any("sender done" in line for _, line in p.output()) for p in (a, b))  # noqa: E731
        assert wait_until(done, FRAMES / RATE + 240), a.text()[-3000:] + b.text()[-3000:]
        took = time.time() - began
        stop.set()
        for loader in loaders:
            loader.join(320)
        stats = {name: json.loads(next(line for _, line in reversed(p.output()) if line.startswith("sender stats "))[13:])
                 for name, p in processes.items()}
        print(f"\nunder MQTT load ({len(rounds['node-a'])} / {len(rounds['node-b'])} bench rounds of 50 QoS 1 pairs x 1000 "
              f"messages on node-a / node-b): {FRAMES} link frames each way in {took:.1f} s; "
              + "; ".join(f"{n}: rtt {s['rtt']}, connects {s['connects']}, writes {s['writes']} for {s['frames_sent']} frames"
                          for n, s in stats.items()))
        for name, peer in (names, names[::-1]):
            assert numbers(tmp_path / f"{peer}.received") == list(range(FRAMES))
            assert sorted(numbers(tmp_path / f"{name}.acked")) == list(range(FRAMES))
            assert stats[name]["connects"] == 1 and stats[name]["disconnects"] == 0
        for process in (a, b):
            text = process.text()
            assert "Link down" not in text and "A node has failed" not in text
        assert all(rounds[name] and set(rounds[name]) == {0} for name in names), rounds  # the load really ran, and passed
    finally:
        stop.set()
        for process in (a, b):
            process.terminate(5)
        for loader in loaders:
            if loader.is_alive():
                loader.join(320)
