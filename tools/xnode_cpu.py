"""CPU seconds per cross-node message, read from the two node processes (a steadier figure than msg/s).

Starts a two-node cluster (and a lone node) as `hookmq bench cluster` does, runs the split
throughput workload (publishers on node 1, subscribers on node 2) and the same clients on the
lone node, alternating, and reads each node process's user+system CPU time (``/proc/PID/stat``)
around every run. CPU time spent per delivered message depends far less on what else the machine
runs than msg/s does. Loopback only: run it inside ``unshare -n``.

    python tools/xnode_cpu.py [--clients 20] [--messages 1000] [--rounds 3] [--qos 0 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from hookmq.plugins.gossip.bench import cluster as bench


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--qos", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    from hookmq.bench.workloads import Workload

    settings = bench.ClusterSettings(clients=args.clients, messages=args.messages, workers=2, timeout=60.0)
    rows: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="xnode-cpu-") as scratch, bench._Nodes(Path(scratch)) as nodes:
        single = nodes.cluster("S", 1)[0]
        pair = nodes.cluster("P", 2)
        for qos in args.qos:
            workload = Workload("pairs", clients=args.clients, messages=args.messages, qos=qos)
            for index in range(args.rounds):
                for case in bench._alternating(index):
                    publish, subscribe = (single, single) if case == "one node" else (pair[0], pair[1])
                    procs = {publish.pid, subscribe.pid}
                    before = sum(cpu_seconds(pid) for pid in procs)
                    result = bench._split_run(workload, settings, publish, subscribe)
                    used = sum(cpu_seconds(pid) for pid in procs) - before
                    received = max(result.received, 1)
                    rate = float(result.metrics.get("msg_per_s") or 0.0)
                    rows.setdefault((qos, case), []).append((used / received * 1e6, rate, result.received / result.expected))
                    print(f"q{qos} {case} round {index + 1}: {used / received * 1e6:.1f} µs CPU/msg (nodes), "
                          f"{rate:,.0f} msg/s, {result.received}/{result.expected}", flush=True)
    print("\n| QoS | case | node CPU µs/msg (median) | msg/s (median) | delivered |")
    print("|---|---|---|---|---|")
    for (qos, case), values in sorted(rows.items()):
        print(f"| {qos} | {case} | {statistics.median(v[0] for v in values):.1f} | "
              f"{statistics.median(v[1] for v in values):,.0f} | {min(v[2] for v in values):.1%} |")


if __name__ == "__main__":
    main()
