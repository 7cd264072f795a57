"""Shared fixtures of the gossip tests: the Go toolchain for LZW cross-checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

GOLZW_SOURCE = Path(__file__).parent / "wire" / "golzw" / "main.go"


@pytest.fixture(scope="session")
def golzw(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, bytes], subprocess.CompletedProcess[bytes]]:
    """Run Go's compress/lzw on bytes: ``golzw("c", data)`` or ``golzw("d", data)``; skips without Go."""
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but `go` is missing: .ci/run installs golang-go for the gossip tests")
        pytest.skip("Go toolchain not installed (apt-get install golang-go)")
    out = tmp_path_factory.mktemp("golzw")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(out / "gopath"), "GOCACHE": str(out / "gocache"),
           "GOFLAGS": "", "CGO_ENABLED": "0"}
    binary = out / "golzw"
    subprocess.run([go, "build", "-o", str(binary), str(GOLZW_SOURCE)], check=True, env=env, cwd=out, timeout=300)

    def run(mode: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([str(binary), mode], input=data, capture_output=True, timeout=30)

    return run
