"""Faults across three real hookmq processes, each in a network namespace of its own.

Executed by test_routing_faults.py under ``unshare -n``: this namespace is the hub. Nodes A, B
and C each live in a namespace joined to the hub by a veth pair (10.0.N.2 on the node, 10.0.N.1
on the hub, which forwards between them); the MQTT clients run in the hub, so they reach every
node whatever happens between the nodes. A publisher on A sends a numbered QoS 1 stream that
subscribers on B and C receive, while, in turn:

1. the A–B data link is broken mid-stream (``ss -K`` on A's TCP connections to B's gossip port);
2. A and B are partitioned for 2 s (shorter than failure detection: C still vouches for both);
3. C is partitioned from A and B for 12 s (declared dead: its routes go), then healed (it
   re-joins, routes are exchanged again, messages flow both ways);
4. C is killed with SIGKILL; B is stopped at the end.

Prints, on its last line, everything as JSON: what the publisher had acknowledged, what each
subscriber received, the longest wait for an acknowledgement, and the nodes' logs.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).parent))
from routing_walkthrough import Process

NODES = {"A": 1, "B": 2, "C": 3}
INFLIGHT = 20
"""The tracked publisher's window (paho's max_inflight_messages)."""
KEY = base64.b64encode(bytes(range(32))).decode()


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=10)


def address(node: str) -> str:
    return f"10.0.{NODES[node]}.2"


class Namespace:
    """A network namespace held open by a sleeping process, joined to the hub by a veth pair."""

    def __init__(self, node: str) -> None:
        n = NODES[node]
        self.holder = subprocess.Popen(["unshare", "-n", "sleep", "600"])
        time.sleep(0.2)
        self.pid = self.holder.pid
        run("ip", "link", "add", f"h{node}", "type", "veth", "peer", "name", f"n{node}", "netns", str(self.pid))
        run("ip", "addr", "add", f"10.0.{n}.1/24", "dev", f"h{node}")
        run("ip", "link", "set", f"h{node}", "up")
        for command in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"10.0.{n}.2/24", "dev", f"n{node}"],
                        ["ip", "link", "set", f"n{node}", "up"], ["ip", "route", "add", "default", "via", f"10.0.{n}.1"]):
            run(*self.enter(), *command)

    def enter(self) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n"]

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait(5)


def partition(a: str, b: str, on: bool) -> None:
    """Drop (or stop dropping) what the hub would forward between ``a`` and ``b``, both ways."""
    verb = "add" if on else "del"
    for src, dst in ((a, b), (b, a)):
        run("ip", "rule", verb, "iif", f"h{src}", "to", f"{address(dst)}/32", "blackhole", "pref", "100")


def node_config(folder: Path, node: str, mqtt_extra: str = "") -> Path:
    seed = [] if node == "A" else [f'"{address("A")}:7946"']
    path = folder / f"{node}.toml"
    path.write_text(f"""
