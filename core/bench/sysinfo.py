"""Facts about the machine and the broker process that a benchmark report needs."""

from __future__ import annotations

import contextlib
import os
import platform
import re
from pathlib import Path


def read_rss_kib(pid: int | None) -> int | None:
    """The resident set size (``VmRSS``) of ``pid`` and its live descendants (workers) in KiB, or None if unknown."""
    if pid is None:
        return None
    own = _own_rss_kib(pid)
    if own is None:
        return None
    return own + sum(_own_rss_kib(child) or 0 for child in descendants(pid))


def _own_rss_kib(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) if match else None


def read_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds ``pid`` and its live descendants have used so far (all their threads), or None.

    The descendants are the workers of ``hookmq --workers`` (a broker without children is its
    own figure, as before).
    """
    if pid is None:
        return None
    own = _own_cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(_own_cpu_seconds(child) or 0.0 for child in descendants(pid))


def _own_cpu_seconds(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (``/proc/PID/task/*/children``), or [] where the kernel does not say."""
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < 10_000:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError, ValueError):
                children = [int(text) for text in (task / "children").read_text().split()]
                found += children
                pending += children
    return found


def read_cpu_wait_seconds(pid: int | None) -> float | None:
    """Seconds ``pid``'s main thread has been runnable but waiting for a CPU (``/proc/PID/schedstat``), or None.

    A single-threaded broker whose wall time is its CPU time plus this was never idle: it did
    not wait for the network, it waited for a core (other processes, or the load generator the
    kernel woke onto its core, ran instead). With workers (children), the sum of their main
    threads' waits.
    """
    if pid is None:
        return None
    children = descendants(pid)
    waits = [_own_cpu_wait_seconds(one) for one in children or [pid]]
    known = [wait for wait in waits if wait is not None]
    return sum(known) if known else None


def _own_cpu_wait_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/schedstat").read_text().split()
    except OSError:
        return None
    return int(fields[1]) / 1e9 if len(fields) >= 2 else None


def read_context_switches(pid: int | None) -> tuple[int, int] | None:
    """(voluntary, involuntary) context switches of ``pid``'s main thread, or None if unknown.

    Voluntary ones are the times it slept (its event loop found nothing to do); involuntary
    ones the times the kernel preempted it to run another process. With workers (children),
    the sums over their main threads.
    """
    if pid is None:
        return None
    counts = [_own_context_switches(one) for one in descendants(pid) or [pid]]
    known = [count for count in counts if count is not None]
    if not known:
        return None
    return sum(count[0] for count in known), sum(count[1] for count in known)


def _own_context_switches(pid: int) -> tuple[int, int] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    voluntary = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.MULTILINE)
    involuntary = re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.MULTILINE)
    if voluntary is None or involuntary is None:
        return None
    return int(voluntary.group(1)), int(involuntary.group(1))


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo`` (falls back to ``platform.processor()``)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return match.group(1).strip() if match else platform.processor() or "unknown"


def memory_gib() -> float | None:
    """Total RAM in GiB from ``/proc/meminfo``."""
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    return round(int(match.group(1)) / 1024**2, 1) if match else None


def machine() -> dict[str, str | int | float | None]:
    """What the results were measured on."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "ram_gib": memory_gib(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
