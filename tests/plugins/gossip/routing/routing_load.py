"""Two real hookmq processes (network namespaces of their own) under full MQTT load on both.

Executed by test_routing_load.py under ``unshare -n``. ``hookmq bench --workload pairs`` drives
each node as hard as it can, a subscriber on B to ``#`` pulls all of A's traffic over the link,
and a tracked QoS 1 stream goes from a publisher on A to a subscriber on B. Prints, on its last
line, as JSON: the stream's figures, the bench summaries, and the nodes' logs (membership and
link lines), so the test can check that nothing failed, no link dropped and no route went.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).parent))
from routing_faults import Namespace, Publisher, Subscriber, address, node_config, run
from routing_walkthrough import Process

SECONDS = 20


def main() -> int:
    run("ip", "link", "set", "lo", "up")
    Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
    spaces = {node: Namespace(node) for node in ("A", "B")}
    folder = Path(tempfile.mkdtemp())
    procs: dict[str, Process] = {}
    result: dict[str, Any] = {}
    try:
        for node in ("A", "B"):
            procs[node] = Process(node, [*spaces[node].enter(), sys.executable, "-m", "hookmq", "-c",
                                         str(node_config(folder, node, "max_inflight = 1000"))])
            assert procs[node].wait_for(r"plugins: ", 30), procs[node].lines
        assert procs["A"].wait_for(r"Link up: B", 30) and procs["B"].wait_for(r"Link up: A", 30)
        mark = {node: len(procs[node].lines) for node in procs}
        tracked = Subscriber("B", "tracked-sub", ["track/t"])
        everything = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="everything")
        counted = [0]
        everything.on_message = lambda *args: counted.__setitem__(0, counted[0] + 1)
        everything.connect(address("B"), 1883)
        everything.loop_start()
        everything.subscribe("#", 0)
        time.sleep(1)
        pub = Publisher("A", "track/t")
        pub.thread.start()
        benches = [subprocess.Popen([sys.executable, "-m", "hookmq", "bench", "--url", f"mqtt://{address(node)}:1883",
                                     "--workload", "pairs", "--qos", "1", "--duration", str(SECONDS), "--no-progress"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                   for node in ("A", "B")]
        outputs = [bench.communicate(timeout=SECONDS + 120)[0] for bench in benches]
        result["bench"] = {node: output.strip().splitlines()[-12:] for node, output in zip("AB", outputs, strict=True)}
        result["bench_rc"] = [bench.returncode for bench in benches]
        result["unacked_at_end"] = pub.finish(30)
        time.sleep(2)
        result["acked"] = sorted(pub.acked)
        result["longest_ack_wait"] = round(pub.longest_wait, 3)
        result["longest_broker_wait"] = round(pub.longest_broker_wait(), 3)
        result["published"] = len(pub.called_at)
        result["received_b"] = tracked.got["track/t"]
        result["everything_received"] = counted[0]
        result["events"] = {node: [line for line in procs[node].lines[mark[node]:]
                                   if any(word in line for word in ("has failed", "Suspect", "Link down", "Routes of",
                                                                    "has left"))]
                            for node in procs}
    finally:
        with contextlib.suppress(Exception):
            tracked.close()
            everything.disconnect()
            everything.loop_stop()
        for node, proc in procs.items():
            result.setdefault("exit", {})[node] = proc.stop(signal.SIGTERM)
        for space in spaces.values():
            space.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
