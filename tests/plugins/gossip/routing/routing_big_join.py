"""A node with a huge route table joins a running cluster of real hookmq processes (network namespaces).

Executed by test_routing_big_join.py under ``unshare -n`` with the number of filters as its
argument. Nodes A and B (namespaces of their own, as in routing_faults.py) run a cluster with
live QoS 1 traffic from a publisher on A to a subscriber on B. Node C starts cut off from them
(the hub drops what it would forward), a client subscribes it to N filters, and then the cut
is healed: C re-joins, and its N routes travel to A and B while the live traffic goes on. A
probe published on A to C's last filter every 50 ms says when C is routable. Prints, on its
last line, as JSON: seconds from the heal to C's links up and to the first probe delivered,
and the live traffic's figures meanwhile (sent, received, lost, longest gap, worst latency).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).parent))
from routing_faults import Namespace, address, node_config, partition, run
from routing_walkthrough import Process

PER_SUBSCRIBE = 500


def filter_of(n: int) -> str:
    return f"big/{n // 1000}/{n % 1000}"


def connected_client(node: str, client_id: str, **kwargs: Any) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, **kwargs)
    ready = threading.Event()
    client.on_connect = lambda *args: ready.set()
    client.connect(address(node), 1883, keepalive=60)
    client.loop_start()
    assert ready.wait(10), f"no CONNACK from {node}"
    return client


def subscribe_many(client: mqtt.Client, count: int) -> None:
    done = threading.Semaphore(0)
    client.on_subscribe = lambda *args: done.release()
    batches = 0
    for start in range(0, count, PER_SUBSCRIBE):
        client.subscribe([(filter_of(n), 1) for n in range(start, min(start + PER_SUBSCRIBE, count))])
        batches += 1
    for _ in range(batches):
        assert done.acquire(timeout=120), "a SUBACK did not come"


def main() -> int:
    filters = int(sys.argv[1])
    run("ip", "link", "set", "lo", "up")
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
    spaces = {node: Namespace(node) for node in ("A", "B", "C")}
    folder = Path(tempfile.mkdtemp())
    procs: dict[str, Process] = {}
    clients: list[mqtt.Client] = []
    result: dict[str, Any] = {"filters": filters}
    try:
        partition("A", "C", True)
        partition("B", "C", True)
        for node in ("A", "B", "C"):
            extra = "max_subscriptions_per_client = 0" if node == "C" else ""
            procs[node] = Process(node, [*spaces[node].enter(), sys.executable, "-m", "hookmq", "-c",
                                         str(node_config(folder, node, extra))])
            assert procs[node].wait_for(r"plugins: ", 30), procs[node].lines
        assert procs["A"].wait_for(r"Link up: B", 30)
        holder = connected_client("C", "holder", clean_session=True)
        clients.append(holder)
        began = time.monotonic()
        subscribe_many(holder, filters)
        result["subscribe_seconds"] = round(time.monotonic() - began, 2)
        probes: list[float] = []
        holder.on_message = lambda client, userdata, message: probes.append(time.monotonic())

        received: list[tuple[int, float]] = []
        sub = connected_client("B", "live-sub", clean_session=True)
        clients.append(sub)
        sub.on_message = lambda client, userdata, message: received.append((int(message.payload), time.monotonic()))
        sub.subscribe("live/t", 1)
        time.sleep(0.5)
        pub = connected_client("A", "live-pub", clean_session=True)
        probe = connected_client("A", "probe", clean_session=True)
        clients += [pub, probe]
        sent: list[float] = []
        stop = threading.Event()

        def live() -> None:
            while not stop.is_set():
                sent.append(time.monotonic())
                pub.publish("live/t", str(len(sent) - 1), qos=1)
                time.sleep(0.005)

        publisher = threading.Thread(target=live, daemon=True)
        publisher.start()
        time.sleep(1)
        lines_before = len(procs["A"].lines)
        healed = time.monotonic()
        partition("A", "C", False)
        partition("B", "C", False)
        link_up = None
        end = healed + 120
        while time.monotonic() < end and not probes:
            if link_up is None and any("Link up: C" in line for line in procs["A"].lines[lines_before:]):
                link_up = time.monotonic()
            probe.publish(filter_of(filters - 1), b"probe", qos=0)
            time.sleep(0.05)
        result["link_up_after_heal"] = round(link_up - healed, 2) if link_up is not None else None
        result["routable_after_heal"] = round(probes[0] - healed, 2) if probes else None
        result["routable_after_link_up"] = round(probes[0] - link_up, 2) if probes and link_up else None
        time.sleep(1)
        stop.set()
        publisher.join(5)
        time.sleep(3)
        numbers = [n for n, _ in received]
        arrivals = [at for _, at in received]
        result["live_sent"] = len(sent)
        result["live_received"] = len(numbers)
        result["live_lost"] = len(set(range(len(sent))) - set(numbers))
        result["live_in_order"] = numbers == sorted(numbers)
        result["live_longest_gap_ms"] = round(max((b - a for a, b in itertools.pairwise(arrivals)),
                                                  default=0) * 1000, 1)
        result["live_worst_latency_ms"] = round(max((at - sent[n] for n, at in received), default=0) * 1000, 1)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.disconnect()
                client.loop_stop()
        for node, proc in procs.items():
            result.setdefault("exit", {})[node] = proc.stop(signal.SIGTERM)
        for space in spaces.values():
            space.close()
        result["logs"] = {node: [line for line in proc.lines if "connection:" not in line] for node, proc in procs.items()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
