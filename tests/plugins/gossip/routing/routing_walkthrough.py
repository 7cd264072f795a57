"""The Go broker's two-nodes walk-through, verbatim, inside the current (fresh) network namespace.

Executed by test_routing_walkthrough.py under ``unshare -n``: brings ``lo`` up, starts a
redis-server on 6379, then

    hookmq --mode=true --port=7946 --redis=127.0.0.1:6379
    hookmq --mode=true --port=7947 --members=127.0.0.1:7946 --tcp=:1885 --ws=:1886 --info=:1887 --redis=127.0.0.1:6379

waits (bounded) for the join lines on both, and for QoS 0, 1 and 2 runs ``mosquitto_sub -p 1883``
receiving what ``mosquitto_pub -p 1885`` sends, and back (``-p 1885`` receiving from ``-p 1883``).
Prints a transcript and, on its last line, everything as JSON.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

JOINED = re.compile(r"A node has joined: (\S+)")


class Process:
    """A child process whose output lines are collected by a thread."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(re.search(pattern, line) for line in list(self.lines)):
                return True
            if self.proc.poll() is not None:
                time.sleep(0.2)
                return any(re.search(pattern, line) for line in list(self.lines))
            time.sleep(0.05)
        return False

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.thread.join(5)
        return self.proc.returncode


def transfer(sub_port: int, pub_port: int, qos: int) -> dict[str, Any]:
    """mosquitto_sub on one node, mosquitto_pub on the other; what the subscriber printed."""
    topic = f"walkthrough/{pub_port}-to-{sub_port}/qos{qos}"
    message = f"hello from {pub_port} at QoS {qos}"
    sub_cmd = ["mosquitto_sub", "-p", str(sub_port), "-t", topic, "-q", str(qos), "-C", "1", "-W", "15", "-v", "-d"]
    # mosquitto_sub's stdout is a pipe here: line-buffer it so "received SUBACK" is seen when it happens.
    sub = Process("sub", ["stdbuf", "-oL", *sub_cmd])
    subscribed = sub.wait_for(r"received SUBACK", 10)
    pub_cmd = ["mosquitto_pub", "-p", str(pub_port), "-t", topic, "-q", str(qos), "-m", message, "-d"]
    pub = subprocess.run(pub_cmd, capture_output=True, text=True, timeout=20)
    sub.proc.wait(20)
    sub.thread.join(5)
    got = [line for line in sub.lines if line.startswith(topic + " ")]
    return {"qos": qos, "sub": " ".join(sub_cmd), "pub": " ".join(pub_cmd), "subscribed": subscribed,
            "pub_rc": pub.returncode, "pub_output": pub.stdout.splitlines(), "sub_rc": sub.proc.returncode,
            "received": got, "expected": f"{topic} {message}"}


def main() -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    redis = Process("redis", [shutil.which("redis-server") or "redis-server", "--port", "6379", "--save", "",
                              "--appendonly", "no", "--bind", "127.0.0.1"])
    result: dict[str, Any] = {"transfers": []}
    nodes: list[Process] = []
    try:
        assert redis.wait_for(r"Ready to accept connections", 15), redis.lines
        hookmq = [sys.executable, "-m", "hookmq"]
        first = Process("first", [*hookmq, "--mode=true", "--port=7946", "--redis=127.0.0.1:6379"])
        nodes.append(first)
        assert first.wait_for(r"Cluster Node Created!", 20), first.lines
        second = Process("second", [*hookmq, "--mode=true", "--port=7947", "--members=127.0.0.1:7946", "--tcp=:1885",
                                    "--ws=:1886", "--info=:1887", "--redis=127.0.0.1:6379"])
        nodes.append(second)

        def joined(proc: Process) -> set[str]:
            return {m.group(1) for line in proc.lines if (m := JOINED.search(line))}

        end = time.monotonic() + 30
        while time.monotonic() < end and not (len(joined(first)) >= 2 and joined(first) == joined(second)):
            time.sleep(0.1)
        result["joined"] = {"first": sorted(joined(first)), "second": sorted(joined(second))}
        result["link_up"] = first.wait_for(r"Link up: ", 20) and second.wait_for(r"Link up: ", 20)
        for qos in (0, 1, 2):
            result["transfers"].append(transfer(1883, 1885, qos))
        for qos in (0, 1, 2):
            result["transfers"].append(transfer(1885, 1883, qos))
    finally:
        for node in reversed(nodes):
            result.setdefault("exit", {})[node.name] = node.stop()
        redis.stop(signal.SIGTERM)
        result["logs"] = {node.name: node.lines for node in nodes}
    print_transcript(result)
    print(json.dumps(result))
    return 0


def print_transcript(result: dict[str, Any]) -> None:
    for name, lines in result["logs"].items():
        print(f"--- {name} node log ---")
        for line in lines:
            print(line)
    for transfer_result in result["transfers"]:
        print(f"$ {transfer_result['sub']}   # then: $ {transfer_result['pub']}")
        for line in transfer_result["received"]:
            print(line)


if __name__ == "__main__":
    sys.exit(main())
