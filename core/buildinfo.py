"""Which build of hookmq runs: the modules compiled with mypyc, or the pure-Python ones.

`setup.py` compiles the protocol layer and the engine's hot modules with mypyc when it can
(a C compiler and mypy are present) and falls back to the pure-Python modules otherwise; the
two builds behave the same and run the same test suite. `hookmq --version` and the startup
banner say which one is in use.
"""

from __future__ import annotations

import importlib
from importlib.machinery import EXTENSION_SUFFIXES

#: The modules setup.py compiles with mypyc (under their installed names), in import order.
COMPILED_MODULES: tuple[str, ...] = (
    "hookmq.hooks",
    "hookmq.mqtt._wire",
    "hookmq.mqtt.errors",
    "hookmq.mqtt.reason_codes",
    "hookmq.mqtt.properties",
    "hookmq.mqtt.packets",
    "hookmq.mqtt.topics",
    "hookmq.mqtt._decode",
    "hookmq.mqtt._encode",
    "hookmq.mqtt.codec",
    "hookmq.mqtt.trie",
    "hookmq.engine.message",
    # The records the per-message path reads and changes: a compiled class's fields are read
    # natively by the compiled modules, an interpreted one's through a generic attribute lookup.
    "hookmq.engine.session",
    "hookmq.engine.stats",
    "hookmq.engine.protocol",
    "hookmq.engine.client",
    "hookmq.engine.delivery",
    "hookmq.engine.router",
    "hookmq.engine.connection",
    # The connect path: accepting a connection is CPU-bound (docs/benchmarks.md, "The connect path").
    "hookmq.engine.deadlines",
    "hookmq.engine.connlog",
    "hookmq.engine.lifecycle",
    "hookmq.engine.handshake",
    # The transport of TCP and TLS connections: every read event and write of a connection runs through it.
    "hookmq.transport.descriptors",
    "hookmq.transport.sockets",
    "hookmq.transport.handlers",
    "hookmq.transport.stream",
)


def is_compiled(module_name: str) -> bool:
    """Whether the named module was loaded from a compiled extension."""
    module = importlib.import_module(module_name)
    path = getattr(module, "__file__", None) or ""
    return any(path.endswith(suffix) for suffix in EXTENSION_SUFFIXES)


def compiled_modules() -> list[str]:
    """The modules of `COMPILED_MODULES` that run compiled in this process."""
    return [name for name in COMPILED_MODULES if is_compiled(name)]


def build() -> str:
    """``compiled (mypyc, N modules)``, ``partly compiled (N of M modules)`` or ``pure Python``."""
    compiled = compiled_modules()
    if not compiled:
        return "pure Python"
    if len(compiled) == len(COMPILED_MODULES):
        return f"compiled (mypyc, {len(compiled)} modules)"
    return f"partly compiled (mypyc, {len(compiled)} of {len(COMPILED_MODULES)} modules)"


__all__ = ["COMPILED_MODULES", "build", "compiled_modules", "is_compiled"]
