"""Processes of this backend's sandboxes, found from /proc: what a restarted backend checks against
the tasks it re-adopted, so that no process outlives the task it belonged to.

A process is taken for one of ours when its working directory is inside ``sandboxes/``, when its
environment's ``BAY_SANDBOX`` names one of them (both set at spawn and inherited), or when it runs
with the uid of a task this backend recorded (a task's own uid, which it cannot shed, even where it
changed directory and environment). Only root (or the tasks' own user) can read these for every
process; what cannot be read is skipped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterable, Iterator, Set
from dataclasses import dataclass
from pathlib import Path

from . import procfs

log = logging.getLogger("bay.scheduler.local")

MARK = b"BAY_SANDBOX="


@dataclass(frozen=True)
class SandboxProcess:
    pid: int
    session: int
    uid: int
    task_id: str | None  # the sandbox it is in (by cwd or environment); None: found by its uid


def _task_of(path: str, root: str) -> str | None:
    if not path.startswith(root + "/"):
        return None
    name = path[len(root) + 1 :].split("/", 1)[0]
    return name or None


def _marked(pid: int, root: str) -> str | None:
    base = f"/proc/{pid}"
    try:
        if found := _task_of(os.readlink(f"{base}/cwd"), root):
            return found
        with open(f"{base}/environ", "rb") as fh:
            env = fh.read(1 << 20)
    except OSError:
        return None
    for item in env.split(b"\0"):
        if item.startswith(MARK):
            return _task_of(os.fsdecode(item[len(MARK) :]), root)
    return None


def sandbox_processes(sandboxes: Path, uids: Set[int] = frozenset()) -> Iterator[SandboxProcess]:
    """Every live process in ``sandboxes`` or running as one of ``uids`` (this process excepted)."""
    root, me = str(sandboxes.resolve()), os.getpid()
    for entry in os.scandir(procfs.PROC):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        pid = int(entry.name)
        try:
            uid = entry.stat().st_uid
        except OSError:
            continue
        task_id = _marked(pid, root)
        if task_id is None and uid not in uids:
            continue
        stat = procfs.read_stat(pid)
        if stat is not None and stat.state not in ("Z", "X", "x"):
            yield SandboxProcess(pid, stat.session, uid, task_id)


def of_uid(uid: int) -> list[int]:
    """Live pids running as ``uid``."""
    found = []
    for entry in os.scandir(procfs.PROC):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid != uid:
                    continue
            except OSError:
                continue
            if procfs.is_running(int(entry.name)):
                found.append(int(entry.name))
    return found


def kill(sandboxes: Path, live: Iterable[tuple[str, int, int | None]], ended_uids: Set[int]) -> int:
    """SIGKILL every process in the sandbox of no live task, or running as an ended task's uid.
    ``live``: each live task's id, process group and uid. The number killed."""
    live = list(live)
    ids = {task_id for task_id, _, _ in live}
    sessions = {pgid for _, pgid, _ in live}
    uids: Set[int] = {uid for _, _, uid in live if uid is not None}
    killed = 0
    for proc in sandbox_processes(sandboxes, ended_uids - uids):
        if proc.session in sessions or proc.uid in uids or proc.task_id in ids:
            continue  # a live task's (or someone looking into its sandbox)
        where = f"sandbox {proc.task_id}" if proc.task_id else f"uid {proc.uid} of an ended task"
        log.warning("killing process %d (%s): no live task accounts for it", proc.pid, where)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
    return killed