disabled_plugins = ["dashboard"]
[[listeners]]
name = "tcp"
type = "tcp"
address = "{address(node)}:1883"
[mqtt]
sys_interval = 1
{mqtt_extra}
[cluster]
mode = true
port = 7946
bind = "{address(node)}"
advertise = "{address(node)}"
node_name = "{node}"
members = [{", ".join(seed)}]
key = "{KEY}"
profile = "local"
rejoin_interval = 2
leave_timeout = 1
""")
    return path


class Subscriber:
    """A persistent QoS 1 subscriber recording the numbers it receives."""

    def __init__(self, node: str, client_id: str, topics: list[str]) -> None:
        self.got: dict[str, list[int]] = {topic: [] for topic in topics}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.on_message = self._message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect(address(node), 1883, keepalive=30)
        self.client.loop_start()
        self.client.subscribe([(topic, 1) for topic in topics])
        assert subscribed.wait(10), f"no SUBACK from {node}"

    def _message(self, client: Any, userdata: Any, message: Any) -> None:
        self.got.setdefault(message.topic, []).append(int(message.payload))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Publisher:
    """A QoS 1 publisher of numbered messages; records which were acknowledged and the longest wait."""

    def __init__(self, node: str, topic: str) -> None:
        self.topic = topic
        self.acked: set[int] = set()
        #: number -> wall-clock time of its publish (to compare with the nodes' log times)
        self.published_at: dict[int, float] = {}
        self.sent: dict[int, tuple[int, float]] = {}  # mid -> (number, when)
        self.early: set[int] = set()
        self.longest_wait = 0.0
        #: number -> monotonic time of its publish() call, and of its PUBACK
        self.called_at: dict[int, float] = {}
        self.acked_at: dict[int, float] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{node}", clean_session=False)
        self.client.max_inflight_messages_set(INFLIGHT)
        self.client.on_publish = self._acked
        self.client.connect(address(node), 1883, keepalive=60)
        self.client.loop_start()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self.stop.is_set():
            when = time.monotonic()
            self.published_at[n] = time.time()
            self.called_at[n] = when
            info = self.client.publish(self.topic, str(n), qos=1)  # never under self.lock: paho calls back under its own
            with self.lock:
                if info.mid in self.early:  # acknowledged before we got here
                    self.early.discard(info.mid)
                    self.acked.add(n)
                    self.acked_at[n] = time.monotonic()
                else:
                    self.sent[info.mid] = (n, when)
            n += 1
            time.sleep(0.004)

    def _acked(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self.lock:
            entry = self.sent.pop(mid, None)
            if entry is None:
                self.early.add(mid)
                return
            self.acked.add(entry[0])
            self.acked_at[entry[0]] = now = time.monotonic()
            self.longest_wait = max(self.longest_wait, now - entry[1])

    def longest_broker_wait(self) -> float:
        """The longest wait for a PUBACK counted from when paho could send the PUBLISH.

        paho queues a publish beyond its INFLIGHT window in the client and sends it when the
        acknowledgement of the one INFLIGHT places before it frees a slot (acknowledgements come
        in order), so the wait the broker causes starts at the later of the publish() call and
        that acknowledgement; ``longest_wait`` also counts the time spent queued in paho.
        """
        with self.lock:
            waits = [acked - max(self.called_at[n], self.acked_at.get(n - INFLIGHT, 0.0))
                     for n, acked in self.acked_at.items() if n in self.called_at]
        return max(waits, default=0.0)

    def finish(self, timeout: float) -> int:
        self.stop.set()
        self.thread.join(5)
        end = time.monotonic() + timeout
        while self.sent and time.monotonic() < end:
            time.sleep(0.1)
        self.client.disconnect()
        self.client.loop_stop()
        return len(self.sent)


def main() -> int:
    run("ip", "link", "set", "lo", "up")
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
    result: dict[str, Any] = {"events": []}
    spaces = {node: Namespace(node) for node in NODES}
    folder = Path(tempfile.mkdtemp())
    procs: dict[str, Process] = {}
    clients: list[Any] = []
    started = time.monotonic()

    def event(text: str) -> None:
        result["events"].append(f"{time.monotonic() - started:6.1f}s {text}")
        print(result["events"][-1], file=sys.stderr, flush=True)

    try:
        for node in NODES:
            procs[node] = Process(node, [*spaces[node].enter(), sys.executable, "-m", "hookmq", "-c",
                                         str(node_config(folder, node))])
            assert procs[node].wait_for(r"plugins: ", 30), procs[node].lines
            event(f"{node} started")
        for node in NODES:
            assert procs[node].wait_for(r"Link up: ", 30)
        end = time.monotonic() + 30
        while time.monotonic() < end and not all(
                sum("Link up:" in line for line in procs[n].lines) >= 2 for n in NODES):
            time.sleep(0.1)
        event("three nodes joined, links up")
        sub_b = Subscriber("B", "sub-b", ["f/stream"])
        sub_c = Subscriber("C", "sub-c", ["f/stream", "f/to-c"])
        sub_a = Subscriber("A", "sub-a", ["f/to-a"])
        clients += [sub_a, sub_b, sub_c]
        pub = Publisher("A", "f/stream")
        pub.thread.start()
        time.sleep(2)
        killed = subprocess.run([*spaces["A"].enter(), "ss", "-K", "dst", address("B"), "dport", "=", ":7946"],
                                capture_output=True, text=True, timeout=10).stdout
        event(f"A-B link broken with ss -K ({max(len(killed.splitlines()) - 1, 0)} socket(s) closed)")
        time.sleep(2)
        partition("A", "B", True)
        event("A and B partitioned")
        time.sleep(2)
        partition("A", "B", False)
        event("A and B healed")
        time.sleep(2)
        partition("A", "C", True)
        partition("B", "C", True)
        event("C partitioned from A and B")
        result["c_declared_dead"] = procs["A"].wait_for(r"A node has failed: C", 20)
        event(f"A says C failed: {result['c_declared_dead']}")
        time.sleep(12 - 3)
        partition("A", "C", False)
        partition("B", "C", False)
        event("C healed")
        lines_before = len(procs["A"].lines)
        end = time.monotonic() + 30
        while time.monotonic() < end and not any("Link up: C" in line for line in procs["A"].lines[lines_before:]):
            time.sleep(0.1)
        result["c_link_back"] = any("Link up: C" in line for line in procs["A"].lines[lines_before:])
        event(f"link A-C up again: {result['c_link_back']}")
        time.sleep(2)  # routes exchanged again (the snapshot follows the link)
        both_ways: dict[str, bool] = {}
        for src, topic, sub in (("A", "f/to-c", sub_c), ("C", "f/to-a", sub_a)):
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"once-{src}")
            client.connect(address(src), 1883)
            client.loop_start()
            client.publish(topic, "7", qos=1).wait_for_publish(10)
            client.disconnect()
            client.loop_stop()
            end = time.monotonic() + 10
            while time.monotonic() < end and not sub.got.get(topic):
                time.sleep(0.05)
            both_ways[f"{src}->{topic}"] = sub.got.get(topic) == [7]
        result["after_heal_both_ways"] = both_ways
        event(f"after the heal, both ways: {both_ways}")
        time.sleep(2)
        procs["C"].proc.send_signal(signal.SIGKILL)
        event("C killed with SIGKILL")
        procs["C"].proc.wait(10)
        time.sleep(6)
        result["unacked_at_end"] = pub.finish(30)
        event(f"publisher stopped: {len(pub.acked)} acknowledged, {result['unacked_at_end']} unacknowledged")
        time.sleep(1)
        result["acked"] = sorted(pub.acked)
        result["published_at"] = {n: pub.published_at[n] for n in pub.acked}
        result["longest_ack_wait"] = round(pub.longest_wait, 3)
        result["received_b"] = sub_b.got["f/stream"]
        result["received_c"] = sub_c.got["f/stream"]
        procs["B"].stop(signal.SIGTERM)
        result["a_saw_b_leave"] = procs["A"].wait_for(r"A node has left: B", 10)
        event(f"B stopped; A says it left: {result['a_saw_b_leave']}")
    finally:
        for client in clients:
            with contextlib.suppress(Exception):  # a client of a node that is gone
                client.close()
        for node, proc in procs.items():
            result.setdefault("exit", {})[node] = proc.stop(signal.SIGTERM)
        for space in spaces.values():
            space.close()
        result["logs"] = {node: proc.lines for node, proc in procs.items()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
