"""What the local tasks use: from a task's cgroup where it has one, else summed over its process
group from /proc (one pass over /proc for every task without a cgroup)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from services.scheduler.ports import LaunchSpec, TaskUsage

from . import cgroups, procfs


def usage(running: Sequence[tuple[LaunchSpec, int, Path | None]], now: float) -> list[TaskUsage]:
    """``running``: each running task's spec, process group and cgroup (or None)."""
    by_group = procfs.usage_by_group({pid for _, pid, cgroup in running if cgroup is None})
    found = []
    for spec, pid, cgroup in running:
        if cgroup is not None:
            try:
                cpu, mem = cgroups.usage(cgroup)
            except (OSError, ValueError):
                continue
        else:
            cpu, mem = by_group[pid].cpu_seconds, by_group[pid].rss_bytes
        found.append(
            TaskUsage(
                task_id=spec.task_id,
                timestamp=now,
                cpu_seconds=cpu,
                mem_bytes=mem,
                cpus_limit=spec.cpus,  # reserved; enforced only when the task has a cgroup
                mem_limit_bytes=int(spec.mem * 1024 * 1024),
            )
        )
    return found
