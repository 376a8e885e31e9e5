"""cgroup v2 limits for tasks, where the host lets us have them.

Detection, not assumption: a cgroup v2 mount with the ``cpu`` and ``memory`` controllers, a parent
directory we may write, and controllers we may enable for a ``bay-tasks`` child. When any step fails
:func:`detect` returns the reason, the backend logs it once and tasks run without limits.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

MOUNTS = Path("/proc/self/mounts")
SELF_CGROUP = Path("/proc/self/cgroup")
CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class CgroupRoot:
    """The directory under which each task gets its own cgroup."""

    path: Path

    def create(self, task_id: str, cpus: float, mem_mib: float) -> Path:
        group = self.path / task_id
        group.mkdir(exist_ok=True)
        if cpus > 0:
            quota = max(1000, math.ceil(cpus * CPU_PERIOD_US))
            (group / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
        if mem_mib > 0:
            (group / "memory.max").write_text(str(int(mem_mib * 1024 * 1024)))
        return group

    def find(self, task_id: str) -> Path | None:
        group = self.path / task_id
        return group if group.is_dir() else None

    def remove(self, task_id: str) -> None:
        group = self.path / task_id
        if group.is_dir():
            try:
                group.rmdir()  # cgroupfs: rmdir, never unlink the interface files
            except OSError:
                shutil.rmtree(group, ignore_errors=True)


def _v2_mount() -> Path | None:
    try:
        lines = MOUNTS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "cgroup2":
            return Path(parts[1])
    return None


def _own_cgroup(mount: Path) -> Path | None:
    try:
        lines = SELF_CGROUP.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            return mount / line[3:].lstrip("/")
    return None


def _enable(directory: Path, controllers: set[str]) -> None:
    enabled = set((directory / "cgroup.subtree_control").read_text().split())
    missing = controllers - enabled
    if missing:
        (directory / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(missing)))


def detect(parent: Path | None, cluster_dir_name: str) -> tuple[CgroupRoot | None, str]:
    """A usable root for task cgroups, or None and why not (for the one log line)."""
    mount = _v2_mount()
    if mount is None:
        return None, "no cgroup v2 filesystem is mounted"
    base = parent or _own_cgroup(mount)
    if base is None:
        return None, "this process's cgroup v2 path is unknown"
    try:
        available = set((base / "cgroup.controllers").read_text().split())
    except OSError as exc:
        return None, f"cannot read {base}/cgroup.controllers ({exc.strerror})"
    needed = {"cpu", "memory"}
    if not needed <= available:
        return None, f"controllers {sorted(needed - available)} are not delegated to {base}"
    root = base / f"bay-{cluster_dir_name}"
    try:
        _enable(base, needed)  # fails (EBUSY) where base holds processes itself: not delegated to us
        root.mkdir(exist_ok=True)
        _enable(root, needed)
    except OSError as exc:
        return None, f"cannot set up {root} ({exc.strerror or exc})"
    return CgroupRoot(root), ""


def usage(group: Path) -> tuple[float, int]:
    """CPU seconds and current memory bytes from a task's cgroup."""
    cpu_usec = 0
    for line in (group / "cpu.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if key == "usage_usec":
            cpu_usec = int(value)
    return cpu_usec / 1_000_000, int((group / "memory.current").read_text())
