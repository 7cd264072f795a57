"""Summarise a `bench/profile_device.sh` folder: per-message costs and where the time goes.

Usage: python bench/profile_summary.py OUT_DIR CLIENTS MESSAGES QOS

Prints Markdown: the plain run's wall and CPU per message; system calls per message and
event-loop wake-ups (epoll_wait) per message from strace -c; allocator calls per message from
perf; and from py-spy's collapsed stacks the functions with the most samples on top of the
stack (self) and anywhere in it (inclusive), grouped by file:function.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

# Packets the broker handles per message of a device pair (one client publishing to itself).
PACKETS_PER_MESSAGE = {0: 2, 1: 4, 2: 8}  # in + out: PUBLISH x2, (PUBACK x2 | PUBREC/REL/COMP x2)


def main(argv: list[str]) -> int:
    out, clients, messages, qos = Path(argv[1]), int(argv[2]), int(argv[3]), int(argv[4])
    total = clients * messages
    print(f"## Profile: device q{qos} {clients}x{messages} ({total} messages, "
          f"{PACKETS_PER_MESSAGE[qos]} packets through the broker per message)\n")
    plain(out / "plain.json", total)
    tracepoints(out / "syscalls.txt", delivered(out / "syscalls.json", total))
    syscalls(out / "strace.txt", delivered(out / "strace.json", total))
    allocations(out / "alloc.txt", delivered(out / "alloc.json", total))
    shared_objects(out / "dso.txt", out / "symbols.txt")
    stacks(out / "stacks.txt")
    return 0


def delivered(path: Path, planned: int) -> int:
    """Messages a pass really delivered (a slowed-down pass may time out, or run smaller)."""
    if not path.exists():
        return planned
    (result,) = json.loads(path.read_text())["results"]
    return int(result["received"]) or planned


def plain(path: Path, total: int) -> None:
    if not path.exists():
        return
    (result,) = json.loads(path.read_text())["results"]
    wall, cpu = result["wall_s"], result["metrics"].get("broker_cpu_s")
    print(f"- plain run: wall {wall:.2f} s; broker CPU {cpu:.2f} s = {cpu / total * 1e6:.1f} µs per message; "
          f"load generator CPU {result['metrics']['loadgen_cpu_s']:.2f} s\n")


def tracepoints(path: Path, total: int) -> None:
    if not path.exists():
        return
    rows = []
    for line in path.read_text().splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].strip().isdigit():
            name = fields[2].split(":")[-1].replace("sys_enter_", "")
            rows.append(("all system calls" if name == "sys_enter" else name, int(fields[0])))
    if not rows:
        return
    print(f"System calls over {total:,} messages:\n")
    print("| system call (perf tracepoints) | calls | per message |\n|---|---:|---:|")
    for name, calls in rows:
        print(f"| {name} | {calls:,} | {calls / total:.3f} |")
    print()


def syscalls(path: Path, total: int) -> None:
    if not path.exists():
        return
    rows = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1].isidentifier() and fields[0].replace(".", "").isdigit():
            calls = int(fields[3])
            rows.append((fields[-1], calls, float(fields[1])))
    if not rows:
        return
    print("| system call | calls | per message | seconds |\n|---|---:|---:|---:|")
    for name, calls, seconds in sorted(rows, key=lambda row: -row[1])[:12]:
        print(f"| {name} | {calls:,} | {calls / total:.2f} | {seconds:.3f} |")
    all_calls = sum(row[1] for row in rows)
    print(f"| all | {all_calls:,} | {all_calls / total:.2f} | |\n")


def allocations(path: Path, total: int) -> None:
    if not path.exists():
        return
    found = re.findall(r"^\s*([\d,]+)\s+probe_\w+:(\w+)", path.read_text(), re.MULTILINE)
    if not found:
        return
    print(f"Allocator calls over {total:,} messages (connects and subscribes included):\n")
    print("| allocator entry point | calls | per message |\n|---|---:|---:|")
    calls_total = 0
    for count, name in found:
        calls = int(count.replace(",", ""))
        calls_total += calls
        print(f"| {name} | {calls:,} | {calls / total:.1f} |")
    print(f"| all | {calls_total:,} | {calls_total / total:.1f} |\n")


def shared_objects(dso: Path, symbols: Path) -> None:
    if not dso.exists():
        return
    rows = [line.split(None, 1) for line in dso.read_text().splitlines() if line.strip().endswith(("]", ")")) or "%" in line]
    rows = [row for row in rows if len(row) == 2 and row[0].endswith("%")]
    if not rows:
        return
    print("| CPU by shared object (perf record -e cpu-clock) | share |\n|---|---:|")
    for share, name in rows[:10]:
        print(f"| {name.strip()} | {share} |")
    print()
    if symbols.exists():
        print("Top symbols:\n\n```")
        print("\n".join(symbols.read_text().splitlines()[:25]))
        print("```\n")


def stacks(path: Path, top: int = 25) -> None:
    if not path.exists():
        return
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(frame) for frame in stack.split(";")]
        frames = [frame for frame in frames if frame]
        if not frames:
            continue
        samples += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not samples:
        return
    print(f"py-spy: {samples} samples.\n")
    for title, counts in (("self (top of stack)", self_counts), ("inclusive (anywhere in the stack)", inclusive)):
        print(f"| {title} | share |\n|---|---:|")
        for frame, count in counts.most_common(top):
            print(f"| `{frame}` | {count / samples:.1%} |")
        print()


def _frame(text: str) -> str:
    # py-spy raw frames look like "function (path/to/file.py:123)"; keep file:function.
    match = re.match(r"(?P<fn>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$", text.strip())
    if not match:
        return text.strip()
    file = match["file"]
    for marker in ("/site-packages/", "/lib/python3", "/core/", "/plugins/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{file}:{match['fn']}"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
