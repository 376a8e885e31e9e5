"""Which scheduler to ask about a group or a task.

A group's cluster is in its spec (the registry's answer); a task id is ``<group>.<uuid>``, so its
group names the cluster too. A task can outlive that link: its group deleted, or moved to another
cluster (migration) while the old tasks drain. Then every other configured scheduler is asked.
"""

from __future__ import annotations

import asyncio

from bay.v1 import group_pb2, registry_pb2, scheduler_pb2, task_pb2

from libs.errors import BayError, NotFound, Unavailable
from services.gateway.registry_client import BoundRegistry
from services.gateway.scheduler_client import BoundScheduler, BoundSchedulers


async def group_cluster(registry: BoundRegistry, name: str) -> str:
    """The cluster the group runs on; NotFound if there is no such group."""
    group: group_pb2.Group = await registry.call(
        registry.stub.GetGroup, registry_pb2.GetGroupRequest(name=name)
    )
    return group.spec.cluster


async def group_scheduler(registry: BoundRegistry, schedulers: BoundSchedulers, name: str) -> BoundScheduler:
    return schedulers.of(await group_cluster(registry, name))


async def _get(sched: BoundScheduler, task_id: str) -> task_pb2.Task:
    task: task_pb2.Task = await sched.call(sched.stub.GetTask, scheduler_pb2.GetTaskRequest(id=task_id))
    return task


async def find_task(
    registry: BoundRegistry, schedulers: BoundSchedulers, task_id: str
) -> tuple[BoundScheduler, task_pb2.Task]:
    """The scheduler that knows the task, and the task.

    The owning cluster's scheduler is asked first; if it is down, that is the answer (503). The
    others are asked only when the owner does not know the task or the group is gone; a scheduler
    among them that does not answer makes "not found" unsure (503) only when no owner answered.
    """
    group, dot, rest = task_id.partition(".")
    if not (dot and group and rest):
        raise NotFound(f"no task {task_id!r}", hint=_ID_HINT)
    owner = ""
    try:
        owner = await group_cluster(registry, group)
    except NotFound:
        pass  # the group is gone; its tasks may still be known
    if owner:
        sched = schedulers.of(owner)
        try:
            return sched, await _get(sched, task_id)
        except NotFound:
            pass
    others = [schedulers.of(c) for c in schedulers.clusters if c != owner]
    answers = await asyncio.gather(*(_get(s, task_id) for s in others), return_exceptions=True)
    down: list[str] = []
    for sched, answer in zip(others, answers, strict=True):
        if isinstance(answer, task_pb2.Task):
            return sched, answer
        if isinstance(answer, Unavailable):
            down.append(sched.cluster)
        elif isinstance(answer, BayError) and not isinstance(answer, NotFound):
            raise answer
        elif not isinstance(answer, BayError):
            raise answer
    if down and not owner:
        raise Unavailable(
            f"no scheduler that answered knows task {task_id!r}; those of {', '.join(down)} did not answer",
            hint="the task may run there: retry once they are back",
        )
    where = f"cluster {owner!r}" if owner else "any cluster"
    raise NotFound(f"no task {task_id!r} in {where}", hint=_ID_HINT)


_ID_HINT = "task ids look like <group>.<uuid>; `bay tasks GROUP --all` lists a group's tasks"
