"""Which scheduler to ask about a group or a task.

A group's cluster is in its spec (the registry's answer); a task id is ``<group>.<uuid>``, so its
group names the cluster too. A task can outlive that link: its group deleted, or moved to another
cluster (migration) while the old tasks drain. Then every other configured scheduler is asked.
"""

from __future__ import annotations

import asyncio

from bay.v1 import task_pb2

from libs.clients._pool import SchedulerPool
from libs.clients._registry import RegistryClient
from libs.clients._scheduler import SchedulerClient
from libs.errors import NotFound, Unavailable

_ID_HINT = "task ids look like <group>.<uuid>; `bay tasks GROUP --all` lists a group's tasks"


async def group_scheduler(registry: RegistryClient, schedulers: SchedulerPool, name: str) -> SchedulerClient:
    """The scheduler of the group's cluster; NotFound if there is no such group, Unavailable if
    no scheduler is configured for its cluster."""
    return schedulers.of(await registry.group_cluster(name))


async def find_task(
    registry: RegistryClient, schedulers: SchedulerPool, task_id: str
) -> tuple[SchedulerClient, task_pb2.Task]:
    """The scheduler that knows the task, and the task.

    The owning cluster's scheduler is asked first; if it is down, that is the answer (Unavailable).
    The others are asked only when the owner does not know the task or the group is gone; a
    scheduler among them that does not answer makes "not found" unsure (Unavailable) only when no
    owner answered.
    """
    group, dot, rest = task_id.partition(".")
    if not (dot and group and rest):
        raise NotFound(f"no task {task_id!r}", hint=_ID_HINT)
    owner = ""
    try:
        owner = await registry.group_cluster(group)
    except NotFound:
        pass  # the group is gone; its tasks may still be known
    if owner:
        sched = schedulers.of(owner)
        try:
            return sched, await sched.get_task(task_id)
        except NotFound:
            pass
    others = [schedulers.of(c) for c in schedulers.clusters if c != owner]
    answers = await asyncio.gather(*(s.get_task(task_id) for s in others), return_exceptions=True)
    down: list[str] = []
    for sched, answer in zip(others, answers, strict=True):
        if isinstance(answer, task_pb2.Task):
            return sched, answer
        if isinstance(answer, Unavailable):
            down.append(sched.cluster)
        elif not isinstance(answer, NotFound):
            raise answer  # another BayError, or a bug: not to be taken for "not there"
    if down and not owner:
        raise Unavailable(
            f"no scheduler that answered knows task {task_id!r}; those of {', '.join(down)} did not answer",
            hint="the task may run there: retry once they are back",
        )
    where = f"cluster {owner!r}" if owner else "any cluster"
    raise NotFound(f"no task {task_id!r} in {where}", hint=_ID_HINT)
