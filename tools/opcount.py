"""Compare two hookmq builds by the bytecode instructions their broker executes per workload.

Wall-clock and CPU-time figures on a shared two-core virtual machine spread by ±20 % from run to
run, far more than the 3 % a refactor may cost; the number of bytecode instructions a pure-Python
broker executes for a fixed workload repeats to within 0.05 %. It is a proxy (time spent inside
C functions is not weighted), used beside `hookmq bench compare`, not instead of it.

    python tools/opcount.py compare BEFORE_VENV AFTER_VENV [--driver HOOKMQ] [--only KIND ...]

runs each workload once per build (the broker under an opcode tracer, driven by `hookmq bench
run`), subtracts the start-and-stop count, and prints a Markdown table. Loopback only; run it
inside `unshare -n` when other brokers may hold the port.
"""

from __future__ import annotations

import argparse
import os
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

PORT = 18830
WORKLOADS: tuple[tuple[str, ...], ...] = (
    (),  # start and stop only: subtracted from the others
    ("pairs", "--clients", "20", "--messages", "200", "--qos", "0"),
    ("pairs", "--clients", "20", "--messages", "200", "--qos", "1"),
    ("pairs", "--clients", "20", "--messages", "200", "--qos", "2"),
    ("device", "--clients", "20", "--messages", "200", "--qos", "0"),
    ("device", "--clients", "20", "--messages", "200", "--qos", "1"),
    ("device", "--clients", "20", "--messages", "200", "--qos", "2"),
    ("device", "--clients", "100", "--messages", "20", "--qos", "0"),
    ("fanout", "--clients", "50", "--messages", "100", "--qos", "0"),
    ("fanin", "--clients", "50", "--messages", "100", "--qos", "0"),
    ("filters", "--filters", "10000", "--clients", "10", "--messages", "100", "--qos", "0"),
    ("connections", "--connections", "1000"),
    ("latency", "--rate", "200", "--duration", "3"),
)
CONFIG = """disabled_plugins = ["dashboard"]

[mqtt]
max_queued_messages = 1000
max_subscriptions_per_client = 0

[[listeners]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:{port}"

[log]
level = "WARNING"
"""


def serve_counting(config: str, out: str) -> None:
    """Run `hookmq -c CONFIG serve` in this process, counting every bytecode instruction executed."""
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "opcode":
            count += 1
        return local

    def entry(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return local

    sys.argv = ["hookmq", "-c", config, "serve"]
    threading.settrace(entry)
    sys.settrace(entry)
    try:
        runpy.run_module("hookmq", run_name="__main__")
    except SystemExit:
        pass
    finally:
        sys.settrace(None)
        Path(out).write_text(str(count))


def _wait_for_port(port: int, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"broker did not listen on 127.0.0.1:{port} within {deadline_s:.0f} s")


def count_one(venv: Path, workload: tuple[str, ...], driver: str, workdir: Path) -> int:
    """Bytecode instructions one broker run executes: start, the workload (if any), stop."""
    config, out = workdir / "broker.toml", workdir / "count.txt"
    config.write_text(CONFIG.format(port=PORT))
    out.unlink(missing_ok=True)
    python = venv / "bin" / "python"
    broker = subprocess.Popen([str(python), __file__, "serve", str(config), str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(PORT)
        if workload:
            subprocess.run([driver, "bench", "run", "--url", f"mqtt://127.0.0.1:{PORT}", "--no-progress",
                            "--timeout", "900", "--workload", *workload],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=1800)
    finally:
        broker.send_signal(signal.SIGINT)
        broker.wait(timeout=300)
    return int(out.read_text())


def compare(before: Path, after: Path, driver: str, only: list[str] | None = None) -> None:
    """Print the per-workload instruction counts of two builds and their ratio (``only``: those kinds)."""
    chosen = [WORKLOADS[0]] + [w for w in WORKLOADS[1:] if not only or w[0] in only]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        counts = [(count_one(before, w, driver, workdir), count_one(after, w, driver, workdir)) for w in chosen]
    (idle_b, idle_a), rest = counts[0], counts[1:]
    print(f"| workload | {before} | {after} | after/before |\n|---|---|---|---|")
    print(f"| start + stop only | {idle_b:,} | {idle_a:,} | {idle_a / idle_b:.3f} |")
    for workload, (b, a) in zip(chosen[1:], rest, strict=True):
        b, a = b - idle_b, a - idle_a
        print(f"| {' '.join(workload)} | {b:,} | {a:,} | {a / b:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="internal: the counted broker")
    serve.add_argument("config")
    serve.add_argument("out")
    cmp_ = sub.add_parser("compare", help="count both builds on every workload")
    cmp_.add_argument("before", type=Path, help="virtual environment of the first build")
    cmp_.add_argument("after", type=Path, help="virtual environment of the second build")
    cmp_.add_argument("--driver", default=shutil.which("hookmq") or "hookmq", help="hookmq that runs `bench run`")
    cmp_.add_argument("--only", action="append", metavar="KIND",
                      help="only the workloads of this kind (pairs, device, connections, ...); repeatable")
    args = parser.parse_args()
    if args.command == "serve":
        serve_counting(args.config, args.out)
    else:
        if os.environ.get("PYTHONHASHSEED") is None:
            print("note: set PYTHONHASHSEED=0 for counts that repeat exactly", file=sys.stderr)
        compare(args.before, args.after, args.driver, args.only)


if __name__ == "__main__":
    main()
