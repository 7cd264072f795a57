"""Under full MQTT load on both nodes (real processes): no false failure, no link or route lost, nothing acknowledged lost.

The scenario is `routing_load.py` (run under ``unshare -n``); see its docstring. Slow: the
bench drives both nodes for 20 s.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("routing_load.py")


@pytest.mark.slow
def test_under_full_load_on_both_nodes_membership_links_and_routes_hold() -> None:
    missing = [tool for tool in ("unshare", "nsenter", "ip") if shutil.which(tool) is None]
    if missing or importlib.util.find_spec("paho") is None:
        pytest.skip(f"missing {', '.join(missing) or 'paho-mqtt'}")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (needs CAP_SYS_ADMIN)")
    completed = subprocess.run(["unshare", "-n", sys.executable, str(SCRIPT)], capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    result = json.loads(completed.stdout.splitlines()[-1])
    acked, at_b = result["acked"], result["received_b"]
    for node, lines in result["bench"].items():
        print(f"\nbench pairs on {node}:\n" + "\n".join(lines))
    print(f"tracked QoS 1 A->B: {result['published']} published, {len(acked)} acknowledged, {len(at_b)} received; "
          f"longest PUBACK wait {result['longest_ack_wait']} s from the publish() call, "
          f"{result['longest_broker_wait']} s from when paho could send it (its window of 20 free); '#' subscriber on B got {result['everything_received']} messages; "
          f"membership/link events: {result['events']}")
    assert result["bench_rc"] == [0, 0]
    assert len(acked) > 100 and result["unacked_at_end"] == 0
    assert set(acked) <= set(at_b) and at_b == sorted(at_b)
    assert result["events"] == {"A": [], "B": []}  # no suspicion, failure, link down or route removed
    assert result["exit"] == {"A": 0, "B": 0}
