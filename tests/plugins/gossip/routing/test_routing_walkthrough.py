"""The Go broker's two-nodes walk-through with real hookmq processes, Redis and mosquitto clients.

Run in a fresh network namespace (loopback only), so the fixed ports of the walk-through
(1883, 1885, 7946, 7947, 6379, ...) collide with nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("routing_walkthrough.py")
NEEDED = ("unshare", "stdbuf", "redis-server", "mosquitto_sub", "mosquitto_pub")


def test_the_two_nodes_walkthrough_verbatim() -> None:
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (needs CAP_SYS_ADMIN)")
    completed = subprocess.run(["unshare", "-n", sys.executable, str(SCRIPT)], capture_output=True, text=True,
                               timeout=240)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]
    *transcript, last = completed.stdout.splitlines()
    print("\n".join(transcript))
    result = json.loads(last)
    first, second = result["joined"]["first"], result["joined"]["second"]
    assert len(first) == 2 and first == second  # both nodes logged both joins
    assert result["link_up"]
    assert [t["qos"] for t in result["transfers"]] == [0, 1, 2, 0, 1, 2]
    for transfer in result["transfers"]:
        assert transfer["subscribed"] and transfer["pub_rc"] == 0 and transfer["sub_rc"] == 0, transfer
        assert transfer["received"] == [transfer["expected"]], transfer
    assert result["exit"] == {"first": 0, "second": 0}
