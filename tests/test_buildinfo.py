"""Which build runs: every module of COMPILED_MODULES compiled, or none (a half-compiled build is broken)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from hookmq import buildinfo
from hookmq.mqtt.codec import Decoder


def test_every_listed_module_exists() -> None:
    for name in buildinfo.COMPILED_MODULES:
        assert importlib.import_module(name).__name__ == name


def test_the_build_is_all_compiled_or_all_pure() -> None:
    compiled = buildinfo.compiled_modules()
    assert compiled in ([], list(buildinfo.COMPILED_MODULES))
    assert buildinfo.build() == ("pure Python" if not compiled else f"compiled (mypyc, {len(compiled)} modules)")


@pytest.mark.skipif("HOOKMQ_EXPECT_BUILD" not in os.environ, reason="only CI says which build it installed")
def test_ci_runs_the_build_it_installed() -> None:
    # .ci/run runs the suite twice, against the compiled install and the pure-Python one.
    expected = os.environ["HOOKMQ_EXPECT_BUILD"]
    assert expected in ("compiled", "pure")
    assert bool(buildinfo.compiled_modules()) == (expected == "compiled")


def test_version_names_the_build() -> None:
    out = subprocess.run([sys.executable, "-m", "hookmq", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"({buildinfo.build()})" in out.stdout


def test_the_decoder_takes_any_bytes_like_input_in_either_build() -> None:
    # mypyc checks annotations at run time: Decoder.feed must accept what transports hand it.
    packet = b"\x30\x07\x00\x03a/bxy"
    for data in (packet, bytearray(packet), memoryview(packet)):
        (decoded,) = Decoder(protocol_level=4).feed(data)
        assert decoded.topic == "a/b"
        assert decoded.payload == b"xy"
