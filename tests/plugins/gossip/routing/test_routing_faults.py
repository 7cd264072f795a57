"""Faults across three real hookmq processes in network namespaces: a broken link, partitions, a heal, kill -9.

The scenario is `routing_faults.py` (run under ``unshare -n``); see its docstring. Between
live nodes no acknowledged QoS 1 message may be lost, and after the heal routes are exchanged
again and messages flow both ways.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("routing_faults.py")
NEEDED = ("unshare", "nsenter", "ip", "ss")


def log_time(line: str) -> float:
    """The wall-clock time of a hookmq log line (its local-time stamp)."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def false_failure_windows(lines: list[str], node: str) -> list[tuple[float, float]]:
    """From each "has failed: NODE" to the next "has joined: NODE" (wall-clock times)."""
    windows, start = [], None
    for line in lines:
        if f"has failed: {node}" in line:
            start = log_time(line)
        elif f"has joined: {node}" in line and start is not None:
            windows.append((start, log_time(line)))
            start = None
    if start is not None:
        windows.append((start, float("inf")))
    return windows


def test_a_broken_link_partitions_a_heal_and_kill_9_lose_no_acknowledged_message_between_live_nodes() -> None:
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing or importlib.util.find_spec("paho") is None:
        pytest.skip(f"missing {', '.join(missing) or 'paho-mqtt'}")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (needs CAP_SYS_ADMIN)")
    completed = subprocess.run(["unshare", "-n", sys.executable, str(SCRIPT)], capture_output=True, text=True,
                               timeout=240)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    print(completed.stderr)  # the timeline
    result = json.loads(completed.stdout.splitlines()[-1])
    acked, at_b = result["acked"], result["received_b"]
    print(f"publisher on A: {len(acked)} QoS 1 messages acknowledged; subscriber on B received {len(at_b)}, "
          f"{len(set(at_b))} distinct; longest wait for a PUBACK {result['longest_ack_wait']} s")
    assert len(acked) > 1000
    assert result["unacked_at_end"] == 0  # nothing left waiting once C was gone
    logs = result["logs"]
    # Membership may still declare a live node failed for a moment right after the heal (C's
    # stale verdict travelling back); the links hold such a node while they hear from it, so
    # nothing is lost even then. The windows are printed, and no loss is tolerated in them.
    windows = false_failure_windows(logs["A"], "B")
    lost = sorted(set(acked) - set(at_b))
    held = [line for line in logs["A"] if "Link to B held" in line or "Link to B kept" in line]
    print(f"false failures of B seen by A: {windows or 'none'}; links holding B: {held or 'none'}; "
          f"acknowledged and not received on B: {len(lost)}")
    assert lost == []  # no acknowledged message lost between the live nodes A and B
    assert at_b == sorted(at_b)  # and in order (a copy may repeat only next to itself)
    assert result["c_declared_dead"] and result["c_link_back"]
    assert result["after_heal_both_ways"] == {"A->f/to-c": True, "C->f/to-a": True}
    assert result["received_c"]  # C's subscriber had the stream before the partition
    assert result["a_saw_b_leave"]
    assert any("Routes of node C removed" in line for line in logs["A"])  # the dead node's routes went
    false = [f"{node}: {line}" for node in "AB" for line in logs[node] if "has failed: A" in line or "has failed: B" in line]
    print("false failures reported by membership:", false or "none")
    assert result["exit"] == {"A": 0, "B": 0, "C": -9}
