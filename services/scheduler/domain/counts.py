"""A group's tasks counted by state, for ``bay scale --wait``, status watchers and the gRPC API."""

from __future__ import annotations

from dataclasses import dataclass

from libs.events.model import TaskState
from libs.views import Group, Task, ready

_STAGED = (TaskState.STAGING, TaskState.STARTING)


@dataclass
class Counts:
    desired: int = 0
    staged: int = 0
    running: int = 0
    healthy: int = 0
    unhealthy: int = 0
    ready: int = 0
    killing: int = 0
    active: int = 0  # filling a slot: alive, not being killed, not failed by its health check


def count(group: Group | None, tasks: list[Task], cluster: str | None = None) -> Counts:
    """One pass over the group's tasks (called for every status watcher update). ``desired`` is what
    the group's version targets on ``cluster`` ask for (all of them when None): the instance count
    of a settled group; during a deployment, old and new together."""
    if group is None:
        c = Counts()
    elif not group.targets:
        c = Counts(desired=group.instances)
    else:
        c = Counts(
            desired=sum(t.instances for t in group.targets if cluster is None or t.spec.cluster == cluster)
        )
    for task in tasks:
        st = task.state
        if st.terminal:
            continue
        if task.kill_reason or st == TaskState.KILLING:
            c.killing += 1
            continue
        healthy = task.healthy
        if healthy is not False:
            c.active += 1
        if st in _STAGED:
            c.staged += 1
        elif st == TaskState.RUNNING:
            c.running += 1
            if group is not None and ready(task, group.checked(task.group_version)):
                c.ready += 1
        if healthy is True:
            c.healthy += 1
        elif healthy is False:
            c.unhealthy += 1
    return c
