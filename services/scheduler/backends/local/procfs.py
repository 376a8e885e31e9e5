"""Reading /proc: is a pid still the process we started, and what does a process group use.

The start time (field 22 of /proc/<pid>/stat, clock ticks since boot) tells a live task from an
unrelated process that happens to have been given the same pid after a restart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str
    pgrp: int
    session: int
    utime: int
    stime: int
    start_ticks: int
    rss_pages: int


def read_stat(pid: int) -> ProcStat | None:
    """The parsed /proc/<pid>/stat, or None when there is no such process."""
    raw = _read(f"{PROC}/{pid}/stat")
    if raw is None:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = raw[raw.rindex(")") + 2 :].split()
    return ProcStat(
        pid=pid,
        state=rest[0],
        pgrp=int(rest[2]),
        session=int(rest[3]),
        utime=int(rest[11]),
        stime=int(rest[12]),
        start_ticks=int(rest[19]),
        rss_pages=int(rest[21]),
    )


def _read(path: str) -> str | None:
    """A small /proc file at once (os.read: pathlib's read_text costs more than the read, and the
    scheduler reads thousands of these a second while it ends tasks)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
        return None
    try:
        return os.read(fd, 4096).decode("utf-8", "replace")
    except (ProcessLookupError, OSError):
        return None
    finally:
        os.close(fd)


def groups() -> dict[int, list[int]]:
    """Live (non-zombie) pids of every process group, in one pass over /proc."""
    table: dict[int, list[int]] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        raw = _read(f"{PROC}/{entry.name}/stat")
        if raw is None:
            continue
        rest = raw[raw.rindex(")") + 2 :].split(None, 3)
        if rest[0] not in ("Z", "X", "x"):
            table.setdefault(int(rest[2]), []).append(int(entry.name))
    return table


class GroupScan:
    """Process groups' members from one /proc pass shared by every caller within ``max_age``
    seconds: ending a hundred tasks at once polls their groups without a hundred passes each time."""

    def __init__(self, max_age: float = 0.05, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.clock = clock
        self._at: float | None = None
        self._table: dict[int, list[int]] = {}

    def members(self, pgid: int) -> list[int]:
        now = self.clock()
        if self._at is None or now - self._at > self.max_age:
            self._table, self._at = groups(), now
        return list(self._table.get(pgid, ()))


def is_running(pid: int, start_ticks: int | None = None) -> bool:
    """True while ``pid`` lives (not a zombie) and, if given, was started at ``start_ticks``."""
    stat = read_stat(pid)
    if stat is None or stat.state in ("Z", "X", "x"):
        return False
    return start_ticks is None or stat.start_ticks == start_ticks


@dataclass
class GroupUsage:
    cpu_seconds: float = 0.0
    rss_bytes: int = 0


def usage_by_group(pgids: set[int]) -> dict[int, GroupUsage]:
    """CPU seconds and resident memory summed over every live process of each process group."""
    found: dict[int, GroupUsage] = {pgid: GroupUsage() for pgid in pgids}
    if not pgids:
        return found
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        stat = read_stat(int(entry.name))
        if stat is None or stat.pgrp not in found or stat.state in ("Z", "X", "x"):
            continue
        usage = found[stat.pgrp]
        usage.cpu_seconds += (stat.utime + stat.stime) / CLOCK_TICKS
        usage.rss_bytes += stat.rss_pages * PAGE_SIZE
    return found


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids of a process group."""
    members = []
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None and stat.pgrp == pgid and stat.state not in ("Z", "X", "x"):
                members.append(stat.pid)
    return members
