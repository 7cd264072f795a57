"""The Go broker's two cluster commands, run with hookmq in a fresh network namespace.

In a namespace whose only interface is ``lo`` the advertise address can only be loopback,
so nothing leaves the machine; both nodes must log the other's join as the Go broker does.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("gossip_go_commands.py")


def test_both_nodes_print_the_join_lines() -> None:
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (needs unshare and CAP_SYS_ADMIN)")
    result = subprocess.run(["unshare", "-n", sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    logs = json.loads(result.stdout.splitlines()[-1])
    joined = {key: [m.group(1) for line in lines if (m := re.search(r"A node has joined: (\S+)", line))] for key, lines in logs.items()}
    first_name, second_name = joined["first"][0], joined["second"][0]  # each logs its own join first
    assert first_name != second_name
    assert second_name in joined["first"] and first_name in joined["second"]
    assert any("Local member 127.0.0.1:7946" in line for line in logs["first"])
    assert any("Local member 127.0.0.1:7947" in line for line in logs["second"])
    assert all(any("Cluster Node Created!" in line for line in lines) for lines in logs.values())
    assert any(f"A node has left: {second_name}" in line for line in logs["first"]), logs  # ^C is a graceful leave
    assert all(any("neither authenticated nor encrypted" in line for line in lines) for lines in logs.values())
