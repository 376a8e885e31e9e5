"""A group's tasks counted by state, for ``bay scale --wait``, status watchers and the gRPC API: the
totals over all its versions here, and per version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from libs.events.model import TaskState, VersionTarget
from libs.views import Group, Task, ready

_STAGED = (TaskState.STAGING, TaskState.STARTING)


@dataclass
class VersionCounts:
    version: int
    instances: int = 0  # its target here (0: none; its tasks are going)
    in_service: bool = False
    running: int = 0
    ready: int = 0
    active: int = 0


@dataclass
class Counts:
    desired: int = 0  # over the versions this cluster runs
    staged: int = 0
    running: int = 0
    healthy: int = 0
    unhealthy: int = 0
    ready: int = 0
    killing: int = 0
    active: int = 0  # filling a slot: alive, not being killed, not failed by its health check
    missing: int = 0  # slots of a version not filled by a task of that version
    versions: dict[int, VersionCounts] = field(default_factory=dict)  # targets and versions with tasks


def count(group: Group | None, tasks: list[Task], targets: Sequence[VersionTarget] = ()) -> Counts:
    """One pass over the group's tasks (called for every status watcher update); ``targets`` are the
    group's targets on this cluster."""
    c = Counts(desired=sum(t.instances for t in targets))
    for t in targets:
        c.versions[t.version] = VersionCounts(t.version, t.instances, t.in_service)
    for task in tasks:
        st = task.state
        if st.terminal:
            continue
        v = c.versions.get(task.group_version)
        if v is None:
            v = c.versions[task.group_version] = VersionCounts(task.group_version)
        if task.kill_reason or st == TaskState.KILLING:
            c.killing += 1
            continue
        healthy = task.healthy
        if healthy is not False:
            c.active += 1
            v.active += 1
        if st in _STAGED:
            c.staged += 1
        elif st == TaskState.RUNNING:
            c.running += 1
            v.running += 1
            if ready(task, group is not None and group.checked(task.group_version)):
                c.ready += 1
                v.ready += 1
        if healthy is True:
            c.healthy += 1
        elif healthy is False:
            c.unhealthy += 1
    c.missing = sum(max(0, v.instances - v.active) for v in c.versions.values())
    return c
