"""CPU time and memory of whole process groups, read from /proc.

A server may be a gunicorn master with workers, or a Node process with helper threads; the
figures that matter are the sums over the group, so each benchmark reads the group, not a pid.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SERVER_CPUS = {0}
CLIENT_CPUS = {1}


def cpus() -> int:
    return os.cpu_count() or 1


def pinning_possible() -> bool:
    """Pinning server and client apart needs two cores and the right to set affinity."""
    return cpus() >= 2 and hasattr(os, "sched_setaffinity")


def taskset(cpus_: set[int]) -> list[str]:
    """A command prefix that pins a child (and all its threads) to ``cpus_``, where possible."""
    if not pinning_possible():
        return []
    return ["taskset", "-c", ",".join(str(c) for c in sorted(cpus_))]


def pin_self(cpus_: set[int]) -> None:
    if pinning_possible():
        os.sched_setaffinity(0, cpus_)


def pin_running(pid: int, cpus_: set[int]) -> None:
    """Pin every thread of a process that is already running (taskset -p only moves one thread)."""
    if not pinning_possible():
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus_)
        except (ProcessLookupError, PermissionError):
            continue


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # comm may contain spaces; fields after the closing parenthesis are fixed
    return raw[raw.rindex(")") + 2 :].split()


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    rss_bytes: int
    threads: int
    at: float


def usage(pgid: int) -> Usage:
    """CPU seconds (user + system, children that have exited included) and resident memory of a group."""
    cpu, rss, threads = 0.0, 0, 0
    for pid in group_pids(pgid):
        try:
            fields = _stat_fields(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        # after ")": state(0) ppid(1) pgrp(2) … utime(11) stime(12) cutime(13) cstime(14) … num_threads(17) … rss(21)
        cpu += sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS
        threads += int(fields[17])
        rss += int(fields[21]) * PAGE
    return Usage(cpu, rss, threads, time.monotonic())


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def fds(pgid: int) -> int:
    total = 0
    for pid in group_pids(pgid):
        try:
            total += len(os.listdir(f"/proc/{pid}/fd"))
        except (FileNotFoundError, PermissionError):
            continue
    return total
