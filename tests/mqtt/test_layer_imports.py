"""The protocol layer is sans-I/O: it imports no asyncio, sockets or clocks."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import hookmq.mqtt

FORBIDDEN = ("asyncio", "socket", "time", "selectors", "ssl", "threading", "datetime")
MQTT_DIR = Path(hookmq.mqtt.__file__).parent

# ``hookmq`` itself (its __init__ pulls in pluggy and logging) is imported first, so what is
# measured is exactly what the protocol layer adds on top of the package.
_PROBE = """
import importlib, json, pkgutil, sys
import hookmq
before = set(sys.modules)
import hookmq.mqtt
names = [m.name for m in pkgutil.iter_modules(hookmq.mqtt.__path__)]
for name in names:
    importlib.import_module("hookmq.mqtt." + name)
print(json.dumps({"names": names, "added": sorted(set(sys.modules) - before)}))
"""


def test_importing_every_protocol_module_loads_no_io_or_clock_module() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True)
    report = json.loads(result.stdout)
    assert {"codec", "packets", "properties", "errors", "reason_codes"} <= set(report["names"])
    loaded = {name.partition(".")[0] for name in report["added"]}
    assert not loaded & set(FORBIDDEN), f"hookmq.mqtt loads {sorted(loaded & set(FORBIDDEN))}"


def _imported_roots(source: str) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.partition(".")[0])
    return roots


def test_no_protocol_module_names_an_io_or_clock_module() -> None:
    sources = sorted(MQTT_DIR.glob("*.py"))
    assert len(sources) >= 5
    for path in sources:
        bad = _imported_roots(path.read_text()) & set(FORBIDDEN)
        assert not bad, f"{path.name} imports {sorted(bad)}"
