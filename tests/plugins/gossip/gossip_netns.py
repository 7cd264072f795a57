"""A private network for tests: nodes in network namespaces of their own, on one bridge.

``NetnsLab(3)`` creates a hub namespace holding a bridge and, per node, a namespace joined to
it by a veth pair, with an address from 10.213.13.0/24 that exists only inside these
namespaces. Nothing touches the machine's own interfaces. Names carry a random suffix, and
:meth:`close` deletes every namespace it made (deleting a namespace deletes its links too).
Needs root and ``ip`` (iproute2).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

SUBNET = "10.213.13"


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


def require_netns() -> None:
    """Skip (fail under CI=true) when namespaces cannot be made here."""
    problem = ""
    if shutil.which("ip") is None:
        problem = "iproute2 (ip) is not installed"
    elif os.geteuid() != 0:
        problem = "network namespaces need root"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {problem}")
        pytest.skip(problem)


class NetnsLab:
    """A bridge in a hub namespace, and ``count`` node namespaces on it."""

    def __init__(self, count: int) -> None:
        tag = uuid.uuid4().hex[:6]
        self.hub = f"gvh{tag}"
        self.nodes = [f"gvn{index}{tag}" for index in range(count)]
        self._made: list[str] = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self) -> None:
        _ip("netns", "add", self.hub)
        self._made.append(self.hub)
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.hub, "link", "set", "br0", "up")
        for index, namespace in enumerate(self.nodes):
            _ip("netns", "add", namespace)
            self._made.append(namespace)
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", self.hub, "link", "add", f"b{index}", "type", "veth", "peer", "name", "v0", "netns", namespace)
            _ip("-n", self.hub, "link", "set", f"b{index}", "master", "br0", "up")
            _ip("-n", namespace, "addr", "add", f"{self.address(index)}/24", "dev", "v0")
            _ip("-n", namespace, "link", "set", "v0", "up")

    def address(self, index: int) -> str:
        """Node ``index``'s address (inside its namespace only)."""
        return f"{SUBNET}.{10 + index}"

    def prefix(self, index: int) -> list[str]:
        """The command prefix that runs a program in node ``index``'s namespace."""
        return ["ip", "netns", "exec", self.nodes[index]]

    def link(self, index: int, up: bool) -> None:
        """Plug node ``index``'s cable out of the bridge, or back in (its bridge port down or up)."""
        _ip("-n", self.hub, "link", "set", f"b{index}", "up" if up else "down")

    def close(self) -> None:
        """Delete every namespace made (and so every veth and the bridge)."""
        for namespace in reversed(self._made):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True, timeout=10)
        self._made.clear()

    def leftovers(self) -> list[str]:
        """Namespaces of this lab that still exist (none after :meth:`close`)."""
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        names = {line.split()[0] for line in listed.splitlines() if line.strip()}
        return sorted(names & {self.hub, *self.nodes})
